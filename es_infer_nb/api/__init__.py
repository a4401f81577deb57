"""REST API: one module per family, all registered in :mod:`.routing`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import ApiError
from . import deployments, infer, ingest, stats, trained_models  # noqa: F401  (register routes)
from . import cat, inference_endpoints  # noqa: F401  (register routes: _cat, _inference)
from .request import Request
from .routing import COMMON_PARAMS, resolve

if TYPE_CHECKING:  # pragma: no cover
    from ..engine import Engine


def dispatch(engine: "Engine", req: Request) -> tuple[int, Any, dict[str, str]]:
    route, captured = resolve(req.method, req.path, req.uri)
    req.path_params = captured
    unknown = sorted(k for k in req.params if k not in route.params and k not in COMMON_PARAMS)
    if unknown:
        names = ", ".join(unknown)
        what = "parameter" if len(unknown) == 1 else "parameters"
        raise ApiError(
            "illegal_argument_exception",
            f"request [{req.path}] contains unrecognized {what}: [{names}]",
            400,
        )
    result = route.handler(engine, req)
    status, body = result if isinstance(result, tuple) else (200, result)
    if req.method == "HEAD":
        body = None
    return status, body, {}
