"""``_ingest/pipeline``: stored pipelines (the processors run with the ingest package)."""

from __future__ import annotations

import fnmatch
from typing import TYPE_CHECKING, Any

from ..errors import ApiError, not_found
from .request import Request
from .routing import route

if TYPE_CHECKING:  # pragma: no cover
    from ..engine import Engine


def _config_error(reason: str, processor_type: str, tag: str | None, prop: str | None) -> ApiError:
    meta: dict[str, Any] = {}
    if tag is not None:
        meta["processor_tag"] = tag
    meta["processor_type"] = processor_type
    if prop is not None:
        meta["property_name"] = prop
    return ApiError("parse_exception", reason, 400, metadata=meta)


def validate_pipeline(body: dict[str, Any]) -> None:
    processors = body.get("processors")
    if processors is None:
        raise ApiError("parse_exception", "[processors] required property is missing", 400,
                       metadata={"property_name": "processors"})
    if not isinstance(processors, list):
        raise ApiError("parse_exception", "[processors] property isn't a list, but of type ["
                       + type(processors).__name__ + "]", 400)
    for proc in processors + list(body.get("on_failure") or []):
        if not isinstance(proc, dict) or len(proc) != 1:
            raise ApiError("parse_exception", "processor must be an object with exactly one key", 400)
        ((ptype, conf),) = proc.items()
        if not isinstance(conf, dict):
            continue
        if ptype == "inference" and not conf.get("model_id"):
            raise _config_error("[model_id] required property is missing", "inference", conf.get("tag"), "model_id")


@route("PUT", "_ingest/pipeline/{id}", "if_version")
def put_pipeline(engine: "Engine", req: Request) -> Any:
    body = req.object_body("pipeline")
    validate_pipeline(body)
    engine.pipelines.put(req.path_params["id"], body)
    return {"acknowledged": True}


@route("GET", "_ingest/pipeline", "summary")
@route("GET", "_ingest/pipeline/{id}", "summary")
def get_pipeline(engine: "Engine", req: Request) -> Any:
    expression = req.path_params.get("id", "*")
    out: dict[str, Any] = {}
    for part in expression.split(","):
        matched = [pid for pid in engine.pipelines if fnmatch.fnmatchcase(pid, part)]
        out.update({pid: engine.pipelines.get(pid) for pid in matched})
    if not out and "id" in req.path_params:
        return 404, {}
    return out


@route("DELETE", "_ingest/pipeline/{id}")
def delete_pipeline(engine: "Engine", req: Request) -> Any:
    expression = req.path_params["id"]
    matched = [pid for part in expression.split(",") for pid in engine.pipelines if fnmatch.fnmatchcase(pid, part)]
    if not matched:
        raise not_found(f"pipeline [{expression}] is missing")
    for pid in matched:
        engine.pipelines.delete(pid)
    return {"acknowledged": True}
