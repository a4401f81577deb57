"""REST API: one module per family, all registered in :mod:`.routing`."""

from __future__ import annotations

from contextlib import nullcontext
from typing import TYPE_CHECKING, Any

from ..errors import ApiError
from . import deployments, infer, ingest, stats, trained_models  # noqa: F401  (register routes)
from . import cat, cluster_settings, data_frame_analytics, inference_endpoints  # noqa: F401  (register routes)
from . import ml_commons  # noqa: F401  (register routes: OpenSearch _plugins/_ml)
from . import bulk, indices, search  # noqa: F401  (register routes: in-memory indices, _bulk, _search)
from .request import TIME_PARAMS, Request, parse_time_value
from .routing import COMMON_PARAMS, resolve
from .xcontent import lone_surrogate

if TYPE_CHECKING:  # pragma: no cover
    from ..engine import Engine


#: POST actions whose body becomes a stored object (OpenSearch ml-commons creates with POST)
_STORING_ACTIONS = frozenset({"_create", "_register", "_update"})


def _stores_body(req: Request) -> bool:
    """PUTs, and the POSTs that create or update an object, keep their body."""
    return req.method == "PUT" or (req.method == "POST" and req.path.rstrip("/").rsplit("/", 1)[-1] in _STORING_ACTIONS)


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
    for name in TIME_PARAMS:  # ES parses these on every route that takes them: a bad value is a 400
        if name in req.params:
            parse_time_value(req.params[name], name)
    if _stores_body(req) and (problem := lone_surrogate(req.body)) is not None:
        raise problem  # a stored object must be writable (and readable) again
    # the state lock only around handlers that just read or write the state; the others (inference,
    # pipelines, remote calls, deployment starts) take it themselves around their state accesses
    with engine.lock if route.exclusive else nullcontext():
        result = route.handler(engine, req)
    status, body = result if isinstance(result, tuple) else (200, result)
    if req.method == "HEAD":
        body = None
    return status, body, {}
