"""LightGBM models -> Elasticsearch trees.

Supported: ``LGBMRegressor``, ``LGBMClassifier``, ``LGBMRanker`` and ``lightgbm.Booster``
(``gbdt``/``goss``/``dart``/``rf`` boosting, numerical splits, no linear trees).

Read from ``Booster.dump_model()`` (with the iteration ``predict`` uses by default:
``best_iteration`` after early stopping). Nodes are numbered in pre-order.

Exactness
---------
* LightGBM compares float64 ``x <= threshold`` and the dump prints thresholds with 17
  significant digits: the splits are exact.
* Missing values, per node ``missing_type``:
  - ``NaN``: NaN goes the ``default_left`` way: exact.
  - ``None``: LightGBM replaces NaN by 0.0 before comparing, so we set ``default_left`` to
    where 0.0 goes: exact for NaN.
  - ``Zero`` (``zero_as_missing``): NaN and every ``|x| <= 1e-35`` take the default way.
    When that agrees with the comparison the node is kept; otherwise it is expanded into
    three nodes (``x < -1e-35``, ``x <= 1e-35``, the original test) with the child subtrees
    duplicated, which is exact (``number_samples`` of the added nodes are approximations).
  - ES treats +-Infinity as missing; LightGBM compares them: the one inexact input.
* Leaves are LightGBM's doubles and ES sums in float64: exact up to summation order
  (~1e-15). LightGBM folds its initial score into the first tree(s).
* Objectives: ``regression``/``regression_l1``/``huber``/``fair``/``quantile``/``mape``/
  ``lambdarank``/``rank_xendcg`` -> ``weighted_sum``; ``poisson``/``gamma``/``tweedie`` ->
  ``exponent``; ``binary`` -> ``logistic_regression`` (weights = the sigmoid parameter);
  ``multiclass`` -> ``logistic_regression`` with one-hot leaf vectors. ``rf`` boosting
  averages (weights ``1/iterations``). ``multiclassova`` (independent sigmoids, not a
  softmax), ``cross_entropy*``, ``regression sqrt`` and custom objectives are rejected.
* ``number_samples`` = ``internal_count`` / ``leaf_count`` (what LightGBM's own SHAP uses).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._common import Forest, Leaf, Node, Split, one_class_leaf

IDENTITY = ("regression", "regression_l1", "huber", "fair", "quantile", "mape", "lambdarank", "rank_xendcg")
LOG = ("poisson", "gamma", "tweedie")
CLASSIFICATION = ("binary", "multiclass")
DECISIONS = {"<=": "lte", "<": "lt", ">=": "gte", ">": "gt"}
K_ZERO = float(np.float32(1e-35))  # LightGBM's kZeroThreshold (a float literal)


def _booster(model: Any) -> Any:
    import lightgbm as lgb

    if isinstance(model, lgb.Booster):
        return model
    if isinstance(model, lgb.LGBMModel):
        try:
            return model.booster_
        except Exception as e:  # LGBMNotFittedError
            raise ValueError(f"{type(model).__name__} is not fitted; call fit() first") from e
    raise TypeError(
        f"cannot convert LightGBM object {type(model).__module__}.{type(model).__name__}; supported: "
        "LGBMRegressor, LGBMClassifier, LGBMRanker, lightgbm.Booster"
    )


def n_features(model: Any) -> int:
    return int(_booster(model).num_feature())


def _compare(decision: str, x: float, t: float) -> bool:
    return {"lte": x <= t, "lt": x < t, "gte": x >= t, "gt": x > t}[decision]


def _tree_root(structure: dict[str, Any], leaf_fn: Any) -> Node:
    """Nested nodes from LightGBM's dump (iterative; children before parents)."""
    post: list[dict[str, Any]] = []
    stack = [structure]
    while stack:
        n = stack.pop()
        post.append(n)
        if "leaf_value" not in n:
            stack.append(n["left_child"])
            stack.append(n["right_child"])
    built: dict[int, Node] = {}
    for n in reversed(post):
        if "leaf_value" in n:
            if "leaf_coeff" in n or "leaf_features" in n:
                raise ValueError("LightGBM linear trees (linear_tree=True) cannot be represented by an "
                                 "Elasticsearch model")
            count = n.get("leaf_count")
            built[id(n)] = Leaf(leaf_fn(float(n["leaf_value"])), None if count is None else int(count))
            continue
        op = n.get("decision_type", "<=")
        if op not in DECISIONS:
            raise ValueError(
                f"LightGBM split with decision_type {op!r} (categorical feature) cannot be represented by an "
                "Elasticsearch model; supported: numerical splits"
            )
        decision = DECISIONS[op]
        t = float(n["threshold"])
        left, right = built[id(n["left_child"])], built[id(n["right_child"])]
        count = n.get("internal_count")
        count = None if count is None else int(count)
        feature = int(n["split_feature"])
        missing = n.get("missing_type", "None")
        default_left = bool(n.get("default_left", False))
        if missing == "None":
            built[id(n)] = Split(feature, t, decision, _compare(decision, 0.0, t), left, right, count)
        elif missing == "NaN":
            built[id(n)] = Split(feature, t, decision, default_left, left, right, count)
        elif missing == "Zero":
            built[id(n)] = _zero_as_missing(feature, t, decision, default_left, left, right, count)
        else:
            raise ValueError(f"unknown LightGBM missing_type {missing!r}")
    return built[id(structure)]


def _zero_as_missing(feature: int, t: float, decision: str, dleft: bool, left: Node, right: Node,
                     count: int | None) -> Node:
    """A node where NaN and |x| <= kZeroThreshold go the default way, others by comparison."""
    if all(_compare(decision, x, t) == dleft for x in (-K_ZERO, K_ZERO)):
        # the test is monotone in x: both ends of the zero band already go the default way
        return Split(feature, t, decision, dleft, left, right, count)
    default = left if dleft else right
    below = Split(feature, t, decision, dleft, left, right, count)  # for x < -K
    above = Split(feature, t, decision, dleft, left, right, count)  # for x > K
    middle = Split(feature, K_ZERO, "lte", True, default, above, count)  # NaN -> default
    return Split(feature, -K_ZERO, "lt", False, below, middle, count)  # NaN -> middle


def convert(model: Any, labels: list[str] | None, exact: bool) -> Forest:
    import lightgbm as lgb

    booster = _booster(model)
    wrapper = None if isinstance(model, lgb.Booster) else model
    dump = booster.dump_model()
    parts = str(dump.get("objective", "")).split()
    objective = parts[0] if parts else ""
    extras = dict(p.split(":", 1) for p in parts[1:] if ":" in p)
    flags = [p for p in parts[1:] if ":" not in p]
    if objective not in IDENTITY + LOG + CLASSIFICATION or "sqrt" in flags:
        shown = " ".join(parts) or "custom"
        raise ValueError(
            f"LightGBM objective {shown!r} is not supported; supported: "
            f"{', '.join(IDENTITY + LOG + CLASSIFICATION)} (multiclassova and cross_entropy produce "
            "probabilities no Elasticsearch aggregator computes)"
        )
    classify = objective in CLASSIFICATION
    if wrapper is not None:
        if isinstance(wrapper, lgb.LGBMClassifier) != classify:
            raise ValueError(f"{type(wrapper).__name__} with objective {objective!r} is not supported")
    per_round = int(dump.get("num_tree_per_iteration", 1))
    infos = dump["tree_info"]
    n_iter = len(infos) // max(per_round, 1)
    average = bool(dump.get("average_output", False))
    scale = 1.0 / n_iter if average and n_iter > 0 else 1.0

    if objective == "multiclass":
        k = int(dump.get("num_class", per_round))

        trees = [_tree_root(t["tree_structure"], one_class_leaf(k, i % k)) for i, t in enumerate(infos)]
    else:
        trees = [_tree_root(t["tree_structure"], lambda v: [v]) for t in infos]
    if not trees:
        raise ValueError("LightGBM model has no trees")

    if classify:
        k = int(dump.get("num_class", 1)) if objective == "multiclass" else 2
        sigmoid = float(extras.get("sigmoid", 1.0)) if objective == "binary" else 1.0
        w = sigmoid * scale
        default = [str(c) for c in wrapper.classes_] if wrapper is not None else [str(c) for c in range(k)]
        return Forest(trees, "classification", "logistic_regression",
                      None if w == 1.0 else [w] * len(trees), labels=default)
    aggregator = "exponent" if objective in LOG else "weighted_sum"
    return Forest(trees, "regression", aggregator, None if scale == 1.0 else [scale] * len(trees))
