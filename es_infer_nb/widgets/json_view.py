"""A console answer as a status-coloured, collapsed JSON tree (HTML, no JavaScript) and as limited text.

``console_html(title, status, body)`` is what ``%%infer`` shows for each request: a header line
(``GET _ml/...  200 OK``) whose colour says the status class (2xx green, 3xx blue, 4xx amber,
5xx red), then the body as nested ``<details>`` elements: objects and arrays open up to
``open_levels`` (3) deep when they are small (at most ``collapse_over`` entries), bigger ones closed;
at most ``max_items`` entries of one object or array and ``max_rows`` rows in all are drawn, the
rest said as ``… N more``. Plain ``<details>`` work in JupyterLab, classic Notebook, nbviewer and
exported HTML alike. ``console_text`` is the plain-text counterpart: indented JSON cut at
``max_lines`` lines with the same ``… N more lines`` note.

Marks for tests and CSS: ``.esinb-console[data-status][data-status-class]``, ``.esinb-jv-node``
(``data-path``, ``data-size``, ``open`` or not), ``.esinb-jv-more[data-more]``.
"""

from __future__ import annotations

import json
from typing import Any

from ._html import attrs, esc, json_default

__all__ = ["STATUS_COLORS", "console_html", "console_text", "json_tree_html", "status_class", "status_color"]

#: status class -> colour (GitHub's palette: readable on light and dark JupyterLab themes)
STATUS_COLORS = {"1xx": "#57606a", "2xx": "#1a7f37", "3xx": "#0969da", "4xx": "#bf8700", "5xx": "#cf222e"}

_STYLE = (
    "<style>"
    ".esinb-console{font-family:var(--jp-code-font-family,monospace);font-size:12px;line-height:1.45}"
    ".esinb-console .esinb-console-head{padding:2px 6px;margin-bottom:2px;font-weight:bold}"
    ".esinb-console .esinb-status{color:#fff;border-radius:3px;padding:0 5px;margin:0 6px}"
    ".esinb-console details{padding-left:16px}"
    ".esinb-console details>summary{margin-left:-16px;cursor:pointer}"
    ".esinb-console .esinb-jv-row,.esinb-console .esinb-jv-more{white-space:pre-wrap;word-break:break-word}"
    ".esinb-console .esinb-jv-key{color:#953800}"
    ".esinb-console .esinb-jv-str{color:#0a3069}"
    ".esinb-console .esinb-jv-num{color:#0550ae}"
    ".esinb-console .esinb-jv-lit{color:#8250df}"
    ".esinb-console .esinb-jv-hint,.esinb-console .esinb-jv-more{color:#6e7781;font-style:italic}"
    "</style>"
)


def status_class(status: int) -> str:
    """``"2xx"`` for 200, ``"4xx"`` for 404 ... (``"5xx"`` for anything not a known class)."""
    first = int(status) // 100
    return f"{first}xx" if 1 <= first <= 5 else "5xx"


def status_color(status: int) -> str:
    return STATUS_COLORS[status_class(status)]


class _Budget:
    def __init__(self, rows: int) -> None:
        self.rows = rows

    def take(self) -> bool:
        self.rows -= 1
        return self.rows >= 0


def _scalar(value: Any, max_string: int) -> str:
    if isinstance(value, str):
        if len(value) > max_string:
            shown = json.dumps(value[:max_string], ensure_ascii=False)[:-1]
            return (f'<span class="esinb-jv-str">{esc(shown)}…"</span>'
                    f'<span class="esinb-jv-hint"> ({len(value) - max_string:,} more characters)</span>')
        return f'<span class="esinb-jv-str">{esc(json.dumps(value, ensure_ascii=False))}</span>'
    text = json.dumps(value, ensure_ascii=False, default=json_default)
    cls = "esinb-jv-num" if isinstance(value, (int, float)) and not isinstance(value, bool) else "esinb-jv-lit"
    return f'<span class="{cls}">{esc(text)}</span>'


def _label(key: Any) -> str:
    if key is None:
        return ""
    if isinstance(key, int):
        return f'<span class="esinb-jv-hint">{key}</span>: '
    return f'<span class="esinb-jv-key">{esc(json.dumps(str(key), ensure_ascii=False))}</span>: '


def _summary(value: dict[str, Any] | list[Any]) -> str:
    n = len(value)
    if isinstance(value, dict):
        return f"{{…}} {n} key{'s' if n != 1 else ''}"
    return f"[…] {n} item{'s' if n != 1 else ''}"


def _node(key: Any, value: Any, path: str, depth: int, opts: dict[str, int], budget: _Budget) -> str:
    if not isinstance(value, (dict, list)) or not value:
        inner = ("{}" if isinstance(value, dict) else "[]") if isinstance(value, (dict, list)) \
            else _scalar(value, opts["max_string"])
        return f'<div class="esinb-jv-row">{_label(key)}{inner}</div>'
    items = list(value.items()) if isinstance(value, dict) else list(enumerate(value))
    is_open = depth == 0 or (depth < opts["open_levels"] and len(items) <= opts["collapse_over"])
    rows = []
    shown = 0
    for k, v in items[:opts["max_items"]]:
        if not budget.take():
            break
        rows.append(_node(k, v, f"{path}.{k}" if path else str(k), depth + 1, opts, budget))
        shown += 1
    if shown < len(items):
        rest = len(items) - shown
        rows.append(f'<div class="esinb-jv-more"{attrs(data_more=rest)}>… {rest:,} more</div>')
    return (f'<details class="esinb-jv-node"{attrs(data_path=path, data_size=len(items))}{" open" if is_open else ""}>'
            f'<summary>{_label(key)}<span class="esinb-jv-hint">{esc(_summary(value))}</span></summary>'
            f'{"".join(rows)}</details>')


def json_tree_html(value: Any, *, open_levels: int = 3, collapse_over: int = 20, max_items: int = 100,
                   max_rows: int = 500, max_string: int = 2000) -> str:
    """``value`` as a collapsible tree (see the module doc); the root is always open, whatever its size."""
    opts = {"open_levels": max(open_levels, 1), "collapse_over": collapse_over, "max_items": max_items,
            "max_string": max_string}
    return _node(None, value, "", 0, opts, _Budget(max_rows))


def console_html(title: str, status: int, body: Any, *, note: str | None = None, **tree: Any) -> str:
    """The header (status-coloured) and the body tree of one console answer."""
    color = status_color(status)
    head = (f'<div class="esinb-console-head" style="border-left:4px solid {color};color:{color}">'
            f'{esc(title)}<span class="esinb-status" style="background:{color}">{esc(status)}</span>'
            f'{esc(note or "")}</div>')
    inner = "" if body is None else json_tree_html(body, **tree)
    return (f'<div class="esinb esinb-console"{attrs(data_status=status, data_status_class=status_class(status))}>'
            f"{_STYLE}{head}{inner}</div>")


def console_text(header: str, body: Any, *, max_lines: int = 60, more_hint: str = "") -> str:
    """``# header`` then the indented JSON of ``body``, cut after ``max_lines`` lines."""
    lines = [f"# {header}"]
    if body is not None:
        text = json.dumps(body, indent=2, ensure_ascii=False, default=json_default).splitlines()
        if len(text) > max_lines:
            rest = len(text) - max_lines
            text = text[:max_lines] + [f"… {rest:,} more lines{more_hint}"]
        lines.extend(text)
    return "\n".join(lines)
