"""Importers: converted models, evaluated with ES semantics, reproduce the source library.

``_ref_predict`` below is a small, independent, pure-numpy implementation of the
Elasticsearch tree/ensemble inference rules (spec §2.3-2.5); the engine's evaluator is
tested elsewhere. Data is float64 (not float32-representable) with NaNs where the library
supports them, so the float32-threshold rewriting and the missing-value routing are
exercised.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from es_infer_nb.models.tree.importers import to_es_model

sklearn = pytest.importorskip("sklearn")
xgb = pytest.importorskip("xgboost")
lgb = pytest.importorskip("lightgbm")

from sklearn.datasets import make_classification, make_regression  # noqa: E402
from sklearn.ensemble import (  # noqa: E402
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor  # noqa: E402

TOL = 1e-5


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models: OpenMP thread pools only cost time (and spin on a busy machine)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield

NAMES = [f"f{i}" for i in range(6)]

# --------------------------------------------------------------------------- reference ES evaluator


def _softmax(v: np.ndarray) -> np.ndarray:
    out = np.zeros_like(v, dtype=np.float64)
    ok = np.isfinite(v)
    if not ok.any():
        return out
    e = np.exp(v[ok] - v[ok].max())
    out[ok] = e / e.sum()
    return out


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _walk(tree: dict, row: np.ndarray, index: dict[str, int]) -> np.ndarray:
    nodes = tree["tree_structure"]
    names = tree["feature_names"]
    n = nodes[0]
    steps = 0
    while n.get("left_child", -1) is not None and n.get("left_child", -1) >= 0:
        x = row[index[names[n["split_feature"]]]]
        if not np.isfinite(x):
            left = bool(n.get("default_left", False))
        else:
            t = n["threshold"]
            op = n.get("decision_type", "lte")
            left = {"lte": x <= t, "lt": x < t, "gte": x >= t, "gt": x > t}[op]
        n = nodes[n["left_child"] if left else n["right_child"]]
        steps += 1
        assert steps <= len(nodes)
    return np.atleast_1d(np.asarray(n["leaf_value"], dtype=np.float64))


def _raw(model: dict, row: np.ndarray, index: dict[str, int]) -> list[np.ndarray]:
    """Per sub-model raw vectors of an ensemble (nested ensembles give [aggregate])."""
    out = []
    for m in model["trained_models"]:
        (kind, sub), = m.items()
        if kind == "tree":
            out.append(_walk(sub, row, index))
        else:
            out.append(np.array([_aggregate_scalar(sub, _raw(sub, row, index))]))
    return out


def _aggregate_scalar(ens: dict, values: list[np.ndarray]) -> float:
    (agg, params), = ens["aggregate_output"].items()
    w = np.asarray(params.get("weights", [1.0] * len(values)), dtype=np.float64)
    if agg == "weighted_sum":
        return float(sum(wj * v[0] for wj, v in zip(w, values)))
    if agg == "exponent":
        return float(math.exp(sum(wj * v[0] for wj, v in zip(w, values))))
    probs = _class_probs(ens, values)
    return float(np.argmax(probs))


def _class_probs(ens: dict, values: list[np.ndarray]) -> np.ndarray:
    (agg, params), = ens["aggregate_output"].items()
    w = np.asarray(params.get("weights", [1.0] * len(values)), dtype=np.float64)
    if agg == "logistic_regression":
        s = sum(wj * v for wj, v in zip(w, values))
        if len(s) == 1:
            p = _sigmoid(float(s[0]))
            return np.array([1.0 - p, p])
        return _softmax(s)
    if agg == "weighted_mode":
        if len(values[0]) > 1:
            return _softmax(sum(wj * v for wj, v in zip(w, values)))
        freq = np.full(int(params["num_classes"]), -np.inf)
        for wj, v in zip(w, values):
            c = int(v[0])
            freq[c] = (0.0 if np.isinf(freq[c]) else freq[c]) + wj
        return _softmax(freq)
    raise AssertionError(f"{agg} is not a classification aggregator")


def _ref_predict(body: dict, x: np.ndarray) -> dict:
    """ES inference for every row: {"value": [n]} or {"proba": [n, K], "label": [n]}."""
    fields = body["input"]["field_names"]
    index = {f: i for i, f in enumerate(fields)}
    trained = body["definition"]["trained_model"]
    (kind, model), = trained.items()
    target = model.get("target_type", "regression")
    values, probas = [], []
    for row in x:
        if kind == "tree":
            leaf = _walk(model, row, index)
            if target == "regression":
                values.append(leaf[0])
            elif len(leaf) > 1:
                probas.append(_softmax(leaf))
            else:
                raise AssertionError("scalar-leaf classification trees are not produced by the importers")
        else:
            raw = _raw(model, row, index)
            if target == "regression":
                values.append(_aggregate_scalar(model, raw))
            else:
                probas.append(_class_probs(model, raw))
    if target == "regression":
        return {"value": np.array(values)}
    p = np.array(probas)
    labels = model.get("classification_labels") or [str(i) for i in range(p.shape[1])]
    weights = model.get("classification_weights")
    scores = p * np.asarray(weights) if weights is not None else p
    return {"proba": p, "label": np.array([labels[i] for i in np.argmax(scores, axis=1)])}


# --------------------------------------------------------------------------- helpers

MAX_DIFF: dict[str, float] = {}


def _record(name: str, diff: float) -> None:
    MAX_DIFF[name] = max(MAX_DIFF.get(name, 0.0), float(diff))


def _check_body(body: dict, names: list[str]) -> None:
    text = json.dumps(body, allow_nan=False)  # plain JSON, no NaN / Infinity
    assert json.loads(text) == body
    assert body["input"] == {"field_names": names}
    assert body["definition"]["preprocessors"] == []
    (kind, model), = body["definition"]["trained_model"].items()
    (target,) = body["inference_config"]
    assert model["target_type"] == target
    trees = [model] if kind == "tree" else [m["tree"] for m in model["trained_models"]]
    for t in trees:
        assert t["feature_names"] == names
        for i, n in enumerate(t["tree_structure"]):
            assert n["node_index"] == i
            assert isinstance(n.get("number_samples", 0), int)
            if "leaf_value" in n:
                assert all(type(v) is float for v in n["leaf_value"])
            else:
                assert n["decision_type"] in ("lte", "lt", "gte", "gt")
                assert type(n["threshold"]) is float and type(n["default_left"]) is bool
                assert 0 < n["left_child"] < len(t["tree_structure"])
                assert 0 < n["right_child"] < len(t["tree_structure"])
    try:  # the engine's own parser/validator, when it is importable
        from es_infer_nb.models.tree.definition import parse_definition
    except Exception:  # pragma: no cover
        return
    parse_definition(body["definition"])  # parses and validates like ES


def _check_regression(name: str, model, x, names=NAMES, atol=TOL, rtol=0.0, **kw) -> dict:
    body = to_es_model(model, names, **kw)
    _check_body(body, names)
    got = _ref_predict(body, x)["value"]
    want = np.asarray(model.predict(x), dtype=np.float64)
    _record(name, np.max(np.abs(got - want)))
    np.testing.assert_allclose(got, want, atol=atol, rtol=rtol)
    return body


def _check_classifier(name: str, model, x, names=NAMES, **kw) -> dict:
    body = to_es_model(model, names, **kw)
    _check_body(body, names)
    ref = _ref_predict(body, x)
    want = np.asarray(model.predict_proba(x), dtype=np.float64)
    _record(name, np.max(np.abs(ref["proba"] - want)))
    np.testing.assert_allclose(ref["proba"], want, atol=TOL, rtol=0.0)
    np.testing.assert_array_equal(ref["label"], np.asarray(model.predict(x)).astype(str))
    return body


def _reg_data(n=300, missing=False, seed=0, scale=True):
    x, y = make_regression(n_samples=n, n_features=6, n_informative=4, noise=3.0, random_state=seed)
    if scale:
        y = (y - y.mean()) / y.std()
    if missing:
        x = x.copy()
        x[::7, 1] = np.nan
        x[3::11, 4] = np.nan
    return x, y


def _clf_data(classes=2, n=300, missing=False, seed=1):
    x, y = make_classification(n_samples=n, n_features=6, n_informative=4, n_redundant=0,
                               n_classes=classes, n_clusters_per_class=1, random_state=seed)
    if missing:
        x = x.copy()
        x[::9, 2] = np.nan
        x[5::13, 0] = np.nan
    return x, y


# --------------------------------------------------------------------------- scikit-learn


def test_decision_tree_regressor_with_missing_values():
    x, y = _reg_data(missing=True, scale=False)
    m = DecisionTreeRegressor(max_depth=6, random_state=0).fit(x, y)
    body = _check_regression("sklearn DecisionTreeRegressor", m, x)
    tree = body["definition"]["trained_model"]["tree"]
    assert tree["target_type"] == "regression"
    assert tree["tree_structure"][0]["number_samples"] == len(x)
    assert any(n.get("default_left") for n in tree["tree_structure"] if "leaf_value" not in n)


@pytest.mark.parametrize("classes", [2, 3])
def test_decision_tree_classifier_probabilities_exact(classes):
    x, y = _clf_data(classes, missing=True)
    m = DecisionTreeClassifier(max_depth=5, random_state=0).fit(x, y)
    body = _check_classifier(f"sklearn DecisionTreeClassifier ({classes})", m, x)
    tree = body["definition"]["trained_model"]["tree"]
    assert tree["classification_labels"] == [str(c) for c in m.classes_]
    assert all(len(n["leaf_value"]) == classes for n in tree["tree_structure"] if "leaf_value" in n)


def test_decision_tree_classifier_string_classes_labels_and_weights():
    x, y = _clf_data(3)
    names = np.array(["cat", "dog", "eel"])[y]
    m = DecisionTreeClassifier(max_depth=4, random_state=0).fit(x, names)
    body = _check_classifier("sklearn DecisionTreeClassifier (str)", m, x)
    assert body["definition"]["trained_model"]["tree"]["classification_labels"] == ["cat", "dog", "eel"]
    # weights only exist on ensembles: a one-tree ensemble with the same probabilities
    body = to_es_model(m, NAMES, ["a", "b", "c"], [1.0, 2.0, 0.5])
    ens = body["definition"]["trained_model"]["ensemble"]
    assert ens["classification_labels"] == ["a", "b", "c"]
    assert ens["classification_weights"] == [1.0, 2.0, 0.5]
    ref = _ref_predict(body, x)
    np.testing.assert_allclose(ref["proba"], m.predict_proba(x), atol=TOL)
    expected = np.array(["a", "b", "c"])[np.argmax(m.predict_proba(x) * [1.0, 2.0, 0.5], axis=1)]
    np.testing.assert_array_equal(ref["label"], expected)


def test_random_forest_regressor():
    x, y = _reg_data(missing=True, scale=False)
    m = RandomForestRegressor(n_estimators=10, max_depth=6, random_state=0).fit(x, y)
    body = _check_regression("sklearn RandomForestRegressor", m, x)
    agg = body["definition"]["trained_model"]["ensemble"]["aggregate_output"]
    assert agg == {"weighted_sum": {"weights": [0.1] * 10}}


def test_extra_trees():
    x, y = _reg_data(scale=False)
    _check_regression("sklearn ExtraTreesRegressor", ExtraTreesRegressor(n_estimators=5, max_depth=5,
                                                                          random_state=0).fit(x, y), x)
    x, y = _clf_data(3)
    m = ExtraTreesClassifier(n_estimators=5, random_state=0).fit(x, y)  # pure leaves
    ref = _ref_predict(to_es_model(m, NAMES), x)
    np.testing.assert_array_equal(ref["label"], m.predict(x).astype(str))


def _es_forest_proba(m, x):
    """weighted_mode over ln-fraction leaves: softmax of the summed log-fractions (eland's layout)."""
    logs = np.zeros((len(x), len(m.classes_)))
    for est in m.estimators_:
        p = est.predict_proba(x)
        logs += np.where(p > 0, np.log(np.where(p > 0, p, 1.0)), -1e7)
    e = np.exp(logs - logs.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("classes", [2, 3])
def test_random_forest_classifier_fully_grown(classes):
    """Pure leaves: ES's forest picks sklearn's class (majority vote, same ties)."""
    x, y = _clf_data(classes, missing=True)
    m = RandomForestClassifier(n_estimators=15, random_state=0).fit(x, y)
    body = to_es_model(m, NAMES)
    _check_body(body, NAMES)
    ens = body["definition"]["trained_model"]["ensemble"]
    assert ens["aggregate_output"] == {"weighted_mode": {"num_classes": classes}}
    ref = _ref_predict(body, x)
    np.testing.assert_array_equal(ref["label"], m.predict(x).astype(str))
    np.testing.assert_allclose(ref["proba"], _es_forest_proba(m, x), atol=1e-9)
    _record(f"sklearn RandomForestClassifier ({classes}) vs predict_proba (inexact)",
            np.max(np.abs(ref["proba"] - m.predict_proba(x))))


def test_random_forest_classifier_shallow_follows_es_formula():
    x, y = _clf_data(3)
    m = RandomForestClassifier(n_estimators=10, max_depth=4, random_state=0).fit(x, y)
    ref = _ref_predict(to_es_model(m, NAMES), x)
    np.testing.assert_allclose(ref["proba"], _es_forest_proba(m, x), atol=1e-9)
    agree = np.mean(ref["label"] == m.predict(x).astype(str))
    assert agree > 0.9
    _record("sklearn RandomForestClassifier (shallow) vs predict_proba (inexact)",
            np.max(np.abs(ref["proba"] - m.predict_proba(x))))


def test_gradient_boosting():
    x, y = _reg_data(scale=False)
    _check_regression("sklearn GradientBoostingRegressor",
                      GradientBoostingRegressor(n_estimators=20, max_depth=3, random_state=0).fit(x, y), x)
    for classes in (2, 3):
        x, y = _clf_data(classes)
        m = GradientBoostingClassifier(n_estimators=10, max_depth=3, random_state=0).fit(x, y)
        _check_classifier(f"sklearn GradientBoostingClassifier ({classes})", m, x)
    x, y = _clf_data(2)
    m = GradientBoostingClassifier(n_estimators=10, max_depth=2, loss="exponential", random_state=0).fit(x, y)
    _check_classifier("sklearn GradientBoostingClassifier (exponential)", m, x)


def test_hist_gradient_boosting_with_missing_values():
    x, y = _reg_data(missing=True, scale=False)
    _check_regression("sklearn HistGradientBoostingRegressor",
                      HistGradientBoostingRegressor(max_iter=20, max_depth=4).fit(x, y), x, atol=1e-9 * 300)
    xp, yp = x, np.exp(y / 200)
    _check_regression("sklearn HistGradientBoostingRegressor (poisson)",
                      HistGradientBoostingRegressor(max_iter=15, loss="poisson").fit(xp, yp), xp)
    for classes in (2, 3):
        x, y = _clf_data(classes, missing=True)
        m = HistGradientBoostingClassifier(max_iter=15, max_depth=4).fit(x, y)
        _check_classifier(f"sklearn HistGradientBoostingClassifier ({classes})", m, x)


def test_sklearn_float32_boundaries_are_exact():
    """Inputs that round (in float32) onto/around a threshold are routed as sklearn does."""
    x, y = _reg_data(n=200, scale=False)
    m = DecisionTreeRegressor(max_depth=3, random_state=0).fit(x, y)
    t = m.tree_
    rows = []
    for i in np.flatnonzero(t.children_left != -1):
        thr, f = t.threshold[i], t.feature[i]
        a = np.float32(thr)
        if float(a) > thr:
            a = np.nextafter(a, np.float32(-np.inf))
        b = np.nextafter(a, np.float32(np.inf))
        mid = float(a) / 2 + float(b) / 2
        for v in (mid, np.nextafter(mid, -np.inf), np.nextafter(mid, np.inf), thr, float(a), float(b)):
            r = x[0].copy()
            r[f] = v
            rows.append(r)
    probe = np.array(rows)
    got = _ref_predict(to_es_model(m, NAMES), probe)["value"]
    np.testing.assert_array_equal(got, m.predict(probe))
    raw = _ref_predict(to_es_model(m, NAMES, exact_thresholds=False), probe)["value"]
    assert np.any(raw != m.predict(probe))  # eland-style thresholds misroute some of these


# --------------------------------------------------------------------------- XGBoost


def test_xgb_regressor_with_missing_values():
    x, y = _reg_data(missing=True)
    m = xgb.XGBRegressor(n_jobs=1, n_estimators=20, max_depth=4, learning_rate=0.3).fit(x, y)
    body = _check_regression("xgboost XGBRegressor", m, x)
    ens = body["definition"]["trained_model"]["ensemble"]
    assert ens["aggregate_output"] == {"weighted_sum": {}}
    assert len(ens["trained_models"]) == 21  # the base_score stump first
    stump = ens["trained_models"][0]["tree"]["tree_structure"]
    base = json.loads(m.get_booster().save_config())["learner"]["learner_model_param"]["base_score"]
    assert stump == [{"node_index": 0, "leaf_value": [float(np.float32(base.strip("[]")))]}]


def test_xgb_regressor_unscaled_targets_relative():
    x, y = _reg_data(missing=True, scale=False)  # |y| up to ~300: float32 output resolution ~3e-5
    m = xgb.XGBRegressor(n_jobs=1, n_estimators=10, max_depth=4).fit(x, y)
    _check_regression("xgboost XGBRegressor (|y|~300, relative)", m, x, atol=1e-5, rtol=1e-6)


@pytest.mark.parametrize("objective", ["count:poisson", "reg:gamma", "reg:tweedie", "reg:absoluteerror",
                                       "reg:pseudohubererror"])
def test_xgb_regressor_objectives(objective):
    x, y = _reg_data(missing=True)
    y = np.exp(y / 2)
    m = xgb.XGBRegressor(n_jobs=1, n_estimators=10, max_depth=3, objective=objective).fit(x, y)
    body = _check_regression(f"xgboost XGBRegressor ({objective})", m, x, rtol=1e-6)
    agg = body["definition"]["trained_model"]["ensemble"]["aggregate_output"]
    assert ("exponent" in agg) == (objective in ("count:poisson", "reg:gamma", "reg:tweedie"))


@pytest.mark.parametrize("classes", [2, 3])
def test_xgb_classifier_with_missing_values(classes):
    x, y = _clf_data(classes, missing=True)
    m = xgb.XGBClassifier(n_jobs=1, n_estimators=15, max_depth=4).fit(x, y)
    body = _check_classifier(f"xgboost XGBClassifier ({classes})", m, x)
    ens = body["definition"]["trained_model"]["ensemble"]
    assert ens["aggregate_output"] == {"logistic_regression": {}}
    assert ens["classification_labels"] == [str(c) for c in range(classes)]
    leaf = next(n for n in ens["trained_models"][1]["tree"]["tree_structure"] if "leaf_value" in n)
    assert len(leaf["leaf_value"]) == (1 if classes == 2 else classes)


def test_xgb_multiclass_softmax_dart_rf_and_multi_output_tree():
    x, y = _clf_data(3, missing=True)
    m = xgb.XGBClassifier(n_jobs=1, n_estimators=8, max_depth=3, objective="multi:softmax").fit(x, y)
    ref = _ref_predict(to_es_model(m, NAMES), x)
    np.testing.assert_array_equal(ref["label"], m.predict(x).astype(str))
    m = xgb.XGBClassifier(n_jobs=1, n_estimators=8, max_depth=3, booster="dart", rate_drop=0.3, skip_drop=0.0,
                          random_state=0).fit(x, y)
    _check_classifier("xgboost XGBClassifier (dart)", m, x)
    m = xgb.XGBRFClassifier(n_jobs=1, n_estimators=5, max_depth=3, random_state=0).fit(x, y)
    _check_classifier("xgboost XGBRFClassifier", m, x)
    m = xgb.XGBClassifier(n_jobs=1, n_estimators=5, max_depth=3, tree_method="hist",
                          multi_strategy="multi_output_tree").fit(x, y)
    _check_classifier("xgboost XGBClassifier (multi_output_tree)", m, x)


def test_xgb_early_stopping_and_raw_booster():
    x, y = _clf_data(2, n=400, missing=True)
    m = xgb.XGBClassifier(n_jobs=1, n_estimators=60, max_depth=3, learning_rate=0.5, early_stopping_rounds=3)
    m.fit(x[:300], y[:300], eval_set=[(x[300:], y[300:])], verbose=False)
    assert m.best_iteration < 59
    body = _check_classifier("xgboost XGBClassifier (early stopping)", m, x)
    assert len(body["definition"]["trained_model"]["ensemble"]["trained_models"]) == m.best_iteration + 2
    booster = m.get_booster()  # a raw Booster predicts with every tree
    body = to_es_model(booster, NAMES)
    p1 = booster.predict(xgb.DMatrix(x))
    ref = _ref_predict(body, x)
    _record("xgboost Booster (binary)", np.max(np.abs(ref["proba"][:, 1] - p1)))
    np.testing.assert_allclose(ref["proba"][:, 1], p1, atol=TOL)

    xr, yr = _reg_data(missing=True)
    params = {"max_depth": 3, "objective": "reg:squarederror", "nthread": 1}
    b = xgb.train(params, xgb.DMatrix(xr, yr), num_boost_round=10)
    ref = _ref_predict(to_es_model(b, NAMES), xr)
    np.testing.assert_allclose(ref["value"], b.predict(xgb.DMatrix(xr)), atol=TOL)


def test_xgb_float32_boundaries_are_exact():
    x, y = _reg_data(n=200)
    m = xgb.XGBRegressor(n_jobs=1, n_estimators=3, max_depth=3).fit(x, y)
    trees = json.loads(m.get_booster().save_raw("json"))["learner"]["gradient_booster"]["model"]["trees"]
    rows = []
    for t in trees:
        for i, left in enumerate(t["left_children"]):
            if left == -1:
                continue
            s = np.float32(t["split_conditions"][i])
            a = np.nextafter(s, np.float32(-np.inf))
            mid = float(a) / 2 + float(s) / 2
            for v in (mid, np.nextafter(mid, -np.inf), np.nextafter(mid, np.inf), float(s), float(a)):
                r = x[0].copy()
                r[t["split_indices"][i]] = v
                rows.append(r)
    probe = np.array(rows)
    got = _ref_predict(to_es_model(m, NAMES), probe)["value"]
    np.testing.assert_allclose(got, m.predict(probe), atol=TOL)
    raw = _ref_predict(to_es_model(m, NAMES, exact_thresholds=False), probe)["value"]
    assert np.max(np.abs(raw - m.predict(probe))) > 1e-3  # eland-style "lt" misroutes some


# --------------------------------------------------------------------------- LightGBM


def test_lgbm_regressor_with_missing_values():
    x, y = _reg_data(missing=True, scale=False)
    m = lgb.LGBMRegressor(n_estimators=20, num_leaves=15, verbose=-1, n_jobs=1).fit(x, y)
    body = _check_regression("lightgbm LGBMRegressor", m, x, atol=1e-9 * 300)
    ens = body["definition"]["trained_model"]["ensemble"]
    assert ens["aggregate_output"] == {"weighted_sum": {}}
    root = ens["trained_models"][0]["tree"]["tree_structure"][0]
    assert root["number_samples"] == len(x)


def test_lgbm_nan_as_zero_for_features_without_missing_values():
    """missing_type None: LightGBM compares NaN as 0.0, ES sends it to default_left = (0 <= t)."""
    x, y = _reg_data(scale=False)
    m = lgb.LGBMRegressor(n_estimators=10, num_leaves=8, verbose=-1, n_jobs=1).fit(x, y)
    probe = x[:50].copy()
    probe[::2, :] = np.nan
    probe[1::4, 3] = np.nan
    _check_regression("lightgbm LGBMRegressor (NaN, missing_type None)", m, probe, atol=1e-9 * 300)


def test_lgbm_zero_as_missing():
    x, y = _reg_data(n=400, scale=False)
    x = np.where(np.abs(x) < 0.4, 0.0, x)
    m = lgb.LGBMRegressor(n_estimators=15, num_leaves=8, zero_as_missing=True, verbose=-1, n_jobs=1).fit(x, y)
    dump = m.booster_.dump_model()
    text = json.dumps(dump)
    assert '"missing_type": "Zero"' in text
    probe = np.concatenate([x, x[:40] * 0 + 1e-36, np.where(x[:40] > 0, np.nan, x[:40])])
    _check_regression("lightgbm LGBMRegressor (zero_as_missing)", m, probe, atol=1e-9 * 300)


@pytest.mark.parametrize("objective", ["regression_l1", "huber", "quantile", "poisson", "gamma", "tweedie"])
def test_lgbm_regressor_objectives(objective):
    x, y = _reg_data(missing=True)
    y = np.exp(y / 2)
    m = lgb.LGBMRegressor(n_estimators=10, num_leaves=8, objective=objective, verbose=-1, n_jobs=1).fit(x, y)
    _check_regression(f"lightgbm LGBMRegressor ({objective})", m, x, rtol=1e-9)


def test_lgbm_rf_and_dart():
    x, y = _reg_data(missing=True)
    m = lgb.LGBMRegressor(boosting_type="rf", n_estimators=10, bagging_freq=1, bagging_fraction=0.7,
                          verbose=-1, n_jobs=1).fit(x, y)
    body = _check_regression("lightgbm LGBMRegressor (rf)", m, x)
    assert body["definition"]["trained_model"]["ensemble"]["aggregate_output"]["weighted_sum"]["weights"] == \
        [0.1] * 10
    m = lgb.LGBMRegressor(boosting_type="dart", n_estimators=10, verbose=-1, n_jobs=1).fit(x, y)
    _check_regression("lightgbm LGBMRegressor (dart)", m, x)
    xc, yc = _clf_data(2, missing=True)
    m = lgb.LGBMClassifier(boosting_type="rf", n_estimators=8, bagging_freq=1, bagging_fraction=0.7,
                           verbose=-1, n_jobs=1).fit(xc, yc)
    _check_classifier("lightgbm LGBMClassifier (rf)", m, xc)


@pytest.mark.parametrize("classes", [2, 3])
def test_lgbm_classifier_with_missing_values(classes):
    x, y = _clf_data(classes, missing=True)
    m = lgb.LGBMClassifier(n_estimators=15, num_leaves=8, verbose=-1, n_jobs=1).fit(x, y)
    body = _check_classifier(f"lightgbm LGBMClassifier ({classes})", m, x)
    ens = body["definition"]["trained_model"]["ensemble"]
    assert ens["aggregate_output"] == {"logistic_regression": {}}
    assert len(ens["trained_models"]) == 15 * (1 if classes == 2 else classes)


def test_lgbm_sigmoid_string_labels_early_stopping_and_booster():
    x, y = _clf_data(2, n=400, missing=True)
    labels = np.array(["no", "yes"])[y]
    m = lgb.LGBMClassifier(n_estimators=10, num_leaves=6, sigmoid=0.7, verbose=-1, n_jobs=1).fit(x, labels)
    body = _check_classifier("lightgbm LGBMClassifier (sigmoid=0.7)", m, x)
    assert body["definition"]["trained_model"]["ensemble"]["classification_labels"] == ["no", "yes"]
    m = lgb.LGBMClassifier(n_estimators=200, num_leaves=6, learning_rate=0.5, verbose=-1, n_jobs=1)
    m.fit(x[:300], y[:300], eval_set=[(x[300:], y[300:])], callbacks=[lgb.early_stopping(3, verbose=False)])
    assert 0 < m.best_iteration_ < 200
    _check_classifier("lightgbm LGBMClassifier (early stopping)", m, x)
    booster = lgb.train({"objective": "multiclass", "num_class": 3, "num_leaves": 6, "verbose": -1, "num_threads": 1},
                        lgb.Dataset(*_clf_data(3, missing=True)), num_boost_round=5)
    x3, _ = _clf_data(3, missing=True)
    ref = _ref_predict(to_es_model(booster, NAMES), x3)
    _record("lightgbm Booster (multiclass)", np.max(np.abs(ref["proba"] - booster.predict(x3))))
    np.testing.assert_allclose(ref["proba"], booster.predict(x3), atol=TOL)


# --------------------------------------------------------------------------- labels, weights, errors


def test_labels_and_weights_pass_through():
    x, y = _clf_data(3)
    m = xgb.XGBClassifier(n_jobs=1, n_estimators=3, max_depth=2).fit(x, y)
    body = to_es_model(m, NAMES, ["a", "b", "c"], [0.5, 1.0, 2.0])
    ens = body["definition"]["trained_model"]["ensemble"]
    assert ens["classification_labels"] == ["a", "b", "c"]
    assert ens["classification_weights"] == [0.5, 1.0, 2.0]
    assert body["inference_config"] == {"classification": {}}
    ref = _ref_predict(body, x)
    want = np.array(["a", "b", "c"])[np.argmax(m.predict_proba(x) * [0.5, 1.0, 2.0], axis=1)]
    np.testing.assert_array_equal(ref["label"], want)
    with pytest.raises(ValueError, match="3 classes but 2 classification_labels"):
        to_es_model(m, NAMES, ["a", "b"])
    with pytest.raises(ValueError, match="classification_weights"):
        to_es_model(m, NAMES, None, [1.0])
    xr, yr = _reg_data()
    with pytest.raises(ValueError, match="regression model"):
        to_es_model(DecisionTreeRegressor(max_depth=2).fit(xr, yr), NAMES, ["a"])


def test_clear_errors():
    from sklearn.linear_model import LinearRegression

    x, y = _reg_data()
    with pytest.raises(TypeError, match="LinearRegression.*supported"):
        to_es_model(LinearRegression().fit(x, y), NAMES)
    with pytest.raises(TypeError, match="object"):
        to_es_model(object(), NAMES)
    with pytest.raises(ValueError, match="feature_names has 2 names.*6 features"):
        to_es_model(DecisionTreeRegressor(max_depth=2).fit(x, y), ["a", "b"])
    with pytest.raises(ValueError, match="feature_names has 7 names"):
        to_es_model(lgb.LGBMRegressor(n_estimators=2, verbose=-1, n_jobs=1).fit(x, y), NAMES + ["x"])
    with pytest.raises(ValueError, match="unique"):
        to_es_model(DecisionTreeRegressor(max_depth=2).fit(x, y), ["a"] * 6)
    with pytest.raises(ValueError, match="not fitted"):
        to_es_model(DecisionTreeRegressor(), NAMES)
    with pytest.raises(ValueError, match="reg:logistic"):
        to_es_model(xgb.XGBRegressor(n_jobs=1, n_estimators=2, objective="reg:logistic").fit(x, (y > 0) * 1.0), NAMES)
    with pytest.raises(ValueError, match="gblinear"):
        to_es_model(xgb.XGBRegressor(n_jobs=1, n_estimators=2, booster="gblinear").fit(x, y), NAMES)
    with pytest.raises(ValueError, match="missing=0"):
        to_es_model(xgb.XGBRegressor(n_jobs=1, n_estimators=2, missing=0.0).fit(x, y), NAMES)
    xc, yc = _clf_data(3)
    with pytest.raises(ValueError, match="multiclassova"):
        ova = lgb.LGBMClassifier(n_estimators=2, objective="multiclassova", verbose=-1, n_jobs=1).fit(xc, yc)
        to_es_model(ova, NAMES)
    with pytest.raises(ValueError, match="outputs"):
        to_es_model(DecisionTreeRegressor(max_depth=2).fit(x, np.c_[y, y]), NAMES)
    cat = x.copy()
    cat[:, 0] = np.arange(len(x)) % 4
    ycat = y + np.array([0.0, 5.0, -3.0, 2.0])[np.arange(len(x)) % 4]
    m = lgb.LGBMRegressor(n_estimators=3, min_child_samples=5, verbose=-1, n_jobs=1)
    m.fit(cat, ycat, categorical_feature=[0])
    assert '"=="' in json.dumps(m.booster_.dump_model())
    with pytest.raises(ValueError, match="categorical"):
        to_es_model(m, NAMES)
    import pandas as pd

    frame = pd.DataFrame(cat, columns=NAMES).astype({"f0": "int64"}).astype({"f0": "category"})
    m = xgb.XGBRegressor(n_jobs=1, n_estimators=3, max_depth=3, enable_categorical=True, tree_method="hist")
    m.fit(frame, ycat)
    with pytest.raises(ValueError, match="categorical"):
        to_es_model(m, NAMES)


def test_package_imports_without_ml_libraries():
    import subprocess
    import sys

    code = (
        "import sys\n"
        "for m in ('sklearn', 'xgboost', 'lightgbm'): sys.modules[m] = None\n"
        "from es_infer_nb.models.tree.importers import to_es_model\n"
        "try:\n"
        "    to_es_model(object(), ['a'])\n"
        "except TypeError as e:\n"
        "    print('ok', e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("ok")


def test_zz_report_max_diffs(capsys):
    with capsys.disabled():
        print()
        for k, v in sorted(MAX_DIFF.items()):
            print(f"  max |diff| {v:.3e}  {k}")
