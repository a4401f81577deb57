"""Jayway JsonPath's ``JsonPath.read(json, path)`` as ml-commons reads remote answers with it.

The path forms connectors use are evaluated here with Jayway's rules: ``$``, ``.name`` / ``['name']``,
``[n]`` (negative from the end), ``[*]`` / ``.*``. A path made of names and indexes only is *definite*: it
gives its one value, or Jayway's ``PathNotFoundException`` (``No results for path: $['embedding']``); a
path with a wildcard gives the list of its matches, skipping branches that lack a leaf property. A
missing property before the leaf of a definite prefix is ``Missing property in path $['data']``.
Other JsonPath syntax (deep scan ``..``, filters, slices, unions) goes to ``jsonpath_ng`` and reads as an
indefinite path. Errors are :class:`PathNotFound` (``path_not_found_exception``), which ml-commons does not
take for an ``IllegalArgumentException``: see :func:`..ml_process.wrapped`.
"""

from __future__ import annotations

import re
from typing import Any

from jsonpath_ng import parse

from ..painless.values import java_type

__all__ = ["PathNotFound", "java_class", "read"]

_TOKEN = re.compile(r"\.(\*|[A-Za-z0-9_$@\-]+)|\[\s*(\*|-?\d+|'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")\s*\]")
#: what Jayway's default provider (json-smart) calls a JSON array and object
_ARRAY, _OBJECT = "net.minidev.json.JSONArray", "net.minidev.json.JSONObject"
_PROVIDER = "com.jayway.jsonpath.spi.json.JsonSmartJsonProvider"


class PathNotFound(Exception):
    """Jayway's ``PathNotFoundException``: its message is the reason."""


def _tokens(path: str) -> list[tuple[str, Any]] | None:
    """``path`` as ``("prop", name) | ("index", n) | ("all", None)`` tokens, or None where it uses syntax
    beyond them."""
    text = path.strip()
    if not text.startswith("$"):
        return None
    pos, out = 1, []
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            return None
        name, bracket = m.group(1), m.group(2)
        if name is not None:
            out.append(("all", None) if name == "*" else ("prop", name))
        elif bracket == "*":
            out.append(("all", None))
        elif bracket[0] in "'\"":
            out.append(("prop", re.sub(r"\\(.)", r"\1", bracket[1:-1])))
        else:
            out.append(("index", int(bracket)))
        pos = m.end()
    return out


def _fragment(token: tuple[str, Any]) -> str:
    kind, value = token
    return f"['{value}']" if kind == "prop" else f"[{value}]" if kind == "index" else "[*]"


def java_class(value: Any) -> str:
    """The Java class Jayway's json-smart provider reads a JSON value as."""
    return _ARRAY if isinstance(value, list) else _OBJECT if isinstance(value, dict) else java_type(value)


def read(answer: Any, path: str) -> Any:
    """``JsonPath.read(answer, path)``: a definite path's value, an indefinite one's list of matches."""
    tokens = _tokens(path)
    if tokens is None:
        return [m.value for m in parse(path).find(answer)]
    definite = all(kind != "all" for kind, _ in tokens)
    results: list[Any] = []
    _walk(answer, tokens, 0, "$", True, results)
    if not definite:
        return results
    if not results:
        raise PathNotFound("No results for path: $" + "".join(_fragment(t) for t in tokens))
    return results[0]


def _walk(model: Any, tokens: list[tuple[str, Any]], i: int, at: str, upstream_definite: bool,
          results: list[Any]) -> None:
    if i == len(tokens):
        results.append(model)
        return
    kind, value = tokens[i]
    leaf = i == len(tokens) - 1
    if kind == "prop":
        if not isinstance(model, dict):
            if upstream_definite:
                raise PathNotFound(
                    f"Expected to find an object with property ['{value}'] in path {at} but found "
                    f"'{java_class(model)}'. This is not a json object according to the JsonProvider: '{_PROVIDER}'.")
            return
        here = f"{at}['{value}']"
        if value not in model:
            if leaf or not upstream_definite:
                return
            raise PathNotFound(f"Missing property in path {here}")
        _walk(model[value], tokens, i + 1, here, upstream_definite, results)
    elif kind == "index":
        if not isinstance(model, list):
            if upstream_definite:
                shown = "null" if model is None else java_class(model)
                raise PathNotFound(f"Filter: [{value}] can only be applied to arrays. Current context is: {shown}")
            return
        idx = value + len(model) if value < 0 else value
        if 0 <= idx < len(model):
            _walk(model[idx], tokens, i + 1, f"{at}[{value}]", upstream_definite, results)
    else:
        children = list(model.values()) if isinstance(model, dict) else model if isinstance(model, list) else []
        for n, child in enumerate(children):
            if leaf or isinstance(child, (dict, list)):
                _walk(child, tokens, i + 1, f"{at}[{n}]", False, results)
