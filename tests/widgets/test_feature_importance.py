"""feature_importance: the waterfall steps, SVG marks, selectors and the model's totals, by widget state."""

from __future__ import annotations

import re

import ipywidgets as w
import pandas as pd
import pytest
from conftest import CLASSES, FEATURES

from es_infer_nb import Engine
from es_infer_nb.widgets import FeatureImportanceWidget, feature_importance


def _meta(eng, model_id):
    return eng.request("GET", f"_ml/trained_models/{model_id}", params={
        "include": "feature_importance_baseline,total_feature_importance"}).body["trained_model_configs"][0]["metadata"]


def _marks(html: str, cls: str, attr: str) -> list[str]:
    return re.findall(rf'class="{cls}"[^>]*?{attr}="([^"]*)"', html)


def test_regression_waterfall_goes_from_the_baseline_to_the_prediction(eng, reg_result):
    widget = feature_importance(reg_result, row="r2", engine=eng)
    assert isinstance(widget, FeatureImportanceWidget) and isinstance(widget, w.VBox)
    assert widget.row_selector is None and widget.class_name is None and widget.row == "r2"
    fall = widget.waterfall()
    base = _meta(eng, "reg")["feature_importance_baseline"]["baseline"]
    predicted = reg_result.loc["r2", "ml.inference.predicted_value"]
    assert fall.baseline == pytest.approx(base)
    kinds = [s[0] for s in fall.steps]
    assert kinds == ["baseline", "bar", "bar", "bar", "prediction"]  # every feature shown: nothing left over
    assert fall.steps[-1][3] == pytest.approx(predicted, abs=1e-6)
    expected = {f["feature_name"]: f["importance"] for f in reg_result.loc["r2", "ml.inference.feature_importance"]}
    assert dict(fall.features) == pytest.approx(expected)
    assert [abs(v) for _, v in fall.features] == sorted((abs(v) for v in expected.values()), reverse=True)

    html = widget.row_view.value
    assert 'data-row="r2"' in html and 'data-model-id="reg"' in html
    assert sorted(_marks(html, "esinb-fi-bar", "data-feature")) == sorted(FEATURES)
    shown = dict(zip(_marks(html, "esinb-fi-bar", "data-feature"), map(float, _marks(html, "esinb-fi-bar", "data-importance"))))
    assert shown == pytest.approx(expected)
    assert float(_marks(html, "esinb-fi-prediction", "data-value")[0]) == pytest.approx(predicted, abs=1e-6)
    assert float(_marks(html, "esinb-fi-baseline", "data-value")[0]) == pytest.approx(base)
    assert "esinb-fi-other" not in html
    # the model view: total_feature_importance, one bar per feature
    totals = {t["feature_name"]: t["importance"]["mean_magnitude"] for t in _meta(eng, "reg")["total_feature_importance"]}
    model_html = widget.model_view.value
    got = dict(zip(_marks(model_html, "esinb-fi-total", "data-feature"),
                   map(float, _marks(model_html, "esinb-fi-total", "data-mean-magnitude"))))
    assert got == pytest.approx(totals)


def test_row_selector_switches_rows(eng, reg_result):
    widget = feature_importance(reg_result, engine=eng)
    assert isinstance(widget.row_selector, w.Dropdown)
    assert [label for label, _ in widget.row_selector.options] == list(reg_result.index)
    assert widget.row == "r0" and 'data-row="r0"' in widget.row_view.value
    widget.row_selector.value = 3
    assert widget.row == "r3" and 'data-row="r3"' in widget.row_view.value
    assert widget.children[0].children == (widget.row_selector, widget.class_selector)
    assert widget.class_selector.layout.display == "none"  # regression: no classes to pick


def test_top_n_leaves_an_other_step(eng, rows):
    one = rows.infer.run("reg", engine=eng, progress=False,
                         inference_config={"regression": {"num_top_feature_importance_values": 1}})
    fall = feature_importance(one, row="r1", engine=eng).waterfall()
    assert [s[0] for s in fall.steps] == ["baseline", "bar", "other", "prediction"]
    (_, _, start, stop) = fall.steps[2]
    assert stop == pytest.approx(one.loc["r1", "ml.inference.predicted_value"])
    assert stop - start == pytest.approx(one.loc["r1", "ml.inference.predicted_value"] - fall.baseline - fall.features[0][1])


def test_classification_per_class(eng, cls_result):
    widget = feature_importance(cls_result, row="r1", engine=eng)
    predicted = cls_result.loc["r1", "ml.inference.predicted_value"]
    assert list(widget.class_selector.options) == CLASSES
    assert widget.class_name == predicted  # starts on the predicted class
    baselines = {c["class_name"]: c["baseline"] for c in _meta(eng, "cls")["feature_importance_baseline"]["classes"]}
    for klass in CLASSES:
        widget.class_selector.value = klass
        fall = widget.waterfall()
        assert fall.class_name == klass and fall.baseline == pytest.approx(baselines[klass])
        row = cls_result.loc["r1", "ml.inference.feature_importance"]
        expected = {f["feature_name"]: next(c["importance"] for c in f["classes"] if c["class_name"] == klass) for f in row}
        assert dict(fall.features) == pytest.approx(expected)
        assert fall.steps[-1][3] == pytest.approx(baselines[klass] + sum(expected.values()))
        probability = next(c["class_probability"] for c in cls_result.loc["r1", "ml.inference.top_classes"]
                           if c["class_name"] == klass)
        assert fall.probability == pytest.approx(probability)
        assert f'data-class="{klass}"' in widget.row_view.value and f'data-class="{klass}"' in widget.model_view.value
        assert sorted(_marks(widget.model_view.value, "esinb-fi-total", "data-feature")) == sorted(FEATURES)
    assert feature_importance(cls_result, row="r1", engine=eng, class_name="mid").class_name == "mid"


def test_text_and_html_reprs(eng, cls_result):
    widget = feature_importance(cls_result, row="r0", engine=eng)
    text = repr(widget)
    assert text.startswith("feature importance of row 'r0', model cls, class ") and "baseline" in text
    assert widget._repr_html_() == widget.row_view.value + widget.model_view.value
    bundle = widget._repr_mimebundle_()
    assert {"text/plain", "text/html", "application/vnd.jupyter.widget-view+json"} <= set(bundle)
    assert bundle["text/plain"] == text


def test_model_unknown_to_the_engine_starts_at_zero(reg_result):
    widget = feature_importance(reg_result, row="r0", engine=Engine())
    fall = widget.waterfall()
    assert fall.baseline is None and fall.steps[0][3] == 0.0 and "other" not in [s[0] for s in fall.steps]
    assert "baseline is unknown" in widget.row_view.value
    assert "esinb-fi-no-totals" in widget.model_view.value


def test_accepts_an_infer_result_dict(eng):
    (result,) = eng.infer("reg", [{"a": 1.0, "b": 0.0, "c": 2.0}], {"regression": {"num_top_feature_importance_values": 3}})
    result = {**result, "model_id": "reg"}
    widget = feature_importance(result, engine=eng)
    assert widget.prefix == "" and widget.trained_model_id == "reg"
    assert widget.waterfall().steps[-1][3] == pytest.approx(result["predicted_value"], abs=1e-6)


def test_bad_input(eng, reg_result, rows):
    with pytest.raises(ValueError, match="num_top_feature_importance_values"):
        feature_importance(rows)
    with pytest.raises(KeyError, match="not in the frame's index"):
        feature_importance(reg_result, row="nope", engine=eng)
    with pytest.raises(TypeError, match="df.infer.run"):
        feature_importance(42)


def test_accessor_explain_returns_the_widget(eng, rows):
    widget = rows.infer.explain("r4", "cls", engine=eng)
    assert isinstance(widget, FeatureImportanceWidget) and widget.row == "r4"
    assert isinstance(widget.frame, pd.DataFrame) and len(widget.frame) == 1
