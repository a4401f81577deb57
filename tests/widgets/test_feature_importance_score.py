"""The waterfall always ends at the model's score (regression prediction, classification margin), the
bars carry the row's feature values, the axis is zoomed to the steps, and ``to_shap()``."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from es_infer_nb import Engine
from es_infer_nb.widgets import feature_importance


@pytest.fixture(scope="module")
def cancer():
    import xgboost as xgb
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer(as_frame=True)
    x = data.data.set_axis([c.replace(" ", "_") for c in data.data.columns], axis=1)
    clf = xgb.XGBClassifier(n_estimators=30, max_depth=3).fit(x, data.target)
    engine = Engine()
    engine.import_model("cancer", clf, list(x.columns), classification_labels=["malignant", "benign"])
    return engine, clf, x


def _value(html: str, cls: str) -> float:
    return float(re.search(rf'class="{cls}"[^>]*?data-value="([^"]*)"', html).group(1))


def test_binary_classification_ends_at_xgboost_margin(cancer):
    engine, clf, x = cancer
    rows = x.iloc[[0, 1, 19, 20, 40]]
    result = rows.infer.run("cancer", engine=engine, progress=False,
                            inference_config={"classification": {"num_top_feature_importance_values": 3}})
    margins = clf.predict(rows, output_margin=True)
    for i, label in enumerate(rows.index):
        widget = feature_importance(result, row=label, engine=engine, class_name="benign")
        fall = widget.waterfall()
        kinds = [s[0] for s in fall.steps]
        assert kinds == ["baseline", "bar", "bar", "bar", "other", "prediction"]
        assert fall.steps[-1][3] == pytest.approx(float(margins[i]), abs=1e-5)
        assert fall.steps[-2][3] == pytest.approx(float(margins[i]), abs=1e-5)  # the other step ends there
        assert _value(widget.row_view.value, "esinb-fi-prediction") == pytest.approx(float(margins[i]), abs=1e-5)
        widget.class_selector.value = "malignant"  # the other class: the opposite log-odds
        assert widget.waterfall().steps[-1][3] == pytest.approx(-float(margins[i]), abs=1e-5)


def test_binary_without_top_classes_uses_prediction_probability(cancer):
    engine, clf, x = cancer
    rows = x.head(3)
    result = rows.infer.run("cancer", engine=engine, progress=False, inference_config={
        "classification": {"num_top_feature_importance_values": 2, "num_top_classes": 0}})
    assert "ml.inference.top_classes" not in result.columns
    margins = clf.predict(rows, output_margin=True)
    for i, label in enumerate(rows.index):
        for klass, sign in (("benign", 1.0), ("malignant", -1.0)):
            fall = feature_importance(result, row=label, engine=engine, class_name=klass).waterfall()
            assert fall.steps[-1][3] == pytest.approx(sign * float(margins[i]), abs=1e-5)


def test_multiclass_top_one_ends_at_the_class_margin():
    import xgboost as xgb

    rng = np.random.default_rng(3)
    x = pd.DataFrame(rng.normal(size=(200, 4)), columns=["a", "b", "c", "d"])
    y = np.where(x.a > 0.5, 0, np.where(x.b > 0, 1, 2))
    clf = xgb.XGBClassifier(n_estimators=5, max_depth=3).fit(x, y)
    engine = Engine()
    engine.import_model("multi", clf, list(x.columns), classification_labels=["x", "y", "z"])
    rows = x.head(4)
    result = rows.infer.run("multi", engine=engine, progress=False, inference_config={
        "classification": {"num_top_feature_importance_values": 1, "num_top_classes": -1}})
    margins = clf.predict(rows, output_margin=True)
    for i, label in enumerate(rows.index):
        for k, klass in enumerate(["x", "y", "z"]):
            fall = feature_importance(result, row=label, engine=engine, class_name=klass).waterfall()
            assert fall.steps[-1][3] == pytest.approx(float(margins[i, k]), abs=1e-5)
            assert len([s for s in fall.steps if s[0] == "bar"]) == 1


def test_regression_top_n_ends_at_the_prediction_with_values_and_a_zoomed_axis():
    import xgboost as xgb

    rng = np.random.default_rng(5)
    x = pd.DataFrame(rng.normal(size=(150, 4)), columns=["a", "b", "c", "d"])
    reg = xgb.XGBRegressor(n_estimators=6, max_depth=2).fit(x, 150 + 3 * x.a + x.b - x.c)
    engine = Engine()
    engine.import_model("reg150", reg, list(x.columns))
    rows = x.head(3)
    result = rows.infer.run("reg150", engine=engine, progress=False,
                            inference_config={"regression": {"num_top_feature_importance_values": 2}})
    widget = feature_importance(result, row=1, engine=engine)
    fall = widget.waterfall()
    predicted = result.loc[1, "ml.inference.predicted_value"]
    assert fall.steps[-1][3] == pytest.approx(predicted, abs=1e-6)
    assert fall.steps[-1][3] == pytest.approx(float(reg.predict(rows)[1]), abs=1e-4)
    html = widget.row_view.value
    # feature values on the bars, as shap writes them: "a = 0.1234"
    for name, _ in fall.features:
        assert float(re.search(rf'data-feature="{name}"[^>]*?data-feature-value="([^"]*)"', html).group(1)) == \
            pytest.approx(rows.loc[1, name])
        assert f"{name} = " in html
    # the axis is zoomed to the steps (baseline ~150): it does not start at 0
    lo = float(re.search(r'class="esinb-fi-axis"[^>]*?data-lo="([^"]*)"', html).group(1))
    hi = float(re.search(r'class="esinb-fi-axis"[^>]*?data-hi="([^"]*)"', html).group(1))
    assert 100 < lo < min(fall.baseline, predicted) and max(fall.baseline, predicted) < hi


def test_to_shap_gives_an_explanation(cancer):
    import shap

    engine, clf, x = cancer
    rows = x.head(6)
    result = rows.infer.run("cancer", engine=engine, progress=False,
                            inference_config={"classification": {"num_top_feature_importance_values": 3}})
    explanation = feature_importance(result, engine=engine, class_name="benign").to_shap()
    assert isinstance(explanation, shap.Explanation)
    assert explanation.values.shape == (6, x.shape[1]) and explanation.data.shape == (6, x.shape[1])
    margins = clf.predict(rows, output_margin=True)
    np.testing.assert_allclose(explanation.base_values + explanation.values.sum(axis=1), margins, atol=1e-5)
    col = list(explanation.feature_names).index("worst_texture")
    np.testing.assert_allclose(explanation.data[:, col], rows["worst_texture"].to_numpy())
    reference = shap.TreeExplainer(clf).shap_values(rows)
    np.testing.assert_allclose(explanation.values[:, col], reference[:, list(x.columns).index("worst_texture")],
                               atol=1e-4)


def test_multiclass_with_every_feature_listed_runs_nothing_again(eng, cls_result):
    def count() -> int:
        return eng.request("GET", "_ml/trained_models/cls/_stats").body[
            "trained_model_stats"][0]["inference_stats"]["inference_count"]

    before = count()
    widget = feature_importance(cls_result, row="r1", engine=eng)
    for klass in widget.class_selector.options:
        widget.class_selector.value = klass
        fall = widget.waterfall()
        assert fall.end == pytest.approx(fall.baseline + sum(v for _, v in fall.features))
    assert count() == before
