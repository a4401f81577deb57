"""The upstream REST cases (conformance ``rest.json``) sent over HTTP give the in-process outcome.

The server must add nothing but the wire: every case of ``rest.json`` runs twice through the
conformance runner, once on ``Engine.request`` directly and once through a server on a fresh
engine (JSON bodies, the query as a client sends it, answers parsed from the wire). Both runs
must end the same way (passed, or xfailed for the same missing feature).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from _pytest.outcomes import Failed, XFailed

from es_infer_nb import Engine, Response
from es_infer_nb.server import serve

CONFORMANCE_TESTS = Path(__file__).resolve().parents[1] / "conformance"
if str(CONFORMANCE_TESTS) not in sys.path:
    sys.path.insert(0, str(CONFORMANCE_TESTS))

from runners import rest  # noqa: E402


def conformance_dir() -> Path:
    """The conformance harness's own answer (tests/conformance/conftest.py), loaded by path."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("_conformance_conftest", CONFORMANCE_TESTS / "conftest.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.conformance_dir()


def _cases() -> tuple[list[dict[str, Any]], dict[str, Any]]:
    path = conformance_dir() / "rest.json"
    if not path.is_file():
        return [], {}
    doc = json.loads(path.read_text(encoding="utf-8"))
    return doc["cases"], doc


CASES, META = _cases()


def _param(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(_param(v) for v in value)
    return str(value)


class HttpEngine:
    """``request(method, path, body, params)`` over the wire, answering a :class:`Response`."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client

    def request(self, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None) -> Response:
        content = None
        headers = {"accept": "application/json"}
        if body is not None:
            if isinstance(body, list) and body and all(isinstance(x, dict) for x in body) and method == "POST" and "_bulk" in path:
                content = "".join(json.dumps(x) + "\n" for x in body)
                headers["content-type"] = "application/x-ndjson"
            else:
                content = body if isinstance(body, str) else json.dumps(body)
                headers["content-type"] = "application/json"
        url = path if path.startswith("/") else "/" + path
        resp = self.client.request(method, url, content=content, headers=headers,
                                   params={k: _param(v) for k, v in (params or {}).items()})
        assert resp.headers["x-elastic-product"] == "Elasticsearch"
        parsed = resp.json() if resp.content else None
        return Response(resp.status_code, parsed, {})


def _outcome(case: dict[str, Any]) -> tuple[str, str]:
    try:
        rest.run(case, META)
    except XFailed as exc:
        return "xfailed", str(exc).split(" [", 1)[0]
    except Failed as exc:
        return "failed", str(exc)
    return "passed", ""


@pytest.mark.skipif(not CASES, reason="no rest.json in the conformance directory")
@pytest.mark.parametrize("case", CASES, ids=[c.get("id", str(i)) for i, c in enumerate(CASES)])
def test_rest_case_over_http_ends_as_in_process(case, monkeypatch):
    direct = _outcome(case)
    servers = []

    def http_engine() -> HttpEngine:
        handle = serve(Engine(), port=0, quiet=True)
        client = httpx.Client(base_url=handle.url, timeout=60)
        servers.append((handle, client))
        return HttpEngine(client)

    monkeypatch.setattr(rest, "engine", http_engine)
    try:
        over_http = _outcome(case)
    finally:
        for handle, client in servers:
            client.close()
            handle.stop()
    assert over_http == direct
