"""Comparing what the project answered with what a case expects.

Rules (the same for every case file):

* numbers: ``|actual - expected| <= tolerance``; with a tolerance of 0, floats must agree to 1e-9
  relative (plus 1e-12 absolute, for values at 0) and integers exactly. An int and a float are
  equal when they are numerically equal; a bool is never a number.
* strings, booleans, ``None``: exact, same type.
* lists: same length, compared element by element.
* dicts: only the keys the case lists, unless ``full`` (then the key sets must be equal too).

:class:`Diff` collects every mismatch of a case, so a failure shows the whole difference between
what was expected and what came back, not only the first one.
"""

from __future__ import annotations

import json
import math
import re
from decimal import Decimal
from typing import Any


class Mismatch(AssertionError):
    pass


MISSING = object()  # a path that does not exist


def _short(value: Any, limit: int = 300) -> str:
    if value is MISSING:
        return "<missing>"
    try:
        text = json.dumps(value, sort_keys=False, default=repr)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def numbers_close(actual: float, expected: float, tol: float) -> bool:
    if isinstance(expected, float) and math.isnan(expected):
        return isinstance(actual, float) and math.isnan(actual)
    if isinstance(expected, float) and math.isinf(expected) or isinstance(actual, float) and math.isinf(actual):
        return actual == expected
    if tol > 0:
        return abs(actual - expected) <= tol
    if isinstance(actual, int) and isinstance(expected, int):
        return actual == expected
    return math.isclose(actual, expected, rel_tol=1e-9, abs_tol=1e-12)


class Diff:
    """Collects mismatches; :meth:`done` raises one AssertionError listing all of them."""

    def __init__(self, what: str = "") -> None:
        self.what = what
        self.problems: list[str] = []
        self.notes: list[str] = []

    def add(self, message: str) -> None:
        self.problems.append(message)

    def note(self, message: str) -> None:
        self.notes.append(message)

    def __bool__(self) -> bool:
        return bool(self.problems)

    def check(self, actual: Any, expected: Any, tol: float = 0.0, where: str = "", full: bool = False) -> bool:
        """Compare; record every mismatch under ``where``. Returns True when equal."""
        before = len(self.problems)
        self._check(actual, expected, tol, where or "$", full)
        return len(self.problems) == before

    def _check(self, actual: Any, expected: Any, tol: float, where: str, full: bool) -> None:
        if actual is MISSING:
            self.add(f"{where}: missing (expected {_short(expected)})")
            return
        if expected is None or isinstance(expected, (bool, str)):
            if type(actual) is not type(expected) or actual != expected:
                self.add(f"{where}: expected {_short(expected)}, got {_short(actual)}")
            return
        if is_number(expected):
            if not is_number(actual) or not numbers_close(actual, expected, tol):
                tail = f" (tolerance {tol})" if tol else ""
                self.add(f"{where}: expected {_short(expected)}{tail}, got {_short(actual)}")
            return
        if isinstance(expected, list):
            if not isinstance(actual, list):
                self.add(f"{where}: expected a list {_short(expected)}, got {_short(actual)}")
                return
            if len(actual) != len(expected):
                self.add(f"{where}: expected {len(expected)} entries {_short(expected)}, "
                         f"got {len(actual)}: {_short(actual)}")
                return
            for i, (a, e) in enumerate(zip(actual, expected)):
                self._check(a, e, tol, f"{where}[{i}]", full)
            return
        if isinstance(expected, dict):
            if not isinstance(actual, dict):
                self.add(f"{where}: expected an object {_short(expected)}, got {_short(actual)}")
                return
            for key, e in expected.items():
                self._check(actual.get(key, MISSING), e, tol, f"{where}.{key}", full)
            if full:
                extra = [k for k in actual if k not in expected]
                if extra:
                    self.add(f"{where}: unexpected keys {extra} (values {_short({k: actual[k] for k in extra})})")
            return
        self.add(f"{where}: the case holds a value the harness cannot compare: {expected!r}")

    def done(self) -> None:
        if self.problems:
            head = f"{self.what}: " if self.what else ""
            lines = [f"{head}{len(self.problems)} mismatch(es)"] + [f"  - {p}" for p in self.problems]
            if self.notes:
                lines += [f"  (note: {n})" for n in self.notes]
            raise Mismatch("\n".join(lines))


def equal(actual: Any, expected: Any, tol: float = 0.0, full: bool = False) -> bool:
    return Diff().check(actual, expected, tol, full=full)


def close(actual: Any, expected: Any, tol: float, where: str = "") -> None:
    """Compare and raise at once (used where one comparison decides a step)."""
    diff = Diff()
    diff.check(actual, expected, tol, where)
    diff.done()


# -- dotted paths -----------------------------------------------------------------------------

def split_path(path: str) -> list[str]:
    """Split an ES YAML-runner path on dots; ``\\.`` is a literal dot inside a key."""
    parts = re.split(r"(?<!\\)\.", path)
    return [p.replace("\\.", ".") for p in parts]


def path_get(body: Any, path: str) -> Any:
    """Value at a dotted path with numeric list indexes; :data:`MISSING` when it does not exist."""
    if path in ("", "$body"):
        return body
    node = body
    for part in split_path(path):
        if isinstance(node, list):
            if not re.fullmatch(r"-?\d+", part):
                return MISSING
            index = int(part)
            if not -len(node) <= index < len(node):
                return MISSING
            node = node[index]
        elif isinstance(node, dict):
            if part not in node:
                return MISSING
            node = node[part]
        else:
            return MISSING
    return node


def path_exists(body: Any, path: str) -> bool:
    return path_get(body, path) is not MISSING


# -- ES YAML runner semantics -----------------------------------------------------------------

def java_str(value: Any) -> str:
    """``String.valueOf`` of a JSON value as Java renders it (for truthiness and substring checks)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return java_double(value)
    if isinstance(value, (dict, list)):
        return java_json(value)
    return str(value)


def es_truthy(value: Any) -> bool:
    """YAML ``is_true``: present, not null, and not "", "false" (any case) or "0"."""
    if value is MISSING or value is None:
        return False
    text = java_str(value)
    return text != "" and text.lower() != "false" and text != "0"


def java_double(value: float) -> str:
    """``Double.toString``: shortest round-trip digits, ``1.0E-5`` style outside [1e-3, 1e7)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "-0.0" if math.copysign(1.0, value) < 0 else "0.0"
    magnitude = abs(value)
    if 1e-3 <= magnitude < 1e7:
        text = repr(value)  # shortest round-trip digits, never in exponent form in this range
        return text if "." in text else text + ".0"
    sign, digits, exp = Decimal(repr(value)).as_tuple()
    digits_text = "".join(map(str, digits)).rstrip("0") or "0"
    exponent = len(digits) + exp - 1
    mantissa = digits_text[0] + "." + (digits_text[1:] or "0")
    return f"{'-' if sign else ''}{mantissa}E{exponent}"


def java_json(value: Any) -> str:
    """Compact JSON as Elasticsearch writes it (doubles in Java's notation, key order kept)."""
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{java_json(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(java_json(v) for v in value) + "]"
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, float):
        return java_double(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return json.dumps(value, default=str)


def regex_value(expected: Any) -> str | None:
    """A YAML ``match`` value written ``/regex/`` (the pattern), else None."""
    if isinstance(expected, str):
        text = expected.strip()
        if len(text) >= 2 and text.startswith("/") and text.endswith("/"):
            return text[1:-1]
    return None
