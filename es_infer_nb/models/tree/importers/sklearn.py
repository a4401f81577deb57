"""scikit-learn tree models -> Elasticsearch trees.

Supported: ``DecisionTreeRegressor``, ``DecisionTreeClassifier``, ``RandomForestRegressor``,
``RandomForestClassifier``, ``ExtraTreeRegressor/Classifier``, ``ExtraTreesRegressor/Classifier``,
``GradientBoostingRegressor/Classifier`` and ``HistGradientBoostingRegressor/Classifier``
(single output, numerical features).

Exactness
---------
* ``DecisionTree*`` / forests / ``GradientBoosting*`` compare ``float32(x) <= threshold``
  (scikit-learn casts ``X`` to float32). With ``exact_thresholds=True`` (default) each split
  is rewritten as the equivalent comparison on the float64 value (the midpoint between two
  adjacent float32 numbers, ``lt`` or ``lte`` by the round-half-to-even rule), so ES routes
  every double exactly as scikit-learn does. ``False`` keeps ``lte`` on sklearn's threshold
  (eland's output), which differs only for inputs within float32 rounding of a threshold.
* ``HistGradientBoosting*`` compare in float64: ``lte`` on ``num_threshold`` is exact.
* NaN: ``default_left`` = ``missing_go_to_left`` (sklearn >= 1.3). ES also treats +-Infinity
  as missing; scikit-learn rejects infinite input, so that case does not arise.
* ``number_samples`` = ``weighted_n_node_samples`` (the cover TreeSHAP uses; HGB: ``count``).
* Single classifier trees: leaves are ``ln`` of the class fractions (``-1e7`` for 0); the
  softmax ES applies returns the fractions, i.e. ``predict_proba``, exactly.
* Random forest / extra-trees classifiers are the one inexact case: scikit-learn averages
  the trees' probabilities and no ES aggregator computes an arithmetic mean of
  probabilities (each is additive in the leaves, then softmax/sigmoid). Like eland we emit
  ``weighted_mode`` (``num_classes``, no weights) over log-fraction leaves, so ES returns
  the softmax of the summed log-fractions = the normalised *product* of the trees'
  probabilities. The winning class equals scikit-learn's whenever the leaves are pure
  (fully grown trees: it is the majority vote, ties to the lower class in both); a class
  to which any tree gives probability 0 gets (essentially) probability 0, so probabilities
  are pushed towards 0/1. (Weights ``1/n``, a normalised geometric mean, were measured to
  be only marginally closer: mean |diff| 0.14 vs 0.16 on a depth-4 forest, same classes.)
* ``GradientBoosting*``: ``init_`` (a constant) becomes a first leaf-only tree, the
  learning rate the aggregator weights: exact up to float64 rounding. The ``exponential``
  loss uses ``sigmoid(2 * raw)``, encoded with weights ``2 * learning_rate``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ._common import LOG_ZERO, Forest, Leaf, Node, Split, f32_lte, one_class_leaf, parents_first, scaled_covers


def _unsupported(model: Any) -> TypeError:
    return TypeError(
        f"cannot convert scikit-learn model {type(model).__module__}.{type(model).__name__}; supported: "
        "DecisionTreeRegressor, DecisionTreeClassifier, ExtraTreeRegressor, ExtraTreeClassifier, "
        "RandomForestRegressor, RandomForestClassifier, ExtraTreesRegressor, ExtraTreesClassifier, "
        "GradientBoostingRegressor, GradientBoostingClassifier, HistGradientBoostingRegressor, "
        "HistGradientBoostingClassifier"
    )


def n_features(model: Any) -> int:
    if not hasattr(model, "n_features_in_"):
        raise ValueError(f"{type(model).__name__} is not fitted (no n_features_in_); call fit() first")
    return int(model.n_features_in_)


def _single_output(model: Any) -> None:
    if int(getattr(model, "n_outputs_", 1)) != 1:
        raise ValueError(
            f"{type(model).__name__} has {model.n_outputs_} outputs; Elasticsearch models have a single output"
        )


def _cover(tree: Any, i: int) -> int:
    """The node's training weight: ``weighted_n_node_samples`` (bootstrap duplicates and sample
    weights included, which is what the tree and shap's TreeExplainer use as cover), scaled to
    whole numbers per tree when fractional."""
    cached = _COVERS.get(id(tree))
    if cached is None or cached[0] is not tree:
        if len(_COVERS) > 64:
            _COVERS.clear()
        cached = (tree, scaled_covers(np.asarray(tree.weighted_n_node_samples, dtype=np.float64)))
        _COVERS[id(tree)] = cached
    return int(cached[1][i])


_COVERS: dict[int, tuple[Any, np.ndarray]] = {}


def _split(tree: Any, i: int, left: Node, right: Node, exact: bool) -> Split:
    missing = getattr(tree, "missing_go_to_left", None)
    default_left = bool(missing[i]) if missing is not None else False
    t = float(tree.threshold[i])
    decision, threshold = f32_lte(t) if exact else ("lte", t)
    return Split(int(tree.feature[i]), threshold, decision, default_left, left, right, _cover(tree, i))


def _tree_root(tree: Any, leaf_fn: Any, exact: bool) -> Node:
    """Nested nodes of an sklearn ``Tree``; ``leaf_fn(i)`` gives the leaf value list."""
    cl, cr = tree.children_left, tree.children_right
    n = int(tree.node_count)
    built: list[Node | None] = [None] * n
    order = parents_first(cl, cr, lambda i: cl[i] == -1)
    for i in reversed(order):
        if cl[i] == -1:
            built[i] = Leaf(leaf_fn(i), _cover(tree, i))
        else:
            built[i] = _split(tree, i, built[int(cl[i])], built[int(cr[i])], exact)  # type: ignore[arg-type]
    return built[0]  # type: ignore[return-value]


def _regression_leaf(tree: Any, scale: float = 1.0):
    value = tree.value

    def leaf(i: int) -> list[float]:
        return [float(value[i, 0, 0]) * scale]

    return leaf


def _log_fraction_leaf(tree: Any):
    value = tree.value

    def leaf(i: int) -> list[float]:
        v = np.asarray(value[i, 0, :], dtype=np.float64)
        total = v.sum()
        frac = v / total if total > 0 else v
        return [math.log(f) if f > 0 else LOG_ZERO for f in frac]

    return leaf


def convert(model: Any, labels: list[str] | None, exact: bool) -> Forest:
    from sklearn import ensemble as ens
    from sklearn import tree as sktree

    if isinstance(model, (ens.HistGradientBoostingRegressor, ens.HistGradientBoostingClassifier)):
        return _hist_gradient_boosting(model)
    if isinstance(model, (ens.GradientBoostingRegressor, ens.GradientBoostingClassifier)):
        return _gradient_boosting(model, exact)

    single_reg = (sktree.DecisionTreeRegressor,)  # ExtraTreeRegressor subclasses it
    single_clf = (sktree.DecisionTreeClassifier,)
    forest_reg = (ens.RandomForestRegressor, ens.ExtraTreesRegressor)
    forest_clf = (ens.RandomForestClassifier, ens.ExtraTreesClassifier)
    if not isinstance(model, single_reg + single_clf + forest_reg + forest_clf):
        raise _unsupported(model)
    if not hasattr(model, "tree_") and not hasattr(model, "estimators_"):
        raise ValueError(f"{type(model).__name__} is not fitted; call fit() first")
    _single_output(model)

    if isinstance(model, single_reg):
        root = _tree_root(model.tree_, _regression_leaf(model.tree_), exact)
        return Forest([root], "regression", single_tree=True)
    if isinstance(model, single_clf):
        root = _tree_root(model.tree_, _log_fraction_leaf(model.tree_), exact)
        return Forest(
            [root], "classification", aggregator="logistic_regression",
            weights=[1.0], labels=[str(c) for c in model.classes_], single_tree=True,
        )
    estimators = list(model.estimators_)
    n = len(estimators)
    if isinstance(model, forest_reg):
        trees = [_tree_root(e.tree_, _regression_leaf(e.tree_), exact) for e in estimators]
        return Forest(trees, "regression", "weighted_sum", [1.0 / n] * n)
    trees = [_tree_root(e.tree_, _log_fraction_leaf(e.tree_), exact) for e in estimators]
    classes = [str(c) for c in model.classes_]
    return Forest(
        trees, "classification", "weighted_mode", None, num_classes=len(classes), labels=classes,
        notes=["random forest probabilities: softmax of summed log-fractions (ES has no arithmetic mean)"],
    )


def _init_raw(model: Any, k: int) -> np.ndarray:
    """The constant raw prediction of ``init_`` (``'zero'`` or a Dummy estimator)."""
    from sklearn.dummy import DummyClassifier, DummyRegressor

    init = model.init_
    if not (init == "zero" or isinstance(init, (DummyRegressor, DummyClassifier))):
        raise ValueError(
            f"{type(model).__name__} with init={type(init).__name__} is not supported: only a constant "
            "initial prediction (init=None or 'zero') can be represented"
        )
    probe = np.zeros((1, int(model.n_features_in_)), dtype=np.float32)
    raw = np.asarray(model._raw_predict_init(probe), dtype=np.float64).reshape(-1)
    if raw.size != k:
        raise AssertionError("unexpected init shape")
    return raw


def _gradient_boosting(model: Any, exact: bool) -> Forest:
    from sklearn.ensemble import GradientBoostingClassifier

    if not hasattr(model, "estimators_"):
        raise ValueError(f"{type(model).__name__} is not fitted; call fit() first")
    stages = model.estimators_  # [n_estimators, K] of DecisionTreeRegressor
    n_iter, k = stages.shape
    lr = float(model.learning_rate)
    base = _init_raw(model, k)
    if not isinstance(model, GradientBoostingClassifier):
        trees: list[Node] = [Leaf([float(base[0])])]
        trees += [_tree_root(t.tree_, _regression_leaf(t.tree_), exact) for t in stages[:, 0]]
        return Forest(trees, "regression", "weighted_sum", [1.0] + [lr] * n_iter)
    classes = [str(c) for c in model.classes_]
    if k == 1:
        scale = 2.0 if model.loss == "exponential" else 1.0  # predict_proba = expit(2 * raw)
        trees = [Leaf([float(base[0])])]
        trees += [_tree_root(t.tree_, _regression_leaf(t.tree_), exact) for t in stages[:, 0]]
        return Forest(trees, "classification", "logistic_regression", [scale] + [scale * lr] * n_iter,
                      labels=classes)

    def vector_leaf(tree: Any, cls: int):
        value = tree.value

        def leaf(i: int) -> list[float]:
            out = [0.0] * k
            out[cls] = float(value[i, 0, 0])
            return out

        return leaf

    trees = [Leaf([float(b) for b in base])]
    for it in range(n_iter):
        for c in range(k):
            t = stages[it, c].tree_
            trees.append(_tree_root(t, vector_leaf(t, c), exact))
    return Forest(trees, "classification", "logistic_regression", [1.0] + [lr] * (n_iter * k), labels=classes)


def _hgb_root(predictor: Any, leaf_fn: Any) -> Node:
    nodes = predictor.nodes
    if np.any(nodes["is_categorical"][~nodes["is_leaf"].astype(bool)]):
        raise ValueError("HistGradientBoosting categorical splits cannot be represented by an Elasticsearch model")
    n = len(nodes)
    built: list[Node | None] = [None] * n
    order = parents_first(nodes["left"], nodes["right"], lambda i: bool(nodes["is_leaf"][i]))
    for i in reversed(order):
        count = int(nodes["count"][i])
        if nodes["is_leaf"][i]:
            built[i] = Leaf(leaf_fn(float(nodes["value"][i])), count)
        else:
            built[i] = Split(
                int(nodes["feature_idx"][i]), float(nodes["num_threshold"][i]), "lte",
                bool(nodes["missing_go_to_left"][i]),
                built[int(nodes["left"][i])], built[int(nodes["right"][i])], count,  # type: ignore[arg-type]
            )
    return built[0]  # type: ignore[return-value]


def _hist_gradient_boosting(model: Any) -> Forest:
    from sklearn.ensemble import HistGradientBoostingClassifier

    if not hasattr(model, "_predictors"):
        raise ValueError(f"{type(model).__name__} is not fitted; call fit() first")
    if getattr(model, "is_categorical_", None) is not None and np.any(model.is_categorical_):
        raise ValueError("HistGradientBoosting models with categorical features cannot be represented")
    base = np.asarray(model._baseline_prediction, dtype=np.float64).reshape(-1)
    k = base.size
    link = type(model._loss.link).__name__
    predictors = model._predictors
    if not isinstance(model, HistGradientBoostingClassifier):
        if link == "IdentityLink":
            aggregator = "weighted_sum"
        elif link == "LogLink":
            aggregator = "exponent"
        else:
            raise ValueError(
                f"HistGradientBoostingRegressor loss {model.loss!r} (link {link}) is not supported; "
                "supported: identity-link losses (squared_error, absolute_error, quantile) and "
                "log-link losses (poisson, gamma)"
            )
        trees: list[Node] = [Leaf([float(base[0])])]
        trees += [_hgb_root(it[0], lambda v: [v]) for it in predictors]
        return Forest(trees, "regression", aggregator, None)
    classes = [str(c) for c in model.classes_]
    if k == 1:
        trees = [Leaf([float(base[0])])] + [_hgb_root(it[0], lambda v: [v]) for it in predictors]
        return Forest(trees, "classification", "logistic_regression", None, labels=classes)

    trees = [Leaf([float(b) for b in base])]
    for it in predictors:
        for c, p in enumerate(it):
            trees.append(_hgb_root(p, one_class_leaf(k, c)))
    return Forest(trees, "classification", "logistic_regression", None, labels=classes)
