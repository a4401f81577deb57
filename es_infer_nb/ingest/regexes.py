"""Regular expressions from pipelines (``gsub``, ``split``), run with a time limit.

A pipeline's pattern is user input: with a backtracking engine ``(a+)+$``-style patterns take time
that doubles with every character of the value. Patterns are compiled with the ``regex`` package
(Java-like syntax, a superset of ``re``) and every match runs with ``timeout=`` and
``concurrent=True`` (the GIL is released while it matches, so other requests go on). A match that
runs out of time fails its own document only, with the error Painless gives for a regex over its
limit: ``circuit_breaking_exception`` (429, ``durability: PERMANENT``).
"""

from __future__ import annotations

from typing import Any, Callable

import regex
from jsonpath_ng.ext.filter import Expression
from jsonpath_ng.jsonpath import DatumInContext

from ..errors import ApiError

#: seconds one match / substitution / split of one value may take: a base, plus a little per character
#: (as Painless's limit grows with the input: ``script.painless.regex.limit-factor``), so a long value
#: with a pattern that runs in linear time is never cut short, and ``(a+)+$`` on a short one stops fast
REGEX_TIMEOUT_S = 0.25
REGEX_PER_CHAR_S = 2e-6

error = regex.error


def compile_pattern(pattern: str) -> "regex.Pattern[str]":
    """Compile (``regex.error`` for an invalid pattern)."""
    return regex.compile(pattern)


def time_limit(value: str) -> float:
    """The seconds a regex may run over ``value``."""
    return REGEX_TIMEOUT_S + REGEX_PER_CHAR_S * len(value)


def too_slow(pattern: str, processor: str, timeout_s: float = REGEX_TIMEOUT_S) -> ApiError:
    return ApiError(
        "circuit_breaking_exception",
        f"[ingest] Regular expression took too long: pattern: [{pattern}], processor: [{processor}], limit: "
        f"[{round(timeout_s * 1000)}ms]; use a pattern that does not backtrack exponentially",
        429,
        metadata={"bytes_wanted": 0, "bytes_limit": 0, "durability": "PERMANENT"},
    )


def bounded(compiled: "regex.Pattern[str]", processor: str, call: Callable[..., Any], *args: Any) -> Any:
    """``call(*args, timeout=..., concurrent=True)`` (a method of ``compiled`` whose last argument is the
    value); ES's error when it runs past :func:`time_limit`."""
    limit = time_limit(args[-1])
    try:
        return call(*args, timeout=limit, concurrent=True)
    except TimeoutError:
        raise too_slow(compiled.pattern, processor, limit) from None


def search(pattern: str, value: str, processor: str) -> bool:
    """Whether ``pattern`` matches somewhere in ``value`` (compiled patterns are cached by ``regex``)."""
    compiled = compile_pattern(pattern)
    return bounded(compiled, processor, compiled.search, value) is not None


def bound_json_path(parsed: Any, processor: str) -> Any:
    """A parsed ``jsonpath_ng.ext`` path whose ``=~`` filters match with the time limit (in place)."""
    seen: set[int] = set()
    todo = [parsed]
    while todo:
        node = todo.pop()
        if id(node) in seen or node is None:
            continue
        seen.add(id(node))
        if isinstance(node, Expression) and node.op == "=~" and isinstance(node.value, str):
            node.__class__ = _bounded_expression(Expression)
            node.processor = processor  # type: ignore[attr-defined]
        for name in ("left", "right", "target", "value", "expressions", "operands"):
            inner = getattr(node, name, None)
            if isinstance(inner, (list, tuple)):
                todo.extend(inner)
            elif inner is not None and hasattr(inner, "find"):
                todo.append(inner)
    return parsed


_BOUNDED: dict[type, type] = {}


def _bounded_expression(base: type) -> type:
    """``base`` (jsonpath_ng's filter ``Expression``) with ``=~`` through :func:`search`."""
    found = _BOUNDED.get(base)
    if found is None:

        def find(self: Any, datum: Any) -> list[Any]:
            candidates = self.target.find(DatumInContext.wrap(datum))
            return [d for d in candidates if isinstance(d.value, str) and search(self.value, d.value, self.processor)]

        found = _BOUNDED[base] = type("BoundedRegexExpression", (base,), {"find": find})
    return found


def java_split(compiled: "regex.Pattern[str]", value: str, processor: str, *, keep_trailing: bool) -> list[str]:
    """``Pattern.split(value, keep_trailing ? -1 : 0)``: groups are never part of the result, a zero-width
    match at the start gives no empty leading part, trailing empty parts go unless ``keep_trailing``."""
    limit = time_limit(value)
    parts: list[str] = []
    index = 0
    try:
        for m in compiled.finditer(value, timeout=limit, concurrent=True):
            if index == 0 and m.start() == 0 and m.end() == 0:
                continue
            parts.append(value[index:m.start()])
            index = m.end()
    except TimeoutError:
        raise too_slow(compiled.pattern, processor, limit) from None
    if index == 0:
        return [value]
    parts.append(value[index:])
    if not keep_trailing:
        while parts and parts[-1] == "":
            parts.pop()
    return parts
