"""``_ml/trained_models``: PUT / GET / DELETE models and model aliases (spec §1)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import ApiError, already_exists, not_found, validation_failed
from ..models.config import alias_error, emit, validate_put
from ..models.inference_config import parse_config
from ..models.store import check_not_lang_ident
from .request import Request
from .routing import route

if TYPE_CHECKING:  # pragma: no cover
    from ..engine import Engine

INCLUDE_VALUES = ("definition", "total_feature_importance", "feature_importance_baseline", "hyperparameters",
                  "definition_status")
GET_PARAMS = ("include", "decompress_definition", "exclude_generated", "allow_no_match", "from", "size", "tags",
              "include_model_definition")


@route("PUT", "_ml/trained_models/{model_id}", "defer_definition_decompression", "wait_for_completion")
def put_model(engine: "Engine", req: Request) -> Any:
    model_id = req.path_params["model_id"]
    body = req.object_body("trained_model_config")
    defer = req.bool_param("defer_definition_decompression", False)
    req.bool_param("wait_for_completion", False)
    stored, _definition = validate_put(model_id, body, defer)
    if engine.models.exists(model_id) or engine.models.aliases.get(model_id) is not None:
        raise already_exists(f"Trained machine learning model [{model_id}] already exists")
    engine.models.put(model_id, stored)
    return emit(stored, include=set())


def _paging(req: Request) -> tuple[int, int]:
    start = req.int_param("from", 0)
    size = req.int_param("size", 100)
    if start < 0:
        raise ApiError("illegal_argument_exception", "Parameter [from] cannot be < 0", 400)
    if size < 0:
        raise ApiError("illegal_argument_exception", "Parameter [size] cannot be < 0", 400)
    if start + size > 10000:
        raise ApiError(
            "illegal_argument_exception", "The sum of parameters [from] and [size] cannot be higher than 10000.", 400
        )
    return start, size


def _includes(req: Request) -> set[str]:
    include = set(req.list_param("include"))
    if req.bool_param("include_model_definition", False):
        include.add("definition")
    for value in include:
        if value not in INCLUDE_VALUES:
            raise ApiError(
                "illegal_argument_exception",
                f"unknown value [{value}] for [include]; valid values are {list(INCLUDE_VALUES)}",
                400,
            )
    return include


@route("GET", "_ml/trained_models", *GET_PARAMS)
@route("GET", "_ml/trained_models/{model_id}", *GET_PARAMS)
def get_models(engine: "Engine", req: Request) -> Any:
    expression = req.path_params.get("model_id", "_all")
    allow = req.bool_param("allow_no_match", True)
    include = _includes(req)
    start, size = _paging(req)
    ids = engine.models.expand(expression, allow_no_match=allow, missing_reason="Could not find trained model [{}]")
    tags = req.list_param("tags")
    if tags:
        ids = [m for m in ids if set(tags) <= set(engine.models.config(m).get("tags", []))]
    if include & {"definition"} and len(ids) > 1:
        raise ApiError(
            "illegal_argument_exception",
            "Getting model definition is not supported when getting more than one model",
            400,
        )
    decompress = req.bool_param("decompress_definition", True)
    exclude_generated = req.bool_param("exclude_generated", False)
    page = ids[start : start + size]
    configs = [
        emit(engine.models.config(m), include=include, decompress=decompress, exclude_generated=exclude_generated,
             aliases=engine.models.aliases_of(m))
        for m in page
    ]
    return {"count": len(ids), "trained_model_configs": configs}


def pipelines_using(engine: "Engine", ids: set[str]) -> list[str]:
    """Ids of stored ingest pipelines with an ``inference`` processor naming one of ``ids``."""
    found = []
    for pid, pipeline in engine.pipelines.items():
        if _references(pipeline, ids):
            found.append(pid)
    return found


def _references(node: Any, ids: set[str]) -> bool:
    if isinstance(node, dict):
        inf = node.get("inference")
        if isinstance(inf, dict) and inf.get("model_id") in ids:
            return True
        return any(_references(v, ids) for v in node.values())
    if isinstance(node, list):
        return any(_references(v, ids) for v in node)
    return False


@route("DELETE", "_ml/trained_models/{model_id}", "force")
def delete_model(engine: "Engine", req: Request) -> Any:
    model_id = req.path_params["model_id"]
    force = req.bool_param("force", False)
    if not engine.models.exists(model_id):
        raise not_found(f"Could not find trained model [{model_id}]")
    check_not_lang_ident(model_id, "delete")
    if not force:
        if pipelines_using(engine, {model_id}):
            raise ApiError(
                "status_exception",
                f"Cannot delete model [{model_id}] as it is still referenced by ingest processors; "
                "use force to delete the model",
                409,
            )
        for alias in engine.models.aliases_of(model_id):
            if pipelines_using(engine, {alias}):
                raise ApiError(
                    "status_exception",
                    f"Cannot delete model [{model_id}] as it has a model_alias [{alias}] that is still referenced "
                    "by ingest processors; use force to delete the model",
                    409,
                )
    engine.models.delete(model_id)
    return {"acknowledged": True}


@route("PUT", "_ml/trained_models/{model_id}/model_aliases/{model_alias}", "reassign")
def put_alias(engine: "Engine", req: Request) -> Any:
    model_id = req.path_params["model_id"]
    alias = req.path_params["model_alias"]
    reassign = req.bool_param("reassign", False)
    problems = []
    if (err := alias_error(alias)) is not None:
        problems.append(err)
    if alias == model_id:
        problems.append("model_alias cannot be the same as model_id")
    if problems:
        raise validation_failed(problems)
    if engine.models.exists(alias):
        raise ApiError(
            "illegal_argument_exception",
            f"cannot use model_alias [{alias}] as it is the same as an existing model_id",
            400,
        )
    if not engine.models.exists(model_id):
        raise not_found(f"Could not find trained model [{model_id}]")
    check_not_lang_ident(model_id, "alias")
    current = engine.models.aliases.get(alias)
    if current is not None and current != model_id:
        if not reassign:
            raise ApiError(
                "illegal_argument_exception",
                f"cannot assign model_alias [{alias}] to model_id [{model_id}] as model_alias already refers to "
                f"[{current}]. Set parameter [reassign] to [true] if model_alias should be reassigned.",
                400,
            )
        if engine.models.exists(current):
            old = parse_config(engine.models.config(current)["inference_config"]).name
            new = parse_config(engine.models.config(model_id)["inference_config"]).name
            if old != new:
                raise ApiError(
                    "illegal_argument_exception",
                    f"cannot reassign model_alias [{alias}] to model [{model_id}] with inference config type [{new}] "
                    f"from model [{current}] with type [{old}]",
                    400,
                )
    engine.models.aliases.put(alias, model_id)
    return {"acknowledged": True}


@route("DELETE", "_ml/trained_models/{model_id}/model_aliases/{model_alias}")
def delete_alias(engine: "Engine", req: Request) -> Any:
    model_id = req.path_params["model_id"]
    alias = req.path_params["model_alias"]
    current = engine.models.aliases.get(alias)
    if current is None:
        raise not_found(f"model_alias [{alias}] could not be found")
    if current != model_id:
        raise ApiError(
            "status_exception", f"model_alias [{alias}] does not refer to provided model_id [{model_id}]", 409
        )
    if pipelines_using(engine, {alias}):
        raise ApiError(
            "illegal_argument_exception",
            f"Cannot delete model_alias [{alias}] as it is still referenced by ingest processors",
            409,
        )
    engine.models.aliases.delete(alias)
    return {"acknowledged": True}
