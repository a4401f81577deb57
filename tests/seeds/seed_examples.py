"""Shared helpers of the seed tests: the seed texts (copied under ``data/``), the check that an
example is the seed's own, placeholder filling, and a shape comparison with a documented response."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from es_infer_nb import Engine
from es_infer_nb.notebook.console import ConsoleRequest, parse_console

DATA = Path(__file__).resolve().parent / "data"


def seed_text(name: str) -> str:
    """The text of a seed document, e.g. ``seed_text("000_5e2884b01b02cd57.txt")``."""
    return (DATA / name).read_text(encoding="utf-8")


def squeeze(text: str) -> str:
    """``text`` without any whitespace (the seeds were flattened from HTML and Markdown)."""
    return "".join(text.split())


def assert_in_seed(seed: str, *examples: str) -> None:
    """Every example occurs in the seed text, character for character (whitespace and ``\\"`` aside)."""
    flat = squeeze(seed).replace('\\"', '"')
    for example in examples:
        assert squeeze(example).replace('\\"', '"') in flat, example


def fenced_blocks(seed: str, *languages: str) -> list[str]:
    """The contents of the seed's Markdown code fences of those languages, in order."""
    pattern = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
    return [m.group(2) for m in pattern.finditer(seed) if m.group(1) in languages]


def fill(text: str, **values: str) -> Any:
    """``text`` with each placeholder replaced by its value, parsed as JSON."""
    return json.loads(replace_all(text, values))


def replace_all(text: str, values: dict[str, str]) -> str:
    for placeholder, value in values.items():
        text = text.replace(placeholder, value)
    return text


def console(text: str, **values: str) -> list[ConsoleRequest]:
    """A Kibana console example (placeholders replaced first) as requests."""
    return parse_console(replace_all(text, values))


def send(engine: Engine, request: ConsoleRequest) -> Any:
    return engine.request(request.method, request.path, request.body)


def ok(engine: Engine, method: str, path: str, body: Any = None) -> Any:
    resp = engine.request(method, path, body)
    assert resp.status == 200, resp
    return resp.body


def error(resp: Any, status: int, type_: str, reason: str) -> dict[str, Any]:
    """The ES error envelope of ``resp``, checked: its status, type and reason (root cause alike)."""
    assert resp.status == status, resp.body
    assert resp.body["status"] == status
    err = resp.body["error"]
    assert (err["type"], err["reason"]) == (type_, reason), err
    return err


def simulate(engine: Engine, processor: dict[str, Any], *sources: dict[str, Any]) -> list[dict[str, Any]]:
    """Run one processor in a ``_simulate`` pipeline over documents; the ``docs`` of the answer."""
    body = {"pipeline": {"processors": [processor]}, "docs": [{"_source": s} for s in sources]}
    return ok(engine, "POST", "_ingest/pipeline/_simulate", body)["docs"]


def same_shape(actual: Any, documented: Any, where: str = "$") -> None:
    """``actual`` has the documented response's shape: every documented key, with a value of the same
    JSON type (numbers: int where the documentation shows an int), lists element by element against
    the documented first element."""
    if isinstance(documented, dict):
        assert isinstance(actual, dict), f"{where}: expected an object, got {actual!r}"
        for key, value in documented.items():
            assert key in actual, f"{where}: missing key {key!r} (has {sorted(actual)})"
            same_shape(actual[key], value, f"{where}.{key}")
    elif isinstance(documented, list):
        assert isinstance(actual, list), f"{where}: expected an array, got {actual!r}"
        if documented:
            assert actual, f"{where}: expected a non-empty array"
            for i, item in enumerate(actual):
                same_shape(item, documented[min(i, len(documented) - 1)], f"{where}[{i}]")
    elif isinstance(documented, bool) or documented is None:
        assert actual is documented or type(actual) is type(documented), f"{where}: {actual!r} vs {documented!r}"
    elif isinstance(documented, int):
        assert isinstance(actual, int) and not isinstance(actual, bool), f"{where}: expected an integer, got {actual!r}"
    elif isinstance(documented, float):
        assert isinstance(actual, (int, float)) and not isinstance(actual, bool), f"{where}: expected a number"
    else:
        assert isinstance(actual, type(documented)), f"{where}: expected {type(documented).__name__}, got {actual!r}"
