"""Reading service / task / chunking settings maps with Elasticsearch's validation messages.

Errors are collected like ES's ``ValidationException`` and raised together:
``Validation Failed: 1: <msg>;2: <msg>;`` (type ``validation_exception``, status 400).
"""

from __future__ import annotations

from typing import Any

from ..errors import ApiError
from ..models.tree.features import java_string


def invalid_type(key: str, value: Any, expected: str) -> str:
    """ES's ``ServiceUtils.invalidTypeErrorMsg`` (``removeAsType``): the value as Java prints it."""
    return f"field [{key}] is not of the expected type. The value [{java_string(value)}] cannot be converted to a [{expected}]"


class Validation:
    """An accumulator of validation messages."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def add(self, message: str) -> None:
        self.messages.append(message)

    def raise_if_any(self) -> None:
        if self.messages:
            text = "".join(f"{i}: {m};" for i, m in enumerate(self.messages, start=1))
            raise ApiError("validation_exception", f"Validation Failed: {text}", 400)

    # -- typed readers (remove the key from ``source``, as ES's ``extract*`` helpers do) -----
    def required_string(self, source: dict[str, Any], key: str, scope: str) -> str | None:
        value = source.pop(key, None)
        if value is None:
            self.add(f"[{scope}] does not contain the required setting [{key}]")
            return None
        if not isinstance(value, str):
            self.add(invalid_type(key, value, "String"))
            return None
        if not value.strip():
            self.add(f"[{scope}] Invalid value empty string. [{key}] must be a non-empty string")
            return None
        return value

    def optional_string(self, source: dict[str, Any], key: str, scope: str) -> str | None:
        value = source.pop(key, None)
        if value is None:
            return None
        if not isinstance(value, str):
            self.add(invalid_type(key, value, "String"))
            return None
        return value

    def optional_positive_int(self, source: dict[str, Any], key: str, scope: str) -> int | None:
        value = source.pop(key, None)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.add(invalid_type(key, value, "Integer"))
            return None
        if value <= 0:
            self.add(f"[{scope}] Invalid value [{value}]. [{key}] must be a positive integer")
            return None
        return value

    def required_map(self, source: dict[str, Any], key: str, scope: str) -> dict[str, Any]:
        value = source.pop(key, None)
        if value is None:
            self.add(f"[{scope}] does not contain the required setting [{key}]")
            return {}
        if not isinstance(value, dict):
            self.add(invalid_type(key, value, "Map"))
            return {}
        return dict(value)

    def optional_map(self, source: dict[str, Any], key: str, scope: str) -> dict[str, Any] | None:
        value = source.pop(key, None)
        if value is None:
            return None
        if not isinstance(value, dict):
            self.add(invalid_type(key, value, "Map"))
            return None
        return dict(value)


def rate_limit(
    source: dict[str, Any], default_rpm: int, v: Validation, scope: str = "service_settings"
) -> dict[str, int]:
    """``rate_limit.requests_per_minute`` (a positive integer, the service's default otherwise)."""
    raw = v.optional_map(source, "rate_limit", scope) or {}
    rpm = v.optional_positive_int(raw, "requests_per_minute", f"{scope}.rate_limit")
    return {"requests_per_minute": rpm if rpm is not None else default_rpm}


def reject_unknown(source: dict[str, Any], service: str, what: str) -> None:
    """ES: ``Model configuration contains settings [...] unknown to the [<service>] service``
    (only the names are listed: a misplaced value may be a secret)."""
    if source:
        raise ApiError(
            "status_exception",
            f"Model configuration contains settings [{', '.join(source)}] unknown to the [{service}] service",
            400,
        )
