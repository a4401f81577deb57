"""The native tree kernel (its AVX-512 build where the CPU has it, and its portable build) against the
torch walk and a plain-Python walk of the ES semantics: unbalanced trees, every depth the perfect
layout takes, NaN / +-inf / -0.0, default_left, every aggregator and output transform."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import TREE_OPS, es_tree_walk

from es_infer_nb.models import native_build
from es_infer_nb.models.tree import native
from es_infer_nb.models.tree.definition import parse_definition
from es_infer_nb.models.tree.evaluate import CompiledModel
from es_infer_nb.models.tree.perfect import PerfectTrees

NF = 6


def unbalanced_tree(rng: np.random.Generator, depth: int, leaf_size: int = 1) -> dict:
    """A leaf-wise (LightGBM-like) tree: one deep spine of ``depth`` splits, short side branches."""
    nodes: list[dict] = []

    def leaf(idx: int) -> None:
        value = rng.normal(size=leaf_size).round(3).tolist()
        nodes[idx] = {"node_index": idx, "leaf_value": value if leaf_size > 1 else value[0]}

    def grow(d: int, spine: bool) -> int:
        idx = len(nodes)
        nodes.append({})
        stop = d == depth or (not spine and (d >= depth or rng.random() < 0.5))
        if stop:
            leaf(idx)
            return idx
        node = {"node_index": idx, "split_feature": int(rng.integers(NF)),
                "threshold": round(float(rng.normal()), 2), "decision_type": str(rng.choice(list(TREE_OPS))),
                "default_left": bool(rng.random() < 0.5)}
        nodes[idx] = node
        spine_left = bool(rng.random() < 0.5)
        node["left_child"] = grow(d + 1, spine and spine_left)
        node["right_child"] = grow(d + 1, spine and not spine_left)
        return idx

    grow(0, True)
    tree = {"feature_names": [f"f{i}" for i in range(NF)], "tree_structure": nodes}
    if leaf_size > 1:
        tree["target_type"] = "classification"
    return tree


def special_data(rng: np.random.Generator, n: int) -> np.ndarray:
    """Values on the 2-decimal thresholds, NaN, +-inf and -0.0."""
    x = rng.normal(size=(n, NF)).round(2)
    for value, share in ((np.nan, 0.08), (np.inf, 0.03), (-np.inf, 0.03), (-0.0, 0.03)):
        x[rng.random(size=x.shape) < share] = value
    return x


def builds() -> dict[str, object]:
    """The kernel as this machine builds it, and its portable (no AVX-512) build."""
    if native_build.compiler_path() is None:
        pytest.skip("no C compiler on this machine: the torch walk is the only CPU path")
    lib = native.kernel()
    assert lib is not None, "a C compiler is present, so the native tree kernel must build"
    portable = native_build.compile_library("#define ES_NO_SIMD 1\n" + native.SOURCE, "es_trees_portable",
                                      native.bind_walk, "tests")
    assert portable is not None and not native.uses_simd(portable)
    return {"default": lib, "portable": portable}


def definition(trees: list[dict], aggregate: dict | None = None, target: str = "regression"):
    ensemble = {"feature_names": [f"f{i}" for i in range(NF)], "target_type": target,
                "trained_models": [{"tree": t} for t in trees]}
    if aggregate is not None:
        ensemble["aggregate_output"] = aggregate
    return parse_definition({"trained_model": {"ensemble": ensemble}})


@pytest.mark.parametrize("depth", [1, 2, 4, 5, 6, 7, 10])
@pytest.mark.parametrize("leaf_size", [1, 3])
def test_both_builds_equal_the_torch_walk_bit_for_bit_on_unbalanced_trees(monkeypatch, depth, leaf_size):
    libs = builds()
    rng = np.random.default_rng(100 * depth + leaf_size)
    trees = [unbalanced_tree(rng, int(rng.integers(max(1, depth - 2), depth + 1)), leaf_size) for _ in range(19)]
    trees[0] = unbalanced_tree(rng, depth, leaf_size)  # the deepest sets the perfect depth
    parsed = definition(trees).all_trees()
    perfect = PerfectTrees(parsed, [f"f{i}" for i in range(NF)], torch.device("cpu"))
    assert perfect.depth == depth
    weights = rng.uniform(0.1, 2.0, size=len(trees))
    x = special_data(rng, 1000 + 37)  # not a whole number of row groups
    perfect.weighted_sum(torch.as_tensor(x), weights)
    table = perfect._weighted_leaf
    monkeypatch.setenv("ES_INFER_NB_NO_NATIVE", "1")
    want_rows = perfect.leaf_rows(torch.as_tensor(x))
    want_sums = perfect.weighted_sum(torch.as_tensor(x), weights)
    for name, lib in libs.items():
        for layout in (x, np.asfortranarray(x)):
            xt = torch.as_tensor(layout)
            rows = native.walk(lib, xt, perfect.feat32, perfect.thr, depth, None)
            sums = native.walk(lib, xt, perfect.feat32, perfect.thr, depth, table)
            assert torch.equal(rows, want_rows), name
            assert np.array_equal(sums.numpy().view(np.int64), want_sums.numpy().view(np.int64)), name
    # and both against the plain-Python ES walk (leaf values summed in tree order)
    for i in range(0, len(x), 53):
        expected = np.zeros(leaf_size)
        for j, t in enumerate(trees):
            value = weights[j] * np.asarray(es_tree_walk(t, x[i]))
            expected = value if j == 0 else expected + value
        np.testing.assert_array_equal(want_sums[i].numpy(), expected)


AGGREGATES = [
    ({"weighted_sum": {"weights": [0.5, 1.5, 2.0, 0.25] * 4}}, 1, "regression"),
    ({"weighted_sum": {}}, 1, "regression"),
    ({"exponent": {"weights": [0.1] * 16}}, 1, "regression"),
    ({"logistic_regression": {}}, 1, "classification"),
    ({"logistic_regression": {"weights": [0.7] * 16}}, 3, "classification"),
    ({"weighted_mode": {"num_classes": 3}}, 3, "classification"),
    ({"weighted_mode": {"num_classes": 3}}, 1, "classification"),
]


@pytest.mark.parametrize("aggregate,leaf_size,target", AGGREGATES)
def test_every_aggregator_and_transform_equals_the_torch_path(monkeypatch, aggregate, leaf_size, target):
    builds()
    rng = np.random.default_rng(7 + leaf_size)
    if "weighted_mode" in aggregate and leaf_size == 1:  # votes: class indices as leaf values
        trees = [unbalanced_tree(rng, int(rng.integers(1, 7))) for _ in range(16)]
        for t in trees:
            for node in t["tree_structure"]:
                if "leaf_value" in node:
                    node["leaf_value"] = float(rng.integers(0, 3))
    else:
        trees = [unbalanced_tree(rng, int(rng.integers(1, 7)), leaf_size) for _ in range(16)]
    d = definition(trees, aggregate, target)
    x = special_data(rng, 5000)
    native_out = CompiledModel(d, torch.device("cpu")).run(x)
    monkeypatch.setenv("ES_INFER_NB_NO_NATIVE", "1")
    torch_out = CompiledModel(d, torch.device("cpu")).run(x)
    assert np.array_equal(native_out.values, torch_out.values)
    if torch_out.probabilities is not None:
        assert np.array_equal(native_out.probabilities, torch_out.probabilities)
    assert native_out.row_errors == torch_out.row_errors


def test_repeated_calls_reuse_one_library_and_grow_no_cache(monkeypatch, tmp_path):
    if native_build.compiler_path() is None:
        pytest.skip("no C compiler on this machine")
    monkeypatch.setattr(native, "_state", {})
    monkeypatch.setenv("ES_INFER_NB_NATIVE_CACHE", str(tmp_path))
    rng = np.random.default_rng(3)
    model = CompiledModel(definition([unbalanced_tree(rng, 6) for _ in range(20)]), torch.device("cpu"))
    x = special_data(rng, 9000)
    first = model.run(x).values
    built = sorted(tmp_path.iterdir())
    lib = native.kernel()
    calls = []
    monkeypatch.setattr(native_build.subprocess, "run", lambda *a, **k: calls.append(a))
    for _ in range(10):
        assert np.array_equal(model.run(x).values, first)
    assert calls == []  # no compiler run, not even a version probe
    assert native.kernel() is lib
    assert sorted(tmp_path.iterdir()) == built
    assert isinstance(model.packed, PerfectTrees) and model.packed._compiled == {}  # no torch.compile either


def test_the_isa_cap_builds_a_kernel_without_avx512(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """``ES_INFER_NB_NATIVE_ISA=avx2`` builds for x86-64-v3 (an AVX2-only machine simulated here): the
    AVX-512 walk is compiled out; an unknown value names the choices."""
    if native_build.compiler_path() is None:
        pytest.skip("no C compiler")
    monkeypatch.setenv("ES_INFER_NB_NATIVE_CACHE", str(tmp_path))
    monkeypatch.setenv("ES_INFER_NB_NATIVE_ISA", "avx2")
    assert native_build.target_isa() == "avx2"
    lib = native_build.compile_library(native.SOURCE, "es_trees", native.bind_walk, "tree ensembles", name="tree")
    assert lib is not None and native.uses_simd(lib) is False
    monkeypatch.setenv("ES_INFER_NB_NATIVE_ISA", "sse9")
    with pytest.raises(ValueError, match="native, avx2, portable"):
        native_build.target_isa()
