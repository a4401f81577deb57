"""rest.json: REST step sequences from the upstream YAML tests, through ``Engine.request``."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from .compare import Mismatch, matches, path_get


def _no_handler(resp: Any) -> bool:
    err = resp.body.get("error") if isinstance(resp.body, dict) else None
    return resp.status == 400 and isinstance(err, str) and err.startswith("no handler found")


def _check_step(step: dict[str, Any], resp: Any) -> None:
    want = step.get("expected_status", 200)
    if want == "4xx":
        assert 400 <= resp.status < 500, f"{step['method']} {step['path']}: expected 4xx, got {resp.status}: {resp.body}"
    else:
        assert resp.status == want, f"{step['method']} {step['path']}: expected {want}, got {resp.status}: {resp.body}"
    text = json.dumps(resp.body)
    if "expected_error_matches" in step:
        assert re.search(step["expected_error_matches"], text), f"/{step['expected_error_matches']}/ not in {text}"
    for check in step.get("expect") or []:
        ((op, arg),) = check.items()
        if op == "match":
            for path, expected in arg.items():
                actual = path_get(resp.body, path)
                if not matches(actual, expected):
                    raise Mismatch(f"match {path}: expected {expected!r}, got {actual!r}")
        elif op == "length":
            for path, expected in arg.items():
                assert len(path_get(resp.body, path)) == expected, f"length {path} != {expected}"
        elif op == "is_true":
            try:
                value = path_get(resp.body, arg)
            except (KeyError, IndexError):
                raise Mismatch(f"is_true {arg}: missing") from None
            assert value not in (None, False, "", 0, [], {}), f"is_true {arg}: {value!r}"
        elif op == "is_false":
            try:
                value = path_get(resp.body, arg)
            except (KeyError, IndexError):
                continue
            assert value in (None, False, "", 0, [], {}), f"is_false {arg}: {value!r}"
        elif op == "body_regex":
            assert re.search(arg, text, re.X), f"body_regex {arg} not in {text}"
        else:
            raise Mismatch(f"unknown expectation {op}")


def run(case: dict[str, Any], meta: dict[str, Any]) -> None:
    from es_infer_nb import Engine

    eng = Engine()
    setup = (meta.get("setups") or {}).get(case.get("setup_ref") or "", {}).get("steps", [])
    missing: list[str] = []
    try:
        for step in setup:
            resp = eng.request(step["method"], step["path"], step.get("body"), params=step.get("query"))
            if _no_handler(resp):
                missing.append(f"{step['method']} {step['path']}")
                continue
            _check_step(step, resp)
        for step in case["steps"]:
            resp = eng.request(step["method"], step["path"], step.get("body"), params=step.get("query"))
            if _no_handler(resp) and step.get("expected_status", 200) != 400:
                missing.append(f"{step['method']} {step['path']}")
            _check_step(step, resp)
    except (AssertionError, KeyError, IndexError, TypeError) as exc:
        reasons = []
        if case.get("scope"):
            reasons.append(f"scope [{case['scope']}] is not supported yet")
        if case.get("requires_processors"):
            reasons.append(f"needs ingest processors {case['requires_processors']}")
        if missing:
            reasons.append(f"needs APIs the engine does not have: {', '.join(missing)}")
        if reasons:
            pytest.xfail("; ".join(reasons) + f" ({type(exc).__name__}: {str(exc)[:200]})")
        raise
