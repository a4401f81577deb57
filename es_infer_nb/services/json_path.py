"""The restricted JSON path language of Elasticsearch's ``custom`` service (``MapPathExtractor``).

Paths start with ``$`` and use only ``.field`` and ``[*]`` segments. Unlike JSONPath, ``[*]``
*keeps nesting*: ``$.result[*].key[*].a`` over two results gives ``[[1.1, 2.2], [3.3, 4.4]]``.
The extractor also reports the dotted names it walked through (``traversed_fields``), which the
response parsers use in their error messages exactly as Elasticsearch does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ..errors import ApiError

_DOT_FIELD = re.compile(r"^\.([^.\[]+)(.*)$", re.DOTALL)
_ARRAY_WILDCARD = re.compile(r"^\[\*\](.*)$", re.DOTALL)


def java_type(value: Any) -> str:
    """The simple Java class name Elasticsearch's messages use for a parsed JSON value."""
    if isinstance(value, bool):
        return "Boolean"
    if isinstance(value, int):
        return "Integer" if -(2**31) <= value < 2**31 else "Long"
    if isinstance(value, float):
        return "Double"
    if isinstance(value, str):
        return "String"
    if isinstance(value, list):
        return "ArrayList"
    if isinstance(value, dict):
        return "LinkedHashMap"
    return type(value).__name__


def response_type(value: Any) -> str:
    """The Java class of a value of a parsed JSON *response*: XContent's ``map()`` builds ``HashMap`` objects."""
    return "HashMap" if isinstance(value, dict) else java_type(value)


def java_map_string(value: dict[str, Any]) -> str:
    """A map as Java's ``AbstractMap.toString`` writes it (``{key=value, other=1}``)."""

    def one(v: Any) -> str:
        if isinstance(v, dict):
            return java_map_string(v)
        if isinstance(v, list):
            return "[" + ", ".join(one(x) for x in v) + "]"
        if isinstance(v, bool):
            return "true" if v else "false"
        return "null" if v is None else str(v)

    return "{" + ", ".join(f"{k}={one(v)}" for k, v in value.items()) + "}"


def illegal_argument(reason: str) -> ApiError:
    return ApiError("illegal_argument_exception", reason, 400)


def illegal_state(reason: str) -> ApiError:
    return ApiError("illegal_state_exception", reason, 400)


@dataclass
class Extracted:
    """What a path found: the value and the dotted field names walked (in first-seen order)."""

    value: Any
    traversed_fields: list[str] = field(default_factory=list)

    def field_name(self, index: int) -> str:
        """The traversed name at ``index`` (``unknown`` when the path walked fewer fields)."""
        if -len(self.traversed_fields) <= index < len(self.traversed_fields):
            return self.traversed_fields[index]
        return "unknown"


def extract(data: Any, path: str) -> Extracted:
    """Walk ``path`` through ``data``; raises ``illegal_argument_exception`` as ES does."""
    if not data or path is None or not path.strip():
        return Extracted(None, [])
    cleaned = path.strip()
    if not cleaned.startswith("$"):
        raise illegal_argument(f"Path [{cleaned}] must start with a dollar sign ($)")
    traversed: dict[str, None] = {}
    value = _navigate(data, cleaned[1:], "", traversed)
    return Extracted(value, list(traversed))


def _navigate(current: Any, remaining: str, name: str, traversed: dict[str, None]) -> Any:
    if current is None:
        return None
    if not remaining:
        if name:
            traversed.setdefault(name, None)
        return current
    dot = _DOT_FIELD.match(remaining)
    if dot:
        key = dot.group(1)
        if not isinstance(current, dict):
            raise illegal_argument(
                f"Current path [{remaining}] matched the dot field pattern but the current object is not a map, "
                f"found invalid type [{response_type(current)}] instead."
            )
        if current.get(key) is None:
            raise illegal_argument(f"Unable to find field [{key}] in map")
        return _navigate(current[key], dot.group(2), f"{name}.{key}" if name else key, traversed)
    wildcard = _ARRAY_WILDCARD.match(remaining)
    if wildcard:
        if not isinstance(current, list):
            raise illegal_argument(
                f"Current path [{remaining}] matched the array field pattern but the current object is not a list, "
                f"found invalid type [{response_type(current)}] instead."
            )
        if name:
            traversed.setdefault(name, None)
        rest = wildcard.group(1)
        leaf = _DOT_FIELD.match(rest)
        if (
            leaf
            and not leaf.group(2)
            and all(type(item) is dict and item.get(leaf.group(1)) is not None for item in current)
        ):
            # the common last step ``[*].field`` over maps that all have it: one comprehension
            if current:
                traversed.setdefault(f"{name}.{leaf.group(1)}" if name else leaf.group(1), None)
            key = leaf.group(1)
            return [item[key] for item in current]
        results = []
        for item in current:
            found = _navigate(item, rest, name, traversed)
            if found is not None:
                results.append(found)
        return results
    raise illegal_argument(f"Invalid path received [{remaining}], unable to extract a field name.")
