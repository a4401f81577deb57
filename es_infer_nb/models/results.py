"""The one place that turns model results into Elasticsearch JSON.

Model code produces a :class:`TreeBatchResult` (arrays over a batch); this module
renders it either as one ES result object per document (``_infer``, the ingest
processors) or as DataFrame columns named by the ES field path (``df.infer``).
Both renderings share the same label and top-classes logic.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from ..errors import ApiError
from .inference_config import ClassificationConfig, InferenceConfig, RegressionConfig

#: where results go when no ``target_field`` is given: the ``inference`` processor, ``df.infer.run``
#: and the columns declared for Dask and ``es-infer run`` alike
DEFAULT_TARGET_FIELD = "ml.inference"


def target_prefix(target_field: str | None) -> str:
    """The prefix of the result fields: ``target_field``, else :data:`DEFAULT_TARGET_FIELD`."""
    return DEFAULT_TARGET_FIELD if target_field is None else target_field


def warning_message(model_id: str) -> str:
    return f"Model [{model_id}] could not be inferred as all fields were missing"


def _parses_as_long(text: str) -> bool:
    if not text or not (text[0] == "-" or text[0].isdigit()):
        return False
    try:
        int(text, 10)
    except ValueError:
        return False
    return -(2**63) <= int(text) < 2**63


def _parses_as_int(text: str) -> bool:
    """Java ``Integer.parseInt`` accepts ``text``."""
    return bool(re.fullmatch(r"[-+]?\d+", text)) and -(2**31) <= int(text) < 2**31


def _boolean_from_index(index: float) -> bool:
    if abs(index) < 1e-9:
        return False
    if abs(index - 1) < 1e-9:
        return True
    raise ApiError(
        "illegal_argument_exception",
        f"Cannot transform numbers other than 0.0 or 1.0 to boolean. Provided number [{float(index)}]",
        400,
    )


def _transform_boolean(label: str | None, index: float) -> bool:
    """``PredictionFieldType.BOOLEAN``: a label that looks like a number is true iff it is the int 1
    (``"2"`` is false), one starting with t/f is ``Boolean.parseBoolean`` of it, anything else (or no
    label) goes by the class index, which must then be 0 or 1."""
    if label:
        if label[0] == "-" or label[0].isdecimal():
            if _parses_as_int(label):
                return int(label) == 1
        elif label[0] in "tTfF":
            return label.lower() == "true"
    return _boolean_from_index(index)


def transform_label(label: str | None, index: float, field_type: str) -> Any:
    """``PredictionFieldType.transformPredictedValue`` for one class."""
    if field_type == "number":
        if label is not None and _parses_as_long(label):
            return int(label)
        return float(index)
    if field_type == "boolean":
        return _transform_boolean(label, index)
    return label if label is not None else str(index)


def _total_importance(entry: dict[str, Any]) -> float:
    """``FeatureImportance.getTotalImportance`` of one rendered entry (binary: the first class's |value|)."""
    classes = entry.get("classes")
    if classes is not None:
        if len(classes) == 2:
            return abs(float(classes[0]["importance"]))
        return float(sum(abs(float(c["importance"])) for c in classes))
    return abs(float(entry.get("importance", 0.0)))


def top_feature_importance(items: list[dict[str, Any]] | None, n: int) -> list[dict[str, Any]]:
    """``InferenceResults.takeTopFeatureImportances``: the ``n`` entries of largest total |importance|."""
    if not items or n <= 0:
        return []
    totals = np.array([_total_importance(item) for item in items], dtype=np.float64)
    order = _top_order(totals, len(items))
    return [items[i] for i in order[:n]]


@dataclass(frozen=True)
class RegressionResult:
    """ES's ``RegressionInferenceResults``: one document's regression value, rendered by :meth:`as_map`."""

    value: float
    config: RegressionConfig
    feature_importance: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def create(
        cls, value: float, config: RegressionConfig, feature_importance: list[dict[str, Any]] | None = None
    ) -> RegressionResult:
        """As ES's constructor: the feature importance cut to the config's top values."""
        return cls(
            float(value), config, top_feature_importance(feature_importance, config.num_top_feature_importance_values)
        )

    def as_map(self) -> dict[str, Any]:
        out: dict[str, Any] = {self.config.results_field: self.value}
        if self.feature_importance:
            out["feature_importance"] = self.feature_importance
        return out


@dataclass(frozen=True)
class ClassificationResult:
    """ES's ``ClassificationInferenceResults``: one document's class, rendered by :meth:`as_map`.

    ``predicted_value`` is already what ``prediction_field_type`` makes of the winning class
    (:meth:`create` computes it from the class index and label as ES does)."""

    predicted_value: Any
    config: ClassificationConfig
    top_classes: list[dict[str, Any]] = field(default_factory=list)
    prediction_probability: float | None = None
    prediction_score: float | None = None
    feature_importance: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def create(
        cls,
        value: float,
        classification_label: str | None,
        config: ClassificationConfig,
        *,
        top_classes: list[dict[str, Any]] | None = None,
        prediction_probability: float | None = None,
        prediction_score: float | None = None,
        feature_importance: list[dict[str, Any]] | None = None,
    ) -> ClassificationResult:
        """As ES's constructor: ``transformPredictedValue(value, valueAsString)`` (no label: the value's
        double text, ``"1.0"``) and the feature importance cut to the config's top values."""
        predicted = transform_label(classification_label, float(value), config.prediction_field_type)
        return cls(
            predicted,
            config,
            list(top_classes or []),
            prediction_probability,
            prediction_score,
            top_feature_importance(feature_importance, config.num_top_feature_importance_values),
        )

    def as_map(self) -> dict[str, Any]:
        out: dict[str, Any] = {self.config.results_field: self.predicted_value}
        if self.top_classes:
            out[self.config.top_classes_results_field] = self.top_classes
        if self.prediction_probability is not None:
            out["prediction_probability"] = self.prediction_probability
        if self.prediction_score is not None:
            out["prediction_score"] = self.prediction_score
        if self.feature_importance:
            out["feature_importance"] = self.feature_importance
        return out


def warning_result(message: str) -> dict[str, Any]:
    """ES's ``WarningInferenceResults.asMap``."""
    return {"warning": message}


def error_result(message: str) -> dict[str, Any]:
    """An error result's map (``ErrorInferenceResults``' message under ``error``)."""
    return {"error": message}


@dataclass
class TreeBatchResult:
    """Results of a tree model over a batch of n documents."""

    model_id: str
    config: InferenceConfig
    values: np.ndarray  # regression value, or winning class index
    probabilities: np.ndarray | None  # [n, C] for classification
    warning: np.ndarray  # [n] bool: all input fields were missing
    errors: list[str | None]
    labels: list[str] | None = None
    class_weights: np.ndarray | None = None
    importance: np.ndarray | None = None  # [n, reported features, K] SHAP values
    importance_names: list[str] | None = None
    importance_tie_rank: np.ndarray | None = None  # [reported features]: ES's order among equal importances
    extra: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.values.shape[0])

    @cached_property
    def error_mask(self) -> np.ndarray:
        if self.errors.count(None) == len(self.errors):  # the common case, without a per-row pass
            return np.zeros(len(self.errors), dtype=bool)
        return np.fromiter((e is not None for e in self.errors), dtype=bool, count=len(self.errors))

    @property
    def is_classification(self) -> bool:
        return isinstance(self.config, ClassificationConfig)

    # -- shared pieces ---------------------------------------------------------------------
    def scores(self) -> np.ndarray:
        assert self.probabilities is not None
        if self.class_weights is None:
            return self.probabilities
        return self.probabilities * self.class_weights[None, :]

    def class_names(self) -> list[Any]:
        """Every class's name after ``prediction_field_type``; errors are raised lazily per use."""
        assert isinstance(self.config, ClassificationConfig) and self.probabilities is not None
        names: list[Any] = []
        for i in range(self.probabilities.shape[1]):
            # no labels: ES passes the index's text (``String.valueOf(i)``), so ``number`` gives the long ``1``
            label = self.labels[i] if self.labels is not None else str(i)
            try:
                names.append(transform_label(label, i, self.config.prediction_field_type))
            except ApiError as err:
                names.append(err)
        return names

    def top_class_names(self) -> list[Any]:
        """``class_name`` of each class in ``top_classes``: the class names (lang_ident keeps strings)."""
        return self.class_names()

    def top_k(self) -> int:
        assert isinstance(self.config, ClassificationConfig) and self.probabilities is not None
        n = self.config.num_top_classes
        c = self.probabilities.shape[1]
        return c if n < 0 else min(n, c)

    def order(self) -> np.ndarray:
        """Class indices per row by score, descending, ties by ascending index."""
        return np.argsort(-self.scores(), axis=1, kind="stable")

    # -- feature importance ------------------------------------------------------------------
    def importance_class_names(self) -> list[Any]:
        """Class names in feature importance: like top classes, but an unlabelled index renders as a double."""
        assert isinstance(self.config, ClassificationConfig)
        count = self.probabilities.shape[1] if self.probabilities is not None else 2
        count = max(count, 2)
        names = []
        for i in range(count):
            label = self.labels[i] if self.labels is not None and i < len(self.labels) else None
            if label is None and self.config.prediction_field_type == "string":
                names.append(str(float(i)))
            else:
                names.append(transform_label(label, i, self.config.prediction_field_type))
        return names

    def feature_importance(self, row: int) -> list[dict[str, Any]] | None:
        """The ES ``feature_importance`` list of one document, top N by |importance|."""
        if self.importance is None or self.importance_names is None:
            return None
        top = self.config.num_top_feature_importance_values  # type: ignore[union-attr]
        phi = self.importance[row]  # [features, K]
        names = self.importance_names
        tie = self.importance_tie_rank
        if not self.is_classification:
            order = _top_order(np.abs(phi[:, 0]), top, tie)
            return [{"feature_name": names[g], "importance": float(phi[g, 0])} for g in order]
        cnames = self.importance_class_names()
        if phi.shape[1] == 1:
            total = np.abs(phi[:, 0])
            order = _top_order(total, top, tie)
            return [
                {
                    "feature_name": names[g],
                    "classes": [
                        {"class_name": cnames[0], "importance": -float(phi[g, 0])},
                        {"class_name": cnames[1], "importance": float(phi[g, 0])},
                    ],
                }
                for g in order
            ]
        total = np.abs(phi).sum(axis=1)
        order = _top_order(total, top, tie)
        return [
            {
                "feature_name": names[g],
                "classes": [
                    {"class_name": cnames[k] if k < len(cnames) else str(float(k)), "importance": float(phi[g, k])}
                    for k in range(phi.shape[1])
                ],
            }
            for g in order
        ]

    # -- rendering: one ES object per document -------------------------------------------
    def to_docs(self) -> list[dict[str, Any]]:
        """One ES result map per document, through the result objects' ``as_map``."""
        out: list[dict[str, Any]] = []
        if not self.is_classification:
            cfg = self.config
            assert isinstance(cfg, RegressionConfig)
            for i in range(len(self)):
                if self.errors[i] is not None:
                    out.append(error_result(self.errors[i]))
                elif self.warning[i]:
                    out.append(warning_result(warning_message(self.model_id)))
                else:
                    out.append(RegressionResult(float(self.values[i]), cfg, self.feature_importance(i) or []).as_map())
            return out
        cfg = self.config
        assert isinstance(cfg, ClassificationConfig) and self.probabilities is not None
        names = self.class_names()
        top_names = self.top_class_names() if self.top_k() else names
        scores = self.scores()
        k = self.top_k()
        order = self.order() if k else None
        for i in range(len(self)):
            if self.errors[i] is not None:
                out.append(error_result(self.errors[i]))
                continue
            if self.warning[i]:
                out.append(warning_result(warning_message(self.model_id)))
                continue
            win = int(self.values[i])
            name = names[win]
            if isinstance(name, ApiError):
                raise name
            top = []
            if k:
                assert order is not None
                for c in order[i, :k]:
                    cname = top_names[int(c)]
                    if isinstance(cname, ApiError):
                        raise cname
                    top.append(
                        {
                            "class_name": cname,
                            "class_probability": float(self.probabilities[i, c]),
                            "class_score": float(scores[i, c]),
                        }
                    )
            out.append(
                ClassificationResult(
                    name,
                    cfg,
                    top,
                    float(self.probabilities[i, win]),
                    float(scores[i, win]),
                    self.feature_importance(i) or [],
                ).as_map()
            )
        return out

    # -- rendering: DataFrame columns -----------------------------------------------------
    def to_columns(self, target_field: str, index: pd.Index) -> dict[str, pd.Series]:
        """Columns named by the ES field path; rows with a warning or error get nulls."""
        prefix = f"{target_field}." if target_field else ""
        ok = ~self.warning & ~self.error_mask
        cols: dict[str, pd.Series] = {}
        if not self.is_classification:
            cfg = self.config
            assert isinstance(cfg, RegressionConfig)
            cols[prefix + cfg.results_field] = pd.Series(np.where(ok, self.values, np.nan), index=index)
        else:
            cfg = self.config
            assert isinstance(cfg, ClassificationConfig) and self.probabilities is not None
            names = self.class_names()
            bad = [n for n in names if isinstance(n, ApiError)]
            win = self.values.astype(np.int64)
            if bad and bool(np.any(ok & np.isin(win, [i for i, n in enumerate(names) if isinstance(n, ApiError)]))):
                raise bad[0]
            name_type = _arrow_type([n for n in names if not isinstance(n, ApiError)])
            pv = [names[w] if good else None for w, good in zip(win, ok)]
            cols[prefix + cfg.results_field] = pd.Series(
                pa.array(pv, type=name_type), index=index, dtype=pd.ArrowDtype(name_type)
            )
            scores = self.scores()
            rows = np.arange(len(self))
            k = self.top_k()
            if k:
                order = self.order()[:, :k]
                tnames = self.top_class_names()
                top_type = _arrow_type([n for n in tnames if not isinstance(n, ApiError)])
                struct = pa.struct(
                    [("class_name", top_type), ("class_probability", pa.float64()), ("class_score", pa.float64())]
                )
                top_names = pa.array(
                    [tnames[int(c)] if not isinstance(tnames[int(c)], ApiError) else None for c in order.reshape(-1)],
                    type=top_type,
                )
                values = pa.StructArray.from_arrays(
                    [
                        top_names,
                        pa.array(np.take_along_axis(self.probabilities, order, axis=1).reshape(-1)),
                        pa.array(np.take_along_axis(scores, order, axis=1).reshape(-1)),
                    ],
                    fields=list(struct),
                )
                offsets = pa.array(np.arange(0, len(self) * k + 1, k, dtype=np.int32))
                lists = pa.ListArray.from_arrays(offsets, values, mask=pa.array(~ok))
                cols[prefix + cfg.top_classes_results_field] = pd.Series(
                    lists, index=index, dtype=pd.ArrowDtype(pa.list_(struct))
                )
            cols[prefix + "prediction_probability"] = pd.Series(
                np.where(ok, self.probabilities[rows, win], np.nan) if len(self) else np.zeros(0), index=index
            )
            cols[prefix + "prediction_score"] = pd.Series(
                np.where(ok, scores[rows, win], np.nan) if len(self) else np.zeros(0), index=index
            )
        if self.importance is not None:
            rows = [self.feature_importance(i) if good else None for i, good in enumerate(ok)]
            cols[prefix + "feature_importance"] = _arrow_series(rows, index)
        if bool(self.warning.any()):
            msg = warning_message(self.model_id)
            cols[prefix + "warning"] = pd.Series(
                pa.array([msg if w else None for w in self.warning], type=pa.string()),
                index=index,
                dtype=pd.ArrowDtype(pa.string()),
            )
        if bool(self.error_mask.any()):
            cols[prefix + "error"] = pd.Series(
                pa.array(self.errors, type=pa.string()), index=index, dtype=pd.ArrowDtype(pa.string())
            )
        cols[prefix + "model_id"] = pd.Series(
            pa.repeat(pa.scalar(self.model_id, type=pa.string()), len(self)),
            index=index,
            dtype=pd.ArrowDtype(pa.string()),
        )
        return cols


def _top_order(magnitude: np.ndarray, top: int, tie: np.ndarray | None = None) -> list[int]:
    """Indices by descending magnitude, equal ones by ``tie`` (or their order), at most ``top``; a NaN
    sorts first, as Java's ``Double.compare`` holds it above every number."""
    key = np.where(np.isnan(magnitude), -np.inf, -magnitude)
    order = np.argsort(key, kind="stable") if tie is None else np.lexsort((tie, key))
    return [int(i) for i in order[:top]]


def _arrow_series(values: list[Any], index: pd.Index) -> pd.Series:
    arr = pa.array(values)
    return pd.Series(arr, index=index, dtype=pd.ArrowDtype(arr.type))


def _arrow_type(values: list[Any]) -> pa.DataType:
    if values and all(isinstance(v, bool) for v in values):
        return pa.bool_()
    if values and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return pa.float64() if any(isinstance(v, float) for v in values) else pa.int64()
    return pa.string()


def nan_to_none(value: float) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def render_per_document(result: "TreeBatchResult") -> list[dict[str, Any] | ApiError]:
    """The ``inference`` processor's rendering of a batch: :meth:`TreeBatchResult.to_docs`, where a result that cannot be rendered (a class label that cannot
    become a ``boolean``) fails its own document only, as ES infers ingest documents one at a time."""
    try:
        return result.to_docs()
    except ApiError:
        pass
    out: list[dict[str, Any] | ApiError] = []
    for i in range(len(result)):
        row = slice(i, i + 1)
        one = replace(
            result,
            values=result.values[row],
            warning=result.warning[row],
            errors=result.errors[row],
            probabilities=None if result.probabilities is None else result.probabilities[row],
            importance=None if result.importance is None else result.importance[row],
            extra={},
        )
        try:
            out.append(one.to_docs()[0])
        except ApiError as err:
            out.append(err)
    return out


def document_failure(rendered: dict[str, Any] | ApiError) -> ApiError | None:
    """The error a rendered document fails its ingest document with (``None`` when it is a result)."""
    if isinstance(rendered, ApiError):
        return rendered
    if "error" in rendered and len(rendered) == 1:
        return ApiError("status_exception", str(rendered["error"]), 400)
    return None
