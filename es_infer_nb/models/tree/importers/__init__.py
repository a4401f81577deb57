"""Fitted tree models -> an Elasticsearch ``PUT _ml/trained_models/<id>`` body.

``to_es_model(model, feature_names, classification_labels=None, classification_weights=None)``
dispatches on the model's library (found from its class' module, so scikit-learn,
XGBoost and LightGBM are imported only when such a model is given):

* scikit-learn: see :mod:`.sklearn`
* XGBoost: see :mod:`.xgboost`
* LightGBM: see :mod:`.lightgbm`

The result mirrors what eland's ``MLModel.import_model`` sends, with the corrections that
make ES reproduce the library's ``predict`` / ``predict_proba`` for the versions in use
(each module's docstring lists what is exact and what is not).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from . import lightgbm, sklearn, xgboost
from ._common import check_feature_names, forest_to_trained_model, resolve_labels, resolve_weights

CONVERTERS = {"sklearn": sklearn, "xgboost": xgboost, "lightgbm": lightgbm}  # each imports its library when used

SUPPORTED = (
    "scikit-learn DecisionTree/ExtraTree Regressor|Classifier, RandomForest/ExtraTrees Regressor|Classifier, "
    "GradientBoosting Regressor|Classifier, HistGradientBoosting Regressor|Classifier; "
    "XGBoost XGBRegressor, XGBClassifier, XGBRanker, XGBRF*, xgboost.Booster; "
    "LightGBM LGBMRegressor, LGBMClassifier, LGBMRanker, lightgbm.Booster"
)


def _library(model: Any) -> str | None:
    for cls in type(model).__mro__:
        root = (getattr(cls, "__module__", "") or "").split(".")[0]
        if root in ("sklearn", "xgboost", "lightgbm"):
            return root
    return None


def default_feature_names(model: Any) -> list[str] | None:
    """The column names a fitted model carries: ``feature_names_in_`` (scikit-learn API, XGBoost and
    LightGBM wrappers fitted on a DataFrame), else ``xgboost.Booster.feature_names``; None if neither."""
    try:
        names = getattr(model, "feature_names_in_", None)
    except Exception:  # noqa: BLE001 - wrappers raise their own errors when unfitted
        names = None
    if names is None and type(model).__name__ == "Booster" and _library(model) == "xgboost":
        names = getattr(model, "feature_names", None)
    return None if names is None else [str(n) for n in names]


def _field_type(model: Any) -> str | None:
    """``prediction_field_type`` that makes ``predicted_value`` equal the estimator's ``predict``:
    "number" for integer classes, "boolean" for booleans, None (string) otherwise."""
    classes = getattr(model, "classes_", None)
    if classes is None:
        return None
    values = list(classes)
    if values and all(isinstance(c, (bool, np.bool_)) for c in values):
        return "boolean"
    if values and all(isinstance(c, (int, np.integer)) and not isinstance(c, (bool, np.bool_)) for c in values):
        return "number"
    return None


def to_es_model(
    model: Any,
    feature_names: Sequence[str] | None = None,
    classification_labels: Sequence[str] | None = None,
    classification_weights: Sequence[float] | None = None,
    *,
    exact_thresholds: bool = True,
) -> dict[str, Any]:
    """The full PUT body: ``{"input", "inference_config", "definition"}``.

    ``feature_names``: one per model input column, in the model's column order (default: the
    fitted model's ``feature_names_in_``).
    ``classification_labels``: class names (default: ``str`` of the model's ``classes_``; integer or
    boolean classes then also set ``prediction_field_type`` so ``predicted_value`` equals ``predict``).
    ``classification_weights``: per-class weights for the ES classification result.
    ``exact_thresholds``: rewrite float32 comparisons (scikit-learn trees, XGBoost) as the
    equivalent float64 comparisons (default); ``False`` emits the raw thresholds as eland does.
    """
    lib = _library(model)
    conv = CONVERTERS.get(lib)
    if conv is None:
        raise TypeError(
            f"cannot convert a model of type {type(model).__module__}.{type(model).__name__}; supported: {SUPPORTED}"
        )
    forest = conv.convert(model, None, exact_thresholds)  # unsupported estimators: TypeError first
    if feature_names is None:
        feature_names = default_feature_names(model)
        if feature_names is None:
            raise TypeError(
                f"feature_names is required: {type(model).__name__} has no feature_names_in_ (it was fitted on an "
                "array, not a DataFrame); pass feature_names=[...] in the model's column order")
    names = check_feature_names(feature_names, conv.n_features(model), type(model).__name__)

    labels = weights = None
    config: dict[str, Any] = {}
    if forest.target_type == "classification":
        field_type = _field_type(model) if classification_labels is None else None
        if field_type is not None:
            config["prediction_field_type"] = field_type
        n_classes = len(forest.labels or [])
        labels = resolve_labels(classification_labels, forest.labels, n_classes, type(model).__name__)
        weights = resolve_weights(classification_weights, n_classes, type(model).__name__)
        forest.labels = labels
    elif classification_labels is not None or classification_weights is not None:
        raise ValueError(
            f"classification_labels/classification_weights were given but {type(model).__name__} is a regression model"
        )
    trained = forest_to_trained_model(forest, names, weights)
    return {
        "input": {"field_names": list(names)},
        "inference_config": {forest.target_type: config},
        "definition": {"preprocessors": [], "trained_model": trained},
    }


__all__ = ["to_es_model", "default_feature_names", "SUPPORTED"]
