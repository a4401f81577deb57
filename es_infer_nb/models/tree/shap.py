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
(as FastTreeSHAP v2 does), and a batch then only computes each row's pattern per path and
looks its contributions up.

Which path runs: on CPU with a C compiler, the kernel of :mod:`.native_shap` (per-path tables
``[2**splits, unique features]`` in float64, paths of up to ``native_shap.MAX_DEPTH`` splits, tables
up to :data:`NATIVE_TABLE_BYTES`); otherwise (CUDA, no compiler, ``ES_INFER_NB_NO_NATIVE``, longer
paths) the torch path below: a sparse product for the patterns and embedding bags over a padded table
(paths up to :data:`MAX_TABLE_DEPTH` splits), or the Shapley polynomial per row for longer paths.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import torch

from . import native_shap
from .definition import TreeDef

#: paths with more splits than this are computed per row instead of looked up in a table
MAX_TABLE_DEPTH = 8
#: the C kernel's tables (float64, ``2**splits * unique features`` per path) at most this large
NATIVE_TABLE_BYTES = 1 << 30


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
    """All root-to-leaf paths of a model's trees, with their per-pattern contributions.

    A row's *pattern* on a path has one bit per split on the path (does the row go the path's
    way there); it is computed for every path at once as a sparse matrix product of the row's
    split outcomes. Paths of at most :data:`MAX_TABLE_DEPTH` splits look their contribution up
    in a table over all ``2**depth`` patterns; deeper models use the Shapley polynomial directly.
    """

    def __init__(self, trees: list[TreeDef], feature_index: dict[str, int], num_outputs: int,
                 device: torch.device) -> None:
        self.device = device
        self.num_features = len(feature_index)
        self.num_outputs = num_outputs
        self.num_trees = len(trees)
        f_count = self.num_features
        inner_feat: list[int] = []
        inner_thr: list[float] = []
        inner_right: list[bool] = []  # the canonical comparison being true means "go right"
        paths: list[_Path] = []
        starts: list[int] = []
        tree_inner: list[int] = []
        for tree in trees:
            tree_inner.append(len(inner_feat))
            local_to_inner: dict[int, int] = {}
            for n in range(tree.num_nodes):
                if tree.left[n] < 0:
                    continue
                local_to_inner[n] = len(inner_feat)
                decision = int(tree.decision[n])  # 0 lte, 1 lt, 2 gte, 3 gt
                t = float(tree.threshold[n])
                if decision in (1, 2):
                    t = float(np.nextafter(t, -np.inf))  # v >= t  <=>  v > nextbelow(t)
                means_right = decision in (0, 1)
                # missing values read the +inf copy (comparison true) or the -inf copy (false)
                missing_true = (not tree.default_left[n]) if means_right else bool(tree.default_left[n])
                f = feature_index[tree.feature_names[int(tree.split_feature[n])]]
                inner_feat.append(f if missing_true else f + f_count)
                inner_thr.append(t)
                inner_right.append(means_right)
            starts.append(len(paths))
            self._collect(tree, local_to_inner, feature_index, num_outputs, paths)
        n_inner = len(inner_feat)
        p_count = len(paths)
        self.num_paths = p_count
        self.num_inner = n_inner
        as_t = lambda a: torch.as_tensor(a, device=device)  # noqa: E731
        self.inner_feat = as_t(np.asarray(inner_feat, dtype=np.int64))
        self.inner_thr = as_t(np.asarray(inner_thr, dtype=np.float64))
        self.path_starts = as_t(np.asarray(starts, dtype=np.int64))
        depth = max((len(pth.nodes) for pth in paths), default=0)
        self.depth = depth
        # sparse [paths, 2 * inner + 1]: bit d of a path's pattern reads "cmp" or "not cmp" of its
        # d-th split (row 2 * inner is all ones, unused here)
        rows, cols, vals = [], [], []
        for pi, pth in enumerate(paths):
            for d, (node, left) in enumerate(zip(pth.nodes, pth.go_left)):
                want_true = left != inner_right[node]
                rows.append(pi)
                cols.append(node if want_true else n_inner + node)
                vals.append(float(2**d))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "sparse CSR support is in beta"
            self._pattern_matrix = torch.sparse_coo_tensor(
                torch.as_tensor(np.array([rows, cols], dtype=np.int64).reshape(2, -1)),
                torch.as_tensor(np.array(vals, dtype=np.float32)),
                size=(p_count, 2 * n_inner + 1), check_invariants=True,
            ).coalesce().to_sparse_csr().to(device)
        self._paths = paths
        self._starts = starts
        self._inner_right = inner_right
        self._inner_feat = np.asarray(inner_feat, dtype=np.int32)
        self._inner_thr = np.asarray(inner_thr, dtype=np.float64)
        self._tree_inner = tree_inner + [n_inner]
        self._rows_cache: list[np.ndarray] | None = None
        self._native: native_shap.ShapArrays | None = None
        self.tabulated = depth <= MAX_TABLE_DEPTH  # the torch path looks contributions up in a table
        self._torch_ready = False
        #: which path computed the last batch: "native" (the C kernel) or "torch"
        self.last_path = ""

    def _native_arrays(self) -> native_shap.ShapArrays | None:
        """The C kernel's tables (built once), or ``None`` where paths are too long or tables too big.

        Two sibling leaves share their path but the last split's outcome, so they are one entry: its
        pattern is the left leaf's, the right leaf's is the same with the last bit flipped, and its
        table holds both leaves' contributions times their values ``[2**splits, features, outputs]``.
        """
        if self._native is not None:
            return self._native
        paths = self._paths
        k_out = self.num_outputs
        if self.depth > native_shap.MAX_DEPTH:
            return None
        size = sum(2 ** len(p.nodes) * len(p.features) for p in paths) * k_out
        if size * 8 > NATIVE_TABLE_BYTES:
            return None
        split_node: list[int] = []
        split_flip: list[int] = []
        path_split = [0]
        path_slot = [0]
        slot_feat: list[int] = []
        path_table: list[int] = []
        tree_paths = [0]
        chunks: list[np.ndarray] = []
        offset = 0
        bounds = self._starts + [len(paths)]
        for ti in range(len(self._starts)):
            base = self._tree_inner[ti]
            pi = bounds[ti]
            while pi < bounds[ti + 1]:
                pth = paths[pi]
                sibling = paths[pi + 1] if pi + 1 < bounds[ti + 1] else None
                paired = (sibling is not None and len(pth.nodes) > 0 and sibling.nodes == pth.nodes
                          and sibling.go_left[:-1] == pth.go_left[:-1] and pth.go_left[-1] and not sibling.go_left[-1]
                          and sibling.features == pth.features)
                pi += 2 if paired else 1
                if not pth.features:
                    continue
                rows = self._path_rows_cached(pi - (2 if paired else 1))  # [2**d, m]
                table = rows[:, :, None] * pth.value[None, None, :]
                if paired and sibling is not None:
                    flip = 1 << (len(pth.nodes) - 1)  # the sibling's pattern: the last bit flipped
                    other = self._path_rows_cached(pi - 1)
                    table = table + other[np.arange(len(other)) ^ flip][:, :, None] * sibling.value[None, None, :]
                for node, left in zip(pth.nodes, pth.go_left):
                    want_true = left != self._inner_right[node]
                    split_node.append(node - base)
                    split_flip.append(0 if want_true else 1)
                path_split.append(len(split_node))
                slot_feat.extend(pth.features)
                path_slot.append(len(slot_feat))
                path_table.append(offset)
                chunks.append(table.reshape(-1))
                offset += table.size
            tree_paths.append(len(path_table))
        ti_arr = np.asarray(self._tree_inner, dtype=np.int64)
        self._native = native_shap.ShapArrays(
            tree_inner=ti_arr, tree_paths=np.asarray(tree_paths, dtype=np.int64),
            feat=np.ascontiguousarray(self._inner_feat), thr=np.ascontiguousarray(self._inner_thr),
            path_split=np.asarray(path_split, dtype=np.int64), split_node=np.asarray(split_node, dtype=np.int32),
            split_flip=np.asarray(split_flip, dtype=np.uint16), path_slot=np.asarray(path_slot, dtype=np.int64),
            slot_feat=np.asarray(slot_feat, dtype=np.int32), path_table=np.asarray(path_table, dtype=np.int64),
            table=np.ascontiguousarray(np.concatenate(chunks) if chunks else np.zeros(1)),
            max_inner=int(np.max(np.diff(ti_arr))) if len(ti_arr) > 1 else 0,
        )
        self._rows_cache = None  # the kernel's tables hold what it needs; the torch path rebuilds on demand
        return self._native

    @staticmethod
    def _path_rows(pth: _Path) -> np.ndarray:
        """``(o_i - z_i) * W_i`` [2**splits, unique features] for every pattern of followed splits."""
        m = len(pth.features)
        patterns = 2 ** len(pth.nodes)
        weights = _shapley_table(np.asarray(pth.zero))  # [2**m, m] over per-feature patterns
        ext = np.arange(patterns)
        merged = np.zeros(patterns, dtype=np.int64)
        for s in range(m):
            follows = np.ones(patterns, dtype=bool)
            for d, slot in enumerate(pth.slots):
                if slot == s:
                    follows &= ((ext >> d) & 1).astype(bool)
            merged |= follows.astype(np.int64) << s
        return weights[merged]

    def _path_rows_cached(self, pi: int) -> np.ndarray:
        if self._rows_cache is None:
            self._rows_cache = [self._path_rows(p) if p.features else np.zeros((2 ** len(p.nodes), 0))
                                for p in self._paths]
        return self._rows_cache[pi]

    def _build_tables(self) -> None:
        paths, depth, starts = self._paths, self.depth, self._starts
        k_out = self.num_outputs
        width = self.num_features * k_out
        p_count = len(paths)
        patterns = 2**depth
        table = np.zeros((p_count, patterns, width))
        for pi, pth in enumerate(paths):
            m = len(pth.features)
            if not m:
                continue
            rows = self._path_rows_cached(pi)  # [2**len(nodes), m]
            if len(rows) < patterns:  # bits past the path's splits are zero
                rows = np.concatenate([rows, np.zeros((patterns - len(rows), m))])
            for slot, f in enumerate(pth.features):
                for k in range(k_out):
                    table[pi, :, f * k_out + k] += rows[:, slot] * pth.value[k]
        # float32 embedding bags are fast where float64 ones are not. Each value is split into a
        # "hi" part on a per-tree grid, coarse enough that summing a tree's paths in float32 is
        # exact, and the float32 remainder "lo"; bags are per (row, tree) and added in float64.
        flat = table.reshape(p_count * patterns, width)
        hi = np.zeros_like(flat, dtype=np.float32)
        lo = np.zeros_like(flat, dtype=np.float32)
        bounds = starts + [p_count]
        for ti in range(len(starts)):
            part = slice(bounds[ti] * patterns, bounds[ti + 1] * patterns)
            block = flat[part]
            scale = float(np.nanmax(np.abs(block))) if block.size else 0.0
            if not np.isfinite(scale) or scale == 0.0:
                hi[part] = block.astype(np.float32)
                continue
            bits = max(1, 23 - int(np.ceil(np.log2(max(1, bounds[ti + 1] - bounds[ti])))))
            step = 2.0 ** (np.floor(np.log2(scale)) + 1 - bits)
            coarse = np.round(block / step) * step
            hi[part] = coarse.astype(np.float32)
            lo[part] = (block - coarse).astype(np.float32)
        self.patterns = patterns
        self.table = torch.as_tensor(np.concatenate([hi, lo], axis=1), device=self.device)
        self.offsets = torch.as_tensor(np.arange(p_count, dtype=np.int64) * patterns, device=self.device)
        self._torch_ready = True

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
        if self.num_paths == 0 or self.num_inner == 0:
            return torch.zeros((rows, self.num_features, self.num_outputs), dtype=torch.float64, device=x.device)
        if x.device.type == "cpu" and x.shape[1] == self.num_features:
            lib = native_shap.kernel()
            arrays = self._native_arrays() if lib is not None else None
            if lib is not None and arrays is not None:
                self.last_path = "native"
                x64 = x if x.dtype == torch.float64 else x.to(torch.float64)  # exact widening
                return native_shap.contributions(lib, arrays, x64, self.num_features, self.num_outputs)
        self.last_path = "torch"
        finite = torch.isfinite(x)
        both = torch.cat([torch.where(finite, x, torch.inf), torch.where(finite, x, -torch.inf)], dim=1)
        cmp = both.T.contiguous()[self.inner_feat] > self.inner_thr[:, None]  # [inner, rows]
        outcomes = torch.cat([cmp, ~cmp, torch.ones((1, rows), dtype=torch.bool, device=x.device)], dim=0)
        counts = torch.sparse.mm(self._pattern_matrix, outcomes.to(torch.float32))  # [paths, rows]
        if not self.tabulated:
            return self._direct(counts.T.to(torch.int64))
        if not self._torch_ready:
            self._build_tables()
        # one pass transposes and converts to row-major int64 table rows, the offsets added in place
        index = torch.empty((rows, self.num_paths), dtype=torch.int64, device=x.device)
        index.copy_(counts.T)
        index += self.offsets[None, :]
        bag_starts = torch.arange(rows, device=x.device)[:, None] * self.num_paths + self.path_starts[None, :]
        per_tree = torch.nn.functional.embedding_bag(index.view(-1), self.table, bag_starts.view(-1), mode="sum")
        # hi/lo float32 halves summed straight into float64 (no float64 copy of every bag)
        phi = per_tree.view(rows, self.num_trees * 2, -1).sum(dim=1, dtype=torch.float64)
        return phi.reshape(rows, self.num_features, self.num_outputs)

    def _direct(self, pattern: torch.Tensor) -> torch.Tensor:
        """Deep paths: the Shapley polynomial per row and path, without a table."""
        rows = pattern.shape[0]
        dev = pattern.device
        out = torch.zeros((rows, self.num_features, self.num_outputs), dtype=torch.float64, device=dev)
        for pi, pth in enumerate(self._paths):
            m = len(pth.features)
            if not m:
                continue
            bits = pattern[:, pi]
            o = torch.ones((rows, m), dtype=torch.float64, device=dev)
            for d, slot in enumerate(pth.slots):
                o[:, slot] *= ((bits >> d) & 1).to(torch.float64)
            z = [float(v) for v in pth.zero]
            coef = torch.as_tensor([math.factorial(k) * math.factorial(m - 1 - k) / math.factorial(m) for k in range(m)],
                                   dtype=torch.float64, device=dev)
            value = torch.as_tensor(pth.value, dtype=torch.float64, device=dev)
            for i in range(m):
                poly = torch.zeros((rows, m), dtype=torch.float64, device=dev)
                poly[:, 0] = 1.0
                for j in range(m):
                    if j == i:
                        continue
                    shifted = torch.zeros_like(poly)
                    shifted[:, 1:] = poly[:, :-1]
                    poly = poly * z[j] + shifted * o[:, j : j + 1]
                contribution = (o[:, i] - z[i]) * (poly @ coef)
                out[:, pth.features[i], :] += contribution[:, None] * value[None, :]
        return out

    def rows_per_batch(self, budget: int = 4_000_000) -> int:
        """Rows per :meth:`contributions` call: the torch path holds [rows, paths] indices, the C kernel
        only its answer [rows, features, outputs]."""
        if self.device.type == "cpu" and native_shap.kernel() is not None and self._native_arrays() is not None:
            return max(1, budget // max(1, self.num_features * self.num_outputs))
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
