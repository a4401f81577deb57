"""Vectorised evaluation of tree ensembles as torch tensors.

Every tree of a definition is packed into padded node tables (feature, threshold,
comparison, default direction, children, leaf vectors). A batch walks all trees at
once, one level per step, entirely in tensor ops: rows x trees, never row by row
in Python. Ensemble aggregation follows Elasticsearch exactly (see spec §2.5).
Computation is in float64, as ES computes in Java doubles.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Union

import numpy as np
import torch

from ...errors import ApiError
from .definition import Definition, EnsembleDef, ModelDef, TreeDef
from .perfect import MAX_DEPTH, PerfectTrees


def resolve_device(device: str | torch.device | None) -> torch.device:
    if device is None or device == "auto":
        return torch.device("cuda" if (device == "auto" and torch.cuda.is_available()) else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ApiError(
            "illegal_argument_exception",
            f"device [{device}] was requested but CUDA is not available on this machine; use device='cpu'",
            400,
        )
    return dev


@dataclass
class _TreeSlot:
    index: int  # position in the packed tables


@dataclass
class _EnsembleNode:
    ensemble: EnsembleDef
    children: list["_Node"]


_Node = Union[_TreeSlot, _EnsembleNode]


@dataclass
class RawOutput:
    """What the model computed for a batch, before it is shaped as ES JSON.

    ``values``: regression value, or the winning class index for classification.
    ``probabilities``: [n, C] for classification, else ``None``.
    ``row_errors``: per-row error message (``None`` where the row succeeded).
    """

    values: np.ndarray
    probabilities: np.ndarray | None
    row_errors: list[str | None]


class PackedTrees:
    """All trees of a definition, padded into [trees, nodes] tables on one device."""

    def __init__(self, trees: list[TreeDef], features: list[str], device: torch.device) -> None:
        index = {f: i for i, f in enumerate(features)}
        t_count = len(trees)
        n_max = max(t.num_nodes for t in trees)
        k_max = max(t.leaf_size for t in trees)
        feat = np.zeros((t_count, n_max), dtype=np.int64)
        thr = np.zeros((t_count, n_max))
        use_lt = np.zeros((t_count, n_max), dtype=bool)  # lt / gte compare with <, else <=
        negate = np.zeros((t_count, n_max), dtype=bool)  # gte / gt: left when the comparison fails
        dleft = np.zeros((t_count, n_max), dtype=bool)
        left = np.zeros((t_count, n_max), dtype=np.int64)
        right = np.zeros((t_count, n_max), dtype=np.int64)
        leaf = np.zeros((t_count, n_max, k_max))
        self.depth = 0
        for ti, t in enumerate(trees):
            n = t.num_nodes
            inner = ~t.is_leaf
            gmap = np.array([index[f] for f in t.feature_names] or [0], dtype=np.int64)
            sf = np.where(inner, t.split_feature, 0)
            feat[ti, :n] = gmap[np.clip(sf, 0, len(gmap) - 1)]
            thr[ti, :n] = np.where(inner, t.threshold, 0.0)
            use_lt[ti, :n] = np.isin(t.decision, (1, 2))
            negate[ti, :n] = np.isin(t.decision, (2, 3))
            dleft[ti, :n] = t.default_left
            idx = np.arange(n)
            # leaves point at themselves so that extra walking steps are no-ops
            left[ti, :n] = np.where(inner, t.left, idx)
            right[ti, :n] = np.where(inner, t.right, idx)
            lv = np.nan_to_num(t.leaf_values, nan=0.0)
            leaf[ti, :n, : lv.shape[1]] = lv
            self.depth = max(self.depth, t.depth())
        self.num_trees = t_count
        self.num_nodes = n_max
        self.leaf_size = k_max
        self.device = device
        as_t = lambda a: torch.as_tensor(a, device=device)  # noqa: E731
        offsets = (np.arange(t_count, dtype=np.int64) * n_max)[None, :]
        self.offsets = as_t(offsets)
        self.feat = as_t(feat.reshape(-1))
        self.thr = as_t(thr.reshape(-1))
        self.use_lt = as_t(use_lt.reshape(-1))
        self.negate = as_t(negate.reshape(-1))
        self.dleft = as_t(dleft.reshape(-1))
        self.left = as_t(left.reshape(-1))
        self.right = as_t(right.reshape(-1))
        self.leaf = as_t(leaf.reshape(t_count * n_max, k_max))

    @torch.no_grad()
    def leaves(self, x: torch.Tensor) -> torch.Tensor:
        """Leaf vectors reached by every row in every tree: [rows, trees, K]."""
        rows = x.shape[0]
        flat = self.offsets.expand(rows, -1).clone()  # absolute node ids, start at each root
        for _ in range(self.depth):
            f = self.feat[flat]
            v = torch.gather(x, 1, f)
            t = self.thr[flat]
            cmp = torch.where(self.use_lt[flat], v < t, v <= t) ^ self.negate[flat]
            go_left = torch.where(torch.isfinite(v), cmp, self.dleft[flat])
            flat = torch.where(go_left, self.left[flat], self.right[flat]) + self.offsets
        return self.leaf[flat]


def _sequential_sum(values: torch.Tensor) -> torch.Tensor:
    """Sum over dim 1 left to right, in Elasticsearch's order (a vectorised reduction may round
    differently and flip an exact tie)."""
    if values.shape[1] == 1:
        return values[:, 0]
    total = values[:, 0].clone()
    for j in range(1, values.shape[1]):
        total += values[:, j]
    return total


def _softmax(s: torch.Tensor) -> torch.Tensor:
    """ES softmax: non-finite entries get probability 0; subtract the max first."""
    finite = torch.isfinite(s)
    safe = torch.where(finite, s, torch.full_like(s, -torch.inf))
    m = torch.max(safe, dim=-1, keepdim=True).values
    m = torch.where(torch.isfinite(m), m, torch.zeros_like(m))
    e = torch.where(finite, torch.exp(safe - m), torch.zeros_like(s))
    total = e.sum(dim=-1, keepdim=True)
    return e / torch.where(total > 0, total, torch.ones_like(total))


def _sigmoid_pair(s: torch.Tensor) -> torch.Tensor:
    p1 = 1.0 / (1.0 + torch.exp(-s))
    return torch.stack([1.0 - p1, p1], dim=-1)


class CompiledModel:
    """A definition ready to run on a device."""

    def __init__(self, definition: Definition, device: torch.device) -> None:
        self.definition = definition
        self.device = device
        self.features = definition.used_feature_names()
        trees: list[TreeDef] = []
        self.root = self._build(definition.model, trees)
        features = self.features or ["__none__"]
        if max(t.depth() for t in trees) <= MAX_DEPTH:
            self.packed: PackedTrees | PerfectTrees = PerfectTrees(trees, features, device)
        else:
            self.packed = PackedTrees(trees, features, device)
        self.trees = trees
        self._fused = self._fusable()

    def _fusable(self) -> np.ndarray | None:
        """Aggregator weights when the model is a flat ensemble whose aggregation starts with a
        weighted sum of the leaves (weighted_sum, exponent, logistic_regression, weighted_mode over
        vector leaves): then the walk and the sum run as one kernel."""
        if not isinstance(self.root, _EnsembleNode) or not isinstance(self.packed, PerfectTrees):
            return None
        if not all(isinstance(c, _TreeSlot) for c in self.root.children):
            return None
        agg = self.root.ensemble.aggregator
        if agg.name == "weighted_mode" and min(t.leaf_size for t in self.trees) == 1:
            return None
        if agg.name in ("weighted_sum", "exponent") and max(t.leaf_size for t in self.trees) > 1:
            return None
        return agg.weights if agg.weights is not None else np.ones(len(self.trees))

    def _build(self, model: ModelDef, trees: list[TreeDef]) -> _Node:
        if isinstance(model, TreeDef):
            trees.append(model)
            return _TreeSlot(len(trees) - 1)
        return _EnsembleNode(model, [self._build(m, trees) for m in model.models])

    # -- evaluation -------------------------------------------------------------------------
    @torch.no_grad()
    def run(self, x: np.ndarray) -> RawOutput:
        rows = x.shape[0]
        if rows == 0:
            return RawOutput(np.zeros(0), None, [])
        if x.shape[1] == 0:
            x = np.zeros((rows, 1))
        x = np.asarray(x, dtype=np.float64)
        if any(s < 0 for s in x.strides):
            x = np.ascontiguousarray(x)
        # the perfect-tree walk reads any (e.g. column-major) layout; the general walk wants rows
        with warnings.catch_warnings():  # a read-only view of the frame's block: never written to
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
            xt = torch.as_tensor(x, device=self.device)
        if not isinstance(self.packed, PerfectTrees):
            xt = xt.contiguous()
        messages: dict[str, torch.Tensor] = {}
        model = self.definition.model
        if self._fused is not None:  # no row can fail: no error mask (and no tensor op) for it
            return self._run_fused(xt, messages)
        errors = torch.zeros(rows, dtype=torch.bool, device=self.device)
        leaves = self.packed.leaves(xt)  # [rows, trees, K]
        if isinstance(self.root, _TreeSlot):
            tree = self.trees[self.root.index]
            leaf = leaves[:, self.root.index, : tree.leaf_size]
            if tree.target_type == "regression":
                return RawOutput(leaf[:, 0].cpu().numpy(), None, [None] * rows)
            if tree.leaf_size > 1:
                probs = _softmax(leaf)
            else:
                size = int(tree.max_leaf_value()) + 1
                cls = leaf[:, 0]
                probs = torch.zeros((rows, size), dtype=torch.float64, device=self.device)
                idx = cls.long().clamp(0, size - 1)
                probs.scatter_(1, idx[:, None], 1.0)
            return self._classification(probs, errors, messages)
        assert isinstance(model, EnsembleDef) and isinstance(self.root, _EnsembleNode)
        processed = self._process(self.root, leaves, errors, messages)
        if model.target_type == "regression":
            value = self._aggregate(self.root.ensemble, processed)
            return self._finish(value.cpu().numpy(), None, errors, messages)
        return self._classification(processed, errors, messages)

    def _run_fused(self, xt: torch.Tensor, messages) -> RawOutput:
        assert isinstance(self.packed, PerfectTrees) and isinstance(self.root, _EnsembleNode)
        ensemble = self.root.ensemble
        s = self.packed.weighted_sum(xt, self._fused)  # [rows, K]
        name = ensemble.aggregator.name
        errors = None  # the fused aggregations flag no row
        if name == "weighted_sum" and ensemble.target_type == "regression":
            # the sum of one column is that column: the kernel's answer as it is, no further tensor op
            return RawOutput(s[:, 0].cpu().numpy(), None, [None] * s.shape[0])
        if name in ("weighted_sum", "exponent"):
            processed = s[:, :1]
        elif name == "logistic_regression":
            processed = _softmax(s) if s.shape[1] > 1 else _sigmoid_pair(s[:, 0])
        else:  # weighted_mode over vector leaves
            processed = _softmax(s)
        if ensemble.target_type == "regression":
            return self._finish(self._aggregate(ensemble, processed).cpu().numpy(), None, errors, messages)
        return self._classification(processed, errors, messages)

    def _sub_outputs(self, node: _EnsembleNode, leaves: torch.Tensor, errors, messages) -> list[torch.Tensor]:
        outs = []
        for child in node.children:
            if isinstance(child, _TreeSlot):
                k = self.trees[child.index].leaf_size
                outs.append(leaves[:, child.index, :k])
            else:
                processed = self._process(child, leaves, errors, messages)
                outs.append(self._aggregate(child.ensemble, processed)[:, None])
        return outs

    def _process(self, node: _EnsembleNode, leaves: torch.Tensor, errors, messages) -> torch.Tensor:
        """``OutputAggregator.processValues`` over the sub-model outputs of every row."""
        e = node.ensemble
        agg = e.aggregator
        outs = self._sub_outputs(node, leaves, errors, messages)
        m = len(outs)
        w = agg.weights if agg.weights is not None else np.ones(m)
        wt = torch.as_tensor(w, dtype=torch.float64, device=self.device)
        if agg.name in ("weighted_sum", "exponent"):
            return torch.stack([o[:, 0] for o in outs], dim=1) * wt[None, :]
        if agg.name == "logistic_regression":
            width = max(o.shape[1] for o in outs)
            s = torch.zeros((outs[0].shape[0], width), dtype=torch.float64, device=self.device)
            for j, o in enumerate(outs):
                s[:, : o.shape[1]] += wt[j] * o
            return _softmax(s) if width > 1 else _sigmoid_pair(s[:, 0])
        # weighted_mode
        if max(o.shape[1] for o in outs) > 1:
            width = max(o.shape[1] for o in outs)
            s = torch.zeros((outs[0].shape[0], width), dtype=torch.float64, device=self.device)
            for j, o in enumerate(outs):
                s[:, : o.shape[1]] += wt[j] * o
            return _softmax(s)
        num_classes = int(agg.num_classes or 2)
        votes = torch.stack([o[:, 0] for o in outs], dim=1)  # [rows, m]
        bad_value = (~torch.isfinite(votes)) | (votes < 0) | (votes != torch.round(votes))
        too_large = votes >= num_classes
        if bool(bad_value.any()):
            messages["values must be whole, non-infinite, and positive"] = bad_value.any(dim=1)
        if bool(too_large.any()):
            messages[f"values contain entries larger than expected max of [{num_classes - 1}]"] = too_large.any(dim=1)
        bad = bad_value | too_large
        errors |= bad.any(dim=1)
        idx = torch.where(bad, torch.zeros_like(votes), votes).long()
        freq = torch.zeros((votes.shape[0], num_classes), dtype=torch.float64, device=self.device)
        freq.scatter_add_(1, idx, torch.where(bad, torch.zeros_like(votes), wt[None, :].expand_as(votes)))
        voted = torch.zeros_like(freq, dtype=torch.bool)
        voted.scatter_(1, idx, ~bad)
        freq = torch.where(voted, freq, torch.full_like(freq, -torch.inf))
        return _softmax(freq)

    @staticmethod
    def _aggregate(e: EnsembleDef, processed: torch.Tensor) -> torch.Tensor:
        """``OutputAggregator.aggregate``: one number per row."""
        name = e.aggregator.name
        if name == "weighted_sum":
            return _sequential_sum(processed)
        if name == "exponent":
            finite = torch.isfinite(processed)
            return torch.exp(_sequential_sum(torch.where(finite, processed, torch.zeros_like(processed))))
        return torch.argmax(processed, dim=1).to(torch.float64)

    def _classification(self, probs: torch.Tensor, errors, messages) -> RawOutput:
        labels = self.definition.classification_labels
        if labels is not None and len(labels) != probs.shape[1]:
            raise ApiError(
                "status_exception",
                f"model returned classification probabilities of size [{probs.shape[1]}] which is not equal "
                f"to classification labels size [{len(labels)}]",
                500,
            )
        weights = getattr(self.definition.model, "classification_weights", None)
        scores = probs
        if weights is not None:
            scores = probs * torch.as_tensor(weights, dtype=torch.float64, device=self.device)[None, :]
        # the first of the highest scores wins (ties keep the lower class index)
        winner = torch.argmax(scores, dim=1)
        return self._finish(winner.to(torch.float64).cpu().numpy(), probs.cpu().numpy(), errors, messages)

    @staticmethod
    def _finish(values: np.ndarray, probs: np.ndarray | None, errors, messages) -> RawOutput:
        row_errors: list[str | None] = [None] * len(values)
        if messages and bool(errors.any()):  # a message is set only where some row failed
            for msg, mask in messages.items():
                for i in np.nonzero(mask.cpu().numpy())[0]:
                    row_errors[int(i)] = row_errors[int(i)] or msg
        return RawOutput(values, probs, row_errors)
