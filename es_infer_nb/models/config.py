"""Trained model configs: PUT-body validation and the stored / emitted form (spec §1)."""

from __future__ import annotations

import base64
import gzip
import json
import re
from typing import Any

from ..errors import ApiError, validation_failed
from ..stats import now_millis
from . import parsing as p
from .inference_config import TREE_TYPES, parse_config
from .nlp.tasks import TASKS, parse_task
from .tree.definition import Definition, parse_definition

CONFIG_VERSION = "12.0.0"
MAX_ID_LENGTH = 64
_ID_RE = re.compile(r"[a-z0-9](?:[a-z0-9_\-.]*[a-z0-9])?")  # MlStrings.VALID_ID_CHAR_PATTERN (fullmatch)
#: PutTrainedModelAliasAction.VALID_MODEL_ALIAS_CHAR_PATTERN (fullmatch): a model id that cannot end in a digit
#: (or in ``-``, ``_``, ``.``), a single alphanumeric excepted
_ALIAS_RE = re.compile(r"[a-z0-9](?:[a-z0-9_\-.]*[a-z])?")

PUT_FIELDS = frozenset(
    {
        "model_id",
        "model_type",
        "input",
        "inference_config",
        "definition",
        "compressed_definition",
        "description",
        "tags",
        "metadata",
        "model_size_bytes",
        "estimated_heap_memory_usage_bytes",
        "platform_architecture",
        "prefix_strings",
        "location",
        "created_by",
        "create_time",
        "version",
        "license_level",
        "estimated_operations",
        "default_field_map",
        "model_package",
    }
)
#: TrainedModelConfig.Builder.validate(forCreation): settings only the server writes, in its order
SERVER_FIELDS = ("version", "created_by", "create_time", "license_level", "location")
MODEL_TYPES = ("tree_ensemble", "pytorch", "lang_ident")
LTR_TYPE = "learning_to_rank"
PLATFORMS = ("linux-x86_64", "linux-aarch64", "darwin-aarch64", "windows-x86_64")

#: the fields ES writes itself, left out by ``exclude_generated``
GENERATED_FIELDS = (
    "created_by",
    "version",
    "create_time",
    "model_size_bytes",
    "estimated_operations",
    "license_level",
)
#: the order in which ES emits the fields of a trained model config
EMIT_ORDER = (
    "model_id",
    "model_type",
    "model_package",
    "platform_architecture",
    *GENERATED_FIELDS,
    "description",
    "compressed_definition",
    "definition",
    "tags",
    "metadata",
    "input",
    "default_field_map",
    "inference_config",
    "location",
    "prefix_strings",
    "fully_defined",
)


def id_error(kind: str, value: str) -> str | None:
    """The ES message for an invalid id, or None when ``value`` is valid."""
    if len(value) > MAX_ID_LENGTH:
        return f"Invalid {kind}; '{value}' cannot contain more than {MAX_ID_LENGTH} characters."
    if not _ID_RE.fullmatch(value):
        return (
            f"Invalid {kind}; '{value}' can contain lowercase alphanumeric (a-z and 0-9), hyphens or "
            "underscores; must start and end with alphanumeric"
        )
    return None


def alias_error(alias: str) -> str | None:
    """``Messages.INVALID_MODEL_ALIAS`` when ``alias`` does not match the pattern; ES sets no length limit,
    here an alias longer than a model id is refused too (aliases are stored one file each)."""
    if len(alias) > MAX_ID_LENGTH or not _ALIAS_RE.fullmatch(alias):
        return (
            f"Invalid model_alias; '{alias}' can contain lowercase alphanumeric (a-z and 0-9), hyphens or "
            "underscores; must start with alphanumeric and cannot end with numbers"
        )
    return None


def decompress_definition(text: Any) -> Any:
    if not isinstance(text, str):
        raise p.field_error("trained_model_config", "compressed_definition", "expected a base64 string")
    try:
        raw = gzip.decompress(base64.b64decode(text, validate=False))
        return json.loads(raw.decode("utf-8"))
    except (ValueError, OSError, EOFError, UnicodeDecodeError) as exc:
        raise ApiError(
            "status_exception",
            f"[compressed_definition] could not be decompressed as base64 gzipped JSON: {exc}",
            400,
        ) from None


def compress_definition(definition: Any) -> str:
    raw = json.dumps(definition, separators=(",", ":")).encode("utf-8")
    return base64.b64encode(gzip.compress(raw, mtime=0)).decode("ascii")


def estimate_size(definition: Definition) -> int:
    """A stand-in for ES's RAM estimate of the parsed definition (bytes)."""
    size = 64
    for t in definition.all_trees():
        size += 96 + t.num_nodes * (72 + 8 * t.leaf_size) + sum(40 + 2 * len(f) for f in t.feature_names)
    size += 128 * len(definition.preprocessors)
    return size


def nlp_config_at_creation(config_json: dict[str, Any]) -> dict[str, Any]:
    """An NLP ``inference_config`` checked as ES's config constructors check it at PUT (unknown fields,
    types, task rules such as fill_mask's mask token), with what ES fills in and shows on GET:
    fill_mask's ``mask_token`` (the tokenizer's)."""
    task = parse_task(config_json)
    ((name, inner),) = config_json.items()
    if name == "fill_mask" and (inner or {}).get("mask_token") is None:
        return {name: {**(inner or {}), "mask_token": task.tokenization.mask_token}}
    return config_json


def _model_id_errors(model_id: str) -> list[str]:
    """``MlStrings.isValidId`` then ``hasValidLengthForId`` (both can fail)."""
    out = []
    if not _ID_RE.fullmatch(model_id):
        out.append(
            f"Invalid model_id; '{model_id}' can contain lowercase alphanumeric (a-z and 0-9), hyphens or "
            "underscores; must start and end with alphanumeric"
        )
    if len(model_id) > MAX_ID_LENGTH:
        out.append(f"Invalid model_id; '{model_id}' cannot contain more than {MAX_ID_LENGTH} characters.")
    return out


def _input_errors(field_names: list[str], ltr: bool) -> list[str]:
    """``InferenceConfig.validateTrainedModelInput`` at creation; ``LearningToRankConfig`` overrides it:
    its features come from its extractors, so it takes no input fields at all."""
    if ltr:
        return [f"cannot specify [input.field_names] for a model of type [{LTR_TYPE}]"] if field_names else []
    out = []
    if not field_names:
        out.append("[input.field_names] must not be empty")
    if any("" in name.split(".") for name in field_names if "." in name):
        out.append("[input.field_names] must only contain valid dot delimited field names")
    return out


def ltr_config_at_creation(inner: dict[str, Any]) -> dict[str, Any]:
    """A ``learning_to_rank`` config as ``LearningToRankConfig`` parses and writes it:
    ``num_top_feature_importance_values`` (default 0), then ``feature_extractors`` and ``default_params``
    when not empty; duplicate feature names are refused."""
    p.reject_unknown(inner, LTR_TYPE, {"num_top_feature_importance_values", "feature_extractors", "default_params"})
    top = inner.get("num_top_feature_importance_values")
    out: dict[str, Any] = {
        "num_top_feature_importance_values": 0
        if top is None
        else p.to_int(top, LTR_TYPE, "num_top_feature_importance_values")
    }
    extractors = inner.get("feature_extractors") or []
    if not isinstance(extractors, list):
        raise p.field_error(LTR_TYPE, "feature_extractors", "expected an array of named objects")
    names = [
        next(iter(e.values()), {}).get("feature_name")
        for e in extractors
        if isinstance(e, dict) and len(e) == 1 and isinstance(next(iter(e.values())), dict)
    ]
    if len(set(names)) < len(extractors):
        raise ApiError(
            "illegal_argument_exception", "[feature_extractors] contains duplicate [feature_name] values", 400
        )
    if extractors:
        out["feature_extractors"] = extractors
    if inner.get("default_params"):
        out["default_params"] = p.as_object(inner["default_params"], LTR_TYPE, "default_params")
    return out


def _java_list(items: list[str]) -> str:
    return "[" + ", ".join(items) + "]"


def _is_ltr(body: dict[str, Any]) -> bool:
    """The body's ``inference_config`` is a ``learning_to_rank`` one."""
    config = body.get("inference_config")
    return isinstance(config, dict) and LTR_TYPE in config


def _build_errors(body: dict[str, Any], model_type: str | None) -> None:
    """The checks of ES's ``TrainedModelConfig`` constructor (``Builder.build()``): IllegalArgumentException."""
    # handleDefaultInput: PYTORCH models and learning_to_rank configs have a default input
    if body.get("input") is None and model_type != "pytorch" and not _is_ltr(body):
        raise ApiError("illegal_argument_exception", "[input] must not be null.", 400)
    for name in ("model_size_bytes", "estimated_operations"):
        value = body.get(name)
        if name == "model_size_bytes" and value is None:
            value = body.get("estimated_heap_memory_usage_bytes")
        if value is not None and p.to_int(value, "trained_model_config", name) < 0:
            raise ApiError("illegal_argument_exception", f"[{name}] must be greater than or equal to 0", 400)


def validate_put(model_id: str, body: Any, params_defer: bool) -> tuple[dict[str, Any], Definition | None]:
    """Validate a PUT body; return the stored config (without server fields) and the parsed definition.

    In ES's order (``PutTrainedModelAction.Request.parseRequest``): a body ``model_id`` other than the
    URL's; the config's constructor checks (run there first when the body has no ``model_id``);
    ``Builder.validate(true)``; then the request's own ``validate()``."""
    body = p.as_object(body, "trained_model_config")
    p.reject_unknown(body, "trained_model_config", PUT_FIELDS)
    model_type = body.get("model_type")
    if model_type is not None:
        model_type = p.to_str(model_type, "trained_model_config", "model_type").lower()
        if model_type not in MODEL_TYPES:
            raise p.field_error(
                "trained_model_config",
                "model_type",
                f"unknown model_type [{model_type}]; expected one of {list(MODEL_TYPES)}",
            )
    if body.get("definition") is not None and body.get("compressed_definition") is not None:
        # TrainedModelConfig.Builder.setLazyDefinition, while the body is parsed
        raise ApiError(
            "illegal_argument_exception", "both [compressed_definition] and [definition] cannot be set.", 400
        )
    body_id = body.get("model_id")
    if body_id is not None and body_id != model_id:
        raise ApiError(
            "illegal_argument_exception",
            f"Inconsistent model_id; '{body_id}' specified in the body differs from '{model_id}' specified as a URL argument",
            400,
        )
    if body_id is None:
        _build_errors(body, model_type)
    problems: list[str] = []
    metadata = body.get("metadata")
    if metadata is not None:
        metadata = p.as_object(metadata, "trained_model_config", "metadata")
    has_def = body.get("definition") is not None
    has_compressed = body.get("compressed_definition") is not None
    if has_def and body.get("location") is not None:
        problems.append("[definition] and [location] are both defined but only one can be used.")
    if not has_def and not has_compressed and model_type is None:
        problems.append("[model_type] must be set if [definition] is not defined.")
    if body.get("inference_config") is None:
        problems.append("[inference_config] must not be null.")
    problems.extend(_model_id_errors(model_id))
    tags = p.str_list(body.get("tags", []), "trained_model_config", "tags")
    bad_tags = [t for t in tags if not _ID_RE.fullmatch(t) or len(t) > MAX_ID_LENGTH]
    if bad_tags:
        problems.append(
            f"Invalid tags {_java_list(bad_tags)}; must only can contain lowercase alphanumeric (a-z and 0-9), hyphens "
            f"or underscores, must start and end with alphanumeric, and must be less than {MAX_ID_LENGTH} characters."
        )
    if model_id in tags:
        problems.append("none of the tags must equal the model_id")
    input_obj = body.get("input")
    field_names: list[str] | None = None
    if input_obj is not None:
        input_obj = p.as_object(input_obj, "trained_model_config", "input")
        p.reject_unknown(input_obj, "input", {"field_names"})
        if input_obj.get("field_names") is None:
            raise ApiError("x_content_parse_exception", "[input] required field [field_names] is missing", 400)
        field_names = p.str_list(input_obj["field_names"], "input", "field_names")
        problems.extend(_input_errors(field_names, _is_ltr(body)))
    for name in SERVER_FIELDS:
        if body.get(name) is not None:
            problems.append(f"illegal to set [{name}] at inference model creation")
    if metadata is not None:
        for name in ("total_feature_importance", "model_aliases"):
            if metadata.get(name) is not None:
                problems.append(f"illegal to set [metadata.{name}] at inference model creation")
    if body.get("model_package") is not None:
        problems.append("illegal to set [model_package] at inference model creation")
    platform = body.get("platform_architecture")
    if platform is not None and platform not in PLATFORMS:
        problems.append(f"[platform_architecture] must be one of {list(PLATFORMS)}")
    if problems:
        raise validation_failed(problems)
    if body_id is not None:
        _build_errors(body, model_type)
    size = body.get("model_size_bytes", body.get("estimated_heap_memory_usage_bytes"))
    if (
        params_defer
        and has_compressed
        and (size is None or p.to_int(size, "trained_model_config", "model_size_bytes") == 0)
    ):
        raise validation_failed(
            [
                "when [defer_definition_decompression] is true and a compressed definition is provided, "
                "model_size_bytes must be set"
            ]
        )

    config = parse_config(body["inference_config"])
    definition_json: Any = None
    definition: Definition | None = None
    if has_compressed and not params_defer:
        definition_json = decompress_definition(body["compressed_definition"])
    elif has_def:
        definition_json = body["definition"]
    if definition_json is not None:
        definition = parse_definition(definition_json)
        model_type = model_type or "tree_ensemble"
    model_type = model_type or "tree_ensemble"
    if model_type == "tree_ensemble":
        if config.name not in (*TREE_TYPES, LTR_TYPE):
            raise ApiError(
                "status_exception",
                f"Model [{model_id}] inference config type [{config.name}] is not supported by model type [tree_ensemble]",
                400,
            )
        # LearningToRankConfig extends RegressionConfig: isTargetTypeSupported(REGRESSION) only
        supported_target = "regression" if config.name == LTR_TYPE else config.name
        if definition is not None and definition.target_type != supported_target:
            raise ApiError(
                "status_exception",
                f"Model [{model_id}] inference config type [{config.name}] does not support definition target type "
                f"[{definition.target_type}]",
                400,
            )
    if model_type == "pytorch" and field_names is None:
        # TrainedModelType.PYTORCH's default input (TrainedModelConfig.handleDefaultInput)
        field_names = ["input"]
    config_json = config.to_dict()
    if model_type == "pytorch" and config.name in TASKS:
        config_json = nlp_config_at_creation(config_json)
    if config.name == LTR_TYPE:
        config_json = {LTR_TYPE: ltr_config_at_creation(body["inference_config"][LTR_TYPE] or {})}

    stored: dict[str, Any] = {"model_id": model_id, "model_type": model_type}
    if platform is not None:
        stored["platform_architecture"] = platform
    stored["created_by"] = "api_user"
    stored["version"] = CONFIG_VERSION
    stored["create_time"] = now_millis()
    if definition is not None:
        stored["model_size_bytes"] = estimate_size(definition)
        stored["estimated_operations"] = definition.estimated_operations()
    else:
        size = body.get("model_size_bytes", body.get("estimated_heap_memory_usage_bytes", 0))
        stored["model_size_bytes"] = p.to_int(size, "trained_model_config", "model_size_bytes")
        stored["estimated_operations"] = p.to_int(
            body.get("estimated_operations", 0), "trained_model_config", "estimated_operations"
        )
    stored["license_level"] = "platinum"
    if body.get("description") is not None:
        stored["description"] = p.to_str(body["description"], "trained_model_config", "description")
    if definition_json is not None:
        stored["definition"] = definition_json
    elif has_compressed:
        stored["compressed_definition"] = body["compressed_definition"]
    stored["tags"] = tags
    if metadata:
        stored["metadata"] = metadata
    stored["input"] = {"field_names": field_names or []}
    if body.get("default_field_map"):
        stored["default_field_map"] = p.as_object(
            body["default_field_map"], "trained_model_config", "default_field_map"
        )
    stored["inference_config"] = config_json
    if body.get("prefix_strings") is not None:
        prefix = p.as_object(body["prefix_strings"], "trained_model_config", "prefix_strings")
        p.reject_unknown(prefix, "prefix_strings", {"ingest", "search"})
        stored["prefix_strings"] = prefix
    return stored, definition


def emit(
    stored: dict[str, Any],
    *,
    include: set[str],
    decompress: bool = True,
    exclude_generated: bool = False,
    aliases: list[str] | None = None,
) -> dict[str, Any]:
    """The config as GET emits it, in ES's field order."""
    doc = dict(stored)
    definition = doc.pop("definition", None)
    compressed = doc.pop("compressed_definition", None)
    if "definition" in include:
        if decompress:
            doc["definition"] = (
                definition
                if definition is not None
                else (decompress_definition(compressed) if compressed is not None else None)
            )
        else:
            doc["compressed_definition"] = (
                compressed
                if compressed is not None
                else (compress_definition(definition) if definition is not None else None)
            )
        doc = {k: v for k, v in doc.items() if v is not None}
    metadata = dict(doc.get("metadata") or {})
    for key in ("total_feature_importance", "feature_importance_baseline", "hyperparameters"):
        if key not in include:
            metadata.pop(key, None)
    if aliases:
        metadata["model_aliases"] = sorted(aliases)
    if metadata:
        doc["metadata"] = metadata
    else:
        doc.pop("metadata", None)
    if "definition_status" in include:
        doc["fully_defined"] = definition is not None or compressed is not None or doc.get("model_type") == "lang_ident"
    if exclude_generated:
        for key in GENERATED_FIELDS:
            doc.pop(key, None)
    return {k: doc[k] for k in EMIT_ORDER if k in doc}


LANG_IDENT_ID = "lang_ident_model_1"
LANG_IDENT_CONFIG: dict[str, Any] = {
    "model_id": LANG_IDENT_ID,
    "model_type": "lang_ident",
    "created_by": "ml_admin",
    "version": "7.6.0",
    "create_time": 1575548914594,
    "model_size_bytes": 1053992,
    "estimated_operations": 39629,
    "license_level": "basic",
    "description": "Model used for identifying language from arbitrary input text.",
    "tags": ["lang_ident", "prepackaged"],
    "input": {"field_names": ["text"]},
    "inference_config": {
        "classification": {
            "num_top_classes": 0,
            "top_classes_results_field": "top_classes",
            "results_field": "predicted_value",
            "num_top_feature_importance_values": 0,
            "prediction_field_type": "string",
        }
    },
}
