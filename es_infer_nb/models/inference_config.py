"""Inference configs (stored on the model) and their updates (per `_infer` / processor call).

Only the tree-model types (``regression``, ``classification``) have behaviour here;
NLP types are kept as validated-by-name objects until their tasks land.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Union

from ..errors import ApiError
from . import parsing as p

NLP_TYPES = (
    "text_classification", "zero_shot_classification", "fill_mask", "ner", "pass_through",
    "text_embedding", "text_expansion", "question_answering", "text_similarity",
)
TREE_TYPES = ("regression", "classification")
ALL_TYPES = ("classification", "regression", *NLP_TYPES, "learning_to_rank")
PREDICTION_FIELD_TYPES = ("string", "number", "boolean")
#: result fields an inference config update may not name (``InferenceConfigUpdate.RESERVED_ML_FIELD_NAMES``)
RESERVED_RESULT_FIELDS = ("warning", "model_id")


@dataclass(frozen=True)
class RegressionConfig:
    results_field: str = "predicted_value"
    num_top_feature_importance_values: int = 0

    name = "regression"

    def to_dict(self) -> dict[str, Any]:
        return {
            "regression": {
                "results_field": self.results_field,
                "num_top_feature_importance_values": self.num_top_feature_importance_values,
            }
        }


@dataclass(frozen=True)
class LearningToRankConfig(RegressionConfig):
    """``LearningToRankConfig extends RegressionConfig``: a regression over the features its extractors
    compute; the stored form (extractors, default params) is kept by :mod:`.config`."""

    name = "learning_to_rank"

    def to_dict(self) -> dict[str, Any]:
        return {self.name: {"num_top_feature_importance_values": self.num_top_feature_importance_values}}


@dataclass(frozen=True)
class ClassificationConfig:
    results_field: str = "predicted_value"
    num_top_classes: int = 0
    top_classes_results_field: str = "top_classes"
    num_top_feature_importance_values: int = 0
    prediction_field_type: str = "string"

    name = "classification"

    def to_dict(self) -> dict[str, Any]:
        return {
            "classification": {
                "num_top_classes": self.num_top_classes,
                "top_classes_results_field": self.top_classes_results_field,
                "results_field": self.results_field,
                "num_top_feature_importance_values": self.num_top_feature_importance_values,
                "prediction_field_type": self.prediction_field_type,
            }
        }


@dataclass(frozen=True)
class OpaqueConfig:
    """An NLP or other config, kept as given until its task is implemented."""

    name: str
    options: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {self.name: dict(self.options)}


InferenceConfig = Union[RegressionConfig, LearningToRankConfig, ClassificationConfig, OpaqueConfig]

_REGRESSION_FIELDS = {"results_field", "num_top_feature_importance_values"}
_CLASSIFICATION_FIELDS = {
    "results_field", "num_top_classes", "top_classes_results_field", "num_top_feature_importance_values",
    "prediction_field_type",
}


def _single_key(value: Any) -> tuple[str, dict[str, Any]]:
    if not isinstance(value, dict) or len(value) != 1:
        raise ApiError(
            "illegal_argument_exception",
            "inference_config must be an object with one inference type mapped to an object.",
            400,
        )
    ((name, inner),) = value.items()
    if name not in ALL_TYPES:
        raise ApiError(
            "illegal_argument_exception",
            f"unrecognized inference configuration type [{name}]. Supported types {list(ALL_TYPES)}",
            400,
        )
    if inner is None:
        inner = {}
    if not isinstance(inner, dict):
        raise ApiError(
            "x_content_parse_exception",
            f"[inference_config] failed to parse field [{name}]: expected an object",
            400,
        )
    return name, inner


def _fields(name: str, inner: dict[str, Any]) -> dict[str, Any]:
    allowed = _REGRESSION_FIELDS if name == "regression" else _CLASSIFICATION_FIELDS
    p.reject_unknown(inner, name, allowed)
    out: dict[str, Any] = {}
    for key, value in inner.items():
        if value is None:
            continue
        if key in ("num_top_classes", "num_top_feature_importance_values"):
            out[key] = p.to_int(value, name, key)
        elif key == "prediction_field_type":
            text = p.to_str(value, name, key).lower()
            if text not in PREDICTION_FIELD_TYPES:
                raise ApiError(
                    "illegal_argument_exception",
                    f"No enum constant org.elasticsearch.xpack.core.ml.inference.trainedmodel.PredictionFieldType.{text.upper()}",
                    400,
                )
            out[key] = text
        else:
            out[key] = p.to_str(value, name, key)
    _validate(name, out)
    return out


def _validate(name: str, fields: dict[str, Any]) -> None:
    fi = fields.get("num_top_feature_importance_values")
    if fi is not None and fi < 0:
        raise ApiError(
            "illegal_argument_exception",
            "[num_top_feature_importance_values] must be greater than or equal to 0",
            400,
        )
    if name == "classification":
        ntc = fields.get("num_top_classes")
        if ntc is not None and ntc < -1:
            raise ApiError("illegal_argument_exception", "[num_top_classes] must be greater than or equal to -1", 400)
    for key in ("results_field", "top_classes_results_field"):
        if key in fields and not fields[key]:
            raise ApiError("illegal_argument_exception", f"[{key}] must not be empty", 400)


def _duplicate_fields_error(duplicates: list[str], error_type: str) -> ApiError:
    return ApiError(
        error_type, f"Invalid inference config. More than one field is configured as [{', '.join(duplicates)}]", 400
    )


def _check_stored_fields_unique(config: ClassificationConfig) -> None:
    """A stored classification config must not write its value and its top classes to one field."""
    if config.results_field == config.top_classes_results_field:
        raise _duplicate_fields_error([config.results_field], "illegal_argument_exception")


def _check_update_fields_unique(name: str, fields: dict[str, Any]) -> None:
    """``InferenceConfigUpdate.checkFieldUniqueness``: an update's ``results_field`` (and
    ``top_classes_results_field``) must differ from each other and from the reserved ``warning`` and
    ``model_id`` fields; ES raises a ``status_exception`` (400)."""
    keys = ("results_field", "top_classes_results_field") if name == "classification" else ("results_field",)
    seen = set(RESERVED_RESULT_FIELDS)
    duplicates: list[str] = []
    for key in keys:
        value = fields.get(key)
        if value is None:
            continue
        if value in seen and value not in duplicates:
            duplicates.append(value)
        seen.add(value)
    if duplicates:
        raise _duplicate_fields_error(duplicates, "status_exception")


def parse_config(value: Any) -> InferenceConfig:
    """Parse a model's stored ``inference_config``."""
    name, inner = _single_key(value)
    if name == "regression":
        return RegressionConfig(**_fields(name, inner))
    if name == "classification":
        cfg = ClassificationConfig(**_fields(name, inner))
        _check_stored_fields_unique(cfg)
        return cfg
    if name == LearningToRankConfig.name:
        top = inner.get("num_top_feature_importance_values")
        top_values = 0 if top is None else p.to_int(top, name, "num_top_feature_importance_values")
        return LearningToRankConfig(num_top_feature_importance_values=top_values)
    return OpaqueConfig(name, dict(inner))


def apply_update(model_id: str, config: InferenceConfig, update: Any) -> InferenceConfig:
    """Apply an ``inference_config`` update object to the model's stored config."""
    if update is None or update == {}:
        return config
    name, inner = _single_key(update)
    if name != config.name:
        raise ApiError(
            "status_exception",
            f"Model [{model_id}] has inference config of type [{config.name}] which is not supported "
            f"by inference request of type [{name}]",
            400,
        )
    if isinstance(config, OpaqueConfig):
        return OpaqueConfig(name, {**config.options, **inner})
    fields = _fields(name, inner)
    _check_update_fields_unique(name, fields)
    merged = replace(config, **fields)  # type: ignore[arg-type]
    if isinstance(merged, ClassificationConfig):
        _check_stored_fields_unique(merged)
    return merged
