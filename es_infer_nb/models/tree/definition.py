"""The tree_ensemble ``definition``: parsing and validation, as Elasticsearch does it.

``parse_definition(obj)`` turns the JSON into :class:`Definition` (preprocessors
plus a :class:`TreeDef` or :class:`EnsembleDef`), rejecting what ES rejects with
the same error type and reason. Evaluation lives in :mod:`.evaluate`.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Union

import numpy as np

from ...errors import ApiError
from .. import parsing as p
from ..java_hash import hashmap_order
from .preprocessors import Preprocessor, parse_preprocessors

DECISION_TYPES = ("lte", "lt", "gte", "gt")
TARGET_TYPES = ("regression", "classification")
AGGREGATORS = ("weighted_sum", "weighted_mode", "logistic_regression", "exponent")

_TREE_FIELDS = frozenset({"feature_names", "tree_structure", "target_type", "classification_labels"})
_NODE_FIELDS = frozenset(
    {
        "node_index",
        "split_feature",
        "threshold",
        "decision_type",
        "default_left",
        "left_child",
        "right_child",
        "leaf_value",
        "split_gain",
        "number_samples",
    }
)
_ENSEMBLE_FIELDS = frozenset(
    {
        "feature_names",
        "trained_models",
        "aggregate_output",
        "target_type",
        "classification_labels",
        "classification_weights",
    }
)


@dataclass
class TreeDef:
    feature_names: list[str]
    target_type: str
    classification_labels: list[str] | None
    split_feature: np.ndarray  # int64 [N], -1 on leaves
    threshold: np.ndarray  # float64 [N]
    decision: np.ndarray  # int8 [N]: index into DECISION_TYPES
    default_left: np.ndarray  # bool [N]
    left: np.ndarray  # int64 [N], -1 on leaves
    right: np.ndarray  # int64 [N]
    leaf_values: np.ndarray  # float64 [N, K]; NaN rows for inner nodes
    number_samples: np.ndarray  # float64 [N]
    raw: dict[str, Any] = field(repr=False, default_factory=dict)
    #: the largest split_feature as given, -1 where none is: ES's TreeNode keeps a missing one as -1 for
    #: Tree.validate(), while ``split_feature`` holds 0 there for evaluation
    given_max_feature: int = field(repr=False, default=-1)

    @property
    def num_nodes(self) -> int:
        return int(self.left.shape[0])

    @property
    def is_leaf(self) -> np.ndarray:
        return self.left < 0

    @property
    def leaf_size(self) -> int:
        return int(self.leaf_values.shape[1])

    def depth(self) -> int:
        depth = np.zeros(self.num_nodes, dtype=np.int64)
        best = 0
        queue = deque([0])
        while queue:
            i = queue.popleft()
            if self.left[i] >= 0:
                for c in (self.left[i], self.right[i]):
                    depth[c] = depth[i] + 1
                    best = max(best, int(depth[c]))
                    queue.append(int(c))
        return best

    def estimated_operations(self) -> int:
        return int(math.ceil(math.log(self.num_nodes))) + len(self.feature_names)

    def bounds(self) -> tuple[float, float]:
        """Smallest and largest value the tree can predict (first leaf component)."""
        leaves = self.leaf_values[self.is_leaf][:, 0]
        return float(leaves.min()), float(leaves.max())

    def max_leaf_value(self) -> float:
        leaves = self.leaf_values[self.is_leaf]
        if leaves.shape[1] > 1:
            return float(leaves.shape[1])
        return max(0.0, float(np.max(leaves[:, 0]))) if leaves.size else 0.0


@dataclass
class AggregatorDef:
    name: str
    weights: np.ndarray | None
    num_classes: int | None = None

    def compatible_with(self, target_type: str) -> bool:
        if self.name in ("weighted_sum", "exponent"):
            return target_type == "regression"
        if self.name == "weighted_mode":
            return target_type == "classification"
        return True

    def aggregate_raw(self, values: list[float]) -> float:
        """ES ``OutputAggregator.aggregate(double[])`` on already processed values."""
        if self.name == "weighted_sum":
            return float(sum(values))  # left to right, as Java
        if self.name == "exponent":
            return math.exp(sum(values))
        if self.name == "logistic_regression" and len(values) == 2:
            return 1.0 if values[1] >= values[0] else 0.0
        return float(int(np.argmax(values))) if values else 0.0

    def to_dict(self) -> dict[str, Any]:
        inner: dict[str, Any] = {}
        if self.weights is not None:
            inner["weights"] = [float(w) for w in self.weights]
        if self.num_classes is not None:
            inner["num_classes"] = self.num_classes
        return {self.name: inner}


@dataclass
class EnsembleDef:
    feature_names: list[str]
    models: list["ModelDef"]
    aggregator: AggregatorDef
    target_type: str
    classification_labels: list[str] | None
    classification_weights: np.ndarray | None

    def estimated_operations(self) -> int:
        ops = [m.estimated_operations() for m in self.models]
        return int(math.ceil(sum(ops) / len(ops))) + 2 * (len(self.models) - 1)

    def bounds(self) -> tuple[float, float]:
        """ES ``EnsembleInferenceModel`` bounds: the output aggregator's ``aggregate`` over the
        sub-models' minimums, and over their maximums. ``aggregate`` is the step after
        ``processValues`` (which applies the weights), so the weights do not enter: a weighted sum
        adds the bounds, exponent is ``exp`` of that sum, the classification aggregators give the
        index of the largest value."""
        parts = [m.bounds() for m in self.models]
        return (
            self.aggregator.aggregate_raw([lo for lo, _ in parts]),
            self.aggregator.aggregate_raw([hi for _, hi in parts]),
        )

    def trees(self) -> list[TreeDef]:
        out: list[TreeDef] = []
        for m in self.models:
            out.extend(m.trees() if isinstance(m, EnsembleDef) else [m])
        return out


ModelDef = Union[TreeDef, EnsembleDef]


@dataclass
class Definition:
    preprocessors: list[Preprocessor]
    model: ModelDef

    @property
    def target_type(self) -> str:
        return self.model.target_type

    @property
    def classification_labels(self) -> list[str] | None:
        return self.model.classification_labels

    def estimated_operations(self) -> int:
        return self.model.estimated_operations()

    def bounds(self) -> tuple[float, float]:
        return self.model.bounds()

    def all_trees(self) -> list[TreeDef]:
        return self.model.trees() if isinstance(self.model, EnsembleDef) else [self.model]

    def importance_feature_names(self) -> list[str]:
        """Features reported by feature importance, in first-seen order: the inference model's
        features (a tree's ``feature_names``; an ensemble's, its sub-models' features)."""
        return list(self.model.feature_names) if isinstance(self.model, TreeDef) else self.used_feature_names()

    def importance_report_names(self) -> list[str]:
        """Reported feature importance names after decoding, in first-seen order."""
        decoder = self.importance_decoder()
        return list(dict.fromkeys(decoder.get(f, f) for f in self.importance_feature_names()))

    def importance_tie_order(self) -> list[str]:
        """The reported names in the order ES lists them before its stable sort by importance (so equal
        importances keep it): the features collected into a Java ``HashMap``, and a decoder re-collecting
        the decoded names into a new one (``InferenceHelpers.decodeFeatureImportances``)."""
        features = hashmap_order(self.importance_feature_names())
        decoder = self.importance_decoder()
        return hashmap_order(decoder.get(f, f) for f in features) if decoder else features

    def importance_decoder(self) -> dict[str, str]:
        """Processed feature -> original field, from the non-custom preprocessors (spec §2.7)."""
        mapping: dict[str, str] = {}
        for pre in self.preprocessors:
            if not pre.custom:
                mapping.update(pre.reverse_map())
        return mapping

    def used_feature_names(self) -> list[str]:
        """Union of the sub-models' feature names, in first-seen order."""
        seen: dict[str, None] = {}
        for t in self.all_trees():
            for f in t.feature_names:
                seen.setdefault(f, None)
        return list(seen)


# -- parsing ---------------------------------------------------------------------------------


def parse_definition(obj: Any) -> Definition:
    body = p.as_object(obj, "trained_model_definition")
    p.reject_unknown(body, "trained_model_definition", {"preprocessors", "trained_model"})
    preprocessors = parse_preprocessors(body.get("preprocessors") or [])
    if body.get("trained_model") is None:  # the TrainedModelDefinition constructor's requireNonNull
        raise _illegal("[trained_model] must not be null.")
    model = parse_model(body["trained_model"], "trained_model")
    model_validate(model)
    return Definition(preprocessors, model)


def parse_model(value: Any, field_name: str) -> ModelDef:
    name, inner = p.named_object(value, "trained_model_definition", field_name)
    if name == "tree":
        return _parse_tree(inner)
    if name == "ensemble":
        return _parse_ensemble(inner)
    if name == "lang_ident_neural_network":
        raise p.bad_request("[lang_ident_neural_network] models are not supported by es_infer_nb")
    raise ApiError(
        "x_content_parse_exception",
        f"[trained_model_definition] unknown field [{name}]; expected one of [tree, ensemble]",
        400,
    )


#: the Java enums behind ``target_type`` and ``decision_type`` (``TargetType`` / ``Operator.fromString``)
_JAVA_ENUMS = {
    "target_type": "org.elasticsearch.xpack.core.ml.inference.trainedmodel.TargetType",
    "decision_type": "org.elasticsearch.xpack.core.ml.job.config.Operator",
}


def _enum(value: Any, obj: str, field_name: str, allowed: tuple[str, ...]) -> str:
    """``valueOf(name.trim().toUpperCase(Locale.ROOT))``: Java's ``No enum constant`` for anything else."""
    text = p.to_str(value, obj, field_name).strip().lower()
    if text not in allowed:
        constant = p.to_str(value, obj, field_name).strip().upper()
        raise p.field_error(obj, field_name, f"No enum constant {_JAVA_ENUMS[field_name]}.{constant}")
    return text


def _illegal(reason: str) -> ApiError:
    """An ``IllegalArgumentException`` of a constructor or builder (``TreeNode``, ``Tree``, ``Ensemble``)."""
    return ApiError("illegal_argument_exception", reason, 400)


def _node_problem(node: dict[str, Any], index: int, left: int, right: int, samples: int) -> str | None:
    """What ``TreeNode.Builder.build()`` throws for a parsed node (``validate()``, then the constructor's
    ``number_samples`` check), or None. ``left`` / ``right`` are -1 where absent."""
    if index < 0:
        return "[node_index] must be a non-negative integer."
    if node.get("left_child") is None:
        lv = node.get("leaf_value")
        if lv is None or (isinstance(lv, list) and not lv):
            return "[leaf_value] is required for a leaf node."
        if isinstance(lv, list) and any(v is None for v in lv):
            return "[leaf_value] cannot have null values."
    else:
        if left < 0:
            return "[left_child] must be a non-negative integer."
        if node.get("right_child") is not None and right < 0:
            return "[right_child] must be a non-negative integer."
        if node.get("threshold") is None:
            return "[threshold] must exist for non-leaf node."
    if samples < 0:
        return "[number_samples] must be greater than or equal to 0"
    return None


#: ``Tree.Builder``'s nodes when the JSON has no ``tree_structure``: the root allocated as a 0.0 leaf
_DEFAULT_NODES: tuple[dict[str, Any], ...] = ({"node_index": 0, "leaf_value": 0.0},)


def _parse_tree(obj: Any) -> TreeDef:
    """``Tree.fromXContentStrict``: the fields, then ``Tree.Builder.build()``'s checks in its order (null nodes,
    each ``TreeNode.Builder.validate()``, the constructor's ``feature_names`` and empty ``tree_structure``)."""
    body = p.as_object(obj, "tree")
    p.reject_unknown(body, "tree", _TREE_FIELDS)
    given_names = body.get("feature_names")
    feature_names = [] if given_names is None else p.str_list(given_names, "tree", "feature_names")
    target_type = _enum(body.get("target_type", "regression"), "tree", "target_type", TARGET_TYPES)
    labels = body.get("classification_labels")
    labels = None if labels is None else p.str_list(labels, "tree", "classification_labels")
    raw_nodes = body.get("tree_structure")
    if raw_nodes is None:
        raw_nodes = list(_DEFAULT_NODES)
    if not isinstance(raw_nodes, list):
        raw_nodes = [raw_nodes]
    if any(raw is None for raw in raw_nodes):
        raise p.bad_request("[tree] cannot contain null nodes")
    tree = _tree_from_nodes(raw_nodes, feature_names, target_type, labels, body)
    if given_names is None:
        raise _illegal("[feature_names] must not be null.")
    if not raw_nodes:
        raise _illegal("[tree_structure] must not be empty")
    return tree


def _tree_from_nodes(
    raw_nodes: list[Any], feature_names: list[str], target_type: str, labels: list[str] | None, body: dict[str, Any]
) -> TreeDef:
    n = len(raw_nodes)
    split_feature = np.full(n, -1, dtype=np.int64)
    threshold = np.full(n, np.nan)
    decision = np.zeros(n, dtype=np.int8)
    default_left = np.zeros(n, dtype=bool)
    left = np.full(n, -1, dtype=np.int64)
    right = np.full(n, -1, dtype=np.int64)
    number_samples = np.zeros(n, dtype=np.float64)
    leaves: list[list[float] | None] = [None] * n
    given_max_feature = -1
    nodes = [p.as_object(raw, "tree_node") for raw in raw_nodes]
    problems: list[str | None] = []
    for i, node in enumerate(nodes):  # the parser reads every node before the tree is built
        p.reject_unknown(node, "tree_node", _NODE_FIELDS)
        index = 0 if node.get("node_index") is None else p.to_int(node["node_index"], "tree_node", "node_index")
        lc, rc = node.get("left_child"), node.get("right_child")
        left[i] = -1 if lc is None else p.to_int(lc, "tree_node", "left_child")
        right[i] = -1 if rc is None else p.to_int(rc, "tree_node", "right_child")
        sf = node.get("split_feature")
        split_feature[i] = -1 if sf is None else p.to_int(sf, "tree_node", "split_feature")
        given_max_feature = max(given_max_feature, int(split_feature[i]))
        decision[i] = DECISION_TYPES.index(
            _enum(node.get("decision_type", "lte"), "tree_node", "decision_type", DECISION_TYPES)
        )
        default_left[i] = p.to_bool(node.get("default_left", False), "tree_node", "default_left")
        ns = node.get("number_samples")
        number_samples[i] = 0 if ns is None else p.to_int(ns, "tree_node", "number_samples")
        if node.get("split_gain") is not None:
            p.to_float(node["split_gain"], "tree_node", "split_gain")
        if node.get("threshold") is not None:
            threshold[i] = p.to_float(node["threshold"], "tree_node", "threshold")
        lv = node.get("leaf_value")
        if lv is not None and not (isinstance(lv, list) and any(v is None for v in lv)):
            leaves[i] = p.float_list(lv, "tree_node", "leaf_value")
        problems.append(_node_problem(node, index, int(left[i]), int(right[i]), int(number_samples[i])))
        if lc is not None and sf is None:
            split_feature[i] = 0  # evaluation reads feature 0; Tree.validate() keeps -1 (given_max_feature)
    first = next((problem for problem in problems if problem is not None), None)
    if first is not None:
        raise _illegal(first)
    for i in range(n):
        if left[i] >= 0:
            leaves[i] = None  # an inner node's leaf_value is never read
        else:
            threshold[i] = np.nan
    k = max((len(v) for v in leaves if v is not None), default=1)
    leaf_values = np.full((n, k), np.nan)
    for i, v in enumerate(leaves):
        if v is not None:
            leaf_values[i, : len(v)] = v
    tree = TreeDef(
        feature_names,
        target_type,
        labels,
        split_feature,
        threshold,
        decision,
        default_left,
        left,
        right,
        leaf_values,
        number_samples,
        raw=body,
        given_max_feature=given_max_feature,
    )
    tree._leaf_lengths = [len(v) if v is not None else 0 for v in leaves]  # type: ignore[attr-defined]
    return tree


def _parse_aggregator(value: Any) -> AggregatorDef:
    if not isinstance(value, dict) or len(value) != 1:
        raise p.bad_request("[aggregate_output] must have exactly one aggregator defined.")
    ((name, inner),) = value.items()
    if name not in AGGREGATORS:
        raise ApiError(
            "x_content_parse_exception",
            f"[ensemble] failed to parse field [aggregate_output]: unknown aggregator [{name}]; expected one of {list(AGGREGATORS)}",
            400,
        )
    inner = p.as_object(inner or {}, name)
    allowed = {"weights", "num_classes"} if name == "weighted_mode" else {"weights"}
    p.reject_unknown(inner, name, allowed)
    weights = inner.get("weights")
    w = None if weights is None else np.asarray(p.float_list(weights, name, "weights"), dtype=np.float64)
    num_classes = None
    if name == "weighted_mode":
        if inner.get("num_classes") is None:
            raise ApiError("x_content_parse_exception", "[weighted_mode] required field [num_classes] is missing", 400)
        num_classes = p.to_int(inner["num_classes"], name, "num_classes")
        if num_classes <= 1:
            raise p.bad_request("[num_classes] must be greater than 1")
    return AggregatorDef(name, w, num_classes)


def _parse_ensemble(obj: Any) -> EnsembleDef:
    body = p.as_object(obj, "ensemble")
    p.reject_unknown(body, "ensemble", _ENSEMBLE_FIELDS)
    feature_names = p.str_list(body.get("feature_names", []), "ensemble", "feature_names")
    target_type = _enum(body.get("target_type", "regression"), "ensemble", "target_type", TARGET_TYPES)
    labels = body.get("classification_labels")
    labels = None if labels is None else p.str_list(labels, "ensemble", "classification_labels")
    cw = body.get("classification_weights")
    weights = None if cw is None else np.asarray(p.float_list(cw, "ensemble", "classification_weights"))
    raw_models = body.get("trained_models")
    named = [] if raw_models is None else p.named_object_array(raw_models, "ensemble", "trained_models")
    models = [parse_model({n: v}, "trained_models") for n, v in named]
    agg = (
        _parse_aggregator(body["aggregate_output"])
        if body.get("aggregate_output") is not None
        else AggregatorDef("weighted_sum", None)
    )
    if raw_models is None:  # the Ensemble constructor's requireNonNull
        raise _illegal("[trained_models] must not be null.")
    return EnsembleDef(feature_names, models, agg, target_type, labels, weights)


# -- validation (Tree.validate / Ensemble.validate) -----------------------------------------


def model_validate(model: ModelDef) -> None:
    if isinstance(model, TreeDef):
        _validate_tree(model)
    else:
        _validate_ensemble(model)


def _validate_tree(t: TreeDef) -> None:
    max_feature = t.given_max_feature  # Tree.validate()'s maxFeatureIndex
    if max_feature >= len(t.feature_names):
        raise p.bad_request(f"feature index [{max_feature}] is out of bounds for the [feature_names] array")
    if t.num_nodes > 1 and not t.feature_names:
        raise p.bad_request(
            f"[feature_names] is empty and the tree has > 1 nodes; num nodes [{t.num_nodes}]. "
            "The model Must have features if tree is not a stump"
        )
    lengths = [x for x in getattr(t, "_leaf_lengths", []) if x]
    if t.classification_labels is not None and t.target_type != "classification":
        raise p.bad_request("[target_type] should be [classification] if [classification_labels] are provided")
    if t.target_type != "classification" and any(x > 1 for x in lengths):
        raise p.bad_request("[target_type] should be [classification] if leaf nodes have multiple values")
    n = t.num_nodes
    missing = [int(c) for i in range(n) for c in (t.left[i], t.right[i]) if c >= n]
    if missing:
        raise p.bad_request(f"[tree] contains missing nodes [{', '.join(map(str, missing))}]")
    visited: set[int] = set()
    queue = deque([0])
    while queue:
        i = queue.popleft()
        if i in visited:
            raise p.bad_request(f"[tree] contains cycle at node {i}")
        visited.add(i)
        for c in (t.left[i], t.right[i]):
            if c >= 0:
                queue.append(int(c))
    if len(set(lengths)) > 1:
        raise p.bad_request("[tree.tree_structure] all leaf nodes must have the same number of values")
    inner_without_right = [i for i in range(n) if t.left[i] >= 0 and t.right[i] < 0]
    if inner_without_right:
        raise p.bad_request(f"[tree] contains missing nodes [{inner_without_right[0]}]")


def _validate_ensemble(e: EnsembleDef) -> None:
    if not e.models:
        raise p.bad_request("[trained_models] must not be empty")
    if not e.aggregator.compatible_with(e.target_type):
        # ES formats the two values in this order
        raise p.bad_request(
            f"aggregate_output [{e.target_type}] is not compatible with target_type [{e.aggregator.name}]"
        )
    if e.aggregator.weights is not None and len(e.aggregator.weights) != len(e.models):
        raise p.bad_request(
            f"[aggregate_output] expects value array of size [{len(e.aggregator.weights)}] "
            f"but number of models is [{len(e.models)}]"
        )
    if (
        e.classification_labels is not None or e.classification_weights is not None
    ) and e.target_type != "classification":
        raise p.bad_request(
            "[target_type] should be [classification] if [classification_labels] or [classification_weights] are provided"
        )
    if (
        e.classification_weights is not None
        and e.classification_labels is not None
        and len(e.classification_weights) != len(e.classification_labels)
    ):
        raise p.bad_request(
            "[classification_weights] and [classification_labels] should be the same length if both are provided"
        )
    for m in e.models:
        model_validate(m)
