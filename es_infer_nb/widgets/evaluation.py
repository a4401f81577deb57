"""Evaluation: a result frame's predictions against the true values (``df.infer.evaluate(y_true)``).

``evaluation(result)`` takes an :class:`es_infer_nb.frames.evaluate.Evaluation` and shows its metrics,
and for classification the per-class table, the confusion matrix and the calibration curve (where the
frame had probabilities); for regression the residual plot (residual against prediction). The widget
carries the numbers: ``.metrics`` (a dict), ``.per_class``, ``.confusion``, ``.calibration``,
``.residuals`` (frames, ``None`` where they do not apply).

Marks: ``.esinb-ev-metric[data-name][data-value]``,
``.esinb-ev-class[data-class][data-precision][data-recall][data-f1][data-support]``,
``.esinb-ev-cell[data-true][data-predicted][data-count]``,
``.esinb-ev-calibration-point[data-mean-predicted][data-fraction-positive][data-count]``,
``.esinb-ev-residual[data-predicted][data-residual]``.
"""

from __future__ import annotations

import math
from typing import Any

import ipywidgets as w
import numpy as np
import pandas as pd

from ..frames.evaluate import Evaluation
from ._base import DisplayWidget
from ._html import NEGATIVE, NEUTRAL, POSITIVE, attrs, box, esc, num, text_table, ticks

__all__ = ["EvaluationWidget", "evaluation"]

NAMES = {"accuracy": "accuracy", "macro_precision": "precision (macro)", "macro_recall": "recall (macro)",
         "macro_f1": "F1 (macro)", "roc_auc": "ROC AUC", "brier": "Brier score", "mae": "MAE", "mse": "MSE",
         "rmse": "RMSE", "r2": "R²", "rows": "rows", "rows_skipped": "rows skipped (no prediction or no y_true)"}


def metrics_html(metrics: dict[str, Any]) -> str:
    rows = "".join(f"<tr{attrs(class_='esinb-ev-metric', data_name=k, data_value=repr(v))}>"
                   f"<td>{esc(NAMES.get(k, k))}</td><td class=\"num\">{esc(num(v))}</td></tr>"
                   for k, v in metrics.items())
    return f'<table class="esinb-ev-metrics"><tbody>{rows}</tbody></table>'


def per_class_html(per_class: pd.DataFrame) -> str:
    head = "".join(f"<th>{h}</th>" for h in ("class", "precision", "recall", "F1", "support"))
    rows = []
    for name, r in per_class.iterrows():
        data = attrs(class_="esinb-ev-class", data_class=name, data_precision=repr(float(r.precision)),
                     data_recall=repr(float(r.recall)), data_f1=repr(float(r.f1)), data_support=int(r.support))
        cells = "".join(f'<td class="num">{esc(num(v))}</td>' for v in (float(r.precision), float(r.recall),
                                                                         float(r.f1), int(r.support)))
        rows.append(f"<tr{data}><td>{esc(name)}</td>{cells}</tr>")
    return f'<table class="esinb-ev-per-class"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def confusion_html(confusion: pd.DataFrame) -> str:
    """The confusion matrix: rows the true class, columns the predicted one, shaded by the share of the row."""
    head = "<th>true \\ predicted</th>" + "".join(f"<th>{esc(c)}</th>" for c in confusion.columns)
    rows = []
    for true, counts in confusion.iterrows():
        total = int(counts.sum()) or 1
        cells = []
        for predicted, count in counts.items():
            share = int(count) / total
            color = "214,96,77" if true == predicted else "67,147,195"
            cells.append(f'<td class="num esinb-ev-cell" data-true="{esc(true)}" data-predicted="{esc(predicted)}" '
                         f'data-count="{int(count)}" style="background:rgba({color},{0.08 + 0.6 * share:.2f})">'
                         f"{int(count):,}</td>")
        rows.append(f"<tr><th>{esc(true)}</th>{''.join(cells)}</tr>")
    return (f'<table class="esinb-ev-confusion"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>')


def calibration_svg(calibration: pd.DataFrame, of: str | None, size: int = 260) -> str:
    """Mean predicted probability (x) against the observed fraction (y) per bin, with the diagonal."""
    pad = 34
    plot = size - 2 * pad

    def x(v: float) -> float:
        return pad + v * plot

    def y(v: float) -> float:
        return pad + (1 - v) * plot

    top = max(int(calibration["count"].max()), 1)
    points = []
    path = []
    for r in calibration.itertuples():
        cx, cy = x(float(r.mean_predicted)), y(float(r.fraction_positive))
        path.append(f"{cx:.1f},{cy:.1f}")
        radius = 2.5 + 4 * math.sqrt(int(r.count) / top)
        data = attrs(class_="esinb-ev-calibration-point", data_mean_predicted=repr(float(r.mean_predicted)),
                     data_fraction_positive=repr(float(r.fraction_positive)), data_count=int(r.count))
        points.append(f'<circle{data} cx="{cx:.1f}" cy="{cy:.1f}" r="{radius:.1f}" fill="{POSITIVE}">'
                      f"<title>{int(r.count)} rows: predicted {esc(num(r.mean_predicted))}, observed "
                      f"{esc(num(r.fraction_positive))}</title></circle>")
    labels = "".join(f'<text x="{x(t):.1f}" y="{size - pad + 14}" text-anchor="middle" font-size="10">{t:g}</text>'
                    f'<text x="{pad - 4}" y="{y(t) + 3:.1f}" text-anchor="end" font-size="10">{t:g}</text>'
                    for t in (0, 0.5, 1))
    return (f'<svg class="esinb-ev-calibration" width="{size}" height="{size}" role="img" '
            f'xmlns="http://www.w3.org/2000/svg">'
            f'<rect x="{pad}" y="{pad}" width="{plot}" height="{plot}" fill="none" stroke="#ccc"></rect>'
            f'<line x1="{x(0)}" y1="{y(0)}" x2="{x(1)}" y2="{y(1)}" stroke="#bbb" stroke-dasharray="4 3"></line>'
            f'<polyline points="{" ".join(path)}" fill="none" stroke="{POSITIVE}"></polyline>{"".join(points)}{labels}'
            f'<text x="{size / 2}" y="{size - 4}" text-anchor="middle" font-size="10">mean predicted probability</text>'
            f'<text x="10" y="{size / 2}" text-anchor="middle" font-size="10" transform="rotate(-90 10 {size / 2})">'
            f'observed {"fraction" if of is None else esc("fraction correct" if of == "top label" else "fraction " + of)}'
            f"</text></svg>")


def residuals_svg(residuals: pd.DataFrame, max_points: int = 2000, width: int = 520, height: int = 260) -> str:
    """Residual (``y_true - predicted``) against the prediction, with the zero line (at most
    ``max_points`` rows, evenly spread)."""
    n = len(residuals)
    take = np.arange(n) if n <= max_points else np.unique(np.linspace(0, n - 1, max_points).round().astype(np.int64))
    p = residuals["predicted"].to_numpy(dtype=float)[take]
    r = residuals["residual"].to_numpy(dtype=float)[take]
    left, bottom, top_pad, right = 50, 30, 10, 10
    px0, px1 = float(p.min()), float(p.max())
    bound = float(np.abs(r).max()) or 1.0
    if px1 - px0 < 1e-12:
        px0, px1 = px0 - 1, px1 + 1
    span = px1 - px0
    px0, px1 = px0 - 0.03 * span, px1 + 0.03 * span
    ry0, ry1 = -1.08 * bound, 1.08 * bound
    pw, ph = width - left - right, height - bottom - top_pad

    def x(v: float) -> float:
        return left + (v - px0) / (px1 - px0) * pw

    def y(v: float) -> float:
        return top_pad + (ry1 - v) / (ry1 - ry0) * ph

    dots = "".join(
        f'<circle{attrs(class_="esinb-ev-residual", data_predicted=repr(float(a)), data_residual=repr(float(b)))} '
        f'cx="{x(a):.1f}" cy="{y(b):.1f}" r="2.2" fill="{POSITIVE if b >= 0 else NEGATIVE}" fill-opacity="0.7"></circle>'
        for a, b in zip(p, r))
    xt = "".join(f'<text x="{x(t):.1f}" y="{height - bottom + 14}" text-anchor="middle" font-size="10">{esc(num(t))}</text>'
                 for t in ticks(px0, px1))
    yt = "".join(f'<text x="{left - 4}" y="{y(t) + 3:.1f}" text-anchor="end" font-size="10">{esc(num(t))}</text>'
                 for t in ticks(ry0, ry1))
    return (f'<svg class="esinb-ev-residuals" width="{width}" height="{height}" role="img" '
            f'xmlns="http://www.w3.org/2000/svg">'
            f'<rect x="{left}" y="{top_pad}" width="{pw}" height="{ph}" fill="none" stroke="#ccc"></rect>'
            f'<line x1="{left}" x2="{left + pw}" y1="{y(0):.1f}" y2="{y(0):.1f}" stroke="{NEUTRAL}"></line>'
            f"{dots}{xt}{yt}"
            f'<text x="{left + pw / 2}" y="{height - 2}" text-anchor="middle" font-size="10">predicted</text>'
            f'<text x="12" y="{top_pad + ph / 2}" text-anchor="middle" font-size="10" '
            f'transform="rotate(-90 12 {top_pad + ph / 2})">residual (y_true − predicted)</text></svg>')


class EvaluationWidget(DisplayWidget):
    """The metrics and plots of an :class:`~es_infer_nb.frames.evaluate.Evaluation`."""

    def __init__(self, result: Evaluation) -> None:
        if not isinstance(result, Evaluation):
            raise TypeError(f"evaluation() takes what df.infer.evaluate computes (an Evaluation), "
                            f"found {type(result).__name__}")
        self.evaluation = result
        super().__init__(children=[w.HTML(self.static_html())])
        self.add_class("esinb-evaluation")

    @property
    def task(self) -> str:
        return self.evaluation.task

    @property
    def metrics(self) -> dict[str, Any]:
        return self.evaluation.metrics

    @property
    def per_class(self) -> pd.DataFrame | None:
        return self.evaluation.per_class

    @property
    def confusion(self) -> pd.DataFrame | None:
        return self.evaluation.confusion

    @property
    def calibration(self) -> pd.DataFrame | None:
        return self.evaluation.calibration

    @property
    def residuals(self) -> pd.DataFrame | None:
        return self.evaluation.residuals

    def static_html(self) -> str:
        e = self.evaluation
        parts = [f'<div class="esinb-title">{esc(e.task)}: {e.metrics.get("rows", 0):,} rows</div>',
                 metrics_html(e.metrics)]
        if e.per_class is not None:
            parts.append(f'<div class="esinb-title">per class</div>{per_class_html(e.per_class)}')
        if e.confusion is not None:
            parts.append(f'<div class="esinb-title">confusion matrix</div>{confusion_html(e.confusion)}')
        if e.task == "classification":
            if e.calibration is not None:
                parts.append(f'<div class="esinb-title">calibration ({esc(e.calibration_of)})</div>'
                             f"{calibration_svg(e.calibration, e.calibration_of)}")
            else:
                parts.append('<div class="esinb-note">no calibration curve: the frame has no predicted '
                             "probabilities (run with num_top_classes, or evaluate the result frame rather than "
                             "its predicted_value column)</div>")
        if e.residuals is not None and len(e.residuals):
            parts.append(f'<div class="esinb-title">residuals</div>{residuals_svg(e.residuals)}')
        return box("".join(parts), "esinb-ev", data_task=e.task)

    def text(self) -> str:
        e = self.evaluation
        out = f"{e.task} evaluation\n" + text_table(["metric", "value"], [(NAMES.get(k, k), v) for k, v in e.metrics.items()])
        if e.per_class is not None:
            out += "\n\n" + text_table(["class", "precision", "recall", "f1", "support"],
                                       [(str(i), r.precision, r.recall, r.f1, int(r.support))
                                        for i, r in e.per_class.iterrows()])
        return out


def evaluation(result: Evaluation) -> EvaluationWidget:
    """The evaluation widget (metrics, per-class table, confusion matrix, calibration curve or residual
    plot) of what ``df.infer.evaluate`` computed."""
    return EvaluationWidget(result)
