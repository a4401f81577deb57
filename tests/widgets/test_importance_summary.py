"""importance_summary: the beeswarm (a line per feature by mean |importance|, a dot per row) and the mean
|importance| bars, checked on the rendered marks against numpy over the importance frame."""

from __future__ import annotations

from html.parser import HTMLParser

import ipywidgets as w
import numpy as np
import pandas as pd
import pytest
from conftest import CLASSES, training_frame

from es_infer_nb import Engine
from es_infer_nb.widgets import ImportanceSummaryWidget, importance_summary


class _Marks(HTMLParser):
    """The beeswarm's feature lines (each with its dots) and the bars, in document order."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[dict] = []
        self.bars: list[dict] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        cls = a.get("class", "")
        if cls == "esinb-fis-feature":
            self.lines.append({**a, "dots": []})
        elif cls == "esinb-fis-dot":
            self.lines[-1]["dots"].append(a)
        elif cls == "esinb-fis-bar":
            self.bars.append(a)


def _marks(html: str) -> _Marks:
    parser = _Marks()
    parser.feed(html)
    return parser


def _numpy_mean_abs(imp: pd.DataFrame) -> pd.Series:
    """Mean |importance| over the rows with a result, a feature a row did not report counting 0."""
    values = imp.to_numpy()
    has = ~np.isnan(values).all(axis=1)
    return pd.Series(np.nan_to_num(np.abs(values[has]), nan=0.0).mean(axis=0), index=imp.columns)


@pytest.fixture(scope="module")
def many(eng) -> pd.DataFrame:
    rows = training_frame(60)
    return rows.infer.run("reg", engine=eng, progress=False,
                          inference_config={"regression": {"num_top_feature_importance_values": 2}})


def test_regression_summary_numbers_order_and_dots(eng, many):
    widget = many.infer.importance_summary(engine=eng)
    assert isinstance(widget, ImportanceSummaryWidget) and isinstance(widget, w.VBox)
    imp = many.infer.importance_frame()
    expected = _numpy_mean_abs(imp).sort_values(ascending=False, kind="stable")
    assert expected.iloc[0] > expected.iloc[-1] >= 0
    marks = _marks(widget._repr_html_())
    # the beeswarm's lines and the bars: features by mean |importance|, largest first, numpy's numbers
    assert [line["data-feature"] for line in marks.lines] == list(expected.index)
    assert [float(line["data-mean-abs"]) for line in marks.lines] == pytest.approx(list(expected))
    assert [b["data-feature"] for b in marks.bars] == list(expected.index)
    assert [float(b["data-mean-abs"]) for b in marks.bars] == pytest.approx(list(expected))
    pd.testing.assert_series_equal(widget.mean_abs, expected, check_names=False)
    # one dot per row that reported the feature, at its signed importance, with the row's feature value
    for line in marks.lines:
        name = line["data-feature"]
        reported = imp[name].dropna()
        assert sorted(float(d["data-importance"]) for d in line["dots"]) == pytest.approx(sorted(reported))
        pairs = sorted((float(d["data-importance"]), float(d["data-feature-value"])) for d in line["dots"])
        np.testing.assert_allclose(pairs, sorted(zip(reported, many.loc[reported.index, name])), rtol=1e-12)
    assert any(float(d["data-importance"]) < 0 for line in marks.lines for d in line["dots"])  # signed
    text = repr(widget)
    assert text.splitlines()[0] == "feature importance over 60 rows"
    assert text.splitlines()[2].split()[0] == expected.index[0]


def test_rows_without_a_result_and_limits(eng, many):
    frame = many.copy()
    frame.loc[frame.index[:10], "ml.inference.feature_importance"] = None
    widget = importance_summary(frame, max_display=1, max_points=20)
    imp = frame.infer.importance_frame()
    assert imp.iloc[:10].isna().all().all()
    expected = _numpy_mean_abs(imp).sort_values(ascending=False, kind="stable")
    assert list(widget.mean_abs) == pytest.approx(list(expected))  # the 10 rows without a result do not count
    html = widget.static_html()
    marks = _marks(html)
    assert [line["data-feature"] for line in marks.lines] == [expected.index[0]]
    assert len(marks.lines[0]["dots"]) <= 20
    assert f"{len(imp.columns) - 1} more features not shown" in html and "of 60 rows, evenly spread" in html
    assert 'data-rows="50"' in html


def test_classification_summary_per_class(eng, rows):
    result = training_frame(40).infer.run("cls", engine=eng, progress=False, inference_config={
        "classification": {"num_top_classes": -1, "num_top_feature_importance_values": 3}})
    widget = result.infer.importance_summary()
    assert widget.classes == sorted(CLASSES)
    assert widget.class_name is None  # 3 classes: each row's predicted class by default
    expected = _numpy_mean_abs(result.infer.importance_frame())
    assert dict(widget.mean_abs) == pytest.approx(dict(expected))
    widget.class_selector.value = "mid"
    assert widget.class_name == "mid"
    mid = _numpy_mean_abs(result.infer.importance_frame(class_name="mid")).sort_values(ascending=False, kind="stable")
    marks = _marks(widget.view.value)
    assert [line["data-feature"] for line in marks.lines] == list(mid.index)
    assert [float(b["data-mean-abs"]) for b in marks.bars] == pytest.approx(list(mid))
    assert "toward class mid" in widget.view.value
    chosen = importance_summary(result, class_name="hi")
    assert dict(chosen.mean_abs) == pytest.approx(dict(_numpy_mean_abs(result.infer.importance_frame(class_name="hi"))))
    with pytest.raises(KeyError, match="class \\[nope\\].*hi, lo, mid"):
        importance_summary(result, class_name="nope")


def test_binary_classification_shows_the_second_class_by_default():
    import xgboost as xgb

    x = training_frame(80)
    engine = Engine()
    engine.import_model("bin", xgb.XGBClassifier(n_estimators=3, max_depth=2).fit(x, (x.a + x.c > 0).astype(int)))
    result = x.infer.run("bin", engine=engine, progress=False, inference_config={
        "classification": {"num_top_feature_importance_values": 3}})
    widget = result.infer.importance_summary(engine=engine)
    assert widget.classes == ["0", "1"] and widget.class_name == "1"
    expected = _numpy_mean_abs(result.infer.importance_frame(class_name=1)).sort_values(ascending=False, kind="stable")
    assert [line["data-feature"] for line in _marks(widget._repr_html_()).lines] == list(expected.index)
    assert set(expected.index[:2]) == {"a", "c"}  # the features the label was made of lead


def test_to_shap_and_missing_column(eng, reg_result):
    shap = pytest.importorskip("shap")
    widget = importance_summary(reg_result, engine=eng)
    explanation = widget.to_shap()
    assert isinstance(explanation, shap.Explanation)
    values = pd.DataFrame(explanation.values, columns=explanation.feature_names, index=reg_result.index)
    assert dict(np.abs(values).mean()) == pytest.approx(dict(widget.mean_abs))  # every feature reported here
    np.testing.assert_allclose(explanation.data, reg_result[explanation.feature_names].to_numpy())
    with pytest.raises(ValueError, match="num_top_feature_importance_values"):
        importance_summary(reg_result.drop(columns=["ml.inference.feature_importance"]))
