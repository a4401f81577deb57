"""import_model(id, estimator): feature names from feature_names_in_, classes from classes_ (so
predicted_value equals estimator.predict), explicit arguments still win."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from es_infer_nb import Engine


def _data(n: int = 300) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(11)
    x = pd.DataFrame(rng.normal(size=(n, 3)), columns=["size", "weight", "age"])
    return x, (x["size"] + 0.5 * x["weight"] > 0).astype(int).to_numpy()


def _estimators():
    import lightgbm as lgb
    import xgboost as xgb
    from sklearn.ensemble import GradientBoostingClassifier

    return [
        ("gb", lambda: GradientBoostingClassifier(n_estimators=5, max_depth=3, random_state=0)),
        ("xgb", lambda: xgb.XGBClassifier(n_estimators=5, max_depth=3)),
        ("lgbm", lambda: lgb.LGBMClassifier(n_estimators=5, verbose=-1)),
    ]


@pytest.mark.parametrize("name,make", _estimators(), ids=[e[0] for e in _estimators()])
def test_integer_classes_predicted_value_equals_predict(name, make):
    x, y = _data()
    clf = make().fit(x, y)
    engine = Engine()
    engine.import_model(name, clf)
    config = engine.request("GET", f"_ml/trained_models/{name}").body["trained_model_configs"][0]
    assert config["input"]["field_names"] == ["size", "weight", "age"]
    out = x.infer.run(name, engine=engine, progress=False)
    predicted = out["ml.inference.predicted_value"]
    assert (predicted.to_numpy() == clf.predict(x)).all()
    assert (predicted.to_numpy() == y).mean() > 0.8


def test_string_classes_and_regression():
    import lightgbm as lgb
    import xgboost as xgb

    x, y = _data()
    labels = np.where(y == 1, "yes", "no")
    clf = lgb.LGBMClassifier(n_estimators=5, verbose=-1).fit(x, labels)
    engine = Engine()
    engine.import_model("words", clf)
    out = x.infer.run("words", engine=engine, progress=False)
    assert (out["ml.inference.predicted_value"].to_numpy() == clf.predict(x)).all()
    reg = xgb.XGBRegressor(n_estimators=4).fit(x, x["size"] * 2)
    engine.import_model("reg", reg)
    out = x.infer.run("reg", engine=engine, progress=False)
    np.testing.assert_allclose(out["ml.inference.predicted_value"].to_numpy(), reg.predict(x), atol=1e-4)


def test_boolean_classes():
    from sklearn.tree import DecisionTreeClassifier

    x, y = _data()
    clf = DecisionTreeClassifier(max_depth=3, random_state=0).fit(x, y.astype(bool))
    engine = Engine()
    engine.import_model("flag", clf)
    out = x.infer.run("flag", engine=engine, progress=False)
    assert (out["ml.inference.predicted_value"].to_numpy() == clf.predict(x)).all()


def test_explicit_arguments_win():
    import xgboost as xgb

    x, y = _data()
    clf = xgb.XGBClassifier(n_estimators=3, max_depth=2).fit(x, y)
    engine = Engine()
    engine.import_model("named", clf, ["s", "w", "a"], classification_labels=["neg", "pos"])
    config = engine.request("GET", "_ml/trained_models/named").body["trained_model_configs"][0]
    assert config["input"]["field_names"] == ["s", "w", "a"]
    assert config["inference_config"]["classification"]["prediction_field_type"] == "string"
    out = x.set_axis(["s", "w", "a"], axis=1).infer.run("named", engine=engine, progress=False)
    assert set(out["ml.inference.predicted_value"]) <= {"neg", "pos"}


def test_array_fitted_estimator_needs_feature_names():
    import xgboost as xgb

    x, y = _data()
    clf = xgb.XGBClassifier(n_estimators=2).fit(x.to_numpy(), y)
    with pytest.raises(TypeError, match="feature_names is required.*feature_names_in_"):
        Engine().import_model("arr", clf)
    engine = Engine()
    engine.import_model("arr", clf, ["size", "weight", "age"])
    out = x.infer.run("arr", engine=engine, progress=False)
    assert (out["ml.inference.predicted_value"].to_numpy() == clf.predict(x.to_numpy())).all()
