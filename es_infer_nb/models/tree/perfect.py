"""Trees laid out as perfect binary trees with one canonical comparison per node.

Every node is rewritten, exactly, into ``go right iff v > t'``:

* ``lte`` keeps ``t``; ``lt`` uses ``t' = nextafter(t, -inf)`` (``v < t`` iff
  ``v <= nextbelow(t)`` in doubles);
* ``gte`` / ``gt`` swap the children, so that they become ``lt`` / ``lte``;
* the missing-value direction is folded into the feature index: the batch carries
  two copies of its features, one with missing (NaN / +-inf, which ES treats as
  missing) as ``+inf`` (``+inf > t'``: right) and one as ``-inf`` (left), and each
  node reads the copy that sends missing values where ES sends them;
* a leaf above the bottom level becomes a node that always goes left
  (``t' = +inf``), with its value copied into every bottom slot below it.

A batch is then ``depth`` steps of ``idx = 2 idx + 1 + (x[f[idx]] > t[idx])`` over
[rows, trees]. On the CPU the walk runs in the C kernel of :mod:`.native` (which substitutes
the two missing-value copies per row block, in cache, instead of materialising them); elsewhere,
or when that kernel is unavailable, large jobs go through one fused ``torch.compile``d kernel and
small ones through eager tensors. All three give bit-identical answers. Trees deeper than
:data:`MAX_DEPTH` use the general walk in :mod:`.evaluate`.
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading
from typing import Callable

import numpy as np
import torch

from . import native
from .definition import TreeDef

MAX_DEPTH = 10
#: jobs at least this large go through ``torch.compile``: compiling costs seconds once per model and
#: process (less when inductor's on-disk cache is warm), so smaller jobs stay eager
COMPILE_MIN_ROWS = 200_000
#: compiled kernels run on blocks of this many rows (one static shape: one compilation per model)
COMPILED_BLOCK = 16384
log = logging.getLogger(__name__)


class PerfectTrees:
    def __init__(self, trees: list[TreeDef], features: list[str], device: torch.device) -> None:
        index = {f: i for i, f in enumerate(features)}
        self.num_features = len(features)
        depth = max(max(t.depth() for t in trees), 1)
        self.depth = depth
        inner = 2**depth - 1
        width = 2**depth
        k_max = max(t.leaf_size for t in trees)
        t_count = len(trees)
        feat = np.zeros((t_count, inner), dtype=np.int64)
        thr = np.full((t_count, inner), np.inf)
        leaf = np.zeros((t_count, width, k_max))
        for ti, tree in enumerate(trees):
            gmap = [index[f] for f in tree.feature_names]
            self._fill(tree, gmap, 0, 0, 0, depth, feat[ti], thr[ti], leaf[ti])
        self.num_trees = t_count
        self.leaf_size = k_max
        self.device = device
        as_t = lambda a: torch.as_tensor(a, device=device)  # noqa: E731
        self.feat = as_t(feat.reshape(-1))
        self.feat32 = torch.as_tensor(feat.reshape(-1).astype(np.int32))  # the native kernel's (CPU) copy
        self.thr = as_t(thr.reshape(-1))
        self.leaf = as_t(leaf.reshape(t_count * width, k_max))
        self.node_offsets = as_t(np.arange(t_count, dtype=np.int64)[None, :] * inner)
        self.leaf_offsets = as_t(np.arange(t_count, dtype=np.int64)[None, :] * width - inner)
        self._compiled: dict[str, Callable[..., torch.Tensor]] = {}
        self._compile_failed = False
        self._lock = threading.Lock()
        self._weighted_leaf: torch.Tensor | None = None
        #: rows of the whole job the current batches belong to (set by the caller; 0 = unknown)
        self.job_rows = 0

    def _fill(self, tree: TreeDef, gmap: list[int], node: int, slot: int, level: int, depth: int,
              feat: np.ndarray, thr: np.ndarray, leaf: np.ndarray) -> None:
        """Write ``node`` of ``tree`` at perfect position ``slot`` (level-order index) and below."""
        if tree.left[node] < 0:  # a leaf: fill every bottom slot below this position
            lo, hi = slot, slot
            for _ in range(depth - level):
                lo, hi = 2 * lo + 1, 2 * hi + 2
            bottom = 2**depth - 1
            leaf[lo - bottom : hi - bottom + 1, : tree.leaf_size] = tree.leaf_values[node]
            return  # inner slots below stay (feature 0, +inf): always left
        decision = int(tree.decision[node])  # 0 lte, 1 lt, 2 gte, 3 gt
        left, right = int(tree.left[node]), int(tree.right[node])
        t = float(tree.threshold[node])
        default_left = bool(tree.default_left[node])
        if decision in (2, 3):  # gte / gt: swap the children, compare the other way
            left, right = right, left
            default_left = not default_left
        if decision in (1, 2):  # strict on the left side: v < t  <=>  v <= nextbelow(t)
            t = float(np.nextafter(t, -np.inf))
        f = gmap[int(tree.split_feature[node])]
        # the "-inf" copy of the features follows the "+inf" copy in the batch matrix
        feat[slot] = f + (self.num_features if default_left else 0)
        thr[slot] = t
        self._fill(tree, gmap, left, 2 * slot + 1, level + 1, depth, feat, thr, leaf)
        self._fill(tree, gmap, right, 2 * slot + 2, level + 1, depth, feat, thr, leaf)

    # -- evaluation -----------------------------------------------------------------------------
    def _walk(self, both: torch.Tensor, feat: torch.Tensor, thr: torch.Tensor, node_offsets: torch.Tensor,
              leaf_offsets: torch.Tensor, depth: int) -> torch.Tensor:
        idx = torch.zeros((both.shape[0], node_offsets.shape[1]), dtype=torch.int64, device=both.device)
        for _ in range(depth):
            g = idx + node_offsets
            v = torch.gather(both, 1, feat[g])
            idx = 2 * idx + 1 + (v > thr[g]).to(torch.int64)
        return idx + leaf_offsets  # rows into the leaf table

    def _walk_sum(self, both: torch.Tensor, feat: torch.Tensor, thr: torch.Tensor, node_offsets: torch.Tensor,
                  leaf_offsets: torch.Tensor, depth: int, weighted_leaf: torch.Tensor) -> torch.Tensor:
        rows = self._walk(both, feat, thr, node_offsets, leaf_offsets, depth)
        values = weighted_leaf[rows]  # [rows, trees, K]
        total = values[:, 0]
        for t in range(1, values.shape[1]):  # left to right, as Elasticsearch adds (exact ties stay ties)
            total = total + values[:, t]
        return total

    def _call(self, name: str, eager: Callable[..., torch.Tensor], both: torch.Tensor, *args) -> torch.Tensor:
        """Run ``eager(both, *args)``; large batches go block by block through a ``torch.compile``d
        copy with one static shape (the last block is padded), falling back to eager on any failure."""
        rows = both.shape[0]
        if max(rows, self.job_rows) < COMPILE_MIN_ROWS or self._compile_failed or os.environ.get("ES_INFER_NB_NO_COMPILE"):
            return eager(both, *args)
        with self._lock:
            kernel = self._compiled.get(name)
            if kernel is None:
                try:
                    kernel = self._compiled[name] = torch.compile(eager, dynamic=False)
                except Exception as exc:  # pragma: no cover - depends on the toolchain
                    log.warning("torch.compile unavailable (%s); using eager tensors", exc)
                    self._compile_failed = True
                    return eager(both, *args)
        try:
            parts = []
            for start in range(0, rows, COMPILED_BLOCK):
                block = both[start : start + COMPILED_BLOCK]
                short = COMPILED_BLOCK - block.shape[0]
                if short:
                    block = torch.cat([block, block.new_zeros((short, block.shape[1]))])
                out = kernel(block, *args)
                parts.append(out[: COMPILED_BLOCK - short] if short else out)
            return torch.cat(parts)
        except Exception as exc:  # pragma: no cover - a compiler failure must not fail inference
            log.warning("compiled tree walk failed (%s); using eager tensors", exc)
            self._compile_failed = True
            return eager(both, *args)

    @staticmethod
    def _both(x: torch.Tensor) -> torch.Tensor:
        finite = torch.isfinite(x)
        return torch.cat([torch.where(finite, x, torch.inf), torch.where(finite, x, -torch.inf)], dim=1)

    def _native(self, x: torch.Tensor) -> ctypes.CDLL | None:
        """The native kernel when it applies to ``x`` (float64 on the CPU), else ``None``."""
        if self.device.type != "cpu" or x.dtype != torch.float64 or x.device.type != "cpu":
            return None
        if any(s < 0 for s in x.stride()):
            return None
        return native.kernel()

    @torch.no_grad()
    def leaf_rows(self, x: torch.Tensor) -> torch.Tensor:
        """Rows of the leaf table reached by every row in every tree: [rows, trees]."""
        lib = self._native(x)
        if lib is not None:
            return native.walk(lib, x, self.feat32, self.thr, self.depth, None)
        return self._call("walk", self._walk, self._both(x), self.feat, self.thr, self.node_offsets,
                          self.leaf_offsets, self.depth)

    @torch.no_grad()
    def weighted_sum(self, x: torch.Tensor, weights: np.ndarray) -> torch.Tensor:
        """``sum_j w_j * leaf_j`` per row, [rows, K], fused with the walk."""
        if self._weighted_leaf is None:
            width = self.leaf.shape[0] // self.num_trees
            w = torch.as_tensor(np.repeat(weights, width), dtype=torch.float64, device=self.device)
            self._weighted_leaf = (self.leaf * w[:, None]).contiguous()
        lib = self._native(x)
        if lib is not None:
            return native.walk(lib, x, self.feat32, self.thr, self.depth, self._weighted_leaf)
        return self._call("walk_sum", self._walk_sum, self._both(x), self.feat, self.thr, self.node_offsets,
                          self.leaf_offsets, self.depth, self._weighted_leaf)

    @torch.no_grad()
    def leaves(self, x: torch.Tensor) -> torch.Tensor:
        """Leaf vectors reached by every row in every tree: [rows, trees, K]."""
        return self.leaf[self.leaf_rows(x)]
