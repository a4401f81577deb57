"""Reading processor configuration the way ``ConfigurationUtils`` does (messages included)."""

from __future__ import annotations

from typing import Any

from ..errors import ApiError
from .document import java_type

_MISSING = object()
VALID_MEDIA_TYPES = ("application/json", "text/plain", "application/x-www-form-urlencoded")


def config_error(processor_type: str | None, tag: str | None, prop: str | None, message: str,
                 type: str = "parse_exception") -> ApiError:
    """``ConfigurationUtils.newConfigurationException``: ``[prop] message`` + processor metadata."""
    meta: dict[str, Any] = {}
    if tag is not None:
        meta["processor_tag"] = tag
    if processor_type is not None:
        meta["processor_type"] = processor_type
    if prop is not None:
        meta["property_name"] = prop
    reason = f"[{prop}] {message}" if prop is not None else message
    return ApiError(type, reason, 400, metadata=meta)


class Conf:
    """A processor's config map, consumed property by property."""

    def __init__(self, processor_type: str | None, tag: str | None, config: dict[str, Any]) -> None:
        self.type = processor_type
        self.tag = tag
        self.config = config

    def error(self, prop: str | None, message: str) -> ApiError:
        return config_error(self.type, self.tag, prop, message)

    def has(self, key: str) -> bool:
        return key in self.config

    def raw(self, key: str, default: Any = None) -> Any:
        return self.config.pop(key, default)

    def string(self, key: str, default: Any = _MISSING) -> Any:
        value = self.config.pop(key, None)
        if value is None:
            if default is _MISSING:
                raise self.error(key, "required property is missing")
            return default
        if isinstance(value, str):
            return value
        raise self.error(key, f"property isn't a string, but of type [{java_type(value)}]")

    def string_or_list(self, key: str) -> list[str]:
        value = self.config.pop(key, None)
        if value is None:
            raise self.error(key, "required property is missing")
        if isinstance(value, str):
            return [value]
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return list(value)
        raise self.error(key, f"property isn't a list or string, but of type [{java_type(value)}]")

    def boolean(self, key: str, default: bool) -> bool:
        value = self.config.pop(key, None)
        if value is None:
            return default
        if isinstance(value, bool):  # ConfigurationUtils.readBoolean: a Boolean only ("true" is a String)
            return value
        raise self.error(key, f"property isn't a boolean, but of type [{java_type(value)}]")

    def media_type(self) -> str:
        """``ConfigurationUtils.readMediaTypeProperty`` (``media_type`` of ``set`` / ``append``)."""
        media = self.string("media_type", "application/json")
        if media not in VALID_MEDIA_TYPES:
            raise self.error("media_type", f"property does not contain a supported media type [{media}]")
        return str(media)

    def mapping(self, key: str) -> dict[str, Any] | None:
        value = self.config.pop(key, None)
        if value is None:
            return None
        if isinstance(value, dict):
            return value
        raise self.error(key, f"property isn't a map, but of type [{java_type(value)}]")

    def finish(self) -> None:
        if self.config:
            keys = ", ".join(self.config)
            raise config_error(self.type, self.tag, None,
                               f"processor [{self.type}] doesn't support one or more provided configuration "
                               f"parameters [{keys}]")
