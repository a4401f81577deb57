"""Tree definition validation and class rendering as ES's ``TreeNode.Builder.validate()``, ``Tree.validate()``
and ``PredictionFieldType`` give them (TreeTests, TreeNode, InferenceHelpers)."""

from __future__ import annotations

import json

import pytest

from es_infer_nb import Engine
from es_infer_nb.errors import ApiError
from es_infer_nb.models.tree.definition import parse_definition


def _tree(nodes, feature_names=("f",), **extra):
    return {"trained_model": {"tree": {"feature_names": list(feature_names), "tree_structure": nodes, **extra}}}


def _reason(definition) -> str:
    with pytest.raises(ApiError) as err:
        parse_definition(definition)
    assert err.value.status == 400
    return err.value.reason


def test_an_empty_features_tree_with_inner_nodes_names_the_missing_features():
    """TreeTests.testTreeWithEmptyFeaturesAndThreeNodes: the inner node has no split_feature (-1 in
    ES), so the error is about the empty feature names, not an out-of-bounds feature."""
    nodes = [{"node_index": 0, "left_child": 1, "right_child": 2, "threshold": 0.4},
             {"node_index": 1, "leaf_value": 1.0}, {"node_index": 2, "leaf_value": 2.0}]
    assert _reason(_tree(nodes, feature_names=())) == (
        "[feature_names] is empty and the tree has > 1 nodes; num nodes [3]. "
        "The model Must have features if tree is not a stump")
    # a given split feature past the names is still out of bounds
    nodes[0]["split_feature"] = 1
    assert _reason(_tree(nodes)) == "feature index [1] is out of bounds for the [feature_names] array"


@pytest.mark.parametrize(("node", "reason"), [
    ({"node_index": -1, "leaf_value": 1.0}, "[node_index] must be a non-negative integer."),
    ({"node_index": 0, "left_child": -2, "right_child": 1, "threshold": 0.5, "split_feature": 0},
     "[left_child] must be a non-negative integer."),
    ({"node_index": 0, "left_child": 1, "right_child": -3, "threshold": 0.5, "split_feature": 0},
     "[right_child] must be a non-negative integer."),
    ({"node_index": 0, "leaf_value": [1.0, None]}, "[leaf_value] cannot have null values."),
    ({"node_index": 0, "left_child": 1, "right_child": 2, "split_feature": 0}, "[threshold] must exist for non-leaf node."),
])
def test_tree_node_validations_in_es_order(node, reason):
    nodes = [node, {"node_index": 1, "leaf_value": 1.0}, {"node_index": 2, "leaf_value": 2.0}]
    assert _reason(_tree(nodes)) == reason


def test_number_classes_of_an_unlabelled_model_are_longs():
    """No classification_labels: ES hands ``String.valueOf(index)`` to ``PredictionFieldType``, so
    ``number`` gives the long ``1`` (not ``1.0``) for predicted_value and every top class; string
    keeps ``"1"``, boolean ``true``."""
    engine = Engine()
    nodes = [{"node_index": 0, "split_feature": 0, "threshold": 0.5, "left_child": 1, "right_child": 2},
             {"node_index": 1, "leaf_value": [0.0, 1.0]}, {"node_index": 2, "leaf_value": [1.0, 0.0]}]
    body = {"input": {"field_names": ["f"]}, "inference_config": {"classification": {}},
            "definition": _tree(nodes, target_type="classification")}
    assert engine.request("PUT", "/_ml/trained_models/unlabelled", body).status == 200
    answers = {}
    for kind in ("number", "string", "boolean"):
        response = engine.request("POST", "/_ml/trained_models/unlabelled/_infer", {
            "docs": [{"f": 0.1}], "inference_config": {"classification": {"prediction_field_type": kind,
                                                                          "num_top_classes": 2}}})
        assert response.status == 200, response.body
        answers[kind] = response.body["inference_results"][0]
    assert json.dumps(answers["number"]["predicted_value"]) == "1"
    assert [json.dumps(c["class_name"]) for c in answers["number"]["top_classes"]] == ["1", "0"]
    assert answers["string"]["predicted_value"] == "1"
    assert answers["boolean"]["predicted_value"] is True
