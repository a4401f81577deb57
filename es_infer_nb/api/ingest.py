"""``_ingest/pipeline``: stored pipelines (the processors run with the ingest package)."""

from __future__ import annotations

import fnmatch
from typing import TYPE_CHECKING, Any

from ..errors import ApiError, not_found
from ..ingest.pipeline import parse_pipeline
from ..ingest.simulate import simulate
from .cluster_settings import MAX_INFERENCE_PROCESSORS, setting
from .ids import require_pipeline_id
from .request import Request
from .routing import route

if TYPE_CHECKING:  # pragma: no cover
    from ..engine import Engine




#: ES stops looking for inference processors this many foreach / on_failure levels down
_MAX_SEARCH_DEPTH = 10


def count_inference_processors(value: Any) -> int:
    """Inference processors anywhere in a pipeline body (on_failure and foreach included): whether
    creating the pipeline runs the inference processor factory (and its limit check)."""
    if isinstance(value, list):
        return sum(count_inference_processors(v) for v in value)
    if not isinstance(value, dict):
        return 0
    total = 0
    for key, inner in value.items():
        if key == "inference" and isinstance(inner, dict):
            total += 1
        if isinstance(inner, (dict, list)):
            total += count_inference_processors(inner)
    return total


def stored_inference_processors(pipeline: Any) -> int:
    """``InferenceProcessorInfoExtractor.countInferenceProcessors`` for one stored pipeline: the
    ``processors`` list only (not the pipeline's ``on_failure``); an inference processor counts when it
    names a ``model_id``; a ``foreach`` is searched through its ``processor``, any other processor
    through its ``on_failure`` (an inference processor's own ``on_failure`` is not searched)."""
    processors = pipeline.get("processors") if isinstance(pipeline, dict) else None
    if not isinstance(processors, list):
        return 0
    return sum(_count_in(ptype, definition, 0) for entry in processors if isinstance(entry, dict)
               for ptype, definition in entry.items())


def _count_in(ptype: str, definition: Any, level: int) -> int:
    """``addModelsAndPipelines`` for one processor entry."""
    if level > _MAX_SEARCH_DEPTH or not isinstance(definition, dict):
        return 0
    if ptype == "inference":
        return 1 if definition.get("model_id") is not None else 0
    if ptype == "foreach":
        inner = definition.get("processor")
        if not isinstance(inner, dict):
            return 0
        return sum(_count_in(k, v, level + 1) for k, v in inner.items())
    on_failure = definition.get("on_failure")
    if not isinstance(on_failure, list):
        return 0
    return sum(_count_in(k, v, level + 1) for entry in on_failure if isinstance(entry, dict) for k, v in entry.items())


def check_inference_limit(engine: "Engine", body: Any) -> None:
    """``InferenceProcessor.Factory.create``'s first check, run when a pipeline body creates an
    inference processor (a PUT or an inline ``_simulate``): the stored pipelines' inference processors
    against ``xpack.ml.max_inference_processors`` (a 409)."""
    if not isinstance(body, dict) or not (count_inference_processors(body.get("processors"))
                                          + count_inference_processors(body.get("on_failure"))):
        return
    current = sum(stored_inference_processors(engine.pipelines.get(pid)) for pid in engine.pipelines)
    limit = setting(engine, MAX_INFERENCE_PROCESSORS)
    if current >= limit:
        raise ApiError(
            "status_exception",
            f"Max number of inference processors reached, total inference processors [{current}]. Adjust the "
            f"setting [{MAX_INFERENCE_PROCESSORS}]: [{limit}] if a greater number is desired.", 409)


def validate_pipeline(body: dict[str, Any], engine: "Engine | None" = None, pipeline_id: str | None = None) -> None:
    """Validate a pipeline body with the same parser ``_simulate`` and execution use."""
    if engine is not None:
        check_inference_limit(engine, body)
    parse_pipeline(body, engine, pipeline_id)  # after the limit: ES's factory checks it before anything else


@route("PUT", "_ingest/pipeline/{id}", "if_version")
def put_pipeline(engine: "Engine", req: Request) -> Any:
    body = req.object_body("pipeline")
    require_pipeline_id(req.path_params["id"])
    validate_pipeline(body, engine, req.path_params["id"])
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
        engine.stats.forget_pipeline(pid)  # a deleted pipeline's ingest stats go with it
    return {"acknowledged": True}


@route("POST", "_ingest/pipeline/_simulate", "verbose", exclusive=False)
@route("GET", "_ingest/pipeline/_simulate", "verbose", exclusive=False)
@route("POST", "_ingest/pipeline/{id}/_simulate", "verbose", exclusive=False)
@route("GET", "_ingest/pipeline/{id}/_simulate", "verbose", exclusive=False)
def simulate_pipeline(engine: "Engine", req: Request) -> Any:
    body = req.object_body("simulate")
    if "id" not in req.path_params:  # an inline pipeline creates its processors as a PUT does
        check_inference_limit(engine, body.get("pipeline"))
    return simulate(engine, body, req.path_params.get("id"), req.bool_param("verbose", False), device=req.device)
