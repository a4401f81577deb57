"""``_inference``: inference endpoints on remote HTTP services or local models (spec §10)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ..errors import ApiError
from ..services.base import INPUT_TYPES
from ..services.registry import (build_endpoint, endpoints, get_service, path_task_type, services,
                                 update_endpoint)
from ..services.runner import resolve, rest_answer, run
from ..services.secrets import EnvPolicy
from .ids import require_inference_id
from .request import Request, parse_time_value
from .routing import route

log = logging.getLogger("es_infer_nb.inference")

if TYPE_CHECKING:  # pragma: no cover
    from ..engine import Engine

DEFAULT_TIMEOUT_S = 30.0
INFERENCE_BODY_KEYS = {"input", "query", "task_settings", "input_type", "top_n", "return_documents", "timeout"}
INFERENCE_ACTION = "cluster:internal/xpack/inference"
#: the fields ``PUT _inference/<id>/_update`` takes (UpdateInferenceModelAction.Request)
UPDATE_KEYS = ("service_settings", "task_settings", "task_type", "chunking_settings")


def timeout_param(req: Request, default: float) -> float:
    """``?timeout`` in seconds (``-1``: no limit, taken as a day); ``default`` when absent."""
    seconds = req.time_param("timeout", default)
    assert seconds is not None
    return 86400.0 if seconds < 0 else seconds


def env_policy(engine: "Engine", req: Request) -> EnvPolicy:
    """``{"env": ...}`` secrets: always from the Python API, over HTTP only for allowlisted variables."""
    return EnvPolicy(remote=req.remote, allow=tuple(getattr(engine, "env_secrets_allow", ())))


def resolve_task_type(path_type: str | None, body_type: Any) -> str:
    """``ServiceUtils.resolveTaskType``: the body's task type where it agrees with the path's (``any`` or
    absent in the path takes the body's)."""
    if body_type is None:
        if path_type is None:
            raise ApiError("status_exception", "model is missing required setting [task_type]", 400)
        return path_type
    parsed = path_task_type(body_type)
    if parsed is None:
        raise ApiError("status_exception", "task_type [any] is not valid type for inference", 400)
    if path_type is not None and parsed != path_type:
        raise ApiError("status_exception", f"Cannot resolve conflicting task_type parameter in the request URL "
                       f"[{path_type}] and the request body [{body_type}]", 400)
    return parsed


def _put(engine: "Engine", req: Request, task_type: str | None) -> dict[str, Any]:
    inference_id = req.path_params["inference_id"]
    require_inference_id(inference_id)
    body = req.object_body("inference_endpoint")
    task_type = resolve_task_type(task_type, body.get("task_type"))
    service = body.get("service")
    if service is None:
        raise ApiError("status_exception", "Inference endpoint configuration is missing the [service] setting", 400)
    service = get_service(service).name  # a non-string service is unknown too
    unknown = sorted(set(body) - {"service", "service_settings", "task_settings", "chunking_settings", "task_type"})
    if unknown:
        raise ApiError("status_exception", f"Model configuration contains settings [{', '.join(unknown)}] unknown "
                       f"to the [{service}] service", 400)
    if engine.models.resolve(inference_id) is not None:
        raise ApiError("status_exception", f"Inference endpoint [{inference_id}] cannot be created: a trained model "
                       "with this id exists", 400)
    endpoint = build_endpoint(inference_id, task_type, body, policy=env_policy(engine, req))
    store = endpoints(engine)
    if inference_id in store.configs:  # found when it is stored, after the settings were read (as ES)
        raise ApiError("resource_already_exists_exception", f"Inference endpoint [{inference_id}] already exists", 400)
    store.put(endpoint)
    return endpoint.to_dict()


@route("PUT", "_inference/{task_type}/{inference_id}", "timeout")
def put_typed(engine: "Engine", req: Request) -> Any:
    return _put(engine, req, path_task_type(req.path_params["task_type"]))


@route("PUT", "_inference/{inference_id}", "timeout")
def put_untyped(engine: "Engine", req: Request) -> Any:
    return _put(engine, req, None)


def _update(engine: "Engine", req: Request) -> Any:
    """``PUT _inference/[<task_type>/]<id>/_update`` (UpdateInferenceModelAction): settings only, the task
    type the endpoint's."""
    inference_id = req.path_params["inference_id"]
    require_inference_id(inference_id)
    path_type = path_task_type(req.path_params["task_type"]) if "task_type" in req.path_params else None
    body = req.object_body("inference_endpoint_update")
    if not body:
        raise ApiError("status_exception", "Request body is empty", 400)
    unknown = [k for k in body if k not in UPDATE_KEYS]
    if unknown:  # names only: a misplaced value may be a secret (ES prints {key=value})
        raise ApiError("status_exception", "Request contained fields which cannot be updated, remove these fields "
                       f"and try again [{', '.join(unknown)}]", 400)
    for key in ("service_settings", "task_settings"):
        if key in body and not isinstance(body[key], dict):
            raise ApiError("status_exception", f"Unable to parse [{key}] in the request", 400)
    body_type = body.get("task_type")
    if body_type is not None and not isinstance(body_type, str):
        raise ApiError("status_exception", f"Failed to parse [task_type] in update request [{{task_type={body_type}}}]",
                       400)
    body_type = path_task_type(body_type) if body_type is not None else None
    endpoint = resolve(engine, inference_id)
    if any(t is not None and t != endpoint.task_type for t in (path_type, body_type)):
        raise ApiError("status_exception", "Task type must match the task type of the existing endpoint", 400)
    updated = update_endpoint(endpoint, body, env_policy(engine, req))
    endpoints(engine).put(updated)
    return updated.to_dict()


route("PUT", "_inference/{task_type}/{inference_id}/_update")(_update)
route("PUT", "_inference/{inference_id}/_update")(_update)


def _get(engine: "Engine", task_type: str | None, inference_id: str | None) -> dict[str, Any]:
    task_type = path_task_type(task_type) if task_type is not None else None
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
        found = [_typed(engine, inference_id, task_type)]
    return {"endpoints": [e.to_dict() for e in found]}


def _typed(engine: "Engine", inference_id: str, task_type: str | None) -> Any:
    """The endpoint for GET / DELETE: ``InferenceExceptions.mismatchedTaskTypeException`` when the path names
    another task type."""
    endpoint = resolve(engine, inference_id)
    if task_type is not None and task_type != endpoint.task_type:
        raise ApiError("status_exception", f"Requested task type [{task_type}] does not match the inference "
                       f"endpoint's task type [{endpoint.task_type}]", 400)
    return endpoint


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
    return [s.describe() for _, s in sorted(services().items())]


@route("GET", "_inference/_services/{task_type}", exclusive=False)
def get_services_for(engine: "Engine", req: Request) -> Any:
    task_type = path_task_type(req.path_params["task_type"])
    return [s.describe() for _, s in sorted(services().items()) if task_type is None or task_type in s.task_types]


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


def _field_error(name: str, cause: ApiError | None = None) -> ApiError:
    return ApiError("x_content_parse_exception", f"[{INFERENCE_ACTION}] failed to parse field [{name}]", 400,
                    caused_by=cause)


def _validated(body: dict[str, Any], task_type: str | None) -> None:
    """``InferenceAction.Request.validate`` against the task type of the URL (``None``: any)."""
    def failed(message: str) -> ApiError:
        return ApiError("action_request_validation_exception", f"Validation Failed: 1: {message};", 400)

    if task_type == "rerank":
        if body.get("query") is None:
            raise failed("Field [query] cannot be null for task type [rerank]")
        if body["query"] == "":
            raise failed("Field [query] cannot be empty for task type [rerank]")
    elif task_type is not None:
        for field in ("return_documents", "top_n"):
            if body.get(field) is not None:
                raise failed(f"Field [{field}] cannot be specified for task type [{task_type}]")
    input_type = body.get("input_type")
    if task_type not in (None, "text_embedding") and input_type is not None and input_type != "unspecified" \
            and not str(input_type).startswith("internal_"):
        raise failed(f"Field [input_type] cannot be specified for task type [{task_type}]")


def _infer(engine: "Engine", req: Request, task_type: str | None) -> Any:
    task_type = path_task_type(task_type) if task_type is not None else None
    endpoint = resolve(engine, req.path_params["inference_id"], task_type)
    body = req.object_body("inference_request")
    unknown = sorted(set(body) - INFERENCE_BODY_KEYS)
    if unknown:
        raise ApiError("x_content_parse_exception", f"[{INFERENCE_ACTION}] unknown field [{unknown[0]}]", 400)
    query = body.get("query")
    if query is not None and not isinstance(query, str):
        raise _field_error("query")
    input_type = body.get("input_type")
    if input_type is not None:  # InputType.fromRestString: the public names and "unspecified"
        if not isinstance(input_type, str) or input_type.lower() not in (*INPUT_TYPES, "unspecified"):
            raise _field_error("input_type", ApiError("illegal_argument_exception",
                                                      f"Unrecognized input_type [{input_type}]", 400))
        input_type = input_type.lower()
    top_n = body.get("top_n")
    if isinstance(top_n, str) and top_n.strip().lstrip("-").isdigit():  # declareInt coerces numeric text
        top_n = int(top_n)
    if top_n is not None and (isinstance(top_n, bool) or not isinstance(top_n, int)):
        raise _field_error("top_n")
    inputs = _inputs(body)
    _validated({**body, "input_type": input_type, "top_n": top_n}, task_type)
    task_settings = body.get("task_settings")
    if task_settings is not None and not isinstance(task_settings, dict):
        raise ApiError("x_content_parse_exception", f"[{INFERENCE_ACTION}] [task_settings] must be an object", 400)
    return_documents = body.get("return_documents")
    if top_n is not None and top_n < 1:
        raise ApiError("action_request_validation_exception",
                       "Validation Failed: 1: Field [top_n] must be a positive integer;", 400)
    default = 120.0 if endpoint.task_type in ("completion", "chat_completion") else DEFAULT_TIMEOUT_S
    if req.has("timeout") or body.get("timeout") is None:
        timeout = timeout_param(req, default)
    else:  # the body's timeout where the query gives none
        seconds = parse_time_value(str(body["timeout"]), "timeout")
        timeout = 86400.0 if seconds < 0 else seconds
    output = run(engine, endpoint, inputs, query=query if endpoint.task_type == "rerank" else None,
                 task_settings=task_settings, input_type=None if input_type == "unspecified" else input_type,
                 top_n=top_n, return_documents=return_documents, timeout_s=timeout, device=req.device)
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
    """``DELETE _inference/[<task_type>/]<id>`` (TransportDeleteInferenceEndpointAction): the parameters read
    before anything is looked up; ``dry_run`` says what references the endpoint (``error_message``), a delete
    answers no pipelines. (Newer ES adds ``indexes`` for semantic_text fields: none here, and the seed
    document's example answer has none.)"""
    dry_run, force = req.bool_param("dry_run", False), req.bool_param("force", False)
    raw_type = req.path_params.get("task_type")
    task_type = path_task_type(raw_type) if raw_type is not None else None
    inference_id = req.path_params["inference_id"]
    try:
        inference_id = _typed(engine, inference_id, task_type).inference_id
    except ApiError as err:
        stored = engine.inference_endpoints.get(inference_id)
        if err.status == 404 or stored is None or task_type not in (None, stored.get("task_type")):
            raise
        # stored but unusable (e.g. its secrets file was lost): it can still be deleted
    pipelines = referencing_pipelines(engine, inference_id)
    referenced = (f"Inference endpoint {inference_id} is referenced by pipelines: [{', '.join(pipelines)}]. "
                  "Ensure that no pipelines are using this inference endpoint, or use force to ignore this warning "
                  "and delete the inference endpoint.") if pipelines else ""
    if dry_run:
        return {"acknowledged": False, "pipelines": pipelines, "error_message": referenced}
    if pipelines and not force:
        raise ApiError("status_exception", referenced, 409)
    endpoints(engine).delete(inference_id)
    return {"acknowledged": True, "pipelines": []}


route("DELETE", "_inference/{inference_id}", "dry_run", "force")(_delete)
route("DELETE", "_inference/{task_type}/{inference_id}", "dry_run", "force")(_delete)
