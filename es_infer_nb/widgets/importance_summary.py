"""Feature importance across rows: a beeswarm of the signed values (one line per feature, features by
mean |importance|, each dot a row coloured by that row's feature value, as shap's beeswarm) and the
mean |importance| bar chart (shap's bar plot).

``importance_summary(result)`` takes what ``df.infer.run(...)`` returned with
``num_top_feature_importance_values`` set (``df.infer.importance_summary()`` is the same). The numbers
are :func:`es_infer_nb.frames.arrays.importance_frame`'s: a feature a row did not report (below the
top-k) counts 0 in the mean |importance| and is not drawn as a dot for that row. Classification: the
importance toward ``class_name``; by default the second class of two (the "positive" one, as shap
explains class 1's log-odds), else each row's predicted class.

The SVG marks: one ``.esinb-fis-feature[data-feature][data-mean-abs][data-rank]`` group per feature line
of the beeswarm holding its ``.esinb-fis-dot[data-importance][data-feature-value]`` dots, and one
``.esinb-fis-bar[data-feature][data-mean-abs]`` per feature of the bar chart.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import ipywidgets as w
import numpy as np
import pandas as pd

from ..frames.arrays import importance_classes, importance_frame
from ._base import DisplayWidget
from ._frames import as_frame, column, find_prefix
from ._html import NEUTRAL, attrs, box, esc, num, text_table, value_axis
from .feature_importance import FeatureImportanceWidget

if TYPE_CHECKING:  # pragma: no cover
    from ..engine import Engine

__all__ = ["ImportanceSummary", "ImportanceSummaryWidget", "importance_summary", "summarize"]

PREDICTED = "each row's predicted class"
LOW, HIGH, UNKNOWN = (0x1E, 0x88, 0xE5), (0xFF, 0x0D, 0x57), "#bbbbbb"  # shap's blue -> red


@dataclass
class ImportanceSummary:
    """The numbers drawn: ``importance`` (rows x features, ordered by ``mean_abs``), ``mean_abs`` (per
    feature, over the rows with a result, unreported features counting 0) and ``data`` (each row's
    numeric feature values, NaN where unknown or not a number)."""

    importance: pd.DataFrame
    mean_abs: pd.Series
    data: pd.DataFrame
    class_name: str | None  # None: each row's predicted class (or regression)
    rows_with_result: int


def summarize(frame: pd.DataFrame, prefix: str, class_name: str | None) -> ImportanceSummary:
    """The summary of the ``<prefix>.feature_importance`` column of a result frame."""
    values = frame[column(prefix, "feature_importance")]
    predicted_name = column(prefix, "predicted_value")
    predicted = frame[predicted_name] if predicted_name in frame.columns else None
    imp = importance_frame(values, predicted=predicted, class_name=class_name)
    has = imp.notna().any(axis=1).to_numpy() if imp.shape[1] else np.zeros(len(imp), dtype=bool)
    n = int(has.sum())
    magnitude = np.nan_to_num(np.abs(imp.to_numpy()[has]), nan=0.0)
    mean_abs = pd.Series(magnitude.mean(axis=0) if n else np.zeros(imp.shape[1]), index=imp.columns,
                         name="mean_abs")
    order = np.argsort(-mean_abs.to_numpy(), kind="stable")
    imp, mean_abs = imp.iloc[:, order], mean_abs.iloc[order]
    data = pd.DataFrame(index=frame.index)
    for name in imp.columns:
        data[name] = (pd.to_numeric(frame[name], errors="coerce").astype(float) if name in frame.columns
                      and not isinstance(frame[name], pd.DataFrame) else np.nan)
    return ImportanceSummary(imp, mean_abs, data, class_name, n)


def _color(t: float) -> str:
    if not math.isfinite(t):
        return UNKNOWN
    t = min(1.0, max(0.0, t))
    r, g, b = (round(lo + (hi - lo) * t) for lo, hi in zip(LOW, HIGH))
    return f"#{r:02x}{g:02x}{b:02x}"


def _sample(n: int, limit: int) -> np.ndarray:
    """At most ``limit`` row positions, evenly spread (all rows when there are fewer)."""
    if n <= limit:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, limit).round().astype(np.int64))


def beeswarm_svg(summary: ImportanceSummary, max_display: int = 20, max_points: int = 1000,
                 width: int = 640) -> str:
    """The beeswarm: a line per feature (largest mean |importance| first), a dot per row at its signed
    importance, stacked where dots meet, coloured low (blue) to high (red) by the row's feature value
    (5th..95th percentile of the feature; grey: unknown or not a number)."""
    features = list(summary.importance.columns[:max_display])
    if not features:
        return '<div class="esinb-note esinb-fis-empty">no feature importance in these rows</div>'
    label_w, legend_w, line_h, axis_h, r = 170, 60, 30, 22, 2.5
    plot_w = width - label_w - legend_w
    rows = _sample(len(summary.importance), max_points)
    shown = summary.importance.iloc[rows][features].to_numpy(dtype=float)
    finite = shown[np.isfinite(shown)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (-1.0, 1.0)
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    if hi - lo < 1e-12:
        lo, hi = lo - 1.0, hi + 1.0
    pad = 0.04 * (hi - lo)
    lo, hi = lo - pad, hi + pad

    def x(v: float) -> float:
        return label_w + (v - lo) / (hi - lo) * plot_w

    groups = []
    for j, name in enumerate(features):
        y0 = j * line_h + line_h / 2
        values = shown[:, j]
        data = summary.data[name].to_numpy(dtype=float)[rows]
        known = data[np.isfinite(data)]
        if known.size:
            p5, p95 = np.nanpercentile(known, [5, 95])
            if p95 <= p5:
                p5, p95 = float(known.min()), float(known.max())
        else:
            p5 = p95 = float("nan")
        dots = []
        filled: dict[int, int] = {}
        for i in np.argsort(values, kind="stable"):
            v = values[i]
            if not math.isfinite(v):
                continue
            px = x(float(v))
            slot = int(px // (2 * r))
            k = filled.get(slot, 0)
            filled[slot] = k + 1
            offset = ((k + 1) // 2) * (-1 if k % 2 else 1) * r * 1.6
            offset = math.copysign(abs(offset) % (line_h / 2 - r), offset)
            fv = data[i]
            t = (fv - p5) / (p95 - p5) if math.isfinite(fv) and p95 > p5 else (0.5 if math.isfinite(fv) else math.nan)
            dots.append(f'<circle{attrs(class_="esinb-fis-dot", data_importance=repr(float(v)), data_feature_value=None if not math.isfinite(fv) else repr(float(fv)))}'
                        f' cx="{px:.1f}" cy="{y0 + offset:.1f}" r="{r}" fill="{_color(t)}"></circle>')
        mean = float(summary.mean_abs[name])
        groups.append(
            f"<g{attrs(class_='esinb-fis-feature', data_feature=name, data_mean_abs=repr(mean), data_rank=j)}>"
            f"<title>{esc(name)}: mean |importance| {esc(num(mean))}</title>"
            f'<line x1="{label_w}" x2="{label_w + plot_w}" y1="{y0}" y2="{y0}" stroke="#eee"></line>'
            f'<text x="{label_w - 6}" y="{y0 + 4}" text-anchor="end" font-size="12">{esc(name)}</text>'
            f'{"".join(dots)}</g>')
    height = len(features) * line_h
    zero = f'<line x1="{x(0):.1f}" x2="{x(0):.1f}" y1="0" y2="{height}" stroke="#999"></line>'
    axis = value_axis("esinb-fis-axis", lo, hi, x, label_w, plot_w, height)
    legend_x = label_w + plot_w + 20
    stops = "".join(f'<stop offset="{o}" stop-color="{_color(1 - o)}"></stop>' for o in (0, 0.5, 1))
    legend = (f'<defs><linearGradient id="esinb-fis-grad" x1="0" x2="0" y1="0" y2="1">{stops}</linearGradient></defs>'
              f'<rect x="{legend_x}" y="14" width="8" height="{max(height - 28, 10)}" fill="url(#esinb-fis-grad)"></rect>'
              f'<text x="{legend_x + 12}" y="18" font-size="10">high</text>'
              f'<text x="{legend_x + 12}" y="{max(height - 14, 24)}" font-size="10">low</text>')
    return (f'<svg class="esinb-fis-beeswarm" width="{width}" height="{height + axis_h}" role="img" '
            f'xmlns="http://www.w3.org/2000/svg">{legend}{zero}{"".join(groups)}{axis}</svg>')


def bar_svg(summary: ImportanceSummary, max_display: int = 20, width: int = 560) -> str:
    """Mean |importance| per feature, largest first (shap's bar plot)."""
    entries = list(summary.mean_abs.iloc[:max_display].items())
    if not entries:
        return ""
    top = max(v for _, v in entries) or 1.0
    label_w, value_w, line_h = 170, 80, 20
    plot_w = width - label_w - value_w
    rows = []
    for i, (name, mean) in enumerate(entries):
        y = i * line_h
        rows.append(
            f"<g{attrs(class_='esinb-fis-bar', data_feature=name, data_mean_abs=repr(float(mean)))}>"
            f"<title>{esc(name)}: mean |importance| {esc(num(mean))}</title>"
            f'<text x="{label_w - 6}" y="{y + 14}" text-anchor="end" font-size="12">{esc(name)}</text>'
            f'<rect x="{label_w}" y="{y + 3}" width="{max(float(mean) / top * plot_w, 1.0):.1f}" height="{line_h - 6}" '
            f'fill="{NEUTRAL}"></rect>'
            f'<text x="{width - value_w + 6}" y="{y + 14}" font-size="12">{esc(num(mean))}</text></g>')
    return (f'<svg class="esinb-fis-bars" width="{width}" height="{len(entries) * line_h}" role="img" '
            f'xmlns="http://www.w3.org/2000/svg">{"".join(rows)}</svg>')


class ImportanceSummaryWidget(DisplayWidget):
    """The beeswarm and the mean |importance| bars of a result frame, with a class selector
    (classification)."""

    def __init__(self, result: Any, *, class_name: Any = None, max_display: int = 20, max_points: int = 1000,
                 engine: "Engine | None" = None) -> None:
        self.frame = as_frame(result)
        prefix = find_prefix(self.frame, "feature_importance")
        if prefix is None:
            raise ValueError(
                "the result has no feature_importance column: run the model with inference_config="
                "{'regression' or 'classification': {'num_top_feature_importance_values': N}}")
        self.prefix = prefix
        self.max_display = int(max_display)
        self.max_points = int(max_points)
        self._engine = engine
        self.classes = importance_classes(self.frame[column(prefix, "feature_importance")])
        if class_name is not None and str(class_name) not in self.classes:
            raise KeyError(f"class [{class_name}] is not in the feature importance; classes: "
                           f"{', '.join(self.classes) or 'none (a regression model)'}")
        if class_name is None and len(self.classes) == 2:
            class_name = self.classes[1]
        options = [*self.classes, PREDICTED] if self.classes else []
        self.class_selector = w.Dropdown(options=options, value=(str(class_name) if class_name is not None
                                                                 else PREDICTED) if options else None,
                                         description="class")
        self.class_selector.layout.display = None if options else "none"
        self.class_selector.observe(lambda _change: self._render(), names="value")
        self.view = w.HTML()
        super().__init__(children=[self.class_selector, self.view])
        self.add_class("esinb-importance-summary")
        self._render()

    @property
    def class_name(self) -> str | None:
        """The class whose importance is shown (``None``: regression, or each row's predicted class)."""
        value = self.class_selector.value if self.classes else None
        return None if value in (None, PREDICTED) else str(value)

    def _render(self) -> None:
        self.summary = summarize(self.frame, self.prefix, self.class_name)
        self.view.value = self.static_html()

    @property
    def importance(self) -> pd.DataFrame:
        """Rows x features of the class shown, ordered by mean |importance|."""
        return self.summary.importance

    @property
    def mean_abs(self) -> pd.Series:
        """Mean |importance| per feature (unreported features count 0), largest first."""
        return self.summary.mean_abs

    def static_html(self) -> str:
        s = self.summary
        what = ""
        if self.classes:
            what = f" toward class {esc(s.class_name)}" if s.class_name is not None else f" toward {PREDICTED}"
        more = len(s.mean_abs) - self.max_display
        note = f'<div class="esinb-note">{more} more features not shown (max_display={self.max_display})</div>' \
            if more > 0 else ""
        sampled = len(s.importance) > self.max_points
        if sampled:
            note += (f'<div class="esinb-note">dots: {len(_sample(len(s.importance), self.max_points))} of '
                     f"{len(s.importance)} rows, evenly spread (max_points={self.max_points}); the bars use every row</div>")
        inner = (f'<div class="esinb-title">feature importance over {s.rows_with_result} rows{what}</div>{note}'
                 f"{beeswarm_svg(s, self.max_display, self.max_points)}"
                 f'<div class="esinb-title">mean |importance|</div>{bar_svg(s, self.max_display)}')
        return box(inner, "esinb-fis", data_class=s.class_name, data_rows=s.rows_with_result)

    def text(self) -> str:
        s = self.summary
        head = f"feature importance over {s.rows_with_result} rows"
        if self.classes:
            head += f", class {s.class_name}" if s.class_name is not None else f", {PREDICTED}"
        return head + "\n" + text_table(["feature", "mean |importance|"],
                                        list(s.mean_abs.iloc[:self.max_display].items()))

    def to_shap(self, class_name: str | None = None) -> Any:
        """The rows as a ``shap.Explanation`` (values, base_values, data, feature_names) for
        ``class_name`` (default: the class shown), as the feature-importance widget's ``to_shap``."""
        klass = class_name if class_name is not None else self.class_name
        return FeatureImportanceWidget(self.frame, engine=self._engine, class_name=klass).to_shap(klass)


def importance_summary(result: Any, *, class_name: Any = None, max_display: int = 20, max_points: int = 1000,
                       engine: "Engine | None" = None) -> ImportanceSummaryWidget:
    """The feature-importance summary (beeswarm and mean |importance| bars) of a ``df.infer.run`` result
    with ``num_top_feature_importance_values``. ``max_display`` features (largest first), dots for at
    most ``max_points`` rows (evenly spread). ``engine``: where ``to_shap()`` reads the baseline."""
    return ImportanceSummaryWidget(result, class_name=class_name, max_display=max_display, max_points=max_points,
                                   engine=engine)
