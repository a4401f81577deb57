"""``${name}`` templates of the ``custom`` service (ES's ``ValidatingSubstitutor``).

Body templates receive JSON-encoded values (a document can never change the request's structure);
url, header and query-parameter templates receive raw strings, except that values given at call
time go into the url percent-encoded (one path segment or query value: no ``/``, ``..``, ``?``,
``#``, ``@``), and the url they render must keep the scheme, host, port and path segments of the
endpoint's own url (:func:`render_url`). Substitution is a single pass: substituted text is never
scanned again, so a document containing ``${api_key}`` stays literal. A placeholder with no value
is an ``illegal_state_exception`` naming the field.
"""

from __future__ import annotations

import json
import re
from typing import Any, Mapping
from urllib.parse import SplitResult, quote, quote_plus, urlsplit

from ..errors import ApiError
from .json_path import illegal_state

PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")


def substitute(template: str, values: Mapping[str, str], field: str) -> str:
    """Replace every ``${name}`` of ``template`` by ``values[name]`` (already in their final form)."""
    for m in PLACEHOLDER.finditer(template):
        if m.group(1) not in values:
            raise illegal_state(f"Found placeholder [{m.group(0)}] in field [{field}] after replacement call")
    return PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


def json_values(params: Mapping[str, Any]) -> dict[str, str]:
    """Values for a JSON body: each JSON-serialised (strings quoted and escaped)."""
    return {k: json.dumps(v, ensure_ascii=False) for k, v in params.items()}


def raw_string_values(params: Mapping[str, Any]) -> dict[str, str]:
    """Values for url / headers / query parameters: only the string-valued parameters, raw."""
    return {k: v for k, v in params.items() if isinstance(v, str)}


def form_encode(text: str) -> str:
    """``application/x-www-form-urlencoded`` as Java's ``URLEncoder`` (UTF-8): space -> ``+``,
    everything but letters, digits and ``.-*_`` percent-encoded."""
    return quote_plus(text, safe="*", errors="replace").replace("~", "%7E")  # a lone surrogate: "?", as in Java


def with_query(url: str, pairs: list[tuple[str, str]]) -> str:
    if not pairs:
        return url
    query = "&".join(f"{form_encode(k)}={form_encode(v)}" for k, v in pairs)
    return f"{url}{'&' if '?' in url else '?'}{query}"


def url_component(text: str) -> str:
    """``text`` as one url path segment / query value: every reserved character percent-encoded,
    and a value of only dots (``.``, ``..``) encoded too so it is never a dot-segment."""
    encoded = quote(text, safe="", errors="replace")  # a lone surrogate: "?" (Java's UTF-8 bytes)
    return encoded.replace(".", "%2E") if encoded and set(encoded) == {"."} else encoded


def _parts(url: str) -> tuple[str, str | None, int | None, int] | None:
    try:
        split: SplitResult = urlsplit(url)
        return split.scheme.lower(), split.hostname, split.port, len(split.path.split("/"))
    except ValueError:  # a bad port or bracketed host
        return None


def render_url(template: str, fixed: Mapping[str, str], call: Mapping[str, str]) -> str:
    """``template`` with ``fixed`` values (the endpoint's own parameters and secrets) raw and ``call``
    values (given with the inference call) percent-encoded; the result must have the scheme, host,
    port and number of path segments of the url the endpoint's own values give."""
    steered = {k: url_component(v) for k, v in call.items() if k not in fixed or fixed[k] != v}
    url = substitute(template, {**fixed, **steered}, "url")
    used = {m.group(1) for m in PLACEHOLDER.finditer(template)} & set(steered)
    if not used:
        return url
    own = substitute(template, {**steered, **fixed}, "url")
    if _parts(url) is None or _parts(url) != _parts(own):
        raise ApiError("validation_exception",
                       f"Validation Failed: 1: [task_settings.parameters] {sorted(used)} given with the request may "
                       "not change the scheme, host, port or path segments of the service url;", 400)
    return url


def text_values(params: Mapping[str, Any]) -> dict[str, str]:
    """Values for url / query string / headers of the ``path`` layout: strings as they are, numbers and
    booleans as their JSON text (``3``, ``true``); lists and maps are not text and stay unavailable."""
    out: dict[str, str] = {}
    for k, v in params.items():
        if isinstance(v, str):
            out[k] = v
        elif isinstance(v, (bool, int, float)):
            out[k] = json.dumps(v)
    return out


def json_string_step(ch: str, in_string: bool, escaped: bool) -> tuple[bool, bool]:
    """``(in_string, escaped)`` after the character ``ch`` of a JSON text, from the state before it:
    whether ``ch`` leaves the scan inside a string, and whether it is a backslash escaping the next."""
    if not in_string:
        return ch == '"', False
    if escaped:
        return True, False
    return ch != '"', ch == "\\"


def json_placeholders(template: str, pattern: re.Pattern[str]) -> list[tuple[str, re.Match[str] | None, bool]]:
    """``(literal before, placeholder match, inside a JSON string literal?)`` for each match of ``pattern``
    in a JSON body template, then ``(trailing literal, None, False)``: where each placeholder stands
    decides how a value is inserted (escaped text inside a string, one JSON value elsewhere)."""
    parts: list[tuple[str, re.Match[str] | None, bool]] = []
    in_string = escaped = False
    pos = 0
    for m in pattern.finditer(template):
        for ch in template[pos:m.start()]:
            in_string, escaped = json_string_step(ch, in_string, escaped)
        parts.append((template[pos:m.start()], m, in_string))
        pos = m.end()
    parts.append((template[pos:], None, False))
    return parts


class JsonTemplate:
    """A JSON body template whose ``${name}`` placeholders are filled by where they stand.

    Inside a JSON string literal (``"input_type":"${input_type}"``) a value's text goes in JSON-escaped,
    without quotes of its own (a string as it is, any other value as its JSON text); anywhere else
    (``"input":${input}``) the value goes in as JSON. Either way a value can never end a string or
    open a new member: a document's text stays one JSON value. The template is scanned once, when it
    is built; substituted text is never scanned again (a document containing ``${api_key}`` stays
    literal)."""

    def __init__(self, template: str, field: str) -> None:
        self.template = template
        self.field = field
        #: literal text and placeholders: (text, None) or (name, in_string)
        self.parts: list[tuple[str, bool | None]] = []
        in_string = escaped = False
        start = i = 0
        while i < len(template):
            ch = template[i]
            if ch == "$" and template.startswith("${", i):
                m = PLACEHOLDER.match(template, i)
                if m is not None:
                    self.parts.append((template[start:i], None))
                    self.parts.append((m.group(1), in_string))
                    i = start = m.end()
                    escaped = False
                    continue
            in_string, escaped = json_string_step(ch, in_string, escaped)
            i += 1
        self.parts.append((template[start:], None))

    def names(self) -> list[str]:
        return [text for text, in_string in self.parts if in_string is not None]

    def render(self, values: Mapping[str, Any]) -> str:
        """The body with ``values``; a placeholder without a value is an ``illegal_state_exception``."""
        for name in self.names():
            if name not in values:
                raise illegal_state(f"Found placeholder [${{{name}}}] in field [{self.field}] after replacement call")
        out = []
        for text, in_string in self.parts:
            if in_string is None:
                out.append(text)
                continue
            value = values[text]
            if in_string:
                raw = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
                out.append(json.dumps(raw, ensure_ascii=False)[1:-1])
            else:
                out.append(json.dumps(value, ensure_ascii=False))
        return "".join(out)
