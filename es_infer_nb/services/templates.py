"""``${name}`` templates of the ``custom`` service (ES's ``ValidatingSubstitutor``).

Body templates receive JSON-encoded values (a document can never change the request's structure);
url, header and query-parameter templates receive raw strings. Substitution is a single pass:
substituted text is never scanned again, so a document containing ``${api_key}`` stays literal.
A placeholder with no value is an ``illegal_state_exception`` naming the field.
"""

from __future__ import annotations

import json
import re
from typing import Any, Mapping
from urllib.parse import quote_plus

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
