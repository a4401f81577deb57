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
    return quote_plus(text, safe="*").replace("~", "%7E")


def with_query(url: str, pairs: list[tuple[str, str]]) -> str:
    if not pairs:
        return url
    query = "&".join(f"{form_encode(k)}={form_encode(v)}" for k, v in pairs)
    return f"{url}{'&' if '?' in url else '?'}{query}"


def url_component(text: str) -> str:
    """``text`` as one url path segment / query value: every reserved character percent-encoded,
    and a value of only dots (``.``, ``..``) encoded too so it is never a dot-segment."""
    encoded = quote(text, safe="")
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
