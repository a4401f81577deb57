"""Kibana Dev Tools console syntax, parsed into requests.

A console text holds one or more requests. Each starts with a request line
``METHOD path`` (``GET``, ``PUT``, ``POST``, ``DELETE`` or ``HEAD``, any case; the
path with or without a leading ``/``, query string allowed) and is followed by an
optional JSON body that runs until the next request line or the end::

    # a comment line            // also a comment
    PUT _ml/trained_models/m1
    {"input": {"field_names": ["text"]}, ...}

    POST _ml/trained_models/m1/_infer
    {
      "docs": [{"text": \"\"\"a "quoted"
    multi-line text\"\"\"}]
    }

    POST _bulk
    {"index": {"_index": "i"}}
    {"text": "one"}

* ``#`` and ``//`` start a comment that runs to the end of the line, and ``/* ... */``
  is a block comment, all outside of strings.
* ``\"\"\"...\"\"\"`` is a raw string (Kibana's triple quotes): it becomes one JSON
  string with its newlines, quotes and backslashes escaped.
* A body made of several JSON values (ndjson, one per line, as ``_bulk`` takes) is
  returned as a list of those values; a body of one value is that value.
* ``{{name}}`` and ``${name}`` are replaced by the notebook variable ``name`` (dotted
  ``{{cfg.model_id}}`` reads keys or attributes). Where the placeholder stands for a
  whole JSON value, the value is written as JSON (a str becomes ``"..."``, a list a
  JSON array, a DataFrame a list of records); inside a quoted string or in the request
  line it is written as text (a list in the request line becomes ``a,b``). An unknown
  name is an error, except inside a quoted string, where the text is kept as it is
  (``"${input}"`` in an ``_inference`` custom service template, ``"{{query}}"`` in a
  search template). ``\\${name}`` / ``\\{{name}}`` are always kept literally.

:func:`parse_console` is a pure function; it does not import IPython.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

__all__ = ["ConsoleError", "ConsoleRequest", "METHODS", "parse_body", "parse_console"]

METHODS = ("GET", "PUT", "POST", "DELETE", "HEAD")

_REQUEST_START = re.compile(r"^[ \t]*(GET|PUT|POST|DELETE|HEAD)(?=[ \t]|$)", re.IGNORECASE)
_REQUEST_LINE = re.compile(
    r"^[ \t]*(?P<method>[A-Za-z]+)[ \t]+(?P<path>[^ \t]+)[ \t]*(?:(?:#|//).*)?$"
)
_NAME = r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*"
_PLACEHOLDER = re.compile(r"\{\{[ \t]*(?P<a>" + _NAME + r")[ \t]*\}\}|\$\{[ \t]*(?P<b>" + _NAME + r")[ \t]*\}")
_MISSING = object()


class ConsoleError(ValueError):
    """A console text that cannot be turned into requests.

    ``line`` is the 1-based line (counted like the text given to :func:`parse_console`,
    plus its ``line_offset``) where the problem is.
    """

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


@dataclass(frozen=True)
class ConsoleRequest:
    """One request of a console text.

    ``method`` is upper case; ``path`` has no leading ``/`` and keeps its query string;
    ``body`` is the parsed JSON (``None`` without a body, a list for ndjson bodies);
    ``line`` is the line of the request line.
    """

    method: str
    path: str
    body: Any
    line: int

    def __str__(self) -> str:
        return f"{self.method} {self.path}"

    def replace(self, **changes: Any) -> "ConsoleRequest":
        return dataclasses.replace(self, **changes)


# -- variables ----------------------------------------------------------------------------

def _lookup(name: str, namespace: Mapping[str, Any], line: int | None = None) -> Any:
    """The value of a dotted name, or ``_MISSING`` when its first part is not defined."""
    head, *rest = name.split(".")
    if head not in namespace:
        return _MISSING
    value = namespace[head]
    walked = head
    for part in rest:
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif isinstance(value, (list, tuple)) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        elif hasattr(value, part):
            value = getattr(value, part)
        else:
            where = f"line {line}: " if line is not None else ""
            raise ConsoleError(f"{where}variable {walked!r} has no key or attribute {part!r} (in {name!r})", line)
        walked += "." + part
    return value


def to_jsonable(value: Any) -> Any:
    """``value`` as plain JSON data (numpy and pandas values, tuples, sets, dates converted).

    Raises :class:`TypeError` for values without a JSON form.
    """
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, (_dt.datetime, _dt.date)):
        return value.isoformat()
    mod = type(value).__module__ or ""
    if mod.startswith("pandas"):
        if isinstance(value, pd.DataFrame):
            return [to_jsonable(r) for r in value.to_dict(orient="records")]
        if isinstance(value, (pd.Series, pd.Index)):
            return [to_jsonable(v) for v in value.tolist()]
        if isinstance(value, pd.Timestamp):
            return value.isoformat()
        if value is pd.NA or value is pd.NaT:
            return None
    if mod.startswith("numpy"):
        if hasattr(value, "tolist"):
            return to_jsonable(value.tolist())
    if mod.startswith("pyarrow") and hasattr(value, "as_py"):
        return to_jsonable(value.as_py())
    if hasattr(value, "to_pylist"):
        return to_jsonable(value.to_pylist())
    raise TypeError(f"a value of type {type(value).__name__} cannot be written as JSON")


def _as_json(name: str, value: Any, line: int) -> str:
    try:
        return json.dumps(to_jsonable(value), ensure_ascii=False)
    except TypeError as exc:
        raise ConsoleError(f"line {line}: variable {name!r}: {exc}", line) from None


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    try:
        data = to_jsonable(value)
    except TypeError:
        return str(value)
    if isinstance(data, (dict, list)):
        return json.dumps(data, ensure_ascii=False)
    if data is None or isinstance(data, bool):
        return _as_text(data)
    return str(data)


def _as_path_text(value: Any) -> str:
    if isinstance(value, (list, tuple, set, frozenset)):
        return ",".join(_as_text(v) for v in value)
    mod = type(value).__module__ or ""
    array_like = mod.startswith(("pandas", "numpy")) and hasattr(value, "tolist")
    if array_like and not hasattr(value, "columns"):
        listed = value.tolist()
        if isinstance(listed, list):
            return ",".join(_as_text(v) for v in listed)
    return _as_text(value)


def _unknown(name: str, line: int) -> ConsoleError:
    head = name.split(".")[0]
    what = f"unknown variable {head!r}" + (f" (in {name!r})" if head != name else "")
    return ConsoleError(
        f"line {line}: {what}: define it in the notebook (or write \\${{{name}}} to keep the text)",
        line,
    )


def substitute_text(text: str, namespace: Mapping[str, Any] | None, line: int = 1) -> str:
    """Replace placeholders in ``text`` (a request line) by their values as text; unknown → error."""

    def repl(m: re.Match[str]) -> str:
        name = m.group("a") or m.group("b")
        value = _lookup(name, namespace or {}, line)
        if value is _MISSING:
            raise _unknown(name, line)
        return _as_path_text(value)

    out = []
    pos = 0
    for m in _PLACEHOLDER.finditer(text):
        start = m.start()
        out.append(text[pos:start])
        if start > 0 and text[start - 1] == "\\":
            out[-1] = out[-1][:-1]
            out.append(m.group(0))
        else:
            out.append(repl(m))
        pos = m.end()
    out.append(text[pos:])
    return "".join(out)


# -- scanning -----------------------------------------------------------------------------

def _line_state(line: str, state: str | None) -> str | None:
    """The lexical state (``None``, ``'triple'`` or ``'block'``) at the end of ``line``."""
    i, n = 0, len(line)
    while i < n:
        if state == "triple":
            end = line.find('"""', i)
            if end < 0:
                return state
            i, state = end + 3, None
            continue
        if state == "block":
            end = line.find("*/", i)
            if end < 0:
                return state
            i, state = end + 2, None
            continue
        c = line[i]
        if line.startswith('"""', i):
            i, state = i + 3, "triple"
        elif c == '"':
            i += 1
            while i < n and line[i] != '"':
                i += 2 if line[i] == "\\" else 1
            i += 1
        elif c == "#" or line.startswith("//", i):
            return None
        elif line.startswith("/*", i):
            i, state = i + 2, "block"
        else:
            i += 1
    return state


class _BodyRenderer:
    """Turns a console body into JSON text: comments out, triple quotes and variables in.

    Newlines are kept (a triple-quoted string's newlines are emitted after the string), so a
    line of the output is the same line of the input.
    """

    def __init__(self, namespace: Mapping[str, Any] | None, substitute: bool) -> None:
        self.ns = namespace or {}
        self.substitute = substitute

    def _placeholder(self, text: str, i: int) -> re.Match[str] | None:
        if not self.substitute or text[i] not in "{$":
            return None
        return _PLACEHOLDER.match(text, i)

    def _escaped_placeholder(self, text: str, i: int) -> re.Match[str] | None:
        """A ``\\`` at ``i`` followed by a placeholder."""
        if not self.substitute or i + 1 >= len(text) or text[i + 1] not in "{$":
            return None
        return _PLACEHOLDER.match(text, i + 1)

    def _in_string(self, m: re.Match[str], line: int, *, json_escape: bool) -> str:
        name = m.group("a") or m.group("b")
        value = _lookup(name, self.ns, line)
        if value is _MISSING:
            return m.group(0)  # an ES template placeholder, kept as written
        text = _as_text(value)
        return json.dumps(text, ensure_ascii=False)[1:-1] if json_escape else text

    def render(self, text: str, first_line: int) -> str:
        out: list[str] = []
        i, n, line = 0, len(text), first_line
        while i < n:
            c = text[i]
            if text.startswith('"""', i):
                end = text.find('"""', i + 3)
                if end < 0:
                    raise ConsoleError(f'line {line}: a """ string is never closed', line)
                raw = text[i + 3:end]
                content = self._render_raw(raw, line)
                newlines = raw.count("\n")
                out.append(json.dumps(content, ensure_ascii=False))
                out.append("\n" * newlines)
                line += newlines
                i = end + 3
                continue
            if c == '"':
                i, line = self._render_string(text, i, line, out)
                continue
            if c == "#" or text.startswith("//", i):
                end = text.find("\n", i)
                i = n if end < 0 else end
                continue
            if text.startswith("/*", i):
                end = text.find("*/", i + 2)
                if end < 0:
                    raise ConsoleError(f"line {line}: a /* comment is never closed", line)
                newlines = text.count("\n", i, end)
                out.append("\n" * newlines)
                line += newlines
                i = end + 2
                continue
            if c == "\\":
                m = self._escaped_placeholder(text, i)
                if m is not None:
                    out.append(m.group(0))
                    i = m.end()
                    continue
            m = self._placeholder(text, i)
            if m is not None:
                name = m.group("a") or m.group("b")
                value = _lookup(name, self.ns, line)
                if value is _MISSING:
                    raise _unknown(name, line)
                out.append(_as_json(name, value, line))
                i = m.end()
                continue
            if c == "\n":
                line += 1
            out.append(c)
            i += 1
        return "".join(out)

    def _render_raw(self, raw: str, line: int) -> str:
        if not self.substitute:
            return raw
        out: list[str] = []
        i = 0
        for m in _PLACEHOLDER.finditer(raw):
            start = m.start()
            out.append(raw[i:start])
            if start > 0 and raw[start - 1] == "\\":
                out[-1] = out[-1][:-1]
                out.append(m.group(0))
            else:
                out.append(self._in_string(m, line + raw.count("\n", 0, start), json_escape=False))
            i = m.end()
        out.append(raw[i:])
        return "".join(out)

    def _render_string(self, text: str, i: int, line: int, out: list[str]) -> tuple[int, int]:
        """Copy the ``"..."`` string starting at ``i``; returns the position after it."""
        buf = ['"']
        j, n = i + 1, len(text)
        while j < n:
            ch = text[j]
            if ch == "\\":
                m = self._escaped_placeholder(text, j)
                if m is not None:
                    buf.append(m.group(0))
                    j = m.end()
                    continue
                buf.append(text[j:j + 2])
                j += 2
                continue
            if ch == '"':
                buf.append('"')
                j += 1
                break
            if ch == "\n":  # unterminated: leave it to the JSON parser to report
                break
            m = self._placeholder(text, j)
            if m is not None:
                buf.append(self._in_string(m, line, json_escape=True))
                j = m.end()
                continue
            buf.append(ch)
            j += 1
        out.append("".join(buf))
        return j, line


def _parse_body(json_text: str, req: str, req_no: int, req_line: int, source_lines: list[str]) -> Any:
    if not json_text.strip():
        return None
    try:
        return json.loads(json_text)
    except json.JSONDecodeError:
        pass
    decoder = json.JSONDecoder()
    values = []
    pos, n = 0, len(json_text)
    ws = re.compile(r"\s*")
    pos = ws.match(json_text, pos).end()
    while pos < n:
        try:
            value, pos = decoder.raw_decode(json_text, pos)
        except json.JSONDecodeError as exc:
            where = req_line + exc.lineno
            snippet = source_lines[where - 1].rstrip() if 0 < where <= len(source_lines) else ""
            msg = (
                f"line {where} (request {req_no}, {req} on line {req_line}): invalid JSON body: "
                f"{exc.msg} (column {exc.colno})"
            )
            if snippet:
                msg += f"\n{where:>5} | {snippet}"
            raise ConsoleError(msg, where) from None
        values.append(value)
        pos = ws.match(json_text, pos).end()
    return values


def parse_console(
    text: str,
    namespace: Mapping[str, Any] | None = None,
    *,
    line_offset: int = 0,
    substitute: bool = True,
) -> list[ConsoleRequest]:
    """Parse Kibana console text into :class:`ConsoleRequest` objects, in order.

    ``namespace`` holds the variables for ``{{name}}`` / ``${name}``; with
    ``substitute=False`` placeholders are left untouched. ``line_offset`` is added to
    every reported line (a notebook cell's ``%%infer`` line makes it 1).
    Raises :class:`ConsoleError` (with ``.line``) for text that is not a request, an
    unknown variable, or a body that is not JSON.
    """
    source = text.splitlines()
    padded = [""] * line_offset + source  # so that padded[line - 1] is the text of `line`
    chunks: list[tuple[int, str, list[str]]] = []  # (line, request line, body lines)
    state: str | None = None
    for idx, raw in enumerate(source):
        line_no = idx + 1 + line_offset
        if state is None and _REQUEST_START.match(raw):
            chunks.append((line_no, raw, []))
            continue
        if chunks:
            chunks[-1][2].append(raw)
        elif state is None:
            stripped = raw.strip()
            if stripped and not stripped.startswith(("#", "//", "/*")):
                raise ConsoleError(
                    f"line {line_no}: expected a request line such as 'GET _ml/trained_models', got {stripped[:60]!r}",
                    line_no,
                )
        state = _line_state(raw, state)

    renderer = _BodyRenderer(namespace, substitute)
    requests: list[ConsoleRequest] = []
    for req_no, (line_no, request_line, body_lines) in enumerate(chunks, start=1):
        m = _REQUEST_LINE.match(request_line)
        if m is None:
            raise ConsoleError(
                f"line {line_no}: a request line is 'METHOD path' (optionally followed by a # comment), "
                f"got {request_line.strip()!r}",
                line_no,
            )
        method = m.group("method").upper()
        path = m.group("path")
        if substitute:
            path = substitute_text(path, namespace, line_no)
        path = path.lstrip("/")
        label = f"{method} {path}"
        if body_lines and not any(b.strip() for b in body_lines):
            body_text = ""
        else:
            body_text = renderer.render("\n".join(body_lines), line_no + 1)
        body = _parse_body(body_text, label, req_no, line_no, padded)
        requests.append(ConsoleRequest(method, path, body, line_no))
    return requests


def parse_body(
    text: str,
    namespace: Mapping[str, Any] | None = None,
    *,
    line_offset: int = 0,
    substitute: bool = True,
    what: str = "the cell body",
) -> Any:
    """One JSON body written as in the console (comments, triple-quoted strings, ``{{name}}``), no request line.

    Returns ``None`` for a text with nothing but comments and blank lines. Raises
    :class:`ConsoleError` naming the line for what is not JSON or an unknown variable.
    """
    source = text.splitlines()
    padded = [""] * line_offset + source
    rendered = _BodyRenderer(namespace, substitute).render(text, line_offset + 1)
    if not rendered.strip():
        return None
    try:
        return json.loads(rendered)
    except json.JSONDecodeError as exc:
        where = line_offset + exc.lineno
        snippet = padded[where - 1].rstrip() if 0 < where <= len(padded) else ""
        msg = f"line {where}: {what} is not JSON: {exc.msg} (column {exc.colno})"
        if snippet:
            msg += f"\n{where:>5} | {snippet}"
        raise ConsoleError(msg, where) from None
