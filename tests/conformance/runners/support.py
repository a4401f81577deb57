"""What every runner needs: a fresh engine, the hooks of a case kind and the ES error checks.

The package is imported inside the runners, case by case, so that a package that does not import
fails each case that needs it (with the ImportError) instead of the collection of the whole suite.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable

import pytest

from .compare import Diff, is_number

def engine() -> Any:
    from es_infer_nb import Engine

    return Engine()


def request(eng: Any, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None) -> Any:
    return eng.request(method, path, body, params=params)


def route_missing(resp: Any) -> bool:
    """True when the engine has no handler for the request (ES's plain-string 400 / 405 answers)."""
    body = getattr(resp, "body", None)
    err = body.get("error") if isinstance(body, dict) else None
    if not isinstance(err, str):
        return False
    return (resp.status == 400 and err.startswith("no handler found")) or (
        resp.status == 405 and err.startswith("Incorrect HTTP method")
    )


def hook(module_name: str, name: str) -> Callable[..., Any]:
    """``module_name.name``, imported now. A module that does not import or a missing function is a
    failure of the case (never an xfail): the harness has no notion of a feature still to come."""
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - whatever breaks the import is the case's failure
        pytest.fail(f"cannot import {module_name}: {type(exc).__name__}: {exc}", pytrace=False)
    fn = getattr(module, name, None)
    if not callable(fn):
        pytest.fail(f"{module_name} has no function {name!r} for this case kind", pytrace=False)
    return fn


def error_of(resp: Any) -> dict[str, Any] | None:
    body = getattr(resp, "body", None)
    err = body.get("error") if isinstance(body, dict) else None
    return err if isinstance(err, dict) else None


def check_error(diff: Diff, resp: Any, expected: dict[str, Any], where: str = "error") -> None:
    """An ES error answer against ``expected_error`` = {type, reason | reason_contains, http_status?}.

    ``http_status`` defaults to 400 (any 4xx when the case gives no status and ``type`` is the
    generic ``exception``). ``type`` is compared unless it is ``exception`` (upstream only checked
    that something was thrown). When both ``reason`` and ``reason_contains`` are given the case
    means the substring (it matches several upstream versions).
    """
    status = expected.get("http_status")
    if status is None and expected.get("type") == "exception":
        if not (400 <= resp.status < 500):
            diff.add(f"{where}: expected a 4xx error, got HTTP {resp.status}: {resp.body}")
            return
    else:
        status = 400 if status is None else status
        if resp.status != status:
            diff.add(f"{where}: expected HTTP {status}, got {resp.status}: {resp.body}")
            return
    err = error_of(resp)
    if err is None:
        diff.add(f"{where}: no ES error object in {resp.body}")
        return
    if expected.get("type") not in (None, "exception"):
        diff.check(err.get("type"), expected["type"], 0.0, f"{where}.type")
    reason = err.get("reason")
    if "reason_contains" in expected:
        if not isinstance(reason, str) or expected["reason_contains"] not in reason:
            diff.add(f"{where}.reason: expected to contain {expected['reason_contains']!r}, got {reason!r}")
    elif "reason" in expected:
        diff.check(reason, expected["reason"], 0.0, f"{where}.reason")


def check_exception(diff: Diff, exc: BaseException | None, expected: dict[str, Any], where: str = "error") -> None:
    """A raised exception (module-level hooks) against ``expected_error``.

    The type is read from an ``ApiError``-like ``error_type``/``type`` attribute (an exception without
    one fails a case that names an ES type); the
    message from ``reason``/``message`` or ``str(exc)``. ``message`` in the case is the same as
    ``reason``.
    """
    if exc is None:
        diff.add(f"{where}: expected an error {expected}, nothing was raised")
        return
    etype = getattr(exc, "error_type", None) or getattr(exc, "type", None)
    reason = getattr(exc, "reason", None) or getattr(exc, "message", None) or str(exc)
    if expected.get("type") not in (None, "exception"):
        if etype is None:  # an ES error type is expected: a bare Python exception is a defect, not a match
            diff.add(f"{where}.type: expected {expected['type']!r}, got {type(exc).__name__}: {exc}")
        else:
            diff.check(etype, expected["type"], 0.0, f"{where}.type")
    want = expected.get("reason", expected.get("message"))
    if "reason_contains" in expected:
        if expected["reason_contains"] not in str(reason):
            diff.add(f"{where}.reason: expected to contain {expected['reason_contains']!r}, got {reason!r}")
    elif want is not None:
        diff.check(str(reason), want, 0.0, f"{where}.reason")
    status = expected.get("http_status")
    got_status = getattr(exc, "status", None)
    if status is not None and is_number(got_status):
        diff.check(got_status, status, 0.0, f"{where}.status")


def tolerance(case: dict[str, Any]) -> float:
    tol = case.get("tolerance", 0.0)
    return float(tol) if is_number(tol) else 0.0
