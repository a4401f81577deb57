"""Model evaluation over a result frame (``df.infer.evaluate(y_true)``): the true values against the
``predicted_value`` column.

Classification: accuracy, per-class precision / recall / F1 / support, macro averages, the confusion
matrix and, where the frame has the predicted probabilities (``top_classes`` or
``prediction_probability``), a calibration curve (and ROC AUC for two classes). Regression: MAE, MSE,
RMSE, R², and the residuals (``y_true - predicted``). The formulas are scikit-learn's
(``accuracy_score``, ``precision_recall_fscore_support`` with ``zero_division=0``,
``confusion_matrix``, ``calibration_curve(strategy="uniform")``, ``roc_auc_score``,
``brier_score_loss``, ``mean_absolute_error``, ``mean_squared_error``, ``r2_score``),
computed with numpy so that scikit-learn stays optional.

Rows without a prediction (a missing input, an error) or without a true value are left out and
counted in ``metrics["rows_skipped"]``. Labels are compared as text (``1``, ``1.0`` and ``"1"`` are one
class; ``True`` is ``"True"``), so integer ``y_true`` meets string ``predicted_value`` classes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["Evaluation", "align_truth", "evaluate", "guess_task"]

TASKS = ("classification", "regression")


@dataclass
class Evaluation:
    """The numbers of one evaluation: ``metrics`` (a flat dict of floats and counts) and frames."""

    task: str
    metrics: dict[str, float] = field(default_factory=dict)
    per_class: pd.DataFrame | None = None  # index class_name: precision, recall, f1, support
    confusion: pd.DataFrame | None = None  # rows: true class, columns: predicted class, counts
    calibration: pd.DataFrame | None = None  # per non-empty bin: bin_lo, bin_hi, mean_predicted, fraction_positive, count
    calibration_of: str | None = None  # what the calibration curve is of ("class 1", "top label")
    residuals: pd.DataFrame | None = None  # regression, per row used: y_true, predicted, residual

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={_short(v)}" for k, v in self.metrics.items())
        return f"Evaluation({self.task}: {shown})"


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def align_truth(y_true: Any, index: pd.Index, frame: pd.DataFrame | None = None) -> pd.Series:
    """``y_true`` as a Series on ``index``: a column name of ``frame``; a Series with the same labels
    (any order) or, otherwise, the same length (read in order); a list or array of the same length."""
    n = len(index)
    if isinstance(y_true, str) and frame is not None:
        if y_true not in frame.columns:
            raise KeyError(f"y_true: column [{y_true}] is not in the frame; columns: "
                           f"{', '.join(map(str, frame.columns))}")
        return frame[y_true]
    if isinstance(y_true, pd.DataFrame):
        if y_true.shape[1] != 1:
            raise ValueError(f"y_true is a DataFrame of {y_true.shape[1]} columns: pass one column (a Series)")
        y_true = y_true.iloc[:, 0]
    if isinstance(y_true, pd.Series):
        if len(y_true) != n:
            raise ValueError(_length_message(len(y_true), n))
        if y_true.index.equals(index):
            return y_true
        if index.is_unique and y_true.index.is_unique and set(y_true.index) == set(index):
            return y_true.reindex(index)
        return pd.Series(y_true.to_numpy(), index=index, name=y_true.name)
    if isinstance(y_true, (str, bytes, dict)) or not hasattr(y_true, "__len__"):
        raise TypeError(f"y_true must be a Series, a list or array of the true values, or a column name; "
                        f"found {type(y_true).__name__}")
    values = np.asarray(y_true, dtype=object)
    if values.ndim != 1:
        raise ValueError(f"y_true must be one-dimensional, found shape {values.shape}")
    if len(values) != n:
        raise ValueError(_length_message(len(values), n))
    return pd.Series(values, index=index, name="y_true")


def _length_message(got: int, n: int) -> str:
    return (f"y_true has {got} values but the frame has {n} rows: pass the true values of these rows, in "
            "their order (e.g. y_test.loc[df.index], or y_test of the rows you ran), or the name of a column "
            "of the frame")


def guess_task(predicted: pd.Series, has_probabilities: bool) -> str:
    """``classification`` when probabilities were written or the predictions are not floats, else
    ``regression``."""
    if has_probabilities:
        return "classification"
    values = predicted.dropna()
    if pd.api.types.is_float_dtype(predicted.dtype):
        return "regression"
    if pd.api.types.is_bool_dtype(predicted.dtype) or pd.api.types.is_integer_dtype(predicted.dtype):
        return "classification"
    if len(values) and all(isinstance(v, (float, np.floating)) for v in values.iloc[:1000]):
        return "regression"
    return "classification"


def evaluate(
    y_true: pd.Series,
    predicted: pd.Series,
    *,
    task: str | None = None,
    probabilities: pd.DataFrame | None = None,
    prediction_probability: pd.Series | None = None,
    positive_class: Any = None,
    n_bins: int = 10,
) -> Evaluation:
    """The evaluation of ``predicted`` against ``y_true`` (same index). ``probabilities``: a frame
    per class (``df.infer.proba()``); ``prediction_probability``: the predicted class's probability."""
    if len(y_true) != len(predicted):
        raise ValueError(_length_message(len(y_true), len(predicted)))
    has_probabilities = probabilities is not None or prediction_probability is not None
    task = task or guess_task(predicted, has_probabilities)
    if task not in TASKS:
        raise ValueError(f"task must be one of {', '.join(TASKS)}, found {task!r}")
    if not isinstance(n_bins, int) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive int, found {n_bins!r}")
    if task == "regression":
        return _regression(y_true, predicted)
    return _classification(y_true, predicted, probabilities, prediction_probability, positive_class, n_bins)


# -- regression --------------------------------------------------------------------------------------------
def _numbers(values: pd.Series, what: str) -> np.ndarray:
    out = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    bad = values.notna().to_numpy() & np.isnan(out)
    if bad.any():
        example = values[bad].iloc[0]
        raise ValueError(f"{what} holds values that are not numbers (e.g. {example!r}): a regression needs numbers; "
                         "pass task='classification' for class labels")
    return out


def _regression(y_true: pd.Series, predicted: pd.Series) -> Evaluation:
    y = _numbers(y_true, "y_true")
    p = _numbers(predicted, "the predictions")
    used = ~np.isnan(y) & ~np.isnan(p)
    if not used.any():
        raise ValueError("no row has both a prediction and a true value")
    y, p = y[used], p[used]
    residual = y - p
    mse = float(np.mean(residual ** 2))
    ss_res = float(np.sum(residual ** 2))
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    r2 = (1.0 if ss_res == 0 else 0.0) if ss_tot == 0 else 1.0 - ss_res / ss_tot
    metrics = {"mae": float(np.mean(np.abs(residual))), "mse": mse, "rmse": math.sqrt(mse), "r2": r2,
               "rows": int(used.sum()), "rows_skipped": int((~used).sum())}
    residuals = pd.DataFrame({"y_true": y, "predicted": p, "residual": residual}, index=y_true.index[used])
    return Evaluation("regression", metrics, residuals=residuals)


# -- classification ----------------------------------------------------------------------------------------
def _label(value: Any) -> str | None:
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _order(labels: set[str]) -> list[str]:
    try:
        return sorted(labels, key=float)
    except ValueError:
        return sorted(labels)


def _classification(y_true: pd.Series, predicted: pd.Series, probabilities: pd.DataFrame | None,
                    prediction_probability: pd.Series | None, positive_class: Any, n_bins: int) -> Evaluation:
    truth = np.array([_label(v) for v in y_true.tolist()], dtype=object)
    pred = np.array([_label(v) for v in predicted.tolist()], dtype=object)
    used = np.array([t is not None and q is not None for t, q in zip(truth, pred)], dtype=bool)
    if not used.any():
        raise ValueError("no row has both a prediction and a true value")
    t, q = truth[used], pred[used]
    labels = _order(set(t) | set(q))
    where = {name: i for i, name in enumerate(labels)}
    ti = np.fromiter((where[v] for v in t), dtype=np.int64, count=len(t))
    qi = np.fromiter((where[v] for v in q), dtype=np.int64, count=len(q))
    k = len(labels)
    matrix = np.bincount(ti * k + qi, minlength=k * k).reshape(k, k)
    tp = np.diag(matrix).astype(float)
    predicted_n = matrix.sum(axis=0).astype(float)
    support = matrix.sum(axis=1)
    precision = np.divide(tp, predicted_n, out=np.zeros(k), where=predicted_n > 0)
    recall = np.divide(tp, support.astype(float), out=np.zeros(k), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros(k), where=denom > 0)
    per_class = pd.DataFrame({"precision": precision, "recall": recall, "f1": f1, "support": support},
                             index=pd.Index(labels, name="class_name"))
    confusion = pd.DataFrame(matrix, index=pd.Index(labels, name="true"), columns=pd.Index(labels, name="predicted"))
    metrics: dict[str, float] = {
        "accuracy": float(tp.sum() / len(t)),
        "macro_precision": float(precision.mean()),
        "macro_recall": float(recall.mean()),
        "macro_f1": float(f1.mean()),
        "rows": int(used.sum()),
        "rows_skipped": int((~used).sum()),
    }
    out = Evaluation("classification", metrics, per_class=per_class, confusion=confusion)
    _calibrate(out, y_true.index, truth, pred, used, labels, probabilities, prediction_probability,
               positive_class, n_bins)
    return out


def _calibrate(out: Evaluation, index: pd.Index, truth: np.ndarray, pred: np.ndarray, used: np.ndarray,
               labels: list[str], probabilities: pd.DataFrame | None, prediction_probability: pd.Series | None,
               positive_class: Any, n_bins: int) -> None:
    """The calibration curve (and ROC AUC) where probabilities exist: of the positive class for two
    classes, else of the top label (the predicted class's probability against being right)."""
    known = set(labels) | {_label(c) for c in (probabilities.columns if probabilities is not None else [])}
    if positive_class is not None:
        positive = _label(positive_class)
        if positive not in known:
            raise KeyError(f"positive_class [{positive_class}] is not a class of these rows; classes: "
                           f"{', '.join(_order({c for c in known if c is not None}))}")
    else:
        positive = None
    top = _column(prediction_probability, index)
    binary = len(labels) <= 2 and (positive is not None or len(labels) == 2)
    if binary:
        if positive is None:
            positive = labels[-1]
        prob = np.full(len(index), np.nan)
        if probabilities is not None:
            by_label = {_label(c): c for c in probabilities.columns}
            if positive in by_label:
                prob = _column(probabilities[by_label[positive]], index)
        if top is not None:  # rows whose top_classes did not list the positive class
            fill = np.where(pred == positive, top, 1.0 - top)
            prob = np.where(np.isnan(prob), fill, prob)
        what, hit = f"class {positive}", (truth == positive)
    elif top is not None:
        prob, what, hit = top, "top label", (truth == pred)
    else:
        return
    ok = used & ~np.isnan(prob)
    if not ok.any():
        return
    p, y = np.clip(prob[ok], 0.0, 1.0), hit[ok].astype(float)
    bins = np.linspace(0.0, 1.0, n_bins + 1)
    ids = np.searchsorted(bins[1:-1], p)
    total = np.bincount(ids, minlength=n_bins)
    sums = np.bincount(ids, weights=p, minlength=n_bins)
    trues = np.bincount(ids, weights=y, minlength=n_bins)
    nz = total != 0
    out.calibration = pd.DataFrame({"bin_lo": bins[:-1][nz], "bin_hi": bins[1:][nz],
                                    "mean_predicted": sums[nz] / total[nz], "fraction_positive": trues[nz] / total[nz],
                                    "count": total[nz]})
    out.calibration_of = what
    if not binary:
        return
    out.metrics["brier"] = float(np.mean((p - y) ** 2))
    if 0 < y.sum() < len(y):
        ranks = pd.Series(p).rank(method="average").to_numpy()
        n_pos = float(y.sum())
        n_neg = len(y) - n_pos
        out.metrics["roc_auc"] = float((ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _column(values: pd.Series | None, index: pd.Index) -> np.ndarray | None:
    if values is None:
        return None
    if len(values) != len(index):  # pragma: no cover - built from the same frame
        raise ValueError("probabilities are not aligned to the predictions")
    return pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
