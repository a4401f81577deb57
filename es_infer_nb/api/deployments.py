"""Deployment APIs for pytorch models (spec §7).

``POST _ml/trained_models/<model_id>/deployment/_start``,
``POST _ml/trained_models/<deployment_id>/deployment/_stop``,
``POST _ml/trained_models/<deployment_id>/deployment/_update``,
``POST _ml/trained_models/<deployment_id>/deployment/cache/_clear``.
State and behaviour live in :mod:`es_infer_nb.models.deployments`; this module parses and
validates the requests as ES's REST handlers and transport actions do.
"""

from __future__ import annotations

import fnmatch
import re
from typing import TYPE_CHECKING, Any

from ..errors import ApiError, not_found, validation_failed
from ..models.byte_size import ByteSize
from ..models.config import id_error
from ..models.deployments import AdaptiveAllocations, Deployment, StartRequest, deployments, iso_millis, model_field
from ..models.nlp.precision import check_precision
from .deferred import Deferred
from .request import Request, parse_time_value
from .routing import route
from .trained_models import pipelines_using

if TYPE_CHECKING:  # pragma: no cover
    from ..engine import Engine

START_ACTION = "cluster:admin/xpack/ml/trained_models/deployment/start"
UPDATE_ACTION = "cluster:admin/xpack/ml/trained_models/deployment/update"
START_FIELDS = {
    "model_id", "deployment_id", "timeout", "wait_for", "threads_per_allocation", "inference_threads",
    "number_of_allocations", "model_threads", "queue_capacity", "cache_size", "priority", "adaptive_allocations",
    "precision",  # es_infer_nb's own: the numeric precision the model runs in
}
START_PARAMS = ("deployment_id", "timeout", "wait_for", "threads_per_allocation", "inference_threads",
                "number_of_allocations", "model_threads", "queue_capacity", "cache_size", "priority", "device",
                "precision")

def parse_time_seconds(text: str, setting: str) -> float:
    """``TimeValue.parseTimeValue`` (:func:`~.request.parse_time_value`)."""
    return parse_time_value(text, setting)


def _int(value: Any, name: str, where: str) -> int:
    if isinstance(value, bool):
        raise ApiError("x_content_parse_exception", f"[{where}] failed to parse field [{name}]", 400)
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        return int(value)
    raise ApiError("x_content_parse_exception", f"[{where}] failed to parse field [{name}]", 400)


def _body(req: Request, action: str, allowed: set[str]) -> dict[str, Any]:
    if req.body is None:
        return {}
    body = req.object_body(action)
    for key in body:
        if key not in allowed:
            raise ApiError("x_content_parse_exception", f"[1:2] [{action}] unknown field [{key}]", 400)
    return body


def parse_start(req: Request) -> StartRequest:
    """Body fields first, then query parameters (which win), as ``RestStartTrainedModelDeploymentAction``."""
    model_id = req.path_params["model_id"]
    values = dict(_body(req, START_ACTION, START_FIELDS))
    if values.get("model_id") not in (None, model_id):
        raise ApiError("status_exception",
                       f"Inconsistent model_id; '{values['model_id']}' specified in the body differs from "
                       f"'{model_id}' specified as a URL argument", 400)
    for legacy, name in (("inference_threads", "threads_per_allocation"), ("model_threads", "number_of_allocations")):
        if legacy in values:
            values.setdefault(name, values.pop(legacy))
    for name in START_PARAMS:
        if req.has(name):
            key = {"inference_threads": "threads_per_allocation", "model_threads": "number_of_allocations"}.get(name, name)
            values[key] = req.params[name]
    out = StartRequest(model_id=model_id, deployment_id=str(values.get("deployment_id") or model_id))
    if "number_of_allocations" in values:
        out.number_of_allocations = _int(values["number_of_allocations"], "number_of_allocations", START_ACTION)
    if "threads_per_allocation" in values:
        out.threads_per_allocation = _int(values["threads_per_allocation"], "threads_per_allocation", START_ACTION)
    if "queue_capacity" in values:
        out.queue_capacity = _int(values["queue_capacity"], "queue_capacity", START_ACTION)
    if values.get("cache_size") is not None:
        out.cache_size = ByteSize.parse(values["cache_size"], "cache_size")
    if "priority" in values:
        priority = str(values["priority"]).lower()
        if priority not in ("normal", "low"):
            raise ApiError("illegal_argument_exception",
                           f"No enum constant org.elasticsearch.xpack.core.ml.inference.assignment.Priority."
                           f"{str(values['priority']).upper()}", 400)
        out.priority = priority
    if "wait_for" in values:
        state = str(values["wait_for"]).lower()
        if state not in ("starting", "started", "fully_allocated"):
            raise ApiError("illegal_argument_exception",
                           f"No enum constant org.elasticsearch.xpack.core.ml.inference.assignment.AllocationStatus."
                           f"State.{str(values['wait_for']).upper()}", 400)
        out.wait_for = state
    if "timeout" in values:
        out.timeout_s = parse_time_seconds(str(values["timeout"]), "timeout")
    out.adaptive_allocations = AdaptiveAllocations.parse(values.get("adaptive_allocations"))
    if "device" in values:
        out.device = str(values["device"])
    if values.get("precision") is not None:
        out.precision = _precision(values["precision"])
    return out


def _precision(value: Any) -> str:
    """es_infer_nb's ``precision`` parameter: one of auto, fp32, bf16, fp16, int8 (400 otherwise)."""
    try:
        return check_precision(value)
    except ValueError as exc:
        raise ApiError("illegal_argument_exception", str(exc), 400) from None


@route("POST", "_ml/trained_models/{model_id}/deployment/_start", *START_PARAMS, exclusive=False)
def start_deployment(engine: "Engine", req: Request) -> Any:
    start = parse_start(req)
    problems = start.problems()
    if (err := id_error("deployment_id", start.deployment_id)) is not None:
        problems.insert(0, err)
    if problems:
        raise validation_failed(problems)
    registry = deployments(engine)
    return {"assignment": assignment(registry.start(start, engine_device=req.device), registry.node.id)}


def assignment(dep: Deployment, node_id: str) -> dict[str, Any]:
    """``TrainedModelAssignment`` as the start / update APIs answer it."""
    n = dep.params.number_of_allocations
    out: dict[str, Any] = {
        "task_parameters": dep.task_parameters(),
        "routing_table": {node_id: {"current_allocations": n, "target_allocations": n,
                                    "routing_state": dep.routing_state, "reason": ""}},
        "assignment_state": dep.state,
        "start_time": iso_millis(dep.params.start_time),
        "max_assigned_allocations": n,
    }
    if dep.params.adaptive_allocations:
        out["adaptive_allocations"] = dep.params.adaptive_allocations
    out["precision"] = dep.precision  # es_infer_nb's own (after ES's fields), as ``_stats`` shows it
    return out


@route("POST", "_ml/trained_models/{deployment_id}/deployment/_stop", "allow_no_match", "force", "id", exclusive=False)
def stop_deployment(engine: "Engine", req: Request) -> Any:
    expression = req.path_params["deployment_id"]
    body = _body(req, "stop_trained_model_deployment_request", {"id", "allow_no_match", "force"})
    if body.get("id") not in (None, expression):
        raise ApiError("status_exception",
                       f"Inconsistent id; '{body['id']}' specified in the body differs from '{expression}' specified "
                       "as a URL argument", 400)
    allow = req.bool_param("allow_no_match", bool(body.get("allow_no_match", True)))
    force = req.bool_param("force", bool(body.get("force", False)))
    registry = deployments(engine)
    with engine.lock:  # the checks and the routing table change together; the queues drain outside
        ids = _expand(engine, expression, allow, tolerate_missing=allow)
        if not force:
            for dep_id in ids:
                dep = registry.require(dep_id)
                referenced = {dep_id, *(engine.models.aliases_of(dep.model_id) if dep_id == dep.model_id else [])}
                if pipelines_using(engine, referenced):
                    raise ApiError(
                        "status_exception",
                        f"Cannot stop deployment [{dep_id}] as it is referenced by ingest processors; use force to "
                        "stop the deployment",
                        409,
                    )
        detached = [registry.detach(dep_id) for dep_id in ids]
    for dep in detached:
        dep.shutdown()
    return {"stopped": True}


def _expand(engine: "Engine", expression: str, allow_no_match: bool, *, tolerate_missing: bool = False) -> list[str]:
    """Deployment ids for an id, a model id (all its deployments), a comma list or wildcards.
    ``tolerate_missing`` (stop with ``allow_no_match``): an id with no deployment is skipped, not a 404."""
    registry = deployments(engine)
    found: list[str] = []
    missing: list[str] = []
    for part in [p.strip() for p in expression.split(",") if p.strip()] or ["_all"]:
        if part in ("_all", "*") or "*" in part:
            pattern = "*" if part == "_all" else part
            hits = [d.deployment_id for d in registry.all()
                    if fnmatch.fnmatchcase(d.deployment_id, pattern) or fnmatch.fnmatchcase(d.model_id, pattern)]
            if not hits and not allow_no_match:
                missing.append(part)
            found.extend(hits)
        elif registry.get(part) is not None:
            found.append(part)
        elif registry.of_model(part):
            found.extend(d.deployment_id for d in registry.of_model(part))
        else:
            missing.append(part)
    if missing and not tolerate_missing:
        raise not_found(f"No known model deployment with id [{','.join(missing)}]")
    return list(dict.fromkeys(found))


@route("POST", "_ml/trained_models/{deployment_id}/deployment/_update", "number_of_allocations")
def update_deployment(engine: "Engine", req: Request) -> Any:
    deployment_id = req.path_params["deployment_id"]
    body = _body(req, UPDATE_ACTION, {"number_of_allocations", "adaptive_allocations"})
    allocations: int | None = None
    if "number_of_allocations" in body:
        allocations = _int(body["number_of_allocations"], "number_of_allocations", UPDATE_ACTION)
    if req.has("number_of_allocations"):
        allocations = req.int_param("number_of_allocations", 1)
    adaptive = AdaptiveAllocations.parse(body.get("adaptive_allocations"))
    problems: list[str] = []
    if allocations is None and adaptive is None:
        problems.append("[number_of_allocations] or [adaptive_allocations] is required")
    if allocations is not None:
        if allocations < 1:
            problems.append("[number_of_allocations] must be a positive integer")
        if adaptive is not None and adaptive.enabled is True:
            problems.append("[number_of_allocations] cannot be set if adaptive allocations is enabled")
    if adaptive is not None:
        problems.extend(adaptive.problems())
    registry = deployments(engine)
    dep = registry.get(deployment_id)
    if not problems and dep is not None and dep.params.priority == "low" and allocations is not None and allocations > 1:
        problems.append("[number_of_allocations] must be 1 when [priority] is low")
    if problems:
        raise validation_failed(problems)
    dep = registry.update(deployment_id, allocations, adaptive)
    return {"assignment": assignment(dep, registry.node.id)}


@route("POST", "_ml/trained_models/{deployment_id}/deployment/cache/_clear")
def clear_cache(engine: "Engine", req: Request) -> Any:
    deployment_id = req.path_params["deployment_id"]
    registry = deployments(engine)
    deps = [registry.get(deployment_id)] if registry.get(deployment_id) else registry.of_model(deployment_id)
    if not deps:
        raise ApiError("status_exception", f"[{deployment_id}] is not a started deployment", 400) \
            if engine.models.resolve(deployment_id) is not None else not_found(
                f"No known model deployment with id [{deployment_id}]")
    for dep in deps:
        assert dep is not None
        dep.cache.clear()
    return {"cleared": True}


def queued_infer(engine: "Engine", dep: Deployment, docs: list[dict[str, Any]], update: Any, req: Request) -> Deferred:
    """``_infer`` on a deployment: the documents join its queue now (ES's 429 when it is full) and the
    answer waits for the worker outside the engine's lock, so concurrent calls share model batches.
    ``timeout`` (query parameter) bounds the wait: ES's 408 and ``timeout_count``."""
    timeout_text = req.params.get("timeout")
    timeout = parse_time_seconds(str(timeout_text), "timeout") if timeout_text else None
    if timeout is not None and timeout < 0:
        timeout = None  # -1: wait forever
    future = dep.submit(docs, update, model_field(engine, dep.model_id))
    return Deferred(lambda: {"inference_results": dep.result(future, len(docs), timeout, timeout_text)})
