"""A parsed REST request and typed access to its query parameters."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import ApiError, illegal_argument


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
