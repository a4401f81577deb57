"""OpenSearch ml-commons under ``_plugins/_ml``: connectors, model groups, models, tasks, Predict API.

The objects and their calls live in :mod:`es_infer_nb.services.ml_commons`; this module is the REST
surface: paths, bodies, search answers, and OpenSearch's error bodies
(``{"error": {"root_cause": [...], "type", "reason"}, "status"}``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from ..errors import ApiError
from ..services.ml_commons import (CONNECTOR_INDEX, MODEL_GROUP_INDEX, MODEL_INDEX, TASK_INDEX, MlCommons,
                                   ml_commons)
from .inference_endpoints import env_policy
from .request import Request
from .routing import route

if TYPE_CHECKING:  # pragma: no cover
    from ..engine import Engine

BASE = "_plugins/_ml"


def _body(req: Request, optional: bool = False, empty: ApiError | None = None) -> dict[str, Any]:
    """The request's JSON object; ``empty``: ml-commons' own error for a request without a body."""
    if req.body is None and optional:
        return {}
    if req.body is None and empty is not None:
        raise empty
    body = req.require_body()
    if not isinstance(body, dict):
        raise ApiError("parsing_exception", "request body must be a JSON object", 400)
    return body


def _by_id(method: str, path: str, call: Callable[[MlCommons, str], Any]) -> None:
    """Route ``method BASE/path`` to ``call(engine's ml-commons, the path's one {id})``; a delete of a document
    the index does not hold is OpenSearch's 404 delete answer (``"result": "not_found"``)."""
    param = path[path.index("{") + 1:path.index("}")]

    def handler(engine: "Engine", req: Request) -> Any:
        out = call(ml_commons(engine), req.path_params[param])
        return (404, out) if isinstance(out, dict) and out.get("result") == "not_found" else out

    route(method, f"{BASE}/{path}")(handler)


def _update(path: str, call: Callable[..., Any], empty: ApiError | None = None) -> None:
    """Route ``PUT BASE/path`` to ``call(engine's ml-commons, the path's one {id}, body, ...)``."""
    param = path[path.index("{") + 1:path.index("}")]

    def handler(engine: "Engine", req: Request) -> Any:
        body = _body(req, optional=empty is None, empty=empty)
        state = ml_commons(engine)
        if call is MlCommons.update_group:
            return call(state, req.path_params[param], body)
        return call(state, req.path_params[param], body, env_policy(engine, req))

    route("PUT", f"{BASE}/{path}")(handler)


# -- connectors ------------------------------------------------------------------------------------

@route("POST", f"{BASE}/connectors/_create")
def create_connector(engine: "Engine", req: Request) -> Any:
    body = _body(req, empty=ApiError("i_o_exception", "Create Connector request has empty body", 500))
    return {"connector_id": ml_commons(engine).create_connector(body, env_policy(engine, req))}


_by_id("GET", "connectors/{connector_id}", MlCommons.get_connector)
_by_id("DELETE", "connectors/{connector_id}", MlCommons.delete_connector)
_update("connectors/{connector_id}", MlCommons.update_connector)


# -- model groups ----------------------------------------------------------------------------------

@route("POST", f"{BASE}/model_groups/_register")
def register_group(engine: "Engine", req: Request) -> Any:
    body = _body(req, empty=ApiError("parse_exception", "Model group request has empty body", 400))
    return {"model_group_id": ml_commons(engine).register_group(body), "status": "CREATED"}


_by_id("GET", "model_groups/{model_group_id}", MlCommons.get_group)
_by_id("DELETE", "model_groups/{model_group_id}", MlCommons.delete_group)
_update("model_groups/{model_group_id}", MlCommons.update_group,
        ApiError("i_o_exception", "Model group request has empty body", 500))


# -- models and tasks ------------------------------------------------------------------------------

@route("POST", f"{BASE}/models/_register", "deploy")
@route("POST", f"{BASE}/models/{{model_id}}/{{version}}/_register", "deploy")  # the path's id and version unused
def register_model(engine: "Engine", req: Request) -> Any:
    return ml_commons(engine).register_model(_body(req), req.bool_param("deploy", False), env_policy(engine, req))


_by_id("GET", "models/{model_id}", MlCommons.get_model)
_by_id("DELETE", "models/{model_id}", MlCommons.delete_model)
_update("models/{model_id}", MlCommons.update_model,
        ApiError("parse_exception", "Update model request has empty body", 400))


@route("POST", f"{BASE}/models/{{model_id}}/_deploy")
def deploy_model(engine: "Engine", req: Request) -> Any:
    return ml_commons(engine).deploy(req.path_params["model_id"], device=req.device)  # a local model loads there


_by_id("POST", "models/{model_id}/_undeploy", MlCommons.undeploy)
_by_id("GET", "tasks/{task_id}", MlCommons.task_doc)
_by_id("DELETE", "tasks/{task_id}", MlCommons.delete_task)


@route("POST", f"{BASE}/models/{{model_id}}/_predict", exclusive=False)
def predict(engine: "Engine", req: Request) -> Any:
    return ml_commons(engine).predict(req.path_params["model_id"], _body(req), device=req.device)


@route("POST", f"{BASE}/_predict/{{algorithm}}/{{model_id}}", exclusive=False)
def predict_algorithm(engine: "Engine", req: Request) -> Any:
    return ml_commons(engine).predict(req.path_params["model_id"], _body(req), req.path_params["algorithm"],
                                      device=req.device)


# -- search ----------------------------------------------------------------------------------------

def _matches(query: Any, doc_id: str, doc: dict[str, Any]) -> bool:
    """The queries a notebook needs over these few documents: match_all, ids, term(s), match, bool."""
    if query is None:
        return True
    if not isinstance(query, dict) or len(query) != 1:
        raise ApiError("parsing_exception", "[query] must hold exactly one query", 400)
    kind, spec = next(iter(query.items()))
    if kind == "match_all":
        return True
    if kind == "ids":
        values = spec.get("values") if isinstance(spec, dict) else None
        if not isinstance(values, list):
            raise ApiError("parsing_exception", "[ids] query needs a list of [values]", 400)
        return doc_id in values
    if kind in ("term", "match", "terms") and isinstance(spec, dict) and len(spec) == 1:
        name, wanted = next(iter(spec.items()))
        value = doc.get(name.removesuffix(".keyword"))
        if kind == "terms":
            return value in (wanted or [])
        if isinstance(wanted, dict):
            wanted = wanted.get("value", wanted.get("query"))
        return value == wanted
    if kind == "bool" and isinstance(spec, dict):
        if not all(isinstance(q, dict) for key in ("must", "filter", "must_not", "should") for q in _as_list(spec.get(key))):
            raise ApiError("parsing_exception", "[bool] clauses must be queries (objects)", 400)
        must = [*_as_list(spec.get("must")), *_as_list(spec.get("filter"))]
        return (all(_matches(q, doc_id, doc) for q in must)
                and not any(_matches(q, doc_id, doc) for q in _as_list(spec.get("must_not")))
                and (not spec.get("should") or any(_matches(q, doc_id, doc) for q in _as_list(spec["should"]))))
    raise ApiError("parsing_exception", f"unknown query [{kind}]: es_infer_nb searches ml-commons objects with "
                   "match_all, ids, term, terms, match and bool", 400)


def _count(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ApiError("illegal_argument_exception", f"[{name}] parameter cannot be negative or other than a number, "
                       f"found [{value}]", 400)
    return value


def _as_list(value: Any) -> list[Any]:
    return [] if value is None else value if isinstance(value, list) else [value]


def _search(req: Request, index: str, items: list[tuple[str, Any]]) -> dict[str, Any]:
    body = _body(req, optional=True)
    query = body.get("query")
    _matches(query, "", {})  # a query es_infer_nb cannot run is an error even when there is nothing to search
    hits = [(i, d) for i, d in sorted(items, key=lambda kv: kv[1].get("created_time", kv[1].get("create_time", 0)))
            if _matches(query, i, d)]
    start = _count(body.get("from", req.int_param("from", 0)), "from")
    size = _count(body.get("size", req.int_param("size", 10)), "size")
    page = hits[start:start + size]
    return {
        "took": 0, "timed_out": False,
        "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0},
        "hits": {"total": {"value": len(hits), "relation": "eq"}, "max_score": 1.0 if page else None,
                 "hits": [{"_index": index, "_id": i, "_version": 1, "_seq_no": 0, "_primary_term": 1, "_score": 1.0,
                           "_source": d} for i, d in page]},
    }


def _search_route(what: str, index: str, items: Callable[[MlCommons], list[tuple[str, Any]]]) -> None:
    def handler(engine: "Engine", req: Request) -> Any:
        return _search(req, index, items(ml_commons(engine)))

    for method in ("GET", "POST"):
        route(method, f"{BASE}/{what}/_search", "from", "size")(handler)


_search_route("connectors", CONNECTOR_INDEX, lambda s: s.connectors.items())
_search_route("models", MODEL_INDEX, lambda s: s.models.items())
_search_route("model_groups", MODEL_GROUP_INDEX, lambda s: s.groups.items())
_search_route("tasks", TASK_INDEX, lambda s: s.tasks.items())
