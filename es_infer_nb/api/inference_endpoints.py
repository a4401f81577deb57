"""``_inference``: inference endpoints on remote HTTP services or local models (spec §10)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ..errors import ApiError
from ..services.base import INPUT_TYPES
from ..services.registry import build_endpoint, check_task_type, endpoints, services, update_endpoint
from ..services.runner import resolve, rest_answer, run
from ..services.secrets import EnvPolicy
from .ids import require_inference_id
from .request import Request
from .routing import route

log = logging.getLogger("es_infer_nb.inference")

if TYPE_CHECKING:  # pragma: no cover
    from ..engine import Engine

DEFAULT_TIMEOUT_S = 30.0
INFERENCE_BODY_KEYS = {"input", "query", "task_settings", "input_type", "top_n", "return_documents"}


def timeout_param(req: Request, default: float) -> float:
    """``?timeout`` in seconds (``-1``: no limit, taken as a day); ``default`` when absent."""
    seconds = req.time_param("timeout", default)
    assert seconds is not None
    return 86400.0 if seconds < 0 else seconds


def env_policy(engine: "Engine", req: Request) -> EnvPolicy:
    """``{"env": ...}`` secrets: always from the Python API, over HTTP only for allowlisted variables."""
    return EnvPolicy(remote=req.remote, allow=tuple(getattr(engine, "env_secrets_allow", ())))


def _put(engine: "Engine", req: Request, task_type: str | None) -> dict[str, Any]:
    inference_id = req.path_params["inference_id"]
    require_inference_id(inference_id)
    body = req.object_body("inference_endpoint")
    body_type = body.get("task_type")
    if task_type is None:
        if body_type is None:
            raise ApiError("action_request_validation_exception",
                           "Validation Failed: 1: Task type must be specified in the path or the body;", 400)
        task_type = body_type
    elif body_type is not None and body_type != task_type:
        raise ApiError("status_exception", f"Task type [{body_type}] in the body does not match the task type "
                       f"[{task_type}] in the path", 400)
    check_task_type(task_type)
    unknown = sorted(set(body) - {"service", "service_settings", "task_settings", "chunking_settings", "task_type"})
    if unknown:
        raise ApiError("status_exception", f"Model configuration contains settings [{', '.join(unknown)}] unknown "
                       f"to the [{body.get('service')}] service", 400)
    store = endpoints(engine)
    if inference_id in store.configs:
        raise ApiError("resource_already_exists_exception", f"Inference endpoint [{inference_id}] already exists", 400)
    if engine.models.resolve(inference_id) is not None:
        raise ApiError("status_exception", f"Inference endpoint [{inference_id}] cannot be created: a trained model "
                       "with this id exists", 400)
    endpoint = build_endpoint(inference_id, task_type, body, policy=env_policy(engine, req))
    store.put(endpoint)
    return endpoint.to_dict()


@route("PUT", "_inference/{task_type}/{inference_id}", "timeout")
def put_typed(engine: "Engine", req: Request) -> Any:
    return _put(engine, req, req.path_params["task_type"])


@route("PUT", "_inference/{inference_id}", "timeout")
def put_untyped(engine: "Engine", req: Request) -> Any:
    return _put(engine, req, None)


def _update(engine: "Engine", req: Request) -> Any:
    endpoint = resolve(engine, req.path_params["inference_id"], req.path_params.get("task_type"))
    body = req.object_body("inference_endpoint_update")
    updated = update_endpoint(endpoint, body, env_policy(engine, req))
    endpoints(engine).put(updated)
    return updated.to_dict()


route("PUT", "_inference/{task_type}/{inference_id}/_update")(_update)
route("PUT", "_inference/{inference_id}/_update")(_update)


def _get(engine: "Engine", task_type: str | None, inference_id: str | None) -> dict[str, Any]:
    if task_type is not None:
        check_task_type(task_type)
    store = endpoints(engine)
    if inference_id in (None, "_all", "*"):
        found = []
        for i in store.ids():
            try:
                found.append(store.get(i))
            except ApiError as err:  # one unusable endpoint (e.g. its secrets file was lost) costs only itself
                log.warning("es_infer_nb: inference endpoint [%s] is unusable: %s", i, err.reason)
        if task_type is not None:
            found = [e for e in found if e.task_type == task_type]
    else:
        found = [resolve(engine, inference_id, task_type)]
    return {"endpoints": [e.to_dict() for e in found]}


@route("GET", "_inference")
def get_all(engine: "Engine", req: Request) -> Any:
    return _get(engine, None, None)


@route("GET", "_inference/_all")
def get_all_explicit(engine: "Engine", req: Request) -> Any:
    return _get(engine, None, None)


@route("GET", "_inference/{inference_id}")
def get_one(engine: "Engine", req: Request) -> Any:
    return _get(engine, None, req.path_params["inference_id"])


@route("GET", "_inference/{task_type}/{inference_id}")
def get_typed(engine: "Engine", req: Request) -> Any:
    return _get(engine, req.path_params["task_type"], req.path_params["inference_id"])


@route("GET", "_inference/_services", exclusive=False)
def get_services(engine: "Engine", req: Request) -> Any:
    return [s.describe() for s in services().values()]


@route("GET", "_inference/_services/{task_type}", exclusive=False)
def get_services_for(engine: "Engine", req: Request) -> Any:
    task_type = check_task_type(req.path_params["task_type"])
    return [s.describe() for s in services().values() if task_type in s.task_types]


def _inputs(body: dict[str, Any]) -> list[str]:
    raw = body.get("input")
    if raw is None:
        raise ApiError("action_request_validation_exception", "Validation Failed: 1: Field [input] cannot be null;",
                       400)
    items = [raw] if isinstance(raw, str) else raw
    if not isinstance(items, list) or not all(isinstance(t, str) for t in items):
        raise ApiError("x_content_parse_exception", "[inference_request] failed to parse field [input]: input must be "
                       "a string or an array of strings", 400)
    if not items:
        raise ApiError("action_request_validation_exception",
                       "Validation Failed: 1: Field [input] cannot be an empty array;", 400)
    return items


def _infer(engine: "Engine", req: Request, task_type: str | None) -> Any:
    if task_type is not None:
        check_task_type(task_type)
    endpoint = resolve(engine, req.path_params["inference_id"], task_type)
    body = req.object_body("inference_request")
    unknown = sorted(set(body) - INFERENCE_BODY_KEYS)
    if unknown:
        raise ApiError("x_content_parse_exception", f"[inference_request] unknown field [{unknown[0]}]", 400)
    inputs = _inputs(body)
    input_type = body.get("input_type")
    if input_type is not None and (not isinstance(input_type, str) or
                                   input_type.lower().removeprefix("internal_") not in INPUT_TYPES):
        raise ApiError("status_exception", f"Invalid input_type [{input_type}]", 400)
    task_settings = body.get("task_settings")
    if task_settings is not None and not isinstance(task_settings, dict):
        raise ApiError("x_content_parse_exception", "[inference_request] [task_settings] must be an object", 400)
    top_n, return_documents = body.get("top_n"), body.get("return_documents")
    if endpoint.task_type != "rerank" and body.get("query") is not None:
        raise ApiError("action_request_validation_exception",
                       f"Validation Failed: 1: Task type [{endpoint.task_type}] does not support field [query];", 400)
    if top_n is not None and (isinstance(top_n, bool) or not isinstance(top_n, int) or top_n < 1):
        raise ApiError("action_request_validation_exception",
                       "Validation Failed: 1: Field [top_n] must be a positive integer;", 400)
    default = 120.0 if endpoint.task_type in ("completion", "chat_completion") else DEFAULT_TIMEOUT_S
    output = run(engine, endpoint, inputs, query=body.get("query"), task_settings=task_settings,
                 input_type=input_type.lower() if isinstance(input_type, str) else None, top_n=top_n,
                 return_documents=return_documents, timeout_s=timeout_param(req, default), device=req.device)
    return rest_answer(output, top_n=top_n, return_documents=return_documents, inputs=inputs)


@route("POST", "_inference/{inference_id}", "timeout", exclusive=False)
def infer_untyped(engine: "Engine", req: Request) -> Any:
    return _infer(engine, req, None)


@route("POST", "_inference/{task_type}/{inference_id}", "timeout", exclusive=False)
def infer_typed(engine: "Engine", req: Request) -> Any:
    return _infer(engine, req, req.path_params["task_type"])


def referencing_pipelines(engine: "Engine", inference_id: str) -> list[str]:
    """Ingest pipelines with an ``inference`` / ``ml_inference`` processor using ``inference_id``."""
    return [pid for pid, body in engine.pipelines.items() if _references(body, inference_id)]


def _references(value: Any, inference_id: str) -> bool:
    if isinstance(value, list):
        return any(_references(v, inference_id) for v in value)
    if not isinstance(value, dict):
        return False
    for kind in ("inference", "ml_inference"):
        conf = value.get(kind)
        if isinstance(conf, dict) and conf.get("model_id") == inference_id:
            return True
    return any(_references(v, inference_id) for v in value.values())


def _delete(engine: "Engine", req: Request) -> Any:
    task_type = req.path_params.get("task_type")
    inference_id = req.path_params["inference_id"]
    try:
        inference_id = resolve(engine, inference_id, task_type).inference_id
    except ApiError as err:
        stored = engine.inference_endpoints.get(inference_id)
        if err.status == 404 or stored is None or task_type not in (None, stored.get("task_type")):
            raise
        # stored but unusable (e.g. its secrets file was lost): it can still be deleted
    pipelines = referencing_pipelines(engine, inference_id)
    if req.bool_param("dry_run", False):
        return {"acknowledged": False, "pipelines": pipelines}
    if pipelines and not req.bool_param("force", False):
        raise ApiError("status_exception", (
            f"Inference endpoint {inference_id} is referenced by pipelines: [{', '.join(pipelines)}]. "
            "Ensure that no pipelines are using this inference endpoint, or use force to ignore this warning and "
            "delete the inference endpoint."), 409)
    endpoints(engine).delete(inference_id)
    return {"acknowledged": True, "pipelines": pipelines}


route("DELETE", "_inference/{inference_id}", "dry_run", "force")(_delete)
route("DELETE", "_inference/{task_type}/{inference_id}", "dry_run", "force")(_delete)
