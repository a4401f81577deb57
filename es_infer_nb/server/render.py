"""Response bodies as Elasticsearch writes them: ``filter_path``, ``pretty`` and JSON bytes.

``filter_path`` takes comma-separated dotted paths; a segment may hold ``*`` wildcards,
``**`` matches any number of levels, and a leading ``-`` excludes instead of includes.
Filters look through arrays; objects and arrays left empty by an include filter are dropped
(and the whole answer becomes ``{}`` when nothing matches), as ES's filtering generator does.
``pretty`` indents the way Jackson's default pretty printer does (``"key" : value``, two
spaces, ``{ }`` / ``[ ]`` for empty containers, a final newline).
"""

from __future__ import annotations

import json
import math
import re
from functools import lru_cache
from typing import Any

import orjson

_MISSING = object()

Pattern = tuple[str, ...]


@lru_cache(maxsize=256)
def _segment_regex(segment: str) -> re.Pattern[str]:
    return re.compile("".join(".*" if ch == "*" else re.escape(ch) for ch in segment) + r"\Z")


def _advance(pattern: Pattern, key: str) -> list[Pattern]:
    """Patterns left after ``pattern`` consumed ``key``; ``()`` means fully matched."""
    head, rest = pattern[0], pattern[1:]
    if head == "**":
        out: list[Pattern] = [pattern]
        out.extend(_advance(rest, key) if rest else [()])
        return out
    return [rest] if _segment_regex(head).match(key) else []


def _include(node: Any, patterns: list[Pattern]) -> Any:
    if any(not p for p in patterns):
        return node
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            left = [q for p in patterns for q in _advance(p, str(key))]
            if left:
                kept = _include(value, left)
                if kept is not _MISSING:
                    out[key] = kept
        return out if out else _MISSING
    if isinstance(node, list):
        items = [kept for kept in (_include(v, patterns) for v in node) if kept is not _MISSING]
        return items if items else _MISSING
    return _MISSING


def _exclude(node: Any, patterns: list[Pattern]) -> Any:
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            left = [q for p in patterns for q in _advance(p, str(key))]
            if any(not q for q in left):
                continue
            out[key] = _exclude(value, left) if left else value
        return out
    if isinstance(node, list):
        return [_exclude(v, patterns) for v in node]
    return node


def filter_path(body: Any, spec: str | None) -> Any:
    """Apply ES's ``filter_path`` parameter to a response body."""
    if not spec or body is None:
        return body
    paths = [p.strip() for p in spec.split(",") if p.strip()]
    includes = [tuple(p.split(".")) for p in paths if not p.startswith("-")]
    excludes = [tuple(p[1:].split(".")) for p in paths if p.startswith("-") and len(p) > 1]
    out = body
    if includes:
        out = _include(out, includes)
        if out is _MISSING:
            out = {}
    if excludes:
        out = _exclude(out, excludes)
    return out


def _plain(value: Any) -> Any:
    """JSON fallback for numpy scalars / arrays that slipped into an answer."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _pretty(value: Any, depth: int) -> str:
    pad = "  " * (depth + 1)
    end = "  " * depth
    if isinstance(value, dict):
        if not value:
            return "{ }"
        items = (f"{pad}{json.dumps(str(k), ensure_ascii=False)} : {_pretty(v, depth + 1)}" for k, v in value.items())
        return "{\n" + ",\n".join(items) + "\n" + end + "}"
    if isinstance(value, (list, tuple)):
        if not value:
            return "[ ]"
        return "[\n" + ",\n".join(pad + _pretty(v, depth + 1) for v in value) + "\n" + end + "]"
    if hasattr(value, "tolist") or hasattr(value, "item"):
        return _pretty(_plain(value), depth)
    return json.dumps(value, ensure_ascii=False)


def _fast_json(body: Any) -> bytes | None:
    """``orjson`` bytes of ``body`` (~10x the standard library on float vectors), or ``None`` where they
    could differ in meaning from ``json.dumps``: orjson refuses non-string keys, lone surrogates and
    integers past 64 bits (it raises) and writes NaN/Infinity as ``null`` (an answer holding ``null``
    is therefore written again by the standard library). Number spellings may differ (``1e-5`` for
    ``1e-05``), never values."""
    try:
        out = orjson.dumps(body, default=_plain)
    except (TypeError, orjson.JSONEncodeError):
        return None
    return None if b"null" in out else out


def _finite(value: Any) -> Any:
    """``value`` with NaN / Infinity as the strings Jackson writes for them (``"NaN"``,
    ``"Infinity"``, ``"-Infinity"``: ``WRITE_NAN_AS_STRINGS``), so an answer is always JSON."""
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        return _finite(value.tolist())
    return value


def to_json_bytes(body: Any, *, pretty: bool = False) -> bytes:
    """Serialise an answer; ``pretty`` as ES's ``?pretty``."""
    try:
        if pretty:
            return (_pretty(_finite(body), 0) + "\n").encode("utf-8")
        fast = _fast_json(body)
        if fast is not None:
            return fast
        body = _finite(body)
        return json.dumps(body, ensure_ascii=False, separators=(",", ":"), default=_plain).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate (a JSON "\\ud800" escape came in): send it escaped again
        return json.dumps(_finite(body), indent=2 if pretty else None, separators=None if pretty else (",", ":"),
                          default=_plain).encode("ascii")
