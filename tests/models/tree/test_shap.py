"""Path-dependent TreeSHAP: exact against brute-force Shapley values, shaped as ES shapes it."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from es_infer_nb.models.tree.definition import parse_definition
from es_infer_nb.models.tree.shap import PathTable, expected_value
from helpers import churn_model
from helpers import TREE_OPS
from test_evaluate import random_tree


def _with_covers(rng, tree: dict) -> dict:
    nodes = tree["tree_structure"]

    def cover(i: int, c: int) -> None:
        nodes[i]["number_samples"] = c
        if "left_child" in nodes[i]:
            a = int(rng.integers(1, c)) if c > 1 else 1
            cover(nodes[i]["left_child"], a)
            cover(nodes[i]["right_child"], max(c - a, 1))

    cover(0, 1000)
    return tree


def _conditional(tree: dict, row: np.ndarray, known: set[int], i: int = 0) -> float:
    n = tree["tree_structure"][i]
    if "left_child" not in n:
        return n["leaf_value"]
    f = n["split_feature"]
    if f in known:
        v = row[f]
        left = n.get("default_left", False) if not np.isfinite(v) else TREE_OPS[n["decision_type"]](v, n["threshold"])
        return _conditional(tree, row, known, n["left_child"] if left else n["right_child"])
    lc, rc = n["left_child"], n["right_child"]
    nodes = tree["tree_structure"]
    return (nodes[lc]["number_samples"] * _conditional(tree, row, known, lc)
            + nodes[rc]["number_samples"] * _conditional(tree, row, known, rc)) / n["number_samples"]


def _brute_force(trees: list[dict], row: np.ndarray, features: int) -> np.ndarray:
    """Exact Shapley values of the path-dependent conditional expectation, over every subset."""
    want = np.zeros(features)
    for i in range(features):
        others = [j for j in range(features) if j != i]
        for k in range(features):
            for subset in itertools.combinations(others, k):
                w = math.factorial(k) * math.factorial(features - k - 1) / math.factorial(features)
                s = set(subset)
                want[i] += w * sum(_conditional(t, row, s | {i}) - _conditional(t, row, s) for t in trees)
    return want


@pytest.mark.parametrize("path", ["native", "torch"])
@pytest.mark.parametrize("seed", [0, 1])
def test_equals_brute_force_shapley(seed, path, monkeypatch):
    if path == "torch":
        monkeypatch.setenv("ES_INFER_NB_NO_NATIVE", "1")
    else:
        _native_or_skip()
    rng = np.random.default_rng(seed)
    features = 4
    trees = [_with_covers(rng, random_tree(rng, features, 4)) for _ in range(3)]
    definition = parse_definition({"trained_model": {"ensemble": {
        "feature_names": [f"f{i}" for i in range(features)], "trained_models": [{"tree": t} for t in trees]}}})
    table = PathTable(definition.all_trees(), {f"f{i}": i for i in range(features)}, 1, torch.device("cpu"))
    x = rng.normal(size=(6, features)).round(2)
    x[1, 2] = np.nan
    phi = table.contributions(torch.as_tensor(x)).numpy()[:, :, 0]
    assert table.last_path == path
    base = expected_value(definition.all_trees(), 1)[0]
    for r in range(len(x)):
        want = _brute_force(trees, x[r], features)
        np.testing.assert_allclose(phi[r], want, atol=1e-6)
        prediction = sum(_conditional(t, x[r], set(range(features))) for t in trees)
        assert phi[r].sum() + base == pytest.approx(prediction, abs=1e-6)


def test_stump_example_from_the_spec(engine):
    body = {
        "input": {"field_names": ["x"]},
        "inference_config": {"regression": {"num_top_feature_importance_values": 1}},
        "definition": {"trained_model": {"tree": {"feature_names": ["x"], "tree_structure": [
            {"node_index": 0, "split_feature": 0, "threshold": 0.5, "left_child": 1, "right_child": 2, "number_samples": 100},
            {"node_index": 1, "leaf_value": 1.0, "number_samples": 60},
            {"node_index": 2, "leaf_value": 3.0, "number_samples": 40}]}}},
    }
    engine.request("PUT", "_ml/trained_models/stump", body)
    doc = engine.infer("stump", [{"x": 0.2}])[0]
    assert doc["predicted_value"] == 1.0
    assert doc["feature_importance"] == [{"feature_name": "x", "importance": pytest.approx(-0.8, abs=1e-6)}]


def test_classification_importance_collapses_one_hot(engine):
    engine.request("PUT", "_ml/trained_models/churn-gbt", churn_model())
    doc = engine.infer("churn-gbt", [{"tenure": 3, "plan": "pro"}], {
        "classification": {"num_top_classes": -1, "num_top_feature_importance_values": 2}})[0]
    assert list(doc) == ["predicted_value", "top_classes", "prediction_probability", "prediction_score",
                         "feature_importance"]
    fi = doc["feature_importance"]
    assert [f["feature_name"] for f in fi] == ["tenure", "plan"]
    assert fi[0]["classes"] == [{"class_name": "stay", "importance": pytest.approx(-0.7, abs=1e-6)},
                                {"class_name": "churn", "importance": pytest.approx(0.7, abs=1e-6)}]
    assert [c["importance"] for c in fi[1]["classes"]] == [pytest.approx(0.0), pytest.approx(0.0)]


def test_multiclass_importance_has_one_entry_per_class(engine):
    rng = np.random.default_rng(5)
    trees = [{"tree": _with_covers(rng, random_tree(rng, 3, 3, leaf_size=3))} for _ in range(4)]
    body = {"input": {"field_names": ["f0", "f1", "f2"]}, "inference_config": {"classification": {}},
            "definition": {"trained_model": {"ensemble": {
                "feature_names": ["f0", "f1", "f2"], "target_type": "classification",
                "classification_labels": ["a", "b", "c"], "trained_models": trees,
                "aggregate_output": {"logistic_regression": {}}}}}}
    assert engine.request("PUT", "_ml/trained_models/mc", body).status == 200
    doc = engine.infer("mc", [{"f0": 0.1, "f1": -0.3, "f2": 1.2}], {
        "classification": {"num_top_feature_importance_values": 3}})[0]
    fi = doc["feature_importance"]
    assert len(fi) == 3
    for entry in fi:
        assert [c["class_name"] for c in entry["classes"]] == ["a", "b", "c"]
    totals = [sum(abs(c["importance"]) for c in e["classes"]) for e in fi]
    assert totals == sorted(totals, reverse=True)


def test_negative_importance_count_is_rejected(engine):
    engine.request("PUT", "_ml/trained_models/churn-gbt", churn_model())
    r = engine.request("POST", "_ml/trained_models/churn-gbt/_infer", {
        "docs": [{"tenure": 1}], "inference_config": {"classification": {"num_top_feature_importance_values": -1}}})
    assert r.status == 400
    assert r.body["error"]["reason"] == "[num_top_feature_importance_values] must be greater than or equal to 0"


def test_deep_trees_use_the_direct_polynomial_and_agree(monkeypatch):
    from es_infer_nb.models.tree.shap import MAX_TABLE_DEPTH

    monkeypatch.setenv("ES_INFER_NB_NO_NATIVE", "1")  # the torch path (CUDA, no compiler)

    rng = np.random.default_rng(9)
    features = 3
    trees = [_with_covers(rng, random_tree(rng, features, MAX_TABLE_DEPTH + 2)) for _ in range(2)]
    definition = parse_definition({"trained_model": {"ensemble": {
        "feature_names": [f"f{i}" for i in range(features)], "trained_models": [{"tree": t} for t in trees]}}})
    table = PathTable(definition.all_trees(), {f"f{i}": i for i in range(features)}, 1, torch.device("cpu"))
    assert table.depth > MAX_TABLE_DEPTH and not table.tabulated
    x = rng.normal(size=(4, features)).round(2)
    phi = table.contributions(torch.as_tensor(x)).numpy()[:, :, 0]
    assert table.last_path == "torch"
    base = expected_value(definition.all_trees(), 1)[0]
    for r in range(len(x)):
        prediction = sum(_conditional(t, x[r], set(range(features))) for t in trees)
        assert phi[r].sum() + base == pytest.approx(prediction, abs=1e-9)
        want = _brute_force(trees, x[r], features)
        np.testing.assert_allclose(phi[r], want, atol=1e-9)


def _native_or_skip():
    from es_infer_nb.models import native_build
    from es_infer_nb.models.tree import native_shap

    if native_build._compiler() is None:
        pytest.skip("no C compiler on this machine: the torch path is the only CPU path")
    lib = native_shap.kernel()
    assert lib is not None, "a C compiler is present, so the native TreeSHAP kernel must build"


@pytest.mark.parametrize("leaf_size", [1, 3])
def test_native_kernel_equals_the_torch_path(monkeypatch, leaf_size):
    _native_or_skip()
    rng = np.random.default_rng(40 + leaf_size)
    features = 7
    trees = [_with_covers(rng, random_tree(rng, features, int(rng.integers(1, 8)), leaf_size=leaf_size))
             for _ in range(30)]
    definition = parse_definition({"trained_model": {"ensemble": {
        "feature_names": [f"f{i}" for i in range(features)], "trained_models": [{"tree": t} for t in trees]}}})
    table = PathTable(definition.all_trees(), {f"f{i}": i for i in range(features)}, leaf_size, torch.device("cpu"))
    x = rng.normal(size=(5000, features)).round(1)  # thresholds are 2-decimal: many ties
    x[rng.random(size=x.shape) < 0.05] = np.nan
    x[rng.random(size=x.shape) < 0.03] = np.inf
    x[rng.random(size=x.shape) < 0.03] = -np.inf
    layouts = {"rows": x, "columns": np.asfortranarray(x), "strided": np.repeat(x, 3, axis=1)[:, ::3]}
    native = {k: table.contributions(torch.as_tensor(v)).numpy() for k, v in layouts.items()}
    assert table.last_path == "native"
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        single = table.contributions(torch.as_tensor(x)).numpy()
    finally:
        torch.set_num_threads(threads)
    monkeypatch.setenv("ES_INFER_NB_NO_NATIVE", "1")
    eager = table.contributions(torch.as_tensor(x)).numpy()
    assert table.last_path == "torch"
    assert eager.shape == (len(x), features, leaf_size)
    for name, phi in native.items():
        assert np.array_equal(phi, native["rows"]), name
        np.testing.assert_allclose(phi, eager, atol=1e-9, rtol=0)
    assert np.array_equal(single, native["rows"])
    # local accuracy: the contributions add up to the prediction minus the baseline
    base = expected_value(definition.all_trees(), leaf_size)
    finite = np.isfinite(x).all(axis=1)
    for r in np.nonzero(finite)[0][:20]:
        for k in range(leaf_size):
            prediction = sum(_conditional({**t, "tree_structure": [
                {**n, "leaf_value": n["leaf_value"][k]} if "leaf_value" in n and isinstance(n["leaf_value"], list)
                else n for n in t["tree_structure"]]}, x[r], set(range(features))) for t in trees)
            assert native["rows"][r, :, k].sum() + base[k] == pytest.approx(prediction, abs=1e-9)


def test_native_kernel_takes_paths_deeper_than_the_torch_table():
    from es_infer_nb.models.tree.shap import MAX_TABLE_DEPTH

    _native_or_skip()
    rng = np.random.default_rng(12)
    features = 3
    trees = [_with_covers(rng, random_tree(rng, features, MAX_TABLE_DEPTH + 2)) for _ in range(2)]
    definition = parse_definition({"trained_model": {"ensemble": {
        "feature_names": [f"f{i}" for i in range(features)], "trained_models": [{"tree": t} for t in trees]}}})
    table = PathTable(definition.all_trees(), {f"f{i}": i for i in range(features)}, 1, torch.device("cpu"))
    x = rng.normal(size=(4, features)).round(2)
    phi = table.contributions(torch.as_tensor(x)).numpy()[:, :, 0]
    assert table.last_path == "native"
    for r in range(len(x)):
        np.testing.assert_allclose(phi[r], _brute_force(trees, x[r], features), atol=1e-9)


def test_native_build_failure_falls_back_to_the_torch_path(monkeypatch, tmp_path, caplog):
    from es_infer_nb.models.tree import native_shap

    rng = np.random.default_rng(13)
    features = 4
    trees = [_with_covers(rng, random_tree(rng, features, 4)) for _ in range(3)]
    definition = parse_definition({"trained_model": {"ensemble": {
        "feature_names": [f"f{i}" for i in range(features)], "trained_models": [{"tree": t} for t in trees]}}})
    table = PathTable(definition.all_trees(), {f"f{i}": i for i in range(features)}, 1, torch.device("cpu"))
    x = rng.normal(size=(5, features)).round(2)
    monkeypatch.setattr(native_shap, "_state", {})
    monkeypatch.setenv("ES_INFER_NB_NATIVE_CACHE", str(tmp_path))
    monkeypatch.setenv("CC", "false")  # a "compiler" that always fails
    with caplog.at_level("WARNING"):
        assert native_shap.kernel() is None
    assert "building the native es_shap kernel failed" in caplog.text
    assert list(tmp_path.glob("*.so")) == []
    phi = table.contributions(torch.as_tensor(x)).numpy()[:, :, 0]
    assert table.last_path == "torch"
    for r in range(len(x)):
        np.testing.assert_allclose(phi[r], _brute_force(trees, x[r], features), atol=1e-6)
