"""Importers: scikit-learn, XGBoost and LightGBM models predict through the engine as in their library."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest


sklearn = pytest.importorskip("sklearn")
xgb = pytest.importorskip("xgboost")
lgb = pytest.importorskip("lightgbm")

from sklearn.datasets import make_classification, make_regression  # noqa: E402
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor  # noqa: E402
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor  # noqa: E402

NAMES = [f"f{i}" for i in range(6)]


def f32(x: np.ndarray) -> np.ndarray:
    """float32-representable data: the libraries compare in float32, Elasticsearch in float64."""
    return x.astype(np.float32).astype(np.float64)


def regression_data(n: int = 400, missing: bool = False):
    x, y = make_regression(n_samples=n, n_features=6, noise=5.0, random_state=0)
    x = f32(x)
    if missing:
        x[::7, 1] = np.nan
    return x, y


def classification_data(classes: int, n: int = 400, missing: bool = False):
    x, y = make_classification(n_samples=n, n_features=6, n_informative=4, n_classes=classes, random_state=1)
    x = f32(x)
    if missing:
        x[::9, 2] = np.nan
    return x, y


def run(engine, model_id, x, config=None):
    frame = pd.DataFrame(x, columns=NAMES)
    return frame.infer.run(model_id, engine=engine, inference_config=config)


def probabilities(out: pd.DataFrame, labels: list[str]) -> np.ndarray:
    tops = out["ml.inference.top_classes"]
    probs = np.zeros((len(out), len(labels)))
    for i, entries in enumerate(tops):
        for e in entries:
            probs[i, labels.index(str(e["class_name"]))] = e["class_probability"]
    return probs


REGRESSORS = [
    ("dt", lambda: DecisionTreeRegressor(max_depth=6, random_state=0), False),
    ("rf", lambda: RandomForestRegressor(n_estimators=8, max_depth=5, random_state=0), False),
    ("xgb", lambda: xgb.XGBRegressor(n_estimators=20, max_depth=4), True),
    ("xgb-poisson", lambda: xgb.XGBRegressor(n_estimators=10, max_depth=3, objective="count:poisson"), True),
    ("lgbm", lambda: lgb.LGBMRegressor(n_estimators=20, num_leaves=15, verbose=-1), True),
    ("lgbm-rf", lambda: lgb.LGBMRegressor(boosting_type="rf", n_estimators=10, bagging_freq=1, bagging_fraction=0.8,
                                         verbose=-1), False),
]


@pytest.mark.parametrize("name,factory,with_missing", REGRESSORS, ids=[r[0] for r in REGRESSORS])
def test_regressors_match_predict(engine, name, factory, with_missing):
    x, y = regression_data(missing=with_missing)
    if name == "xgb-poisson":
        y = np.abs(y) / 10
    model = factory().fit(x, y)
    body = engine.import_model(name, model, NAMES)
    assert body["model_id"] == name
    out = run(engine, name, x)
    np.testing.assert_allclose(out["ml.inference.predicted_value"].to_numpy(), model.predict(x),
                               rtol=1e-5, atol=1e-5 * max(1.0, float(np.abs(y).max())))


CLASSIFIERS = [
    ("dt-2", lambda: DecisionTreeClassifier(max_depth=5, random_state=0), 2, False),
    ("dt-3", lambda: DecisionTreeClassifier(max_depth=5, random_state=0), 3, False),
    ("xgb-2", lambda: xgb.XGBClassifier(n_estimators=15, max_depth=3), 2, True),
    ("xgb-3", lambda: xgb.XGBClassifier(n_estimators=10, max_depth=3), 3, True),
    ("lgbm-2", lambda: lgb.LGBMClassifier(n_estimators=15, num_leaves=8, verbose=-1), 2, True),
    ("lgbm-3", lambda: lgb.LGBMClassifier(n_estimators=10, num_leaves=8, verbose=-1), 3, True),
]


@pytest.mark.parametrize("name,factory,classes,with_missing", CLASSIFIERS, ids=[c[0] for c in CLASSIFIERS])
def test_classifiers_match_predict_proba(engine, name, factory, classes, with_missing):
    x, y = classification_data(classes, missing=with_missing)
    model = factory().fit(x, y)
    engine.import_model(name, model, NAMES)
    out = run(engine, name, x, {"classification": {"num_top_classes": -1}})
    labels = [str(c) for c in model.classes_]
    np.testing.assert_allclose(probabilities(out, labels), model.predict_proba(x), atol=1e-5)
    predicted = out["ml.inference.predicted_value"].astype(str).to_numpy()
    assert (predicted == model.predict(x).astype(str)).all()


def test_random_forest_classifier_follows_elasticsearch(engine):
    """ES has no arithmetic mean of probabilities: weighted_mode is the softmax of summed log-fractions."""
    x, y = classification_data(3)
    model = RandomForestClassifier(n_estimators=6, max_depth=4, random_state=0).fit(x, y)
    engine.import_model("rfc", model, NAMES)
    out = run(engine, "rfc", x, {"classification": {"num_top_classes": -1}})
    logs = np.zeros((len(x), 3))
    for est in model.estimators_:
        p = est.predict_proba(x)
        logs += np.where(p > 0, np.log(np.where(p > 0, p, 1.0)), -1e7)
    expected = np.exp(logs - logs.max(axis=1, keepdims=True))
    expected /= expected.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(probabilities(out, ["0", "1", "2"]), expected, atol=1e-9)
    agree = (out["ml.inference.predicted_value"].astype(str).to_numpy() == model.predict(x).astype(str)).mean()
    assert agree > 0.85  # a tree with a zero fraction vetoes a class (eland: ln 0 -> -1e7)


def test_labels_weights_and_stored_json(engine):
    x, y = classification_data(2)
    model = xgb.XGBClassifier(n_estimators=5, max_depth=2).fit(x, y)
    body = engine.import_model("labelled", model, NAMES, classification_labels=["no", "yes"],
                               classification_weights=[1.0, 3.0])
    stored = engine.request("GET", "_ml/trained_models/labelled", params={"include": "definition"}).body
    config = stored["trained_model_configs"][0]
    json.dumps(config)  # plain JSON
    ensemble = config["definition"]["trained_model"]["ensemble"]
    assert ensemble["classification_labels"] == ["no", "yes"]
    assert ensemble["classification_weights"] == [1.0, 3.0]
    assert ensemble["aggregate_output"] == {"logistic_regression": {}}
    assert all(isinstance(n["number_samples"], int) for m in ensemble["trained_models"][1:]
               for n in m["tree"]["tree_structure"])
    out = run(engine, "labelled", x[:50])
    assert set(out["ml.inference.predicted_value"]) <= {"no", "yes"}
    assert body["input"]["field_names"] == NAMES


def test_clear_errors_for_unsupported_models(engine):
    from sklearn.linear_model import LinearRegression

    x, y = regression_data()
    with pytest.raises(TypeError, match="LinearRegression"):
        engine.import_model("lin", LinearRegression().fit(x, y), NAMES)
    with pytest.raises(ValueError, match="feature_names has 2 names"):
        engine.import_model("dt", DecisionTreeRegressor().fit(x, y), ["a", "b"])
    with pytest.raises(ValueError, match="reg:logistic"):
        engine.import_model("lg", xgb.XGBRegressor(n_estimators=2, objective="reg:logistic").fit(x, (y > 0) * 1.0), NAMES)
    with pytest.raises(TypeError):
        engine.import_model("obj", object(), NAMES)
    assert engine.request("GET", "_ml/trained_models/lin").status == 404


shap = pytest.importorskip("shap")

IMPORTANCE_MODELS = [
    ("xgb-reg", lambda: xgb.XGBRegressor(n_estimators=20, max_depth=4), "regression", 0),
    ("xgb-bin", lambda: xgb.XGBClassifier(n_estimators=15, max_depth=3), "classification", 2),
    ("xgb-3", lambda: xgb.XGBClassifier(n_estimators=10, max_depth=3), "classification", 3),
    ("lgbm-reg", lambda: lgb.LGBMRegressor(n_estimators=20, num_leaves=15, verbose=-1), "regression", 0),
    ("lgbm-bin", lambda: lgb.LGBMClassifier(n_estimators=15, num_leaves=8, verbose=-1), "classification", 2),
    ("lgbm-3", lambda: lgb.LGBMClassifier(n_estimators=10, num_leaves=8, verbose=-1), "classification", 3),
    ("dt-reg", lambda: DecisionTreeRegressor(max_depth=6, random_state=0), "regression", 0),
    ("rf-reg", lambda: RandomForestRegressor(n_estimators=5, max_depth=5, random_state=0), "regression", 0),
]


@pytest.mark.parametrize("name,factory,kind,classes", IMPORTANCE_MODELS, ids=[m[0] for m in IMPORTANCE_MODELS])
def test_feature_importance_equals_shap_tree_explainer(engine, name, factory, kind, classes):
    from es_infer_nb.models.runner import load_model

    x, y = regression_data() if kind == "regression" else classification_data(classes)
    model = factory().fit(x, y)
    engine.import_model(name, model, NAMES, data=x[:200])
    ours = load_model(engine, name).importance(x[:300])  # [rows, features, K]
    theirs = np.asarray(shap.TreeExplainer(model, feature_perturbation="tree_path_dependent").shap_values(x[:300]))
    if theirs.ndim == 3 and theirs.shape[0] == classes and theirs.shape[1] == 300:
        theirs = np.moveaxis(theirs, 0, -1)
    if theirs.ndim == 2:
        theirs = theirs[:, :, None]
    if classes == 2 and theirs.shape[-1] == 2:
        theirs = theirs[:, :, 1:]  # explainers of binary models may give both classes; ES keeps the margin
    if name == "rf-reg":
        ours = ours / len(model.estimators_)  # ES sums the trees' importances without the 1/n weights
    scale = max(1.0, float(np.abs(theirs).max()))
    np.testing.assert_allclose(ours, theirs, atol=1e-5 * scale)

    stored = engine.request("GET", f"_ml/trained_models/{name}", params={
        "include": "feature_importance_baseline,total_feature_importance"}).body["trained_model_configs"][0]["metadata"]
    assert "feature_importance_baseline" in stored and len(stored["total_feature_importance"]) == len(NAMES)
    plain = engine.request("GET", f"_ml/trained_models/{name}").body["trained_model_configs"][0]
    assert "feature_importance_baseline" not in plain.get("metadata", {})
    if kind == "regression":
        # baseline + sum of importances = the raw prediction (for rf-reg: of the unweighted tree sum)
        docs = [dict(zip(NAMES, map(float, row))) for row in x[:5]]
        res = engine.infer(name, docs, {"regression": {"num_top_feature_importance_values": len(NAMES)}})
        base = stored["feature_importance_baseline"]["baseline"]
        for r in res:
            total = base + sum(f["importance"] for f in r["feature_importance"])
            if name == "rf-reg":
                total /= len(model.estimators_)
            assert total == pytest.approx(r["predicted_value"], rel=1e-6, abs=1e-6)


def test_answers_do_not_change_with_batch_size(engine):
    x, y = classification_data(3)
    model = xgb.XGBClassifier(n_estimators=8, max_depth=3).fit(x, y)
    engine.import_model("batches", model, NAMES)
    frame = pd.DataFrame(x[:300], columns=NAMES)
    config = {"classification": {"num_top_classes": -1, "num_top_feature_importance_values": 3}}
    outs = [frame.infer.run("batches", engine=engine, inference_config=config, batch_size=b) for b in (1, 7, 4096)]
    for other in outs[1:]:
        pd.testing.assert_frame_equal(outs[0], other)


def test_classification_importance_plus_baseline_is_the_margin(engine):
    from es_infer_nb.models.runner import load_model

    x, y = classification_data(2)
    model = xgb.XGBClassifier(n_estimators=10, max_depth=3).fit(x, y)
    engine.import_model("margin", model, NAMES)
    meta = engine.request("GET", "_ml/trained_models/margin", params={"include": "feature_importance_baseline"}).body
    classes = meta["trained_model_configs"][0]["metadata"]["feature_importance_baseline"]["classes"]
    base = classes[1]["baseline"]
    assert classes[0]["baseline"] == -base
    phi = load_model(engine, "margin").importance(x[:50])[:, :, 0]
    margin = model.get_booster().inplace_predict(x[:50].astype(np.float32), predict_type="margin")
    np.testing.assert_allclose(phi.sum(axis=1) + base, margin, atol=1e-4)
