"""Comparison of actual values with expected ones, with the case's tolerance."""

from __future__ import annotations

import math
import re
from typing import Any


class Mismatch(AssertionError):
    pass


def close(actual: Any, expected: Any, tol: float, where: str = "") -> None:
    """Numbers within ``tol`` (exact-ish when 0), lists elementwise, dicts on the expected keys."""
    if isinstance(expected, bool) or expected is None or isinstance(expected, str):
        if actual != expected or type(actual) is not type(expected):
            raise Mismatch(f"{where}: expected {expected!r}, got {actual!r}")
        return
    if isinstance(expected, (int, float)):
        if isinstance(actual, bool) or not isinstance(actual, (int, float)):
            raise Mismatch(f"{where}: expected number {expected!r}, got {actual!r}")
        if math.isnan(expected) and math.isnan(actual):
            return
        bound = tol if tol > 0 else 1e-9 * max(1.0, abs(expected))
        if abs(actual - expected) > bound:
            raise Mismatch(f"{where}: expected {expected!r} (tolerance {tol}), got {actual!r}")
        return
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            raise Mismatch(f"{where}: expected list {expected!r}, got {actual!r}")
        for i, (a, e) in enumerate(zip(actual, expected)):
            close(a, e, tol, f"{where}[{i}]")
        return
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            raise Mismatch(f"{where}: expected object {expected!r}, got {actual!r}")
        for k, e in expected.items():
            if k not in actual:
                raise Mismatch(f"{where}.{k}: missing (expected {e!r}); got keys {sorted(actual)}")
            close(actual[k], e, tol, f"{where}.{k}")
        return
    raise Mismatch(f"{where}: cannot compare {expected!r}")


def path_get(body: Any, path: str) -> Any:
    """A dotted path with numeric list indexes; a key holding dots is found as a whole first."""
    if path in ("", "$body"):
        return body
    node = body
    parts = path.split(".")
    i = 0
    while i < len(parts):
        if isinstance(node, list):
            node = node[int(parts[i])]
            i += 1
            continue
        if not isinstance(node, dict):
            raise KeyError(path)
        for j in range(len(parts), i, -1):  # longest key first (keys may contain dots)
            key = ".".join(parts[i:j])
            if key in node:
                node = node[key]
                i = j
                break
        else:
            raise KeyError(path)
    return node


def matches(actual: Any, expected: Any) -> bool:
    if isinstance(expected, str) and len(expected) > 1 and expected.startswith("/") and expected.rstrip().endswith("/"):
        pattern = expected.strip()[1:-1]
        return re.search(pattern, str(actual), re.X) is not None
    try:
        close(actual, expected, 0.0)
        return True
    except Mismatch:
        return False
