"""XGBoost models -> Elasticsearch trees.

Supported: ``XGBRegressor``, ``XGBClassifier``, ``XGBRanker``, ``XGBRF*`` and raw
``xgboost.Booster`` with ``gbtree`` or ``dart`` boosters and numerical splits.

Read from the model JSON (``Booster.save_raw("json")``): per tree ``split_indices``,
``split_conditions`` (threshold, or the leaf value on leaves), ``default_left``,
``left/right_children``, ``sum_hessian``; per model ``tree_info`` (the output group of each
tree), ``iteration_indptr`` and, for dart, ``weight_drop``.

Exactness
---------
* XGBoost compares ``float32(x) < split`` (its matrices hold float32). With
  ``exact_thresholds=True`` (default) the split becomes the equivalent comparison on the
  float64 value, so ES routes every double as XGBoost does; ``False`` gives eland's
  ``lt`` on the float32 split value.
* ``default_left`` is XGBoost's missing direction (NaN; ES also sends +-Infinity there).
* The intercept comes from ``learner_model_param.base_score`` (``"[5E-1]"`` or a per-class
  vector ``"[a,b,c]"`` in XGBoost 3.x) mapped to margin space by the objective
  (``binary:logistic``: logit; ``count:poisson``/``reg:gamma``/``reg:tweedie``: log;
  everything else, including ``multi:*`` whose vector is stored as margins: as is), computed
  in float32 like XGBoost, and added as a first leaf-only tree.
* XGBoost sums leaves in float32, ES in float64: outputs differ by float32 rounding
  (~1e-7 relative).
* ``number_samples`` is the cover (a hessian sum): whole covers (squared error: sample
  counts) as they are, fractional ones scaled by a power of two per tree (TreeSHAP only
  uses ratios inside a tree).
* Scikit-learn wrappers predict with ``best_iteration`` after early stopping, a raw
  ``Booster`` with every tree; the conversion does the same.

``reg:logistic`` (a probability as a *regression* value) is rejected: ES's
``logistic_regression`` on a regression target returns 0/1.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from ._common import Forest, Leaf, Node, Split, f32_lt, parents_first, scaled_covers

IDENTITY = (
    "reg:squarederror", "reg:linear", "reg:squaredlogerror", "reg:pseudohubererror", "reg:absoluteerror",
    "reg:quantileerror", "rank:pairwise", "rank:ndcg", "rank:map", "binary:logitraw",
)
LOG = ("count:poisson", "reg:gamma", "reg:tweedie")
CLASSIFICATION = ("binary:logistic", "multi:softprob", "multi:softmax")
SUPPORTED = IDENTITY + LOG + CLASSIFICATION


def _booster(model: Any) -> Any:
    import xgboost as xgb

    if isinstance(model, xgb.Booster):
        return model
    if isinstance(model, xgb.XGBModel):
        try:
            return model.get_booster()
        except Exception as e:  # NotFittedError
            raise ValueError(f"{type(model).__name__} is not fitted; call fit() first") from e
    raise TypeError(
        f"cannot convert XGBoost object {type(model).__module__}.{type(model).__name__}; supported: "
        "XGBRegressor, XGBClassifier, XGBRanker, XGBRFRegressor, XGBRFClassifier, xgboost.Booster"
    )


def n_features(model: Any) -> int:
    return int(_booster(model).num_features())


def _parse_base_score(text: Any, n_groups: int) -> np.ndarray:
    s = str(text).strip().strip("[]")
    values = np.array([np.float32(v) for v in s.split(",") if v.strip()], dtype=np.float32)
    if values.size == 1 and n_groups > 1:
        values = np.repeat(values, n_groups)
    if values.size != n_groups:
        raise ValueError(f"cannot interpret XGBoost base_score {text!r} for {n_groups} outputs")
    return values


def _margin(base: np.ndarray, objective: str) -> np.ndarray:
    base = base.astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if objective == "binary:logistic":
            one = np.float32(1.0)
            out = -np.log(one / base - one)
        elif objective in LOG:
            out = np.log(base)
        else:
            out = base
    out = out.astype(np.float32)
    if not np.all(np.isfinite(out)):
        raise ValueError(f"XGBoost base_score {base.tolist()} has no finite margin for objective {objective}")
    return out.astype(np.float64)


def _tree_root(t: dict[str, Any], group: int, n_groups: int, exact: bool) -> Node:
    if t.get("categories_nodes") or any(int(s) != 0 for s in t.get("split_type", [])):
        raise ValueError("XGBoost categorical splits cannot be represented by an Elasticsearch model")
    k_leaf = int(t["tree_param"].get("size_leaf_vector", "1") or 1)
    left = t["left_children"]
    right = t["right_children"]
    cond = t["split_conditions"]
    feat = t["split_indices"]
    dleft = t["default_left"]
    base_w = t["base_weights"]
    covers = scaled_covers(np.asarray(t["sum_hessian"], dtype=np.float64))
    n = len(left)
    built: list[Node | None] = [None] * n
    order = parents_first(left, right, lambda i: left[i] == -1)
    for i in reversed(order):
        count = int(covers[i])
        if left[i] == -1:
            if k_leaf > 1:  # multi_output_tree: the leaf vector
                value = [float(np.float32(v)) for v in base_w[i * k_leaf:(i + 1) * k_leaf]]
                if len(value) != n_groups:
                    raise ValueError("XGBoost multi-output tree with unexpected leaf size")
            elif n_groups > 1:
                value = [0.0] * n_groups
                value[group] = float(np.float32(cond[i]))
            else:
                value = [float(np.float32(cond[i]))]
            built[i] = Leaf(value, count)
        else:
            s = np.float32(cond[i])
            decision, threshold = f32_lt(s) if exact else ("lt", float(s))
            built[i] = Split(int(feat[i]), threshold, decision, bool(dleft[i]),
                             built[int(left[i])], built[int(right[i])], count)  # type: ignore[arg-type]
    return built[0]  # type: ignore[return-value]


def convert(model: Any, labels: list[str] | None, exact: bool) -> Forest:
    import xgboost as xgb

    booster = _booster(model)
    wrapper = None if isinstance(model, xgb.Booster) else model
    if wrapper is not None:
        missing = wrapper.get_params().get("missing", np.nan)
        if missing is not None and not (isinstance(missing, float) and math.isnan(missing)):
            raise ValueError(
                f"{type(model).__name__} uses missing={missing!r}; only NaN as the missing value can be "
                "represented (Elasticsearch treats only absent/NaN values as missing)"
            )
    raw = json.loads(booster.save_raw("json"))
    learner = raw["learner"]
    objective = learner["objective"]["name"]
    params = learner["learner_model_param"]
    gb = learner["gradient_booster"]
    kind = gb["name"]
    if kind == "dart":
        model_json = gb["gbtree"]["model"]
        drop = [float(w) for w in gb.get("weight_drop", [])]
    elif kind == "gbtree":
        model_json = gb["model"]
        drop = None
    else:
        raise ValueError(f"XGBoost booster {kind!r} is not supported; supported: gbtree, dart")
    if objective not in SUPPORTED:
        hint = (
            " (a probability as a regression value: Elasticsearch's logistic_regression on a regression "
            "target returns 0/1; train with binary:logistic as a classifier instead)"
            if objective == "reg:logistic" else ""
        )
        raise ValueError(
            f"XGBoost objective {objective!r} is not supported{hint}; supported: {', '.join(SUPPORTED)}"
        )
    n_class = int(params.get("num_class", "0") or 0)
    n_target = int(params.get("num_target", "1") or 1)
    if n_target > 1:
        raise ValueError(f"XGBoost model with {n_target} targets is not supported (single output only)")
    classify = objective in CLASSIFICATION
    if wrapper is not None:
        if isinstance(wrapper, xgb.XGBClassifier) and not classify:
            raise ValueError(
                f"XGBClassifier objective {objective!r} is not supported; supported: {', '.join(CLASSIFICATION)}"
            )
        if not isinstance(wrapper, xgb.XGBClassifier) and classify:
            raise ValueError(f"{type(wrapper).__name__} with classification objective {objective!r} is not supported")
    n_groups = n_class if objective.startswith("multi:") else 1
    if objective.startswith("multi:") and n_groups < 2:
        raise ValueError("XGBoost multi-class model without num_class")

    trees_json = model_json["trees"]
    tree_info = [int(g) for g in model_json["tree_info"]]
    indptr = model_json.get("iteration_indptr")
    if indptr is None:  # xgboost < 2: fixed trees per round
        per_round = n_groups * int(model_json["gbtree_model_param"].get("num_parallel_tree", "1") or 1)
        indptr = list(range(0, len(trees_json) + 1, max(per_round, 1)))
    end = len(trees_json)
    if wrapper is not None:
        best = booster.attr("best_iteration")
        if best is not None and int(best) + 1 < len(indptr):
            end = int(indptr[int(best) + 1])

    base = _margin(_parse_base_score(params["base_score"], n_groups), objective)
    trees: list[Node] = [Leaf([float(b) for b in base])]
    weights = [1.0]
    for i in range(end):
        trees.append(_tree_root(trees_json[i], tree_info[i], n_groups, exact))
        weights.append(drop[i] if drop is not None and i < len(drop) else 1.0)
    all_one = all(w == 1.0 for w in weights)
    if classify:
        k = max(n_groups, 2)
        default = [str(c) for c in getattr(wrapper, "classes_", range(k))] if wrapper is not None else None
        if default is None or len(default) != k:
            default = [str(c) for c in range(k)]
        return Forest(trees, "classification", "logistic_regression", None if all_one else weights,
                      labels=default)
    aggregator = "exponent" if objective in LOG else "weighted_sum"
    return Forest(trees, "regression", aggregator, None if all_one else weights)
