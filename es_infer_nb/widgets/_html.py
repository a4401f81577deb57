"""Small HTML/SVG building blocks shared by the widgets and the reprs (no JavaScript, no CDN).

Every element a test (or a user's CSS) needs to find carries an ``esinb-*`` CSS class and
``data-*`` attributes with the raw values, so the pictures can be checked without pixels.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

POSITIVE = "#d6604d"  # pushes the prediction up
NEGATIVE = "#4393c3"  # pushes it down
NEUTRAL = "#878787"

STYLE = (
    "<style>"
    ".esinb{font-family:var(--jp-content-font-family,sans-serif);font-size:12px;color:var(--jp-content-font-color1,#222)}"
    ".esinb table{border-collapse:collapse;margin:2px 0}"
    ".esinb th,.esinb td{padding:2px 8px;border-bottom:1px solid #ddd;text-align:left}"
    ".esinb td.num{text-align:right;font-variant-numeric:tabular-nums}"
    ".esinb .esinb-title{font-weight:bold;margin:4px 0}"
    ".esinb .esinb-note{color:#777;font-style:italic}"
    ".esinb pre{margin:2px 0;white-space:pre-wrap}"
    "</style>"
)


def esc(value: Any) -> str:
    """HTML-escaped text of any value (quotes included, so it is safe in attributes)."""
    return html.escape("" if value is None else str(value), quote=True)


def plain(value: Any) -> Any:
    """A numpy scalar as the Python value it holds (``np.int64(362)`` -> ``362``); others unchanged."""
    if isinstance(value, np.generic):
        return value.item()
    return value


def json_default(value: Any) -> Any:
    """``json.dumps(default=...)``: numpy scalars and arrays as plain numbers / lists, else ``str``."""
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    return str(value)


def num(value: Any, digits: int = 4) -> str:
    """A short human number: ints as ints, floats with ``digits`` significant digits."""
    value = plain(value)
    if value is None:
        return "–"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    try:
        f = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(f):
        return "–"
    return f"{f:.{digits}g}"


def attrs(**values: Any) -> str:
    """``data-*`` style attributes: ``attrs(data_feature="a")`` -> ``' data-feature="a"'``."""
    parts = []
    for key, value in values.items():
        if value is None:
            continue
        name = key.rstrip("_").replace("_", "-")
        parts.append(f' {name}="{esc(value)}"')
    return "".join(parts)


def ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """About ``count`` round values (1, 2, 2.5 or 5 times a power of ten apart) from ``lo`` to ``hi``."""
    raw = (hi - lo) / max(1, count)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step) + 1) if first + i * step <= hi]


def value_axis(cls: str, lo: float, hi: float, x: Callable[[float], float], left: float, width: float,
               y: float) -> str:
    """A horizontal SVG value axis at height ``y`` from ``left`` to ``left + width``, with labelled
    ticks at round values of ``[lo, hi]`` (``x``: value -> pixel), as ``<g class=cls data-lo data-hi>``."""
    marks = "".join(
        f'<line x1="{x(t):.1f}" x2="{x(t):.1f}" y1="{y}" y2="{y + 4}" stroke="#777"></line>'
        f'<text x="{x(t):.1f}" y="{y + 16}" text-anchor="middle" font-size="10">{esc(num(t))}</text>'
        for t in ticks(lo, hi))
    return (f'<g{attrs(class_=cls, data_lo=repr(lo), data_hi=repr(hi))}>'
            f'<line x1="{left}" x2="{left + width}" y1="{y}" y2="{y}" stroke="#777"></line>{marks}</g>')


def box(inner: str, cls: str, **data: Any) -> str:
    """The outer ``<div class="esinb ...">`` of a rendering, with its style sheet."""
    return f'<div class="esinb {esc(cls)}"{attrs(**data)}>{STYLE}{inner}</div>'


def table(headers: Sequence[str], rows: Iterable[tuple[str, Sequence[Any]]], cls: str = "") -> str:
    """A table; each row is ``(row attributes html, cells)``; numbers are right-aligned."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = []
    for row_attrs, cells in rows:
        tds = []
        for cell in cells:
            if isinstance(cell, Raw):
                tds.append(f"<td>{cell.html}</td>")
            elif isinstance(cell, (int, float)) and not isinstance(cell, bool):
                tds.append(f'<td class="num">{esc(num(cell))}</td>')
            else:
                tds.append(f"<td>{esc(num(cell) if cell is None else cell)}</td>")
        body.append(f"<tr{row_attrs}>{''.join(tds)}</tr>")
    return f'<table class="{esc(cls)}"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


class Raw:
    """Already-built HTML for a :func:`table` cell."""

    def __init__(self, html_text: str) -> None:
        self.html = html_text


def bar(value: float, maximum: float, width: int = 160, color: str = NEUTRAL) -> str:
    """An inline SVG bar ``value / maximum`` of ``width`` pixels."""
    frac = 0.0 if maximum <= 0 or not math.isfinite(value) else max(0.0, min(1.0, value / maximum))
    return (f'<svg width="{width}" height="12" role="img"><rect x="0" y="1" width="{frac * width:.1f}" height="10" '
            f'fill="{color}"></rect></svg>')


def text_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A plain-text table for ``__repr__`` (columns padded to their widest cell)."""
    cells = [[str(h) for h in headers]] + [[num(c) if not isinstance(c, str) else c for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    return "\n".join(lines)


def sparkline(values: Sequence[float | None], *, width: int = 120, height: int = 24, color: str = "#0969da",
              **data: Any) -> str:
    """An inline SVG line of ``values`` (``None``: a gap), scaled to its own min..max, the last point
    marked; ``data-values`` carries the numbers (empty for a gap) so tests and tools can read them."""
    finite = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    raw = ",".join("" if v is None or not math.isfinite(float(v)) else f"{float(v):.6g}" for v in values)
    head = f'<svg class="esinb-spark" width="{width}" height="{height}" role="img"{attrs(data_values=raw, **data)}>'
    if not finite:
        return head + "</svg>"
    lo, hi = min(finite), max(finite)
    span = hi - lo or 1.0
    n = len(values)
    step = (width - 4) / max(n - 1, 1)
    segments: list[list[str]] = [[]]
    last: tuple[float, float] | None = None
    for i, v in enumerate(values):
        if v is None or not math.isfinite(float(v)):
            segments.append([])
            continue
        x = 2 + i * step
        y = height - 2 - (float(v) - lo) / span * (height - 4)
        segments[-1].append(f"{x:.1f},{y:.1f}")
        last = (x, y)
    lines = "".join(f'<polyline points="{" ".join(s)}" fill="none" stroke="{color}" stroke-width="1.5"></polyline>'
                    for s in segments if len(s) > 1)
    dot = f'<circle cx="{last[0]:.1f}" cy="{last[1]:.1f}" r="2" fill="{color}"></circle>' if last else ""
    return f"{head}{lines}{dot}</svg>"
