"""rest.json: REST step sequences from the upstream YAML tests, through ``Engine.request``.

A fresh engine per case runs ``setups[setup_ref]`` and then the case's steps, in order. Per step:
``expected_status`` (an int, or ``"4xx"``), ``expected_error_matches`` (regex searched in the
JSON of the answer), and ``expect`` items as the ES YAML runner reads them: ``match`` (whole-value
equality; a string ``/.../`` is a regex), ``length``, ``is_true``, ``is_false``, ``body_regex``.

An answer "no handler found" / "Incorrect HTTP method" never satisfies a step: the route is
named as a missing API in the failure. A case that fails fails, whatever its ``scope``; the cases
the project knowingly cannot pass are listed, with why, in ``tests/conformance/known_failures.json``.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from .compare import MISSING, Diff, equal, es_truthy, java_json, path_get, regex_value
from .support import engine, route_missing


class StepFailed(AssertionError):
    pass


def _describe(step: dict[str, Any], index: int, phase: str) -> str:
    return f"{phase} step {index} ({step.get('api', '?')}: {step.get('method')} {step.get('path')})"


def _json(body: Any) -> str:
    try:
        return json.dumps(body, ensure_ascii=False)
    except (TypeError, ValueError):
        return str(body)


def _match(diff: Diff, body: Any, path: str, expected: Any, where: str) -> None:
    actual = path_get(body, path)
    pattern = regex_value(expected)
    if pattern is not None:
        text = actual if isinstance(actual, str) else java_json(actual) if actual is not MISSING else None
        if text is None or re.search(pattern, text) is None:
            diff.add(f"{where} match {path}: /{pattern}/ does not match {actual!r}")
        return
    if actual is MISSING:
        diff.add(f"{where} match {path}: missing (expected {expected!r})")
        return
    if not equal(actual, expected, 0.0, full=True):
        diff.add(f"{where} match {path}: expected {expected!r}, got {actual!r}")


def check_step(step: dict[str, Any], resp: Any, where: str) -> None:
    diff = Diff()
    want = step.get("expected_status", 200)
    if want == "4xx":
        if not 400 <= resp.status < 500:
            diff.add(f"{where}: expected a 4xx status, got {resp.status}: {_json(resp.body)[:400]}")
    elif resp.status != want:
        diff.add(f"{where}: expected status {want}, got {resp.status}: {_json(resp.body)[:400]}")
    text = _json(resp.body)
    if "expected_error_matches" in step and not re.search(step["expected_error_matches"], text):
        diff.add(f"{where}: /{step['expected_error_matches']}/ not found in {text[:400]}")
    for check in step.get("expect") or []:
        if not isinstance(check, dict) or len(check) != 1:
            diff.add(f"{where}: cannot read expectation {check!r}")
            continue
        ((op, arg),) = check.items()
        if op == "match":
            for path, expected in arg.items():
                _match(diff, resp.body, path, expected, where)
        elif op == "length":
            for path, expected in arg.items():
                value = path_get(resp.body, path)
                if not isinstance(value, (list, dict)):
                    diff.add(f"{where} length {path}: expected {expected}, got {value if value is not MISSING else '<missing>'!r}")
                elif len(value) != expected:
                    diff.add(f"{where} length {path}: expected {expected}, got {len(value)}: {_json(value)[:300]}")
        elif op == "is_true":
            value = path_get(resp.body, arg)
            if not es_truthy(value):
                diff.add(f"{where} is_true {arg}: got {'<missing>' if value is MISSING else repr(value)}")
        elif op == "is_false":
            value = path_get(resp.body, arg)
            if es_truthy(value):
                diff.add(f"{where} is_false {arg}: got {value!r}")
        elif op == "body_regex":
            if not re.search(arg, text):
                diff.add(f"{where} body_regex /{arg}/ not found in {text[:400]}")
        else:
            diff.add(f"{where}: unknown expectation {op!r} (case not passed on a subset)")
    if diff:
        raise StepFailed("\n".join(diff.problems))


def _send(eng: Any, step: dict[str, Any]) -> Any:
    body = step.get("body")
    if body is None and "body_ndjson" in step:
        body = step["body_ndjson"]  # a list of the ndjson lines' objects (bulk)
    return eng.request(step["method"], step["path"], body, params=step.get("query"))


def run(case: dict[str, Any], meta: dict[str, Any]) -> None:
    eng = engine()
    setup_ref = case.get("setup_ref")
    setups = meta.get("setups") or {}
    if setup_ref and setup_ref not in setups:
        pytest.fail(f"setup {setup_ref!r} is not defined in the file", pytrace=False)
    setup = (setups.get(setup_ref) or {}).get("steps", []) if setup_ref else []
    missing: list[str] = []
    failure: str | None = None
    for phase, steps in (("setup", setup), ("case", case.get("steps") or [])):
        for index, step in enumerate(steps):
            where = _describe(step, index, phase)
            try:
                resp = _send(eng, step)
            except Exception as exc:  # noqa: BLE001 - Engine.request must never raise
                failure = f"{where}: Engine.request raised {type(exc).__name__}: {exc}"
                break
            if route_missing(resp):
                missing.append(f"{step.get('api') or ''} {step['method']} {step['path']}".strip())
                if phase == "setup":
                    continue  # only matters if the case then fails
                failure = f"{where}: the engine has no such route ({resp.body.get('error')})"
                break
            try:
                check_step(step, resp, where)
            except StepFailed as exc:
                failure = str(exc)
                break
        if failure:
            break
    if failure is None:
        return
    if missing:
        failure += "; routes the engine does not have: " + ", ".join(dict.fromkeys(missing))
    pytest.fail(failure, pytrace=False)


KINDS = {"steps": run}


def default_kind(case: dict[str, Any]) -> str:
    return "steps"
