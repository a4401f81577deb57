"""``metadata.feature_importance_baseline`` and ``total_feature_importance`` for a tree model.

Elasticsearch fills these for data-frame-analytics models; es_infer_nb fills them for
imported models: the baseline is TreeSHAP's expected value (the cover-weighted mean of the
raw leaf values, summed over trees), and the totals summarise the per-row importances over
a sample of data (``mean_magnitude``, ``min``, ``max``), in the shapes of spec §1.3.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..inference_config import ClassificationConfig
from ..results import transform_label
from .model import TreeModel
from .shap import expected_value


def _class_names(model: TreeModel, config: Any, count: int) -> list[Any]:
    field_type = config.prediction_field_type if isinstance(config, ClassificationConfig) else "string"
    names = []
    for i in range(count):
        label = model.labels[i] if model.labels is not None and i < len(model.labels) else None
        names.append(str(float(i)) if label is None and field_type == "string" else transform_label(label, i, field_type))
    return names


def _per_class(values: np.ndarray, classification: bool) -> np.ndarray:
    """[..., K] importances as one column per reported class (binary K=1 -> [-v, v])."""
    if classification and values.shape[-1] == 1:
        return np.concatenate([-values, values], axis=-1)
    return values


def baseline(model: TreeModel, config: Any) -> dict[str, Any]:
    base = expected_value(model.compiled.trees, model.num_outputs)
    if not isinstance(config, ClassificationConfig):
        return {"baseline": float(base[0])}
    per_class = _per_class(base, True)
    names = _class_names(model, config, len(per_class))
    return {"classes": [{"class_name": n, "baseline": float(b)} for n, b in zip(names, per_class)]}


def total_importance(model: TreeModel, config: Any, x: np.ndarray) -> list[dict[str, Any]]:
    names, _ = model.importance_groups()
    phi = model.importance(x)  # [rows, features, K]
    classification = isinstance(config, ClassificationConfig)
    phi = _per_class(phi, classification)

    def summary(values: np.ndarray) -> dict[str, float]:
        return {"mean_magnitude": float(np.mean(np.abs(values))), "min": float(np.min(values)),
                "max": float(np.max(values))}

    out: list[dict[str, Any]] = []
    for g, name in enumerate(names):
        if not classification:
            out.append({"feature_name": name, "importance": summary(phi[:, g, 0])})
        else:
            cnames = _class_names(model, config, phi.shape[2])
            out.append({"feature_name": name, "classes": [
                {"class_name": c, "importance": summary(phi[:, g, k])} for k, c in enumerate(cnames)]})
    return out
