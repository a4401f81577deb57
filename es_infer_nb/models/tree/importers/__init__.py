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

from ._common import check_feature_names, forest_to_trained_model, resolve_labels, resolve_weights

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


def to_es_model(
    model: Any,
    feature_names: Sequence[str],
    classification_labels: Sequence[str] | None = None,
    classification_weights: Sequence[float] | None = None,
    *,
    exact_thresholds: bool = True,
) -> dict[str, Any]:
    """The full PUT body: ``{"input", "inference_config", "definition"}``.

    ``feature_names``: one per model input column, in the model's column order.
    ``classification_labels``: class names (default: ``str`` of the model's classes).
    ``classification_weights``: per-class weights for the ES classification result.
    ``exact_thresholds``: rewrite float32 comparisons (scikit-learn trees, XGBoost) as the
    equivalent float64 comparisons (default); ``False`` emits the raw thresholds as eland does.
    """
    lib = _library(model)
    if lib == "sklearn":
        from . import sklearn as conv
    elif lib == "xgboost":
        from . import xgboost as conv  # type: ignore[no-redef]
    elif lib == "lightgbm":
        from . import lightgbm as conv  # type: ignore[no-redef]
    else:
        raise TypeError(
            f"cannot convert a model of type {type(model).__module__}.{type(model).__name__}; supported: {SUPPORTED}"
        )
    forest = conv.convert(model, None, exact_thresholds)  # unsupported estimators: TypeError first
    names = check_feature_names(feature_names, conv.n_features(model), type(model).__name__)

    labels = weights = None
    if forest.target_type == "classification":
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
        "inference_config": {forest.target_type: {}},
        "definition": {"preprocessors": [], "trained_model": trained},
    }


__all__ = ["to_es_model", "SUPPORTED"]
