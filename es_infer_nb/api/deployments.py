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
STOP_ACTION = "cluster:admin/xpack/ml/trained_models/deployment/stop"
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
    """ObjectParser's ``declareInt``: an int, a number or numeric text coerced (``2.7`` is 2, as
    ``intValue(coerce)``); a boolean refused by the token type."""
    if isinstance(value, bool):
        raise ApiError("x_content_parse_exception", f"[{where}] {name} doesn't support values of type: VALUE_BOOLEAN",
                       400)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value == value and abs(value) < 2**31:
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+(\.\d*)?\s*", value):
        return int(float(value))
    raise ApiError("x_content_parse_exception", f"[{where}] failed to parse field [{name}]", 400)


def _query_int(req: Request, name: str) -> int:
    """``RestRequest.paramAsInt``."""
    try:
        return int(req.params[name])
    except ValueError:
        raise ApiError("illegal_argument_exception",
                       f"Failed to parse int parameter [{name}] with value [{req.params[name]}]", 400) from None


def _field(where: str, name: str, parse: Any) -> Any:
    """A body field parsed by ``parse()``: its error wrapped as ObjectParser wraps a setter's
    (``failed to parse field [name]``, the original as the cause)."""
    try:
        return parse()
    except ApiError as err:
        raise ApiError("x_content_parse_exception", f"[{where}] failed to parse field [{name}]", 400,
                       caused_by=err) from None


def _boolean(value: Any, name: str, where: str) -> bool:
    """ObjectParser's ``declareBoolean``: a boolean, or the text ``true`` / ``false``."""
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return value == "true"
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
    """Body fields first, then query parameters (which win), as ``RestStartTrainedModelDeploymentAction``;
    the deployment id is the query parameter's, else the model id (a body's ``deployment_id`` is overwritten)."""
    model_id = req.path_params["model_id"]
    body = _body(req, START_ACTION, START_FIELDS)
    values = {k: v for k, v in body.items() if k != "deployment_id"}
    if values.get("model_id") not in (None, model_id):
        raise ApiError("status_exception",
                       f"Inconsistent model_id; '{values['model_id']}' specified in the body differs from "
                       f"'{model_id}' specified as a URL argument", 400)
    for legacy, name in (("inference_threads", "threads_per_allocation"), ("model_threads", "number_of_allocations")):
        if legacy in values:
            values.setdefault(name, values.pop(legacy))
    queried = set()
    for name in START_PARAMS:
        if req.has(name):
            key = {"inference_threads": "threads_per_allocation", "model_threads": "number_of_allocations"}.get(name, name)
            values[key] = _query_int(req, name) if key in INT_FIELDS else req.params[name]
            queried.add(key)
    out = StartRequest(model_id=model_id, deployment_id=str(req.params.get("deployment_id") or model_id))
    for key in INT_FIELDS:
        if key in values:
            setattr(out, key, _int(values[key], key, START_ACTION))

    def parsed(key: str, parse: Any) -> Any:  # a query parameter's error as it is, a body field's wrapped
        return parse() if key in queried else _field(START_ACTION, key, parse)

    if values.get("cache_size") is not None:
        out.cache_size = parsed("cache_size", lambda: ByteSize.parse(values["cache_size"], "cache_size"))
    if "priority" in values:
        out.priority = parsed("priority", lambda: _enum(values["priority"], ("normal", "low"), "Priority"))
    if "wait_for" in values:
        out.wait_for = parsed("wait_for", lambda: _enum(values["wait_for"], ("starting", "started", "fully_allocated"),
                                                        "AllocationStatus.State"))
    if "timeout" in values:
        out.timeout_s = parsed("timeout", lambda: parse_time_seconds(str(values["timeout"]), "timeout"))
    out.adaptive_allocations = AdaptiveAllocations.parse(values.get("adaptive_allocations"))
    if "device" in values:
        out.device = str(values["device"])
    if values.get("precision") is not None:
        out.precision = _precision(values["precision"])
    return out


#: the start request's int fields
INT_FIELDS = ("number_of_allocations", "threads_per_allocation", "queue_capacity")


def _enum(value: Any, allowed: tuple[str, ...], java: str) -> str:
    text = str(value).lower()
    if text not in allowed:
        raise ApiError("illegal_argument_exception", f"No enum constant org.elasticsearch.xpack.core.ml.inference."
                       f"assignment.{java}.{str(value).upper()}", 400)
    return text


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
    body = _body(req, STOP_ACTION, {"model_id", "allow_no_match", "force"})
    if body.get("model_id") not in (None, expression):
        raise ApiError("illegal_argument_exception",
                       f"Inconsistent model_id; '{body['model_id']}' specified in the body differs from '{expression}' "
                       "specified as a URL argument", 400)
    allow = req.bool_param("allow_no_match", _boolean(body.get("allow_no_match", True), "allow_no_match", STOP_ACTION))
    force = req.bool_param("force", _boolean(body.get("force", False), "force", STOP_ACTION))
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
    """``RestUpdateTrainedModelDeploymentAction``: ``?number_of_allocations=`` alone (the body is not read),
    else the body (``{}`` changes nothing); a partial ``adaptive_allocations`` merges into the deployment's,
    ``null`` removes them, and the merged settings decide whether a count may be set."""
    deployment_id = req.path_params["deployment_id"]
    allocations: int | None = None
    adaptive: AdaptiveAllocations | None = None
    reset = False
    if req.has("number_of_allocations"):
        allocations = req.int_param("number_of_allocations", 1)
    else:
        req.require_body()
        body = _body(req, UPDATE_ACTION, {"model_id", "number_of_allocations", "adaptive_allocations", "timeout"})
        if body.get("model_id") not in (None, deployment_id):
            raise ApiError("status_exception", f"Inconsistent model_id; '{body['model_id']}' specified in the body "
                           f"differs from '{deployment_id}' specified as a URL argument", 400)
        if body.get("timeout") is not None:
            _field(UPDATE_ACTION, "timeout", lambda: parse_time_seconds(str(body["timeout"]), "timeout"))
        if "number_of_allocations" in body:
            allocations = _int(body["number_of_allocations"], "number_of_allocations", UPDATE_ACTION)
        reset = "adaptive_allocations" in body and body["adaptive_allocations"] is None
        adaptive = AdaptiveAllocations.parse(body.get("adaptive_allocations"))
    problems: list[str] = []
    if allocations is not None and allocations < 1:
        problems.append("[number_of_allocations] must be a positive integer")
    if adaptive is not None:
        problems.extend(adaptive.problems())
    if problems:  # the request's own checks (Request.validate), before the deployment is looked up
        raise validation_failed(problems)
    registry = deployments(engine)
    dep = registry.require(deployment_id)
    merged = None if reset else AdaptiveAllocations.merged(dep.params.adaptive_allocations, adaptive)
    if allocations is not None and merged is not None and merged.enabled is True:  # on the merged settings:
        raise ApiError("validation_exception", "Validation Failed: 1: [number_of_allocations] cannot be set if "
                       "adaptive allocations is enabled;", 400)  # the cluster service's ValidationException
    dep = registry.update(deployment_id, allocations, merged, reset)
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


def queued_infer(engine: "Engine", dep: Deployment, docs: list[dict[str, Any]], update: Any, req: Request,
                 body_timeout: Any = None) -> Deferred:
    """``_infer`` on a deployment: the documents join its queue now (ES's 429 when it is full) and the
    answer waits for the worker outside the engine's lock, so concurrent calls share model batches.
    ``timeout`` (the query parameter, else the body's) bounds the wait: ES's 408 and ``timeout_count``."""
    timeout_text = req.params.get("timeout") or (None if body_timeout is None else str(body_timeout))
    timeout = parse_time_seconds(str(timeout_text), "timeout") if timeout_text else None
    if timeout is not None and timeout < 0:
        timeout = None  # -1: wait forever
    future = dep.submit(docs, update, model_field(engine, dep.model_id))
    return Deferred(lambda: {"inference_results": dep.result(future, len(docs), timeout, timeout_text)})
