"""Shared building blocks of the model importers.

Converters first build a small intermediate tree (:class:`Split` / :class:`Leaf`)
and then :func:`tree_dict` flattens it into the Elasticsearch ``tree_structure``
(pre-order numbering, ``tree_structure[i].node_index == i``, root at 0).

Everything that ends up in the definition is a plain Python ``float`` / ``int`` /
``bool`` / ``str`` so that ``json.dumps`` works and ES accepts the numbers
(no NaN / Infinity tokens).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence, Union

import numpy as np

#: largest finite double; stands in for +-inf thresholds (JSON has no Infinity)
DBL_MAX = float(np.finfo(np.float64).max)

#: the leaf value used for "log(0)" in log-probability leaves (eland uses the same)
LOG_ZERO = -10000000.0

_DECISIONS = ("lte", "lt", "gte", "gt")


@dataclass
class Leaf:
    value: list[float]
    count: int | None = None


@dataclass
class Split:
    feature: int
    threshold: float
    decision: str  # lte | lt | gte | gt ; comparison true -> left
    default_left: bool  # where NaN (and, in ES, +-Infinity) goes
    left: "Node"
    right: "Node"
    count: int | None = None


Node = Union[Split, Leaf]


@dataclass
class Forest:
    """What a converter produces before it is turned into ES JSON.

    ``trees`` are evaluated by ``aggregator`` with ``weights`` (one per tree).
    ``single_tree`` asks for a bare ``tree`` (no ensemble) when possible.
    """

    trees: list[Node]
    target_type: str  # regression | classification
    aggregator: str = "weighted_sum"  # weighted_sum | exponent | logistic_regression | weighted_mode
    weights: list[float] | None = None
    num_classes: int | None = None  # for weighted_mode
    labels: list[str] | None = None
    single_tree: bool = False
    notes: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- validation


def check_feature_names(feature_names: Any, n_features: int | None, what: str) -> list[str]:
    if isinstance(feature_names, (str, bytes)) or not hasattr(feature_names, "__iter__"):
        raise TypeError(f"feature_names must be a list of strings, got {type(feature_names).__name__}")
    names = list(feature_names)
    for n in names:
        if not isinstance(n, str):
            raise TypeError(f"feature_names must be a list of strings, found {n!r} ({type(n).__name__})")
    if len(set(names)) != len(names):
        dupes = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"feature_names must be unique, duplicated: {dupes}")
    if n_features is not None and len(names) != n_features:
        raise ValueError(
            f"feature_names has {len(names)} names but {what} was fitted on {n_features} features"
        )
    return names


def resolve_labels(
    labels: Sequence[Any] | None, default: Sequence[Any] | None, n_classes: int, what: str
) -> list[str]:
    if labels is None:
        if default is None:
            default = range(n_classes)
        labels = [str(c) for c in default]
    else:
        if isinstance(labels, (str, bytes)):
            raise TypeError("classification_labels must be a list of strings")
        labels = [str(c) for c in labels]
    if len(labels) != n_classes:
        raise ValueError(
            f"{what} has {n_classes} classes but {len(labels)} classification_labels were given"
        )
    return labels


def resolve_weights(weights: Sequence[float] | None, n_classes: int, what: str) -> list[float] | None:
    if weights is None:
        return None
    out = [finite(w, "classification_weights") for w in weights]
    if len(out) != n_classes:
        raise ValueError(
            f"{what} has {n_classes} classes but {len(out)} classification_weights were given"
        )
    return out


def finite(value: Any, what: str) -> float:
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{what} must be finite, got {v}")
    return v


# ---------------------------------------------------------------- float32 thresholds


def _f32_round_down_boundary(a: np.float32) -> tuple[str, float]:
    """(op, t) with ``op(x, t) <=> float32(x) <= a`` for every finite double ``x``.

    float32 conversion rounds to nearest, ties to even; it is monotone, so the set of
    doubles that round to ``<= a`` is everything below the midpoint between ``a`` and the
    next float32 ``b``, plus the midpoint itself when the tie goes to ``a`` (even mantissa).
    The midpoint needs 25 significant bits, so it is exact in float64.
    """
    a = np.float32(a)
    if np.isneginf(a):  # nothing rounds to -inf or below... except overflowing values
        return "lt", -DBL_MAX
    if np.isposinf(a):
        return "lte", DBL_MAX
    b = np.nextafter(a, np.float32(np.inf))
    upper = 2.0**128 if np.isinf(b) else float(b)
    mid = float(a) / 2.0 + upper / 2.0
    even = (int(np.array(a, dtype=np.float32).view(np.uint32)) & 1) == 0
    return ("lte" if even else "lt"), mid


def f32_lte(threshold: float) -> tuple[str, float]:
    """Decision for ``float32(x) <= threshold`` (threshold a double), e.g. scikit-learn trees."""
    t = float(threshold)
    if math.isnan(t):
        raise ValueError("NaN split threshold")
    if math.isinf(t):
        return ("lte", DBL_MAX) if t > 0 else ("lt", -DBL_MAX)
    with np.errstate(over="ignore"):
        a = np.float32(t)
    if float(a) > t:
        a = np.nextafter(a, np.float32(-np.inf))
    return _f32_round_down_boundary(a)


def f32_lt(split: float) -> tuple[str, float]:
    """Decision for ``float32(x) < split`` (split a float32), e.g. XGBoost trees."""
    s = np.float32(split)
    if np.isnan(s):
        raise ValueError("NaN split condition")
    if np.isneginf(s):
        return "lt", -DBL_MAX
    if np.isposinf(s):
        return _f32_round_down_boundary(np.float32(np.finfo(np.float32).max))
    return _f32_round_down_boundary(np.nextafter(s, np.float32(-np.inf)))


def clean_threshold(decision: str, threshold: float) -> tuple[str, float]:
    """Replace infinite thresholds by equivalent finite ones (for finite inputs)."""
    t = float(threshold)
    if math.isnan(t):
        raise ValueError("NaN split threshold")
    if math.isinf(t):
        left_when_big = decision in ("lte", "lt")  # x <= +inf: every finite x goes left
        always_left = left_when_big == (t > 0)
        if decision in ("lte", "lt"):
            return ("lte", DBL_MAX) if always_left else ("lt", -DBL_MAX)
        return ("gte", -DBL_MAX) if always_left else ("gt", DBL_MAX)
    return decision, t


# ---------------------------------------------------------------- JSON


def tree_dict(
    root: Node,
    feature_names: list[str],
    target_type: str,
    labels: list[str] | None = None,
) -> dict[str, Any]:
    """Flatten an intermediate tree into ES's ``tree`` object (pre-order numbering)."""
    nodes: list[dict[str, Any]] = []
    stack: list[tuple[Node, int, str | None]] = [(root, -1, None)]
    while stack:
        node, parent, side = stack.pop()
        idx = len(nodes)
        if parent >= 0:
            nodes[parent][side] = idx  # type: ignore[index]
        if isinstance(node, Leaf):
            d: dict[str, Any] = {
                "node_index": idx,
                "leaf_value": [finite(v, "leaf_value") for v in node.value],
            }
            if node.count is not None:
                d["number_samples"] = int(node.count)
            nodes.append(d)
            continue
        if node.decision not in _DECISIONS:
            raise ValueError(f"unsupported decision type {node.decision!r}")
        decision, threshold = clean_threshold(node.decision, node.threshold)
        d = {
            "node_index": idx,
            "split_feature": int(node.feature),
            "threshold": float(threshold),
            "decision_type": decision,
            "default_left": bool(node.default_left),
            "left_child": -1,
            "right_child": -1,
        }
        if node.count is not None:
            d["number_samples"] = int(node.count)
        nodes.append(d)
        # right pushed first so that the left subtree is numbered first (pre-order)
        stack.append((node.right, idx, "right_child"))
        stack.append((node.left, idx, "left_child"))
    out: dict[str, Any] = {
        "feature_names": list(feature_names),
        "tree_structure": nodes,
        "target_type": target_type,
    }
    if labels is not None:
        out["classification_labels"] = list(labels)
    return out


def leaf_size(root: Node) -> int:
    node = root
    while isinstance(node, Split):
        node = node.left
    return len(node.value)


def forest_to_trained_model(
    forest: Forest,
    feature_names: list[str],
    classification_weights: list[float] | None,
) -> dict[str, Any]:
    labels = forest.labels if forest.target_type == "classification" else None
    if forest.single_tree and len(forest.trees) == 1 and classification_weights is None:
        return {"tree": tree_dict(forest.trees[0], feature_names, forest.target_type, labels)}
    trained = []
    for t in forest.trees:
        sub_type = "classification" if leaf_size(t) > 1 else forest.target_type
        trained.append({"tree": tree_dict(t, feature_names, sub_type)})
    params: dict[str, Any] = {}
    if forest.aggregator == "weighted_mode":
        params["num_classes"] = int(forest.num_classes or 0)
    if forest.weights is not None:
        if len(forest.weights) != len(forest.trees):
            raise AssertionError("one aggregator weight per tree expected")
        params["weights"] = [finite(w, "aggregator weight") for w in forest.weights]
    ens: dict[str, Any] = {
        "feature_names": list(feature_names),
        "trained_models": trained,
        "aggregate_output": {forest.aggregator: params},
        "target_type": forest.target_type,
    }
    if labels is not None:
        ens["classification_labels"] = list(labels)
    if classification_weights is not None:
        ens["classification_weights"] = list(classification_weights)
    return {"ensemble": ens}


def scaled_covers(covers: np.ndarray) -> np.ndarray:
    """Integer ``number_samples`` from (possibly fractional) hessian covers.

    ES uses ``number_samples`` only as TreeSHAP cover, i.e. only ratios child/parent
    inside one tree matter. Integral covers (squared error: cover == sample count) are
    kept as they are; fractional ones are multiplied by one power of two per tree so that
    the smallest positive cover is >= 2**24, which keeps the ratios accurate to ~1e-7.
    """
    c = np.asarray(covers, dtype=np.float64)
    c = np.where(np.isfinite(c) & (c > 0), c, 0.0)
    if c.size == 0:
        return c.astype(np.int64)
    if np.all(np.abs(c - np.round(c)) <= 1e-6 * np.maximum(1.0, c)):
        return np.round(c).astype(np.int64)
    pos = c[c > 0]
    k = 0
    if pos.size:
        k = int(math.ceil(24 - math.log2(pos.min())))
        k = min(k, int(math.floor(62 - math.log2(pos.max()))))
    return np.round(np.ldexp(c, k)).astype(np.int64)


def parents_first(left: Any, right: Any, is_leaf: Any) -> list[int]:
    """Node ids from the root (0) with every parent before its children (iterative DFS);
    walk it reversed to build children before their parents."""
    order: list[int] = []
    stack = [0]
    while stack:
        i = stack.pop()
        order.append(i)
        if not is_leaf(i):
            stack.append(int(left[i]))
            stack.append(int(right[i]))
    return order


def one_class_leaf(width: int, cls: int) -> Any:
    """A leaf maker for multi-class boosting: the tree's value at its class, zeros elsewhere."""

    def make(value: float) -> list[float]:
        out = [0.0] * width
        out[cls] = value
        return out

    return make
