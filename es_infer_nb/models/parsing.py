"""Strict JSON object parsing with Elasticsearch's error types and messages.

PUT bodies are parsed strictly: unknown fields are rejected with
``x_content_parse_exception`` (``[tree] unknown field [foo]``), wrong types with
``[tree_node] failed to parse field [threshold]`` and a reason naming the type found.
"""

from __future__ import annotations

import math
from typing import Any, Callable

from ..errors import ApiError

Coerce = Callable[[Any, str, str], Any]


def json_token(value: Any) -> str:
    """The XContent token a parsed JSON value starts with (``VALUE_NUMBER``, ``START_ARRAY`` ...), as ES's parse
    errors name it."""
    if value is None:
        return "VALUE_NULL"
    if isinstance(value, bool):
        return "VALUE_BOOLEAN"
    if isinstance(value, (int, float)):
        return "VALUE_NUMBER"
    if isinstance(value, str):
        return "VALUE_STRING"
    if isinstance(value, list):
        return "START_ARRAY"
    if isinstance(value, dict):
        return "START_OBJECT"
    return type(value).__name__


def field_error(obj: str, field: str, detail: str) -> ApiError:
    return ApiError(
        "x_content_parse_exception",
        f"[{obj}] failed to parse field [{field}]",
        400,
        caused_by=ApiError("illegal_argument_exception", detail, 400),
    )


def as_object(value: Any, obj: str, what: str = "") -> dict[str, Any]:
    if not isinstance(value, dict):
        name = what or obj
        raise ApiError(
            "x_content_parse_exception",
            f"[{name}] expected an object but found [{json_token(value)}]",
            400,
        )
    return value


def reject_unknown(value: dict[str, Any], obj: str, known: set[str] | frozenset[str]) -> None:
    for key in value:
        if key not in known:
            raise ApiError("x_content_parse_exception", f"[{obj}] unknown field [{key}]", 400)


def to_str(value: Any, obj: str, field: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise field_error(obj, field, f"expected a string for [{field}] but found [{json_token(value)}]")


def to_bool(value: Any, obj: str, field: str) -> bool:
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return value == "true"
    raise field_error(obj, field, f"Failed to parse value [{value}] as only [true] or [false] are allowed.")


def to_float(value: Any, obj: str, field: str) -> float:
    if isinstance(value, bool) or value is None:
        raise field_error(obj, field, f"expected a number for [{field}] but found [{json_token(value)}]")
    if isinstance(value, (int, float)):
        try:
            return float(value)
        except OverflowError:  # an integer of hundreds of digits
            raise field_error(obj, field, f"[{field}] value out of range of double") from None
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise field_error(obj, field, f"expected a number for [{field}] but found [{json_token(value)}]")


_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1


def _in_long_range(value: int, obj: str, field: str) -> int:
    """Jackson's coercion check: integer fields are at most Java longs."""
    if not _LONG_MIN <= value <= _LONG_MAX:
        shown = str(value) if abs(value) < 10**100 else f"{str(value)[:20]}..."
        raise field_error(obj, field, f"Numeric value ({shown}) out of range of long ({_LONG_MIN} - {_LONG_MAX})")
    return value


def to_int(value: Any, obj: str, field: str) -> int:
    if isinstance(value, bool) or value is None:
        raise field_error(obj, field, f"expected an integer for [{field}] but found [{json_token(value)}]")
    if isinstance(value, int):
        return _in_long_range(value, obj, field)
    if isinstance(value, float) and math.isfinite(value) and value == int(value):
        return _in_long_range(int(value), obj, field)
    if isinstance(value, str):
        try:
            return _in_long_range(int(value), obj, field)
        except ValueError:
            pass
    raise field_error(obj, field, f"expected an integer for [{field}] but found [{json_token(value)}]")


def to_list(value: Any, obj: str, field: str, item: Coerce) -> list[Any]:
    """An array field; like ES's array parsers a single scalar counts as a one-element array."""
    if not isinstance(value, list):
        value = [value]
    return [item(v, obj, field) for v in value]


def str_list(value: Any, obj: str, field: str) -> list[str]:
    return to_list(value, obj, field, to_str)


def float_list(value: Any, obj: str, field: str) -> list[float]:
    out = to_list(value, obj, field, to_float)
    return out


def require(value: dict[str, Any], obj: str, field: str) -> Any:
    if field not in value or value[field] is None:
        raise ApiError("x_content_parse_exception", f"[{obj}] required field [{field}] is missing", 400)
    return value[field]


def named_object(value: Any, obj: str, field: str) -> tuple[str, Any]:
    """A ``{"name": {...}}`` single-key object, as ES's named-object parsers expect."""
    if not isinstance(value, dict) or len(value) != 1:
        raise ApiError(
            "x_content_parse_exception",
            f"[{obj}] failed to parse field [{field}]: expected exactly one named object",
            400,
        )
    ((name, inner),) = value.items()
    return name, inner


def named_object_array(value: Any, obj: str, field: str) -> list[tuple[str, Any]]:
    if isinstance(value, dict) and len(value) > 1:
        raise ApiError("status_exception", f"[{field}] needs to be an array of objects", 400)
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        raise ApiError(
            "x_content_parse_exception",
            f"[{obj}] failed to parse field [{field}]: expected an array of objects but found [{json_token(value)}]",
            400,
        )
    return [named_object(v, obj, field) for v in value]


def bad_request(reason: str) -> ApiError:
    """``ExceptionsHelper.badRequestException``: an ElasticsearchStatusException with 400."""
    return ApiError("status_exception", reason, 400)
