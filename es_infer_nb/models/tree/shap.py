"""Path-dependent TreeSHAP, vectorised over rows and root-to-leaf paths.

Elasticsearch (ml-cpp ``CTreeShapFeatureImportance``) computes exact path-dependent
TreeSHAP on the raw leaf values of every tree and sums the trees unweighted. This
module computes the same numbers in the path-wise formulation (as GPUTreeShap does):

* every root-to-leaf path is a list of *unique* features ``i`` with a zero fraction
  ``z_i`` (product of ``cover(child)/cover(node)`` over the path's splits on that
  feature) and, per row, a one fraction ``o_i`` in {0, 1} (does the row follow the
  path at every split on that feature, missing-value routing included);
* the Shapley weight of element ``i`` is
  ``W_i = sum_k c_k * k! (m-1-k)! / m!`` with ``c_k`` the coefficients of
  ``prod_{j != i} (z_j + o_j t)``, and the path adds ``v * (o_i - z_i) * W_i`` to
  feature ``i``.

Because ``o`` is binary, a path of ``m`` unique features has only ``2**m`` patterns:
the contributions ``(o_i - z_i) W_i`` are tabulated once per model for every pattern
(as FastTreeSHAP v2 does), and a batch then only computes each row's pattern per path,
gathers, and reduces onto features with one matrix product.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .definition import TreeDef

#: paths with more unique features than this are tabulated lazily per row instead
MAX_TABLE_FEATURES = 12


@dataclass
class _Path:
    nodes: list[int]  # global inner-node ids along the path
    go_left: list[bool]
    slots: list[int]  # unique-feature slot of each position
    features: list[int]  # global feature index per slot
    zero: list[float]  # zero fraction per slot
    value: np.ndarray  # leaf vector [K]


def _shapley_table(z: np.ndarray) -> np.ndarray:
    """``(o_i - z_i) * W_i`` for every pattern of ``o``: shape [2**m, m]."""
    m = len(z)
    patterns = np.arange(2**m)
    o = ((patterns[:, None] >> np.arange(m)[None, :]) & 1).astype(np.float64)  # [B, m]
    coef = np.array([math.factorial(k) * math.factorial(m - 1 - k) / math.factorial(m) for k in range(m)])
    out = np.zeros((2**m, m))
    for i in range(m):
        poly = np.zeros((2**m, m))  # coefficients of prod_{j != i}(z_j + o_j t), degree <= m-1
        poly[:, 0] = 1.0
        for j in range(m):
            if j == i:
                continue
            shifted = np.zeros_like(poly)
            shifted[:, 1:] = poly[:, :-1]
            poly = poly * z[j] + shifted * o[:, j : j + 1]
        w = poly @ coef
        out[:, i] = (o[:, i] - z[i]) * w
    return out


class PathTable:
    """All root-to-leaf paths of a model's trees, with their per-pattern contributions."""

    def __init__(self, trees: list[TreeDef], feature_index: dict[str, int], num_outputs: int,
                 device: torch.device) -> None:
        inner_feat: list[int] = []
        inner_thr: list[float] = []
        inner_lt: list[bool] = []
        inner_neg: list[bool] = []
        inner_dleft: list[bool] = []
        paths: list[_Path] = []
        starts: list[int] = []
        path_tree: list[int] = []
        for tree in trees:
            base = len(inner_feat)
            local_to_inner: dict[int, int] = {}
            for n in range(tree.num_nodes):
                if tree.left[n] >= 0:
                    local_to_inner[n] = len(inner_feat)
                    name = tree.feature_names[int(tree.split_feature[n])]
                    inner_feat.append(feature_index[name])
                    inner_thr.append(float(tree.threshold[n]))
                    inner_lt.append(int(tree.decision[n]) in (1, 2))
                    inner_neg.append(int(tree.decision[n]) in (2, 3))
                    inner_dleft.append(bool(tree.default_left[n]))
            del base
            starts.append(len(paths))
            self._collect(tree, local_to_inner, feature_index, num_outputs, paths)
            path_tree.extend([len(starts) - 1] * (len(paths) - starts[-1]))
        self.device = device
        self.num_features = len(feature_index)
        self.num_outputs = num_outputs
        p_count = len(paths)
        d_max = max((len(p.nodes) for p in paths), default=0)
        m_max = max((len(p.features) for p in paths), default=0)
        if m_max > MAX_TABLE_FEATURES:
            raise ValueError(
                f"paths with {m_max} distinct features are too deep for the tabulated TreeSHAP "
                f"(at most {MAX_TABLE_FEATURES})"
            )
        self.m_max = m_max
        node = np.zeros((p_count, max(d_max, 1)), dtype=np.int64)
        left = np.zeros_like(node, dtype=bool)
        valid = np.zeros_like(node, dtype=bool)
        clear = np.zeros_like(node)  # bit mask cleared when the row leaves the path there
        full = np.zeros(p_count, dtype=np.int64)
        width = max(m_max, 1)
        patterns = 2**m_max
        # contributions of every path for every pattern, already placed on features x outputs
        table = np.zeros((p_count, patterns, self.num_features * num_outputs))
        for pi, path in enumerate(paths):
            d = len(path.nodes)
            node[pi, :d] = path.nodes
            left[pi, :d] = path.go_left
            valid[pi, :d] = True
            clear[pi, :d] = [1 << s for s in path.slots]
            m = len(path.features)
            full[pi] = (1 << m) - 1
            if not m:
                continue
            weights = _shapley_table(np.asarray(path.zero))  # [2**m, m]
            for slot, f in enumerate(path.features):
                for k in range(num_outputs):
                    table[pi, : 2**m, f * num_outputs + k] += weights[:, slot] * path.value[k]
        t = lambda a: torch.as_tensor(a, device=device)  # noqa: E731
        self.inner_feat = t(np.asarray(inner_feat, dtype=np.int64))
        self.inner_thr = t(np.asarray(inner_thr, dtype=np.float64))
        self.inner_lt = t(np.asarray(inner_lt, dtype=bool))
        self.inner_neg = t(np.asarray(inner_neg, dtype=bool))
        self.inner_dleft = t(np.asarray(inner_dleft, dtype=bool))
        # path-major layouts: [depth, paths]
        self.node = t(np.ascontiguousarray(node.T))
        self.left = t(np.ascontiguousarray(left.T))
        self.valid = t(np.ascontiguousarray(valid.T))
        self.clear = t(np.ascontiguousarray(clear.T.astype(np.int32)))
        self.full = t(full.astype(np.int32))
        self.patterns = patterns
        self.width = width
        self.offsets = t((np.arange(p_count, dtype=np.int64) * patterns))
        # float32 embedding bags are fast where float64 ones are not. Each value is split into a
        # "hi" part on a per-tree grid, coarse enough that summing a tree's paths in float32 is
        # exact, and the float32 remainder "lo"; bags are per (row, tree) and added in float64.
        flat = table.reshape(p_count * patterns, self.num_features * num_outputs)
        hi = np.zeros_like(flat, dtype=np.float32)
        lo = np.zeros_like(flat, dtype=np.float32)
        bounds = starts + [p_count]
        for ti in range(len(starts)):
            rows_t = slice(bounds[ti] * patterns, bounds[ti + 1] * patterns)
            block = flat[rows_t]
            scale = float(np.nanmax(np.abs(block))) if block.size else 0.0
            if not np.isfinite(scale) or scale == 0.0:
                hi[rows_t] = block.astype(np.float32)
                continue
            paths_in_tree = max(1, bounds[ti + 1] - bounds[ti])
            bits = max(1, 23 - int(np.ceil(np.log2(paths_in_tree))))
            step = 2.0 ** (np.floor(np.log2(scale)) + 1 - bits)
            coarse = np.round(block / step) * step
            hi[rows_t] = coarse.astype(np.float32)
            lo[rows_t] = (block - coarse).astype(np.float32)
        self.table = t(np.concatenate([hi, lo], axis=1))
        self.num_paths = p_count
        self.tree_of_path = t(np.asarray(path_tree, dtype=np.int64))
        self.num_trees = len(trees)
        self.path_starts = t(np.asarray(starts, dtype=np.int64))

    @staticmethod
    def _collect(tree: TreeDef, local_to_inner: dict[int, int], feature_index: dict[str, int], k_out: int,
                 out: list[_Path]) -> None:
        cover = tree.number_samples

        def visit(n: int, nodes: list[int], dirs: list[bool], feats: list[int], zeros: list[float]) -> None:
            if tree.left[n] < 0:
                slots: list[int] = []
                uniq: list[int] = []
                zero: list[float] = []
                for f, z in zip(feats, zeros):
                    if f in uniq:
                        s = uniq.index(f)
                        zero[s] *= z
                    else:
                        s = len(uniq)
                        uniq.append(f)
                        zero.append(z)
                    slots.append(s)
                value = np.zeros(k_out)
                lv = tree.leaf_values[n]
                value[: tree.leaf_size] = lv
                out.append(_Path(list(nodes), list(dirs), slots, uniq, zero, value))
                return
            f = feature_index[tree.feature_names[int(tree.split_feature[n])]]
            parent = cover[n]
            for child, is_left in ((int(tree.left[n]), True), (int(tree.right[n]), False)):
                with np.errstate(divide="ignore", invalid="ignore"):
                    z = float(np.float64(cover[child]) / np.float64(parent))
                visit(child, nodes + [local_to_inner[n]], dirs + [is_left], feats + [f], zeros + [z])

        visit(0, [], [], [], [])

    @torch.no_grad()
    def contributions(self, x: torch.Tensor) -> torch.Tensor:
        """SHAP values [rows, features, outputs] (summed over trees, unweighted)."""
        rows = x.shape[0]
        if self.num_paths == 0 or self.inner_feat.numel() == 0:
            return torch.zeros((rows, self.num_features, self.num_outputs), dtype=torch.float64, device=x.device)
        v = x[:, self.inner_feat].T.contiguous()  # [inner nodes, rows]
        thr = self.inner_thr[:, None]
        cmp = torch.where(self.inner_lt[:, None], v < thr, v <= thr) ^ self.inner_neg[:, None]
        go_left = torch.where(torch.isfinite(v), cmp, self.inner_dleft[:, None])
        violated = torch.zeros((self.num_paths, rows), dtype=torch.int32, device=x.device)
        for d in range(self.node.shape[0]):
            wrong = (go_left[self.node[d]] != self.left[d][:, None]) & self.valid[d][:, None]
            violated |= wrong * self.clear[d][:, None]
        pattern = (self.full[:, None] & ~violated).to(torch.int64) + self.offsets[:, None]
        # one bag per (row, tree) keeps float32 sums short; the trees are added in float64
        flat = pattern.T.reshape(-1)
        bag_starts = (torch.arange(rows, device=x.device)[:, None] * self.num_paths + self.path_starts[None, :])
        per_tree = torch.nn.functional.embedding_bag(flat, self.table, bag_starts.reshape(-1), mode="sum")
        sums = per_tree.reshape(rows, self.num_trees, 2, -1).to(torch.float64).sum(dim=(1, 2))
        phi = sums
        return phi.reshape(rows, self.num_features, self.num_outputs)

    def rows_per_batch(self, budget: int = 4_000_000) -> int:
        return max(1, budget // max(1, self.num_paths))


def expected_value(trees: list[TreeDef], num_outputs: int) -> np.ndarray:
    """Cover-weighted mean leaf value summed over trees (the TreeSHAP baseline, raw margin)."""
    total = np.zeros(num_outputs)
    for tree in trees:
        leaves = np.nonzero(tree.is_leaf)[0]
        cover = tree.number_samples[leaves]
        root = tree.number_samples[0]
        with np.errstate(divide="ignore", invalid="ignore"):
            weights = cover / root if tree.num_nodes > 1 else np.ones(1)
        vals = np.zeros((len(leaves), num_outputs))
        vals[:, : tree.leaf_size] = tree.leaf_values[leaves]
        total += (weights[:, None] * vals).sum(axis=0)
    return total
