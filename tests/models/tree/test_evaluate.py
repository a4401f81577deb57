"""The torch evaluator against a plain-Python walk of the ES tree semantics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from es_infer_nb.errors import ApiError
from es_infer_nb.models.tree.definition import parse_definition
from es_infer_nb.models.tree.evaluate import CompiledModel, resolve_device

OPS = {"lte": lambda x, t: x <= t, "lt": lambda x, t: x < t, "gte": lambda x, t: x >= t, "gt": lambda x, t: x > t}


def random_tree(rng: np.random.Generator, n_features: int, depth: int, leaf_size: int = 1) -> dict:
    nodes: list[dict] = []

    def grow(d: int) -> int:
        idx = len(nodes)
        nodes.append({})
        if d == depth or (d > 0 and rng.random() < 0.2):
            value = rng.normal(size=leaf_size).round(3).tolist()
            nodes[idx] = {"node_index": idx, "leaf_value": value if leaf_size > 1 else value[0]}
            return idx
        node = {
            "node_index": idx,
            "split_feature": int(rng.integers(n_features)),
            "threshold": round(float(rng.normal()), 2),
            "decision_type": str(rng.choice(list(OPS))),
            "default_left": bool(rng.random() < 0.5),
        }
        nodes[idx] = node
        node["left_child"] = grow(d + 1)
        node["right_child"] = grow(d + 1)
        return idx

    grow(0)
    tree = {"feature_names": [f"f{i}" for i in range(n_features)], "tree_structure": nodes}
    if leaf_size > 1:
        tree["target_type"] = "classification"
    return tree


def walk(tree: dict, x: np.ndarray) -> list[float]:
    nodes = tree["tree_structure"]
    node = nodes[0]
    while "left_child" in node:
        v = x[node["split_feature"]]
        if not math.isfinite(v):
            left = node.get("default_left", False)
        else:
            left = OPS[node.get("decision_type", "lte")](v, node["threshold"])
        node = nodes[node["left_child"] if left else node["right_child"]]
    lv = node["leaf_value"]
    return lv if isinstance(lv, list) else [lv]


def data(rng, n, f):
    x = rng.normal(size=(n, f)).round(2)
    x[rng.random(size=x.shape) < 0.1] = np.nan
    x[0, 0] = np.inf
    return x


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_weighted_sum_matches_reference_walk(seed):
    rng = np.random.default_rng(seed)
    trees = [random_tree(rng, 5, 5) for _ in range(12)]
    weights = rng.uniform(0.1, 2.0, size=12).tolist()
    definition = parse_definition({"trained_model": {"ensemble": {
        "feature_names": [f"f{i}" for i in range(5)], "trained_models": [{"tree": t} for t in trees],
        "aggregate_output": {"weighted_sum": {"weights": weights}}}}})
    x = data(rng, 500, 5)
    got = CompiledModel(definition, torch.device("cpu")).run(x).values
    want = [sum(w * walk(t, row)[0] for w, t in zip(weights, trees)) for row in x]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


def test_multiclass_logistic_matches_reference_softmax():
    rng = np.random.default_rng(7)
    trees = [random_tree(rng, 4, 4, leaf_size=3) for _ in range(6)]
    definition = parse_definition({"trained_model": {"ensemble": {
        "feature_names": [f"f{i}" for i in range(4)], "target_type": "classification",
        "trained_models": [{"tree": t} for t in trees], "aggregate_output": {"logistic_regression": {}}}}})
    x = data(rng, 300, 4)
    out = CompiledModel(definition, torch.device("cpu")).run(x)
    for row, probs, cls in zip(x, out.probabilities, out.values):
        s = np.sum([walk(t, row) for t in trees], axis=0)
        e = np.exp(s - s.max())
        np.testing.assert_allclose(probs, e / e.sum(), atol=1e-12)
        assert cls == int(np.argmax(s))


def test_answer_does_not_depend_on_batch_size():
    rng = np.random.default_rng(3)
    trees = [random_tree(rng, 6, 6) for _ in range(20)]
    definition = parse_definition({"trained_model": {"ensemble": {
        "feature_names": [f"f{i}" for i in range(6)], "trained_models": [{"tree": t} for t in trees]}}})
    model = CompiledModel(definition, torch.device("cpu"))
    x = data(rng, 4100, 6)
    whole = model.run(x).values
    for size in (1, 7, 4096):
        parts = np.concatenate([model.run(x[i : i + size]).values for i in range(0, len(x), size)])
        assert np.array_equal(parts, whole)


def test_nested_ensemble_uses_inner_aggregate():
    inner = {"ensemble": {"feature_names": [], "trained_models": [
        {"tree": {"feature_names": [], "tree_structure": [{"node_index": 0, "leaf_value": 1.0}]}},
        {"tree": {"feature_names": [], "tree_structure": [{"node_index": 0, "leaf_value": 2.0}]}}],
        "aggregate_output": {"weighted_sum": {}}}}
    outer = {"trained_model": {"ensemble": {"feature_names": [], "trained_models": [
        inner, {"tree": {"feature_names": [], "tree_structure": [{"node_index": 0, "leaf_value": 0.5}]}}],
        "aggregate_output": {"weighted_sum": {"weights": [2.0, 1.0]}}}}}
    out = CompiledModel(parse_definition(outer), torch.device("cpu")).run(np.zeros((2, 0)))
    assert out.values.tolist() == [6.5, 6.5]


def test_weighted_mode_rejects_bad_votes_per_row():
    definition = parse_definition({"trained_model": {"ensemble": {
        "feature_names": ["a"], "target_type": "classification",
        "aggregate_output": {"weighted_mode": {"num_classes": 2}},
        "trained_models": [{"tree": {"feature_names": ["a"], "tree_structure": [
            {"node_index": 0, "split_feature": 0, "threshold": 0.0, "left_child": 1, "right_child": 2},
            {"node_index": 1, "leaf_value": 1.0}, {"node_index": 2, "leaf_value": 5.0}]}}]}}})
    out = CompiledModel(definition, torch.device("cpu")).run(np.array([[-1.0], [1.0]]))
    assert out.row_errors[0] is None and out.values[0] == 1.0
    assert out.row_errors[1] == "values contain entries larger than expected max of [1]"


def test_cuda_request_without_cuda_is_a_clear_error():
    if torch.cuda.is_available():
        assert resolve_device("cuda").type == "cuda"
        return
    with pytest.raises(ApiError) as info:
        resolve_device("cuda")
    assert "CUDA is not available" in info.value.reason


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_equals_cpu():
    rng = np.random.default_rng(11)
    trees = [random_tree(rng, 5, 6) for _ in range(30)]
    definition = parse_definition({"trained_model": {"ensemble": {
        "feature_names": [f"f{i}" for i in range(5)], "trained_models": [{"tree": t} for t in trees]}}})
    x = data(rng, 2000, 5)
    cpu = CompiledModel(definition, torch.device("cpu")).run(x).values
    gpu = CompiledModel(definition, torch.device("cuda")).run(x).values
    np.testing.assert_array_equal(cpu, gpu)


def test_compiled_large_batches_equal_the_general_walk():
    """Batches past COMPILE_MIN_ROWS go through torch.compile; answers must not change."""
    from es_infer_nb.models.tree.evaluate import PackedTrees
    from es_infer_nb.models.tree.perfect import COMPILE_MIN_ROWS, PerfectTrees

    rng = np.random.default_rng(21)
    trees = [random_tree(rng, 6, 5) for _ in range(15)]
    definition = parse_definition({"trained_model": {"ensemble": {
        "feature_names": [f"f{i}" for i in range(6)], "trained_models": [{"tree": t} for t in trees]}}})
    parsed = definition.all_trees()
    features = [f"f{i}" for i in range(6)]
    x = torch.as_tensor(data(rng, COMPILE_MIN_ROWS + 500, 6))
    perfect = PerfectTrees(parsed, features, torch.device("cpu"))
    general = PackedTrees(parsed, features, torch.device("cpu"))
    fast = perfect.leaves(x)
    assert perfect._compiled is not None or perfect._compile_failed
    assert torch.equal(fast, general.leaves(x))
    assert torch.equal(perfect.leaves(x[:100]), general.leaves(x[:100]))


def test_deep_trees_use_the_general_walk():
    from es_infer_nb.models.tree.evaluate import PackedTrees

    nodes = []
    depth = 14
    for d in range(depth):
        nodes.append({"node_index": 2 * d, "split_feature": 0, "threshold": float(d), "left_child": 2 * d + 1,
                      "right_child": 2 * d + 2})
        nodes.append({"node_index": 2 * d + 1, "leaf_value": float(d)})
    nodes.append({"node_index": 2 * depth, "leaf_value": 99.0})
    definition = parse_definition({"trained_model": {"tree": {"feature_names": ["a"], "tree_structure": nodes}}})
    model = CompiledModel(definition, torch.device("cpu"))
    assert isinstance(model.packed, PackedTrees)
    out = model.run(np.array([[-1.0], [5.5], [100.0], [np.nan]]))
    assert out.values.tolist() == [0.0, 6.0, 99.0, 99.0]


@pytest.mark.parametrize("aggregate,leaf_size,target", [
    ({"weighted_sum": {"weights": [0.5] * 12}}, 1, "regression"),
    ({"exponent": {}}, 1, "regression"),
    ({"logistic_regression": {}}, 1, "classification"),
    ({"logistic_regression": {}}, 3, "classification"),
    ({"weighted_mode": {"num_classes": 3}}, 3, "classification"),
])
def test_fused_walk_and_sum_equal_the_step_by_step_aggregation(aggregate, leaf_size, target):
    from es_infer_nb.models.tree.perfect import COMPILE_MIN_ROWS

    rng = np.random.default_rng(4)
    trees = [random_tree(rng, 5, 4, leaf_size=leaf_size) for _ in range(12)]
    definition = parse_definition({"trained_model": {"ensemble": {
        "feature_names": [f"f{i}" for i in range(5)], "target_type": target, "aggregate_output": aggregate,
        "trained_models": [{"tree": t} for t in trees]}}})
    fused = CompiledModel(definition, torch.device("cpu"))
    plain = CompiledModel(definition, torch.device("cpu"))
    assert fused._fused is not None
    plain._fused = None
    for rows in (50, COMPILE_MIN_ROWS + 10):
        x = data(rng, rows, 5)
        a, b = fused.run(x), plain.run(x)
        np.testing.assert_allclose(a.values, b.values, rtol=1e-12, atol=1e-12)
        if b.probabilities is not None:
            np.testing.assert_allclose(a.probabilities, b.probabilities, rtol=1e-12, atol=1e-12)
