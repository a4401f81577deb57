"""df.infer.evaluate(y_true): scikit-learn models imported into the engine, run over held-out rows, and
the numbers compared with scikit-learn's metrics on the same predictions; the widget's marks and errors."""

from __future__ import annotations

import re

import ipywidgets as w
import numpy as np
import pandas as pd
import pytest

import es_infer_nb  # noqa: F401  (registers the accessors)
from es_infer_nb import Engine
from es_infer_nb.widgets import EvaluationWidget

sklearn = pytest.importorskip("sklearn")
from sklearn import datasets, metrics  # noqa: E402
from sklearn.calibration import calibration_curve  # noqa: E402
from sklearn.ensemble import GradientBoostingClassifier, GradientBoostingRegressor, RandomForestClassifier  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402


def _marks(html: str, cls: str, attr: str) -> list[str]:
    return re.findall(rf'class="[^"]*\b{cls}\b[^"]*"[^>]*?{attr}="([^"]*)"', html)


@pytest.fixture(scope="module")
def binary():
    x, y = datasets.load_breast_cancer(return_X_y=True, as_frame=True)
    x = x.iloc[:, :8]  # a small model: 8 features, 20 shallow trees
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.4, random_state=0)
    clf = GradientBoostingClassifier(n_estimators=20, max_depth=2, random_state=0).fit(x_train, y_train)
    engine = Engine()
    engine.import_model("cancer", clf)
    out = x_test.infer.run("cancer", engine=engine, progress=False,
                           inference_config={"classification": {"num_top_classes": -1}})
    return clf, x_test, y_test, out


def test_binary_classification_equals_sklearn(binary):
    clf, x_test, y_test, out = binary
    widget = out.infer.evaluate(y_test)
    assert isinstance(widget, EvaluationWidget) and isinstance(widget, w.VBox) and widget.task == "classification"
    pred = out["ml.inference.predicted_value"].to_numpy()
    assert (pred == clf.predict(x_test)).mean() > 0.99  # the imported model is the fitted one
    proba = out.infer.proba()[1].to_numpy()
    np.testing.assert_allclose(proba, clf.predict_proba(x_test)[:, 1], atol=1e-5)
    m = widget.metrics
    assert m["accuracy"] == pytest.approx(metrics.accuracy_score(y_test, pred))
    p, r, f, s = metrics.precision_recall_fscore_support(y_test, pred, zero_division=0)
    assert list(widget.per_class.index) == ["0", "1"]
    np.testing.assert_allclose(widget.per_class["precision"], p)
    np.testing.assert_allclose(widget.per_class["recall"], r)
    np.testing.assert_allclose(widget.per_class["f1"], f)
    assert list(widget.per_class["support"]) == list(s)
    assert m["macro_f1"] == pytest.approx(metrics.f1_score(y_test, pred, average="macro"))
    assert m["macro_recall"] == pytest.approx(metrics.recall_score(y_test, pred, average="macro"))
    np.testing.assert_array_equal(widget.confusion.to_numpy(), metrics.confusion_matrix(y_test, pred))
    frac, mean = calibration_curve(y_test, proba, n_bins=10)
    np.testing.assert_allclose(widget.calibration["fraction_positive"], frac)
    np.testing.assert_allclose(widget.calibration["mean_predicted"], mean)
    assert widget.calibration["count"].sum() == len(y_test)
    assert m["roc_auc"] == pytest.approx(metrics.roc_auc_score(y_test, proba))
    assert m["brier"] == pytest.approx(metrics.brier_score_loss(y_test, proba))
    assert m["rows"] == len(y_test) and m["rows_skipped"] == 0
    # the static fallback carries the same numbers
    html = widget._repr_html_()
    shown = dict(zip(_marks(html, "esinb-ev-metric", "data-name"), map(float, _marks(html, "esinb-ev-metric", "data-value"))))
    assert shown == pytest.approx(m)
    cells = re.findall(r'data-true="([^"]*)" data-predicted="([^"]*)" data-count="(\d+)"', html)
    assert {(t, q): int(c) for t, q, c in cells} == {(str(t), str(q)): int(widget.confusion.loc[str(t), str(q)])
                                                   for t in (0, 1) for q in (0, 1)}
    assert len(_marks(html, "esinb-ev-calibration-point", "data-count")) == len(widget.calibration)
    assert "accuracy" in repr(widget)


def test_y_true_as_column_list_or_reordered_series(binary):
    _, _, y_test, out = binary
    expected = out.infer.evaluate(y_test).metrics
    labelled = out.assign(label=y_test)
    assert labelled.infer.evaluate("label").metrics == pytest.approx(expected)
    assert out.infer.evaluate(list(y_test)).metrics == pytest.approx(expected)
    assert out.infer.evaluate(y_test.sample(frac=1.0, random_state=1)).metrics == pytest.approx(expected)  # by label
    assert out.infer.evaluate(y_test.reset_index(drop=True)).metrics == pytest.approx(expected)  # in order
    # the positive class of the calibration curve can be chosen
    zero = out.infer.evaluate(y_test, positive_class=0)
    frac, _ = calibration_curve(y_test == 0, out.infer.proba()[0].to_numpy(), n_bins=10)
    np.testing.assert_allclose(zero.calibration["fraction_positive"], frac)


def test_mismatched_or_wrong_y_true_says_how_to_fix(binary):
    _, _, y_test, out = binary
    with pytest.raises(ValueError, match=rf"y_true has {len(y_test) - 1} values but the frame has {len(out)} rows: "
                                         r"pass the true values of these rows.*y_test\.loc\[df\.index\]"):
        out.infer.evaluate(y_test.iloc[1:])
    with pytest.raises(ValueError, match="y_true has 3 values"):
        out.infer.evaluate([0, 1, 0])
    with pytest.raises(KeyError, match=r"y_true: column \[target\] is not in the frame"):
        out.infer.evaluate("target")
    with pytest.raises(KeyError, match=r"positive_class \[maybe\]"):
        out.infer.evaluate(y_test, positive_class="maybe")
    with pytest.raises(KeyError, match="run a model with df.infer.run first"):
        pd.DataFrame({"a": [1]}).infer.evaluate([1])


def test_multiclass_with_missing_labels_and_top_label_calibration():
    x, y = datasets.load_iris(return_X_y=True, as_frame=True)
    names = np.array(["setosa", "versicolor", "virginica"])
    y = pd.Series(names[y], index=y.index)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.5, random_state=2)
    clf = RandomForestClassifier(n_estimators=5, max_depth=2, random_state=0).fit(x_train, y_train)
    engine = Engine()
    engine.import_model("iris", clf)
    out = x_test.infer.run("iris", engine=engine, progress=False)
    truth = y_test.copy()
    truth.iloc[:3] = None  # rows without a true value are left out
    widget = out.infer.evaluate(truth)
    pred = out["ml.inference.predicted_value"]
    keep = truth.notna().to_numpy()
    assert widget.metrics["rows"] == keep.sum() and widget.metrics["rows_skipped"] == 3
    assert widget.metrics["accuracy"] == pytest.approx(metrics.accuracy_score(truth[keep], pred[keep]))
    p, r, _, _ = metrics.precision_recall_fscore_support(truth[keep], pred[keep], labels=list(names), zero_division=0)
    np.testing.assert_allclose(widget.per_class.loc[list(names), "precision"], p)
    np.testing.assert_allclose(widget.per_class.loc[list(names), "recall"], r)
    np.testing.assert_array_equal(widget.confusion.loc[list(names), list(names)].to_numpy(),
                                  metrics.confusion_matrix(truth[keep], pred[keep], labels=list(names)))
    # three classes: the curve of the predicted class's probability against being right
    assert widget.evaluation.calibration_of == "top label" and "roc_auc" not in widget.metrics
    confidence = out["ml.inference.prediction_probability"].to_numpy()[keep]
    right = (pred[keep] == truth[keep]).to_numpy()
    cal = widget.calibration
    assert cal["count"].sum() == keep.sum()
    for row in cal.itertuples():
        inside = (confidence > row.bin_lo if row.bin_lo > 0 else confidence >= 0) & (confidence <= row.bin_hi)
        assert row.count == inside.sum() and row.fraction_positive == pytest.approx(right[inside].mean())
    # the Series form: no probabilities, so no calibration (and the view says why)
    series = pred.infer.evaluate(truth)
    assert series.metrics["accuracy"] == pytest.approx(widget.metrics["accuracy"]) and series.calibration is None
    assert "no calibration curve" in series._repr_html_()


def test_regression_equals_sklearn_with_residuals():
    x, y = datasets.load_diabetes(return_X_y=True, as_frame=True)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.3, random_state=0)
    reg = GradientBoostingRegressor(n_estimators=15, max_depth=2, random_state=0).fit(x_train, y_train)
    engine = Engine()
    engine.import_model("diabetes", reg)
    out = x_test.infer.run("diabetes", engine=engine, progress=False)
    pred = out["ml.inference.predicted_value"].to_numpy(dtype=float)
    np.testing.assert_allclose(pred, reg.predict(x_test), rtol=1e-5)
    widget = out.infer.evaluate(y_test)
    assert widget.task == "regression" and widget.per_class is None and widget.confusion is None
    m = widget.metrics
    assert m["mae"] == pytest.approx(metrics.mean_absolute_error(y_test, pred))
    assert m["mse"] == pytest.approx(metrics.mean_squared_error(y_test, pred))
    assert m["rmse"] == pytest.approx(np.sqrt(metrics.mean_squared_error(y_test, pred)))
    assert m["r2"] == pytest.approx(metrics.r2_score(y_test, pred))
    np.testing.assert_allclose(widget.residuals["residual"], y_test.to_numpy() - pred)
    assert list(widget.residuals.index) == list(x_test.index)
    html = widget._repr_html_()
    assert len(_marks(html, "esinb-ev-residual", "data-residual")) == len(y_test)
    assert sorted(map(float, _marks(html, "esinb-ev-residual", "data-residual"))) == pytest.approx(
        sorted(y_test.to_numpy() - pred))
    # the Series of predictions (floats) is a regression too; text labels are not numbers
    assert out["ml.inference.predicted_value"].infer.evaluate(y_test).metrics == pytest.approx(m)
    with pytest.raises(ValueError, match="not numbers.*task='classification'"):
        out.infer.evaluate(["a"] * len(out), task="regression")
