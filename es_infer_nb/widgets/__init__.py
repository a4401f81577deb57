"""Notebook displays: feature importance, top classes, the model-stats dashboard, rich reprs.

Each function returns an ``ipywidgets`` widget that also renders as static HTML (``_repr_html_``)
and text (``repr``) outside a live Jupyter front-end::

    from es_infer_nb import widgets
    scored = df.infer.run("my-model", inference_config={"classification": {
        "num_top_classes": -1, "num_top_feature_importance_values": 5}})
    widgets.feature_importance(scored)          # waterfall per row and class + model totals
    widgets.importance_summary(scored)          # beeswarm + mean |importance| bars over the rows
    widgets.top_classes(scored, row="b")         # a row's probabilities + the frame's summary
    scored.infer.evaluate(y_test)               # metrics, confusion matrix, calibration / residuals
    dash = widgets.model_stats(["my-model"])     # live _stats; dash.stop() ends the refresh

The accessor (``df.infer.explain / importance_summary / top_classes / evaluate / stats``) and ``%infer stats --widget`` return
the same widgets.
"""

from __future__ import annotations

from .evaluation import EvaluationWidget, evaluation
from .feature_importance import FeatureImportanceWidget, feature_importance
from .importance_summary import ImportanceSummaryWidget, importance_summary
from .model_stats import ModelStatsWidget, model_stats
from .reprs import response_html
from .top_classes import TopClassesWidget, top_classes

__all__ = [
    "EvaluationWidget",
    "FeatureImportanceWidget",
    "ImportanceSummaryWidget",
    "ModelStatsWidget",
    "TopClassesWidget",
    "evaluation",
    "feature_importance",
    "importance_summary",
    "model_stats",
    "response_html",
    "top_classes",
]
