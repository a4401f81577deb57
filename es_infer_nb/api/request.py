"""A parsed REST request and typed access to its query parameters."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import ApiError, illegal_argument

#: ``TimeValue.parseTimeValue``'s suffixes, in the order it tries them
_TIME_UNITS = (("nanos", 1e-9), ("micros", 1e-6), ("ms", 1e-3), ("s", 1.0), ("m", 60.0), ("h", 3600.0),
               ("d", 86400.0))
#: parameters every route parses as a time value when given (ES: ``paramAsTime``)
TIME_PARAMS = ("timeout", "master_timeout")


def parse_time_value(text: str, setting: str) -> float:
    """Seconds for an ES time value (``TimeValue.parseTimeValue``): ``30s``, ``500ms``, ``2m``...;
    ``-1`` (no limit: -1.0) and ``0`` without a unit. ES's 400s otherwise: a missing or unknown unit,
    a fraction, a negative duration."""
    lower = text.lower().strip()
    for suffix, scale in _TIME_UNITS:
        if lower.endswith(suffix):
            number = lower[: -len(suffix)].strip()
            try:
                value = int(number, 10)
            except ValueError:
                try:
                    float(number)
                except ValueError:
                    raise ApiError("parse_exception", f"failed to parse [{text}]", 400) from None
                raise ApiError("parse_exception",
                               f"failed to parse [{text}], fractional time values are not supported", 400) from None
            if value < -1:
                raise ApiError("illegal_argument_exception", f"failed to parse setting [{setting}] with value "
                               f"[{text}] as a time value: negative durations are not supported", 400)
            return value * scale
    if lower.startswith("-") and lower[1:].lstrip("0") == "1":
        return -1.0
    if lower and lower.strip("0") == "":
        return 0.0
    raise ApiError("illegal_argument_exception", f"failed to parse setting [{setting}] with value [{text}] as a "
                   "time value: unit is missing or unrecognized", 400)


def _param_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(_param_text(v) for v in value)
    return str(value)


@dataclass
class Request:
    method: str
    path: str
    params: dict[str, str] = field(default_factory=dict)
    body: Any = None
    path_params: dict[str, str] = field(default_factory=dict)
    uri: str | None = None
    consumed: set[str] = field(default_factory=set)
    #: arrived over HTTP (``es-infer serve``), not from the Python API: less trusted (no env secrets)
    remote: bool = False
    #: the device standing for the engine's in this call (``None``: the engine's own): where a model this
    #: request loads, a deployment it starts (naming no device) or an endpoint's local model runs
    device: str | None = None

    @staticmethod
    def normalise_params(raw: dict[str, Any] | None) -> dict[str, str]:
        return {str(k): _param_text(v) for k, v in (raw or {}).items()}

    # -- typed accessors -----------------------------------------------------------------
    def has(self, name: str) -> bool:
        return name in self.params

    def str_param(self, name: str, default: str | None = None) -> str | None:
        return self.params.get(name, default)

    def bool_param(self, name: str, default: bool) -> bool:
        if name not in self.params:
            return default
        raw = self.params[name]
        if raw in ("", "true"):
            return True
        if raw == "false":
            return False
        raise illegal_argument(
            f"Failed to parse value [{raw}] as only [true] or [false] are allowed."
        )

    def int_param(self, name: str, default: int) -> int:
        if name not in self.params:
            return default
        raw = self.params[name]
        try:
            return int(raw)
        except ValueError:
            raise ApiError(
                "illegal_argument_exception",
                f"Failed to parse int parameter [{name}] with value [{raw}]",
                400,
            ) from None

    def time_param(self, name: str, default: float | None) -> float | None:
        """Seconds for a time-valued parameter (:func:`parse_time_value`); ``default`` when absent."""
        raw = self.params.get(name)
        return default if raw is None else parse_time_value(raw, name)

    def list_param(self, name: str) -> list[str]:
        raw = self.params.get(name)
        if raw is None or raw == "":
            return []
        return [p.strip() for p in raw.split(",") if p.strip()]

    def require_body(self) -> Any:
        if self.body is None:
            raise ApiError("parse_exception", "request body is required", 400)
        return self.body

    def object_body(self, what: str = "request body") -> dict[str, Any]:
        body = self.require_body()
        if not isinstance(body, dict):
            raise ApiError(
                "x_content_parse_exception",
                f"[1:1] [{what}] expected an object but found [{type(body).__name__}]",
                400,
            )
        return body
