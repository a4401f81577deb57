"""The torch evaluator against a plain-Python walk of the ES tree semantics."""

from __future__ import annotations


import numpy as np
import pytest
import torch
from helpers import TREE_OPS, es_tree_walk

from es_infer_nb.errors import ApiError
from es_infer_nb.models.tree.definition import parse_definition
from es_infer_nb.models.tree.evaluate import CompiledModel, resolve_device



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
            "decision_type": str(rng.choice(list(TREE_OPS))),
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
    want = [sum(w * es_tree_walk(t, row)[0] for w, t in zip(weights, trees)) for row in x]
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
        s = np.sum([es_tree_walk(t, row) for t in trees], axis=0)
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
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ES_INFER_NB_NO_NATIVE", "1")  # the torch.compile path, not the native kernel
        fast = perfect.leaves(x)
        assert "walk" in perfect._compiled or perfect._compile_failed
        assert torch.equal(fast, general.leaves(x))
        assert torch.equal(perfect.leaves(x[:100]), general.leaves(x[:100]))
    assert torch.equal(perfect.leaves(x), fast)  # the native kernel, where it is available


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


# -- the native CPU kernel --------------------------------------------------------------------

def _needs_native():
    from es_infer_nb.models import native_build
    from es_infer_nb.models.tree import native

    if native_build._compiler() is None:
        pytest.skip("no C compiler on this machine: the torch walk is the only CPU path")
    lib = native.kernel()
    assert lib is not None, "a C compiler is present, so the native tree kernel must build"
    return lib


def _special_values(rng, n, f):
    """Data with NaN, +-inf, -0.0 and values equal to the (2-decimal) thresholds."""
    x = data(rng, n, f)
    x[rng.random(size=x.shape) < 0.03] = -np.inf
    x[rng.random(size=x.shape) < 0.03] = np.inf
    x[rng.random(size=x.shape) < 0.03] = -0.0
    return x


@pytest.mark.parametrize("leaf_size", [1, 3])
def test_native_kernel_equals_the_torch_walk_bit_for_bit(monkeypatch, leaf_size):
    from es_infer_nb.models.tree.perfect import PerfectTrees

    _needs_native()
    rng = np.random.default_rng(31 + leaf_size)
    trees = [random_tree(rng, 7, int(rng.integers(1, 7)), leaf_size=leaf_size) for _ in range(25)]
    parsed = parse_definition({"trained_model": {"ensemble": {
        "feature_names": [f"f{i}" for i in range(7)], "trained_models": [{"tree": t} for t in trees]}}}).all_trees()
    perfect = PerfectTrees(parsed, [f"f{i}" for i in range(7)], torch.device("cpu"))
    weights = rng.uniform(0.1, 2.0, size=len(trees))
    x = _special_values(rng, 3001, 7)
    layouts = {"rows": x, "columns": np.asfortranarray(x), "strided": np.repeat(x, 3, axis=1)[:, ::3]}
    native_rows = {k: perfect.leaf_rows(torch.as_tensor(v)) for k, v in layouts.items()}
    native_sums = {k: perfect.weighted_sum(torch.as_tensor(v), weights) for k, v in layouts.items()}
    monkeypatch.setenv("ES_INFER_NB_NO_NATIVE", "1")
    eager_rows = perfect.leaf_rows(torch.as_tensor(x))
    eager_sums = perfect.weighted_sum(torch.as_tensor(x), weights)
    for name in layouts:
        assert torch.equal(native_rows[name], eager_rows), name
        assert native_sums[name].shape == (len(x), leaf_size)
        # bit for bit, -0.0 included
        assert np.array_equal(native_sums[name].numpy().view(np.int64), eager_sums.numpy().view(np.int64)), name


def test_native_answers_do_not_depend_on_threads_or_batches():
    _needs_native()
    rng = np.random.default_rng(5)
    trees = [random_tree(rng, 6, 6) for _ in range(40)]
    definition = parse_definition({"trained_model": {"ensemble": {
        "feature_names": [f"f{i}" for i in range(6)], "trained_models": [{"tree": t} for t in trees]}}})
    model = CompiledModel(definition, torch.device("cpu"))
    x = _special_values(rng, 20_000, 6)
    whole = model.run(x).values
    threads = torch.get_num_threads()
    try:
        for count in (1, 2, 3):
            torch.set_num_threads(count)
            assert np.array_equal(model.run(x).values, whole)
    finally:
        torch.set_num_threads(threads)
    for size in (1, 7, 4096):
        parts = np.concatenate([model.run(x[i : i + size]).values for i in range(0, 4100, size)])
        assert np.array_equal(parts, whole[: len(parts)])


def test_native_build_failure_falls_back_to_torch(monkeypatch, tmp_path, caplog):
    from es_infer_nb.models.tree import native

    rng = np.random.default_rng(8)
    trees = [random_tree(rng, 4, 4) for _ in range(6)]
    definition = parse_definition({"trained_model": {"ensemble": {
        "feature_names": [f"f{i}" for i in range(4)], "trained_models": [{"tree": t} for t in trees]}}})
    x = data(rng, 200, 4)
    expected = CompiledModel(definition, torch.device("cpu")).run(x).values
    monkeypatch.setattr(native, "_state", {})
    monkeypatch.setenv("ES_INFER_NB_NATIVE_CACHE", str(tmp_path))
    monkeypatch.setenv("CC", "false")  # a "compiler" that always fails
    with caplog.at_level("WARNING"):
        assert native.kernel() is None
    assert "building the native tree kernel failed" in caplog.text
    assert list(tmp_path.glob("*.so")) == []
    assert np.array_equal(CompiledModel(definition, torch.device("cpu")).run(x).values, expected)


def test_native_library_is_built_once_and_reused(monkeypatch, tmp_path):
    from es_infer_nb.models import native_build
    from es_infer_nb.models.tree import native

    _needs_native()
    monkeypatch.setattr(native, "_state", {})
    monkeypatch.setenv("ES_INFER_NB_NATIVE_CACHE", str(tmp_path))
    assert native.kernel() is not None
    built = list(tmp_path.glob("es_trees_*.so"))
    assert len(built) == 1
    calls = []
    real_run = native_build.subprocess.run

    def recording_run(args, *a, **k):
        calls.append(list(args))
        return real_run(args, *a, **k)

    monkeypatch.setattr(native_build.subprocess, "run", recording_run)
    monkeypatch.setattr(native, "_state", {})  # a new process: loads from the cache
    assert native.kernel() is not None
    assert all("--version" in c for c in calls), calls  # no compilation
    assert list(tmp_path.glob("es_trees_*.so")) == built


def test_feature_matrix_of_one_block_frame_is_a_view_with_the_same_answers():
    import pandas as pd

    from es_infer_nb.models.tree.features import columns_from_frame, feature_matrix

    rng = np.random.default_rng(12)
    trees = [random_tree(rng, 5, 5) for _ in range(10)]
    names = [f"f{i}" for i in range(5)]
    definition = parse_definition({"trained_model": {"ensemble": {
        "feature_names": names, "trained_models": [{"tree": t} for t in trees]}}})
    x = data(rng, 1000, 5)
    frame = pd.DataFrame(x, columns=names)
    view = feature_matrix(columns_from_frame(frame, names), names, len(frame))
    assert not view.flags.writeable and np.array_equal(view, x, equal_nan=True)
    shuffled = feature_matrix(columns_from_frame(frame, names), names[::-1], len(frame))
    assert np.array_equal(shuffled, x[:, ::-1], equal_nan=True)
    mixed = frame.assign(f2=frame["f2"].astype(object))  # not one block: copied, column-major
    copied = feature_matrix(columns_from_frame(mixed, names), names + ["absent"], len(frame))
    assert copied.flags.writeable and np.isnan(copied[:, 5]).all()
    assert np.array_equal(copied[:, :5], x, equal_nan=True)
    model = CompiledModel(definition, torch.device("cpu"))
    want = model.run(np.ascontiguousarray(x)).values
    assert np.array_equal(model.run(view).values, want)
    assert np.array_equal(model.run(copied[:, :5]).values, want)


def test_native_thread_pool_is_renewed_after_fork_or_thread_change(monkeypatch):
    from es_infer_nb.models import native_build
    from es_infer_nb.models.tree import native

    monkeypatch.setattr(native, "_state", {})
    first = native_build._pool(2)
    assert native_build._pool(2) is first
    assert native_build._pool(3) is not first
    again = native_build._pool(2)
    monkeypatch.setattr(native_build.os, "getpid", lambda: -1)  # as in a forked child
    assert native_build._pool(2) is not again
