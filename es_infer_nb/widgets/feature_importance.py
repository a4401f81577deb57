"""Feature importance: a waterfall from the model's baseline to each row's prediction, and the
model's ``total_feature_importance``, for regression and per class for classification.

``feature_importance(result, row=None)`` takes what ``df.infer.run(...)`` returned with
``num_top_feature_importance_values`` set. The baseline and the totals come from
``GET _ml/trained_models/<id>?include=feature_importance_baseline,total_feature_importance``
(filled by ``Engine.import_model``; ``data=`` for the totals); when the model is unknown to the
engine they are left out and the waterfall starts at 0.

The SVG marks: ``.esinb-fi-baseline``, one ``.esinb-fi-bar[data-feature][data-importance]`` per
feature (largest first), ``.esinb-fi-other`` (what the shown features do not explain: features
left out by ``num_top_feature_importance_values``, or ensemble weights), ``.esinb-fi-prediction``;
the model view has one ``.esinb-fi-total[data-feature][data-mean-magnitude]`` per feature.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import ipywidgets as w
import numpy as np
import pandas as pd

from ..engine import default_engine
from ._base import DisplayWidget, row_selector
from ._frames import as_frame, cell, column, find_prefix, position_of
from ._html import NEGATIVE, NEUTRAL, POSITIVE, attrs, box, esc, num, plain, text_table, value_axis

if TYPE_CHECKING:  # pragma: no cover
    from ..engine import Engine

__all__ = ["FeatureImportanceWidget", "feature_importance", "model_importance_metadata"]


@dataclass
class Waterfall:
    """One row's (and one class's) importances, ready to draw."""

    features: list[tuple[str, float]]  # largest |importance| first
    baseline: float | None
    end: float | None  # the model's score: the prediction (regression), the class's log-odds/margin
    # (classification); None when unknown (the bars then stop at baseline + the features shown)
    class_name: str | None = None
    probability: float | None = None
    predicted: Any = None
    values: dict[str, Any] = field(default_factory=dict)  # the row's input value of each feature, where known
    steps: list[tuple[str, str, float, float]] = field(default_factory=list)  # (kind, name, start, stop)

    def build(self) -> "Waterfall":
        start = self.baseline if self.baseline is not None else 0.0
        self.steps = [("baseline", "baseline" if self.baseline is not None else "baseline unknown", 0.0, start)]
        at = start
        for name, imp in self.features:
            self.steps.append(("bar", name, at, at + imp))
            at += imp
        if self.end is not None and self.baseline is not None:
            rest = self.end - at
            if abs(rest) > 1e-9 * max(1.0, abs(self.end), abs(at)):
                self.steps.append(("other", "other (not shown / weights)", at, self.end))
                at = self.end
        self.steps.append(("prediction", "prediction" if self.class_name is None else "score (log-odds)", 0.0, at))
        return self


_ALL_FEATURES = 1_000_000
_RESULT_LEAVES = {"predicted_value", "top_classes", "prediction_probability", "prediction_score",
                  "feature_importance", "model_id", "is_truncated", "warning"}


def _agrees(shown: list[dict[str, Any]], full: list[dict[str, Any]]) -> bool:
    """Whether every importance shown appears, with the same value, in ``full``."""
    index = {str(f.get("feature_name")): f for f in full}
    for entry in shown:
        other = index.get(str(entry.get("feature_name")))
        if other is None:
            return False
        mine = [entry.get("importance")] + [c.get("importance") for c in entry.get("classes") or []]
        theirs = [other.get("importance")] + [c.get("importance") for c in other.get("classes") or []]
        if len(mine) != len(theirs):
            return False
        for a, b in zip(mine, theirs):
            if (a is None) != (b is None) or (a is not None and abs(float(a) - float(b)) > 1e-6 * max(1.0, abs(float(a)))):
                return False
    return True


def model_importance_metadata(engine: "Engine | None", model_id: str | None) -> dict[str, Any]:
    """``metadata`` with ``feature_importance_baseline`` / ``total_feature_importance`` of a model ({} if unknown)."""
    if not model_id:
        return {}
    if engine is None:
        engine = default_engine()
    resp = engine.request("GET", f"_ml/trained_models/{model_id}",
                          params={"include": "feature_importance_baseline,total_feature_importance"})
    if not resp.ok:
        return {}
    configs = (resp.body or {}).get("trained_model_configs") or []
    return dict((configs[0].get("metadata") or {})) if configs else {}


def _class_baseline(meta: dict[str, Any], class_name: str | None) -> float | None:
    base = meta.get("feature_importance_baseline") or {}
    if class_name is None:
        value = base.get("baseline")
        return float(value) if isinstance(value, (int, float)) else None
    for entry in base.get("classes") or []:
        if str(entry.get("class_name")) == str(class_name):
            return float(entry.get("baseline"))
    return None


def _classes_of(importance: list[dict[str, Any]]) -> list[str]:
    names: list[str] = []
    for entry in importance:
        for c in entry.get("classes") or []:
            if str(c.get("class_name")) not in names:
                names.append(str(c.get("class_name")))
    return names


def _features(importance: list[dict[str, Any]], class_name: str | None) -> list[tuple[str, float]]:
    out = []
    for entry in importance:
        if class_name is None:
            value = entry.get("importance")
        else:
            value = next((c.get("importance") for c in entry.get("classes") or []
                          if str(c.get("class_name")) == class_name), None)
        if isinstance(value, (int, float)) and math.isfinite(value):
            out.append((str(entry.get("feature_name")), float(value)))
    return sorted(out, key=lambda fv: -abs(fv[1]))


def _probability(top_classes: Any, class_name: str) -> float | None:
    for c in top_classes or []:
        if str(c.get("class_name")) == class_name:
            return c.get("class_probability")
    return None


def _label(kind: str, name: str, values: dict[str, Any]) -> str:
    """A bar's label: ``feature = value`` (as shap draws it) when the row's value is known."""
    if kind == "bar" and name in values:
        return f"{name} = {num(values[name])}"
    return name


def axis_range(fall: Waterfall) -> tuple[float, float]:
    """The value axis of the waterfall: the span of the steps (baseline and score included, 0 only
    when a step reaches it), padded by 5% on each side."""
    points = []
    for kind, _, start, stop in fall.steps:
        points.extend((stop,) if kind in ("baseline", "prediction") else (start, stop))
    lo, hi = min(points), max(points)
    if hi - lo < 1e-12:
        lo, hi = lo - 1.0, hi + 1.0
    pad = 0.05 * (hi - lo)
    return lo - pad, hi + pad


def waterfall_svg(fall: Waterfall, width: int = 600) -> str:
    """The horizontal waterfall: one line per step, bars placed on a value axis zoomed to the steps;
    the baseline and the score are markers at their value, each bar is labelled ``feature = value``."""
    lo, hi = axis_range(fall)
    label_w, value_w, line_h, axis_h = 210, 80, 20, 22
    plot_w = width - label_w - value_w

    def x(v: float) -> float:
        return label_w + (v - lo) / (hi - lo) * plot_w

    rows = []
    for i, (kind, name, start, stop) in enumerate(fall.steps):
        y = i * line_h
        label = _label(kind, name, fall.values)
        if kind in ("baseline", "prediction"):
            color, mark, value = NEUTRAL, f"esinb-fi-{kind}", stop
            data = attrs(class_=mark, data_value=repr(float(stop)))
            x0 = x(stop) - 1.5
            x1 = x(stop) + 1.5
        else:
            value = stop - start
            color = POSITIVE if value >= 0 else NEGATIVE
            mark = "esinb-fi-bar" if kind == "bar" else "esinb-fi-other"
            feature_value = fall.values.get(name) if kind == "bar" else None
            data = attrs(class_=mark, data_feature=name if kind == "bar" else None, data_importance=repr(float(value)),
                         data_feature_value=None if feature_value is None else str(feature_value))
            x0, x1 = sorted((x(start), x(stop)))
        rows.append(
            f"<g{data}><title>{esc(label)}: {esc(num(value))}</title>"
            f'<text x="{label_w - 6}" y="{y + 14}" text-anchor="end" font-size="12">{esc(label)}</text>'
            f'<rect x="{x0:.1f}" y="{y + 3}" width="{max(x1 - x0, 1.0):.1f}" height="{line_h - 6}" fill="{color}"></rect>'
            f'<text x="{width - value_w + 6}" y="{y + 14}" font-size="12">'
            f'{"+" if kind in ("bar", "other") and value >= 0 else ""}{esc(num(value))}</text></g>'
        )
    height = len(fall.steps) * line_h
    zero = f'<line x1="{x(0):.1f}" x2="{x(0):.1f}" y1="0" y2="{height}" stroke="#bbb"></line>' if lo <= 0 <= hi else ""
    axis = value_axis("esinb-fi-axis", lo, hi, x, label_w, plot_w, height)
    return (f'<svg class="esinb-waterfall" width="{width}" height="{height + axis_h}" role="img" '
            f'xmlns="http://www.w3.org/2000/svg">{zero}{"".join(rows)}{axis}</svg>')


def totals_svg(meta: dict[str, Any], class_name: str | None, width: int = 560) -> str:
    """``total_feature_importance``: mean |importance| per feature with its min..max range."""
    entries = []
    for t in meta.get("total_feature_importance") or []:
        imp = t.get("importance")
        if class_name is not None:
            imp = next((c.get("importance") for c in t.get("classes") or []
                        if str(c.get("class_name")) == class_name), None)
        if isinstance(imp, dict):
            entries.append((str(t.get("feature_name")), float(imp.get("mean_magnitude", 0.0)),
                            float(imp.get("min", 0.0)), float(imp.get("max", 0.0))))
    if not entries:
        return '<div class="esinb-note esinb-fi-no-totals">no total_feature_importance for this model ' \
               '(Engine.import_model(..., data=training rows) fills it)</div>'
    entries.sort(key=lambda e: -e[1])
    top = max(e[1] for e in entries) or 1.0
    label_w, value_w, line_h = 170, 80, 20
    plot_w = width - label_w - value_w
    rows = []
    for i, (name, mean, lo, hi) in enumerate(entries):
        y = i * line_h
        rows.append(
            f"<g{attrs(class_='esinb-fi-total', data_feature=name, data_mean_magnitude=repr(mean), data_min=repr(lo), data_max=repr(hi))}>"
            f"<title>{esc(name)}: mean |importance| {esc(num(mean))} (min {esc(num(lo))}, max {esc(num(hi))})</title>"
            f'<text x="{label_w - 6}" y="{y + 14}" text-anchor="end" font-size="12">{esc(name)}</text>'
            f'<rect x="{label_w}" y="{y + 3}" width="{max(mean / top * plot_w, 1.0):.1f}" height="{line_h - 6}" '
            f'fill="{NEUTRAL}"></rect>'
            f'<text x="{width - value_w + 6}" y="{y + 14}" font-size="12">{esc(num(mean))}</text></g>'
        )
    return (f'<svg class="esinb-fi-totals" width="{width}" height="{len(entries) * line_h}" role="img" '
            f'xmlns="http://www.w3.org/2000/svg">{"".join(rows)}</svg>')


class FeatureImportanceWidget(DisplayWidget):
    """Per-row waterfall (with row and class selectors) above the model's total importance."""

    def __init__(self, result: Any, row: Any = None, *, engine: "Engine | None" = None,
                 class_name: str | None = None) -> None:
        self.frame = as_frame(result)
        prefix = find_prefix(self.frame, "feature_importance")
        if prefix is None:
            raise ValueError(
                "the result has no feature_importance column: run the model with inference_config="
                "{'regression' or 'classification': {'num_top_feature_importance_values': N}} "
                "(or use df.infer.explain(row, model_id))")
        self.prefix = prefix
        self._engine = engine
        self._meta: dict[str, dict[str, Any]] = {}
        positions = [position_of(self.frame, row)] if row is not None else list(range(len(self.frame)))
        if not positions:
            raise ValueError("the result has no rows")
        self.row_selector = row_selector(self.frame, row, self._on_row)
        self._position = positions[0]
        self.class_selector = w.Dropdown(options=[], description="class")
        self._wanted_class = class_name
        self.class_selector.observe(lambda _change: self._render(), names="value")
        self.row_view = w.HTML()
        self.model_view = w.HTML()
        controls = [c for c in (self.row_selector, self.class_selector) if c is not None]
        super().__init__(children=[w.HBox(controls), self.row_view, self.model_view])
        self.add_class("esinb-feature-importance")
        self._set_classes()
        self._render()

    # -- state ------------------------------------------------------------------------------
    @property
    def row(self) -> Any:
        """The index label of the row shown."""
        return self.frame.index[self._position]

    @property
    def class_name(self) -> str | None:
        """The class shown (classification), else None."""
        return self.class_selector.value if self.class_selector.options else None

    @property
    def trained_model_id(self) -> str | None:
        value = cell(self.frame, self._position, column(self.prefix, "model_id"))
        return None if value is None else str(value)

    def metadata(self) -> dict[str, Any]:
        key = self.trained_model_id or ""
        if key not in self._meta:
            self._meta[key] = model_importance_metadata(self._engine, self.trained_model_id)
        return self._meta[key]

    def _importance(self) -> list[dict[str, Any]]:
        return list(cell(self.frame, self._position, column(self.prefix, "feature_importance")) or [])

    def waterfall(self) -> Waterfall:
        """The steps drawn for the current row and class."""
        importance, meta = self._importance(), self.metadata()
        predicted = cell(self.frame, self._position, column(self.prefix, "predicted_value"))
        klass = self.class_name
        if klass is None:
            end = float(predicted) if isinstance(predicted, (int, float)) and not isinstance(predicted, bool) else None
            features = _features(importance, None)
            return Waterfall(features, _class_baseline(meta, None), end, predicted=predicted,
                             values=self._feature_values(features)).build()
        top = cell(self.frame, self._position, column(self.prefix, "top_classes"))
        probability = _probability(top, klass)
        if probability is None and str(predicted) == klass:
            probability = cell(self.frame, self._position, column(self.prefix, "prediction_probability"))
        classes = _classes_of(importance)
        if probability is None and len(classes) == 2 and predicted is not None:
            other = cell(self.frame, self._position, column(self.prefix, "prediction_probability"))
            if isinstance(other, (int, float)) and str(predicted) != klass:
                probability = 1.0 - float(other)
        features = _features(importance, klass)
        return Waterfall(features, _class_baseline(meta, klass), self._class_score(klass, classes, features, probability),
                         class_name=klass, probability=probability, predicted=predicted,
                         values=self._feature_values(features)).build()

    def _feature_values(self, features: list[tuple[str, float]]) -> dict[str, Any]:
        out = {}
        for name, _ in features:
            value = cell(self.frame, self._position, name)
            if value is not None and (self.prefix == "" or not name.startswith(self.prefix + ".")):
                out[name] = value
        return out

    def _class_score(self, klass: str, classes: list[str], features: list[tuple[str, float]],
                     probability: Any) -> float | None:
        """The class's score in the importance's units (log-odds / raw margin).

        Binary models: the log-odds of the class's probability (exact: the two classes'
        importances are opposite). Otherwise the row is run again through ``_infer`` with every
        feature's importance (baseline + their sum is the margin), when the frame holds the
        row's inputs and that answer agrees with the importances shown; else None.
        """
        if len(classes) == 2 and isinstance(probability, (int, float)) and 0.0 < float(probability) < 1.0:
            p = float(probability)
            return math.log(p) - math.log1p(-p)
        base = _class_baseline(self.metadata(), klass)
        if base is not None and len(features) >= self._input_field_count():
            return base + sum(v for _, v in features)  # every feature listed: nothing to run again
        full = self._full_importance([self._position])
        if full is None or full[0] is None:
            return None
        base = _class_baseline(self.metadata(), klass)
        if base is None:
            return None
        return base + sum(v for _, v in _features(full[0], klass))

    def _input_field_count(self) -> int:
        """How many input fields the model has (a large number when unknown)."""
        key = f"fields:{self.trained_model_id or ''}"
        if key not in self._meta:
            count = _ALL_FEATURES
            if self.trained_model_id:
                if self._engine is None:
                    self._engine = default_engine()
                resp = self._engine.request("GET", f"_ml/trained_models/{self.trained_model_id}")
                configs = (resp.body or {}).get("trained_model_configs") or [] if resp.ok else []
                if configs:
                    count = len((configs[0].get("input") or {}).get("field_names") or []) or _ALL_FEATURES
            self._meta[key] = {"count": count}
        return int(self._meta[key]["count"])

    def _input_docs(self, positions: list[int]) -> list[dict[str, Any]]:
        docs = []
        result_cols = {str(c) for c in self.frame.columns if self.prefix and str(c).startswith(self.prefix + ".")}
        for pos in positions:
            doc = {}
            for c in self.frame.columns:
                name = str(c)
                if name in result_cols or (not self.prefix and name in _RESULT_LEAVES):
                    continue
                value = cell(self.frame, pos, name)
                if value is not None:
                    doc[name] = value.item() if hasattr(value, "item") else value
            docs.append(doc)
        return docs

    def _full_importance(self, positions: list[int]) -> list[list[dict[str, Any]] | None] | None:
        """Every feature's importance for the rows at ``positions``, from the model run again on the
        frame's input columns; a row whose answer disagrees with the importances shown is None."""
        model_id = self.trained_model_id
        if not model_id:
            return None
        if self._engine is None:
            self._engine = default_engine()
        kind = "classification" if _classes_of(self._importance()) else "regression"
        resp = self._engine.request("POST", f"_ml/trained_models/{model_id}/_infer", {
            "docs": self._input_docs(positions),
            "inference_config": {kind: {"num_top_feature_importance_values": _ALL_FEATURES}}})
        if not resp.ok:
            return None
        answers = (resp.body or {}).get("inference_results") or []
        out: list[list[dict[str, Any]] | None] = []
        for pos, answer in zip(positions, answers):
            full = list(answer.get("feature_importance") or [])
            shown = list(cell(self.frame, pos, column(self.prefix, "feature_importance")) or [])
            out.append(full if _agrees(shown, full) else None)
        return out if len(out) == len(positions) else None

    # -- events / rendering -----------------------------------------------------------------
    def _on_row(self, change: dict[str, Any]) -> None:
        self._position = int(change["new"])
        self._set_classes()
        self._render()

    def _set_classes(self) -> None:
        classes = _classes_of(self._importance())
        predicted = cell(self.frame, self._position, column(self.prefix, "predicted_value"))
        current = self.class_selector.value if self.class_selector.options else None
        for wanted in (self._wanted_class, current, None if predicted is None else str(predicted)):
            if wanted in classes:
                pick = wanted
                break
        else:
            pick = classes[0] if classes else None
        with self.hold_trait_notifications():
            self.class_selector.options = classes
            if pick is not None:
                self.class_selector.value = pick
        self.class_selector.layout.display = None if classes else "none"

    def _render(self) -> None:
        self.row_view.value = self.row_html()
        self.model_view.value = self.model_html()

    def row_html(self) -> str:
        fall = self.waterfall()
        title = f"row {esc(self.row)}"
        if self.trained_model_id:
            title += f" · model {esc(self.trained_model_id)}"
        if fall.predicted is not None:
            title += f" · predicted {esc(num(fall.predicted))}"
        if fall.class_name is not None:
            title += f" · class {esc(fall.class_name)}"
            if fall.probability is not None:
                title += f" (probability {esc(num(fall.probability))})"
        note = "" if fall.baseline is not None else (
            '<div class="esinb-note">the model\'s feature_importance_baseline is unknown to this engine: '
            "the waterfall starts at 0</div>")
        if fall.baseline is not None and fall.class_name is not None and fall.end is None:
            note += ('<div class="esinb-note esinb-fi-score-unknown">the class\'s score is unknown (the frame lacks '
                     "the row's inputs): the bars stop at the baseline plus the features shown</div>")
        inner = f'<div class="esinb-title">{title}</div>{note}{waterfall_svg(fall)}'
        return box(inner, "esinb-fi-row", data_row=self.row, data_model_id=self.trained_model_id, data_class=fall.class_name,
                   data_baseline=fall.baseline)

    def model_html(self) -> str:
        meta = self.metadata()
        title = f"model {esc(self.trained_model_id or '?')}: total feature importance"
        if self.class_name is not None:
            title += f" for class {esc(self.class_name)}"
        return box(f'<div class="esinb-title">{title}</div>{totals_svg(meta, self.class_name)}', "esinb-fi-model",
                   data_model_id=self.trained_model_id, data_class=self.class_name)

    def static_html(self) -> str:
        return self.row_html() + self.model_html()

    def to_shap(self, class_name: str | None = None) -> Any:
        """The frame's importances as a ``shap.Explanation`` (``values`` rows x features,
        ``base_values``, ``data``: the rows' feature values, ``feature_names``), for ``class_name``
        (classification; default the class shown), so shap's plots draw them.

        Where the frame holds only the top features and the row's inputs, the model is run again
        with every feature's importance, so each row's values sum to its score minus the baseline.
        """
        try:
            import shap
        except ImportError as exc:  # pragma: no cover - shap is optional
            raise ImportError("to_shap() needs the shap package: pip install shap") from exc

        klass = class_name if class_name is not None else self.class_name
        positions = list(range(len(self.frame)))
        rows = [list(cell(self.frame, p, column(self.prefix, "feature_importance")) or []) for p in positions]
        full = self._full_importance(positions)
        if full is not None:
            rows = [f if f is not None else r for f, r in zip(full, rows)]
        names: list[str] = []
        for r in rows:
            for entry in r:
                if str(entry.get("feature_name")) not in names:
                    names.append(str(entry.get("feature_name")))
        where = {n: i for i, n in enumerate(names)}
        values = np.zeros((len(rows), len(names)))
        for i, r in enumerate(rows):
            for name, v in _features(r, klass):
                values[i, where[name]] = v
        base = _class_baseline(self.metadata(), klass)
        data = np.full((len(rows), len(names)), np.nan)
        for j, name in enumerate(names):
            if name in self.frame.columns:
                data[:, j] = pd.to_numeric(self.frame[name], errors="coerce").to_numpy(dtype=float)
        return shap.Explanation(values=values, base_values=np.full(len(rows), 0.0 if base is None else base),
                                data=data, feature_names=names)

    def text(self) -> str:
        fall = self.waterfall()
        head = f"feature importance of row {plain(self.row)!r}" + (f", model {self.trained_model_id}" if self.trained_model_id else "")
        if fall.class_name is not None:
            head += f", class {fall.class_name}"
        rows = [(name, stop - start if kind in ("bar", "other") else stop) for kind, name, start, stop in fall.steps]
        return head + "\n" + text_table(["step", "value"], rows)


def feature_importance(result: Any, row: Any = None, *, engine: "Engine | None" = None,
                       class_name: str | None = None) -> FeatureImportanceWidget:
    """The feature-importance widget of a ``df.infer.run`` result.

    ``row`` is an index label (``None``: a row selector). ``class_name`` picks the class first
    shown for classification (default: the row's predicted class). ``engine`` is where the model's
    baseline and totals are read (default: the default engine).
    """
    return FeatureImportanceWidget(result, row, engine=engine, class_name=class_name)
