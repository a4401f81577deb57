"""Concurrent ``_infer`` calls answered by one engine call, each caller getting its own results."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from es_infer_nb import Engine, Response
from es_infer_nb.server import serve
from helpers import stump_regression


class RecordingEngine(Engine):
    """Records the size of every ``_infer`` engine call; can hold the first one; poison docs fail."""

    def __init__(self) -> None:
        super().__init__()
        self.sizes: list[int] = []
        self.hold = threading.Event()
        self.hold.set()
        self.entered = threading.Event()

    def request(self, method, path, body=None, params=None):  # type: ignore[override]
        parsed = body
        if isinstance(body, str):  # the server hands unmerged bodies over as the JSON text
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = None
        if method == "POST" and path.split("?")[0].endswith("/_infer") and isinstance(parsed, dict):
            docs = parsed.get("docs") or []
            self.sizes.append(len(docs))
            self.entered.set()
            self.hold.wait(30)
            if any("poison" in d for d in docs):
                return Response(400, {"error": {"root_cause": [{"type": "status_exception", "reason": "poisoned"}],
                                                "type": "status_exception", "reason": "poisoned"}, "status": 400})
        return super().request(method, path, body, params)


@pytest.fixture
def recording() -> RecordingEngine:
    engine = RecordingEngine()
    engine.request("PUT", "_ml/trained_models/m", stump_regression(threshold=0.5, left=1.0, right=2.0))
    return engine


def _wait_queued(handle: Any, n: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        batchers = list(handle._app.coalescer._batchers.values())
        if batchers and sum(b.queued for b in batchers) >= n:
            return
        time.sleep(0.01)
    raise AssertionError(f"{n} documents never queued")


def _infer(url: str, docs: list[dict[str, Any]]) -> httpx.Response:
    return httpx.post(url + "/_ml/trained_models/m/_infer", json={"docs": docs}, timeout=30)


def test_queued_calls_become_one_engine_call(recording):
    with serve(recording, port=0, quiet=True, infer_batch_docs=64) as handle, ThreadPoolExecutor(9) as pool:
        recording.hold.clear()
        first = pool.submit(_infer, handle.url, [{"x": 0.0}] * 8)
        assert recording.entered.wait(10)
        calls = [[{"x": 0.0 if (c + i) % 2 else 1.0} for i in range(8)] for c in range(8)]
        futures = [pool.submit(_infer, handle.url, docs) for docs in calls]
        _wait_queued(handle, 64)
        recording.hold.set()
        assert [r["predicted_value"] for r in first.result().json()["inference_results"]] == [1.0] * 8
        for docs, fut in zip(calls, futures):
            resp = fut.result()
            assert resp.status_code == 200
            assert [r["predicted_value"] for r in resp.json()["inference_results"]] == [1.0 if d["x"] == 0.0 else 2.0 for d in docs]
    assert recording.sizes == [8, 64]
    stats = recording.request("GET", "_ml/trained_models/m/_stats").body
    assert stats["trained_model_stats"][0]["inference_stats"]["inference_count"] == 72


def test_an_error_reaches_only_its_own_call(recording):
    with serve(recording, port=0, quiet=True, infer_batch_docs=64) as handle, ThreadPoolExecutor(4) as pool:
        recording.hold.clear()
        first = pool.submit(_infer, handle.url, [{"x": 0.0}])
        assert recording.entered.wait(10)
        good = pool.submit(_infer, handle.url, [{"x": 1.0}, {"x": 0.0}])
        bad = pool.submit(_infer, handle.url, [{"x": 1.0, "poison": True}])
        also_good = pool.submit(_infer, handle.url, [{"x": 1.0}])
        _wait_queued(handle, 4)
        recording.hold.set()
        assert first.result().status_code == 200
        assert [r["predicted_value"] for r in good.result().json()["inference_results"]] == [2.0, 1.0]
        assert [r["predicted_value"] for r in also_good.result().json()["inference_results"]] == [2.0]
        failed = bad.result()
        assert failed.status_code == 400
        assert failed.json()["error"]["reason"] == "poisoned"
        assert failed.headers["x-elastic-product"] == "Elasticsearch"


def test_only_plain_small_calls_are_merged(recording):
    with serve(recording, port=0, quiet=True, infer_batch_docs=4) as handle, httpx.Client(base_url=handle.url) as http:
        big = http.post("/_ml/trained_models/m/_infer", json={"docs": [{"x": 0.0}] * 10})
        assert big.status_code == 200 and len(big.json()["inference_results"]) == 10
        odd = http.post("/_ml/trained_models/m/_infer", json={"docs": [{"x": 0.0}], "colour": "red"})
        assert odd.status_code == 400  # the engine's own answer about the unknown field
        broken = http.post("/_ml/trained_models/m/_infer", content=b'{"docs": [', headers={"content-type": "application/json"})
        assert broken.status_code == 400 and broken.json()["error"]["type"] == "x_content_parse_exception"
        missing = http.post("/_ml/trained_models/nope/_infer", json={"docs": [{"x": 0.0}]})
        assert missing.status_code == 404
        assert missing.json()["error"]["type"] == "resource_not_found_exception"
        configured = http.post("/_ml/trained_models/m/_infer",
                               json={"docs": [{"x": 0.0}], "inference_config": {"regression": {"results_field": "out"}}})
        assert configured.json()["inference_results"] == [{"out": 1.0}]
    assert 10 in recording.sizes


def test_off_by_default_each_call_is_its_own_engine_call(recording):
    with serve(recording, port=0, quiet=True) as handle:
        assert handle._app.coalescer is None
        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(lambda _: _infer(handle.url, [{"x": 0.0}] * 3), range(8)))
    assert all(r.status_code == 200 for r in results)
    assert recording.sizes == [3] * 8
