"""Elasticsearch's cat tables (``RestTable``): columns with aliases, ``h``, ``v``, ``s``, ``help``,
``bytes``, ``time`` and ``format=json``.

A table is a list of :class:`Column` and rows of typed cells (:class:`Bytes`, :class:`Millis`,
:class:`Timestamp`, numbers, text, ``None``). Text output pads every column to its widest cell and
separates columns with one space, as ES does; ``format=json`` gives one object per row keyed by the
requested column names, with every value rendered as text (``null`` for a missing cell).
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from ..errors import ApiError, illegal_argument
from .request import Request

#: the query parameters every cat table takes
CAT_PARAMS = ("h", "v", "s", "help", "bytes", "time", "format")

_BYTE_UNITS = {"b": 1, "k": 1 << 10, "kb": 1 << 10, "m": 1 << 20, "mb": 1 << 20, "g": 1 << 30, "gb": 1 << 30,
               "t": 1 << 40, "tb": 1 << 40, "p": 1 << 50, "pb": 1 << 50}
_TIME_UNITS_NANOS = {"nanos": 1, "micros": 1_000, "ms": 1_000_000, "s": 1_000_000_000, "m": 60_000_000_000,
                     "h": 3_600_000_000_000, "d": 86_400_000_000_000}


@dataclass(frozen=True)
class Column:
    name: str
    description: str
    aliases: tuple[str, ...] = ()
    default: bool = True
    right_aligned: bool = False


@dataclass(frozen=True)
class Bytes:
    value: int


@dataclass(frozen=True)
class Millis:
    value: int


@dataclass(frozen=True)
class Timestamp:
    """Epoch milliseconds, rendered as ES renders an ``Instant``."""

    value: int


def _one_decimal(value: float, suffix: str) -> str:
    """``Strings.format1Decimals``: one decimal, dropped when it is 0 (``1mb``, ``1.5kb``)."""
    text = f"{int(value * 10) / 10:.1f}"
    whole, fraction = text.split(".")
    return f"{whole}{suffix}" if fraction == "0" else f"{whole}.{fraction}{suffix}"


def byte_size_text(size: int) -> str:
    """``ByteSizeValue.toString``."""
    for suffix, unit in (("pb", 1 << 50), ("tb", 1 << 40), ("gb", 1 << 30), ("mb", 1 << 20), ("kb", 1 << 10)):
        if size >= unit:
            return _one_decimal(size / unit, suffix)
    return f"{size}b"


def time_value_text(millis: int) -> str:
    """``TimeValue.toString`` of a duration in milliseconds."""
    if millis < 0:
        return str(millis)
    nanos = millis * 1_000_000
    if nanos == 0:
        return "0s"
    for suffix in ("d", "h", "m", "s", "ms"):
        if nanos >= _TIME_UNITS_NANOS[suffix]:
            return _one_decimal(nanos / _TIME_UNITS_NANOS[suffix], suffix)
    return f"{nanos}nanos"


def instant_text(epoch_millis: int) -> str:
    """``Instant.toString`` at millisecond precision: ``2019-12-05T12:28:34.594Z``."""
    moment = datetime.fromtimestamp(epoch_millis / 1000, tz=timezone.utc)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    millis = epoch_millis % 1000
    return f"{text}.{millis:03d}Z" if millis else f"{text}Z"


def _unit(req: Request, name: str, units: dict[str, int]) -> int | None:
    raw = req.str_param(name)
    if raw is None:
        return None
    unit = units.get(raw.lower())
    if unit is None:
        raise illegal_argument(f"failed to parse [{name}] value [{raw}]: unknown unit, valid units are "
                               f"{', '.join(units)}")
    return unit


def render_cell(req: Request, value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, Bytes):
        unit = _unit(req, "bytes", _BYTE_UNITS)
        return byte_size_text(value.value) if unit is None else str(value.value // unit)
    if isinstance(value, Millis):
        unit = _unit(req, "time", _TIME_UNITS_NANOS)
        return time_value_text(value.value) if unit is None else str(value.value * 1_000_000 // unit)
    if isinstance(value, Timestamp):
        return instant_text(value.value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _sort_key(value: Any) -> tuple[int, Any]:
    if value is None:
        return (1, 0)
    if isinstance(value, (Bytes, Millis, Timestamp)):
        return (0, value.value)
    return (0, value)


def _selected(columns: list[Column], req: Request) -> list[tuple[Column, str]]:
    """(column, header text) in display order: ``h`` (names, aliases, wildcards) or the defaults."""
    wanted = req.list_param("h") if req.has("h") else []
    if not wanted:
        return [(c, c.name) for c in columns if c.default]
    chosen: list[tuple[Column, str]] = []
    for name in wanted:
        exact = [c for c in columns if name == c.name or name in c.aliases]
        if exact:
            chosen.append((exact[0], name))
            continue
        if "*" in name:
            chosen.extend((c, c.name) for c in columns
                          if fnmatch.fnmatchcase(c.name, name) or any(fnmatch.fnmatchcase(a, name) for a in c.aliases))
    return chosen


def _sorted_rows(columns: list[Column], rows: list[list[Any]], req: Request) -> list[list[Any]]:
    if not req.has("s"):
        return rows
    keys: list[tuple[int, bool]] = []
    for raw in req.list_param("s"):
        name, _, order = raw.partition(":")
        index = next((i for i, c in enumerate(columns) if name == c.name or name in c.aliases), None)
        if index is None:
            raise illegal_argument(f"Unable to sort by unknown sort key `{name}`")
        if order not in ("", "asc", "desc"):
            raise illegal_argument(f"Unable to sort by unknown sort order `{order}`")
        keys.append((index, order == "desc"))
    out = list(rows)
    for index, descending in reversed(keys):  # stable sorts, last key first
        out.sort(key=lambda row, i=index: _sort_key(row[i]), reverse=descending)
    return out


def _help(columns: list[Column]) -> str:
    names = [c.name for c in columns]
    aliases = [",".join(c.aliases) for c in columns]
    w1 = max(len(n) for n in names)
    w2 = max(len(a) for a in aliases)
    return "".join(f"{n.ljust(w1)} | {a.ljust(w2)} | {c.description}\n" for n, a, c in zip(names, aliases, columns))


def render_table(req: Request, columns: list[Column], rows: list[list[Any]]) -> Any:
    """The answer of a cat request: text (``str``) or, with ``format=json``, a list of objects."""
    fmt = (req.str_param("format") or "text").lower()
    if req.bool_param("help", False):
        return _help(columns)
    if fmt not in ("text", "txt", "json"):
        raise ApiError("illegal_argument_exception", f"Unsupported format [{fmt}]", 400)
    selected = _selected(columns, req)
    positions = {id(c): i for i, c in enumerate(columns)}
    ordered = _sorted_rows(columns, rows, req)
    cells = [[render_cell(req, row[positions[id(c)]]) for c, _ in selected] for row in ordered]
    if fmt == "json":
        return [{header: value for (_, header), value in zip(selected, row)} for row in cells]
    lines: list[list[tuple[str, bool]]] = []
    if req.bool_param("v", False):
        lines.append([(header, c.right_aligned) for c, header in selected])
    lines.extend([[(value or "", c.right_aligned) for (c, _), value in zip(selected, row)] for row in cells])
    widths = [max((len(line[i][0]) for line in lines), default=0) for i in range(len(selected))]
    out = []
    for line in lines:
        parts = []
        for i, (text, right) in enumerate(line):
            last = i == len(line) - 1
            parts.append(text.rjust(widths[i]) if right else (text if last else text.ljust(widths[i])))
        out.append(" ".join(parts) + "\n")
    return "".join(out)
