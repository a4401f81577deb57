"""Tree / ensemble / definition / config parsing as the upstream builders and constructors check it
(``Tree.Builder.build()``, ``TreeNode.Builder.build()``, the ``Tree`` / ``Ensemble`` / ``TrainedModelDefinition``
constructors, ``TrainedModelConfig.Builder.setLazyDefinition``), read through ``PUT _ml/trained_models``."""

from __future__ import annotations

from typing import Any

import pytest

from es_infer_nb import Engine

LEAF = {"node_index": 0, "leaf_value": 1.0}
SPLIT = {"node_index": 0, "left_child": 1, "split_feature": 1, "threshold": 0.5}


def _put(definition: dict[str, Any], engine: Engine | None = None, **extra: Any) -> Any:
    body = {
        "input": {"field_names": ["foo", "bar"]},
        "inference_config": {"regression": {}},
        "definition": definition,
        **extra,
    }
    return (engine or Engine()).request("PUT", "_ml/trained_models/m", body)


def _error(definition: dict[str, Any], **extra: Any) -> tuple[int, str, str]:
    resp = _put(definition, **extra)
    err = resp.body["error"]
    return resp.status, err["type"], err["reason"]


def _tree(**tree: Any) -> dict[str, Any]:
    return {"trained_model": {"tree": tree}}


@pytest.mark.parametrize("nodes", [[None], [SPLIT, None]])
def test_null_nodes(nodes):
    # TreeTests#testTreeWithNullRoot / #testTreeWithNullNode: a JSON null in tree_structure is a null node
    assert _error(_tree(feature_names=["foo", "bar"], tree_structure=nodes)) == (
        400,
        "status_exception",
        "[tree] cannot contain null nodes",
    )


def test_empty_tree_structure_is_the_constructors_illegal_argument():
    # Tree(...): IllegalArgumentException "[tree_structure] must not be empty"
    assert _error(_tree(feature_names=["foo"], tree_structure=[])) == (
        400,
        "illegal_argument_exception",
        "[tree_structure] must not be empty",
    )


def test_missing_feature_names_is_the_constructors_require_non_null():
    # Tree(...): ExceptionsHelper.requireNonNull(featureNames, FEATURE_NAMES)
    assert _error(_tree(tree_structure=[LEAF])) == (
        400,
        "illegal_argument_exception",
        "[feature_names] must not be null.",
    )


def test_missing_tree_structure_is_the_builders_zero_leaf():
    # Tree.Builder() allocates the root as a 0.0 leaf; without tree_structure that stump is the tree
    engine = Engine()
    assert _put(_tree(feature_names=["foo"]), engine).status == 200
    resp = engine.request("POST", "_ml/trained_models/m/_infer", {"docs": [{"foo": 1.0}]})
    assert resp.body["inference_results"] == [{"predicted_value": 0.0}]


def test_node_validation_is_an_illegal_argument_after_every_node_is_read():
    # TreeNode.Builder.validate() throws IllegalArgumentException, when Tree.Builder.build() builds the nodes
    nodes = [
        {"node_index": 0, "left_child": 1, "right_child": 2, "split_feature": 0},
        {"node_index": 1, "leaf_value": 1.0, "number_samples": -1},
        {"node_index": 2, "leaf_value": 2.0},
    ]
    assert _error(_tree(feature_names=["foo"], tree_structure=nodes)) == (
        400,
        "illegal_argument_exception",
        "[threshold] must exist for non-leaf node.",
    )
    nodes[0]["threshold"] = 0.5
    assert _error(_tree(feature_names=["foo"], tree_structure=nodes)) == (
        400,
        "illegal_argument_exception",
        "[number_samples] must be greater than or equal to 0",
    )
    # a type error of a later node is a parse error: it comes first
    nodes[2]["threshold"] = "x"
    assert _error(_tree(feature_names=["foo"], tree_structure=nodes))[1] == "x_content_parse_exception"


def test_missing_leaf_value_before_negative_number_samples():
    # TreeNode.Builder.build(): validate() first, the constructor's number_samples check after
    node = {"node_index": 0, "number_samples": -1}
    assert _error(_tree(feature_names=["foo"], tree_structure=[node]))[2] == "[leaf_value] is required for a leaf node."


def test_node_index_defaults_to_zero():
    # TreeNode's parser declares node_index optional (the parser's Builder starts at 0)
    assert _put(_tree(feature_names=["foo"], tree_structure=[{"leaf_value": 3.0}])).status == 200


def test_enum_errors_name_the_java_constant():
    # TargetType.fromString / Operator.fromString: valueOf(name.trim().toUpperCase(Locale.ROOT))
    resp = _put(_tree(feature_names=["foo"], tree_structure=[LEAF], target_type="foo"))
    assert resp.body["error"]["caused_by"]["reason"] == (
        "No enum constant org.elasticsearch.xpack.core.ml.inference.trainedmodel.TargetType.FOO"
    )
    node = {**SPLIT, "right_child": 2, "split_feature": 0, "decision_type": "xx"}
    resp = _put(_tree(feature_names=["foo"], tree_structure=[node, LEAF, LEAF]))
    assert resp.body["error"]["caused_by"]["reason"] == (
        "No enum constant org.elasticsearch.xpack.core.ml.job.config.Operator.XX"
    )
    assert _put(_tree(feature_names=["foo"], tree_structure=[LEAF], target_type=" Regression ")).status == 200


def test_ensemble_without_trained_models():
    # Ensemble(...): ExceptionsHelper.requireNonNull(models, TRAINED_MODELS)
    assert _error({"trained_model": {"ensemble": {"feature_names": ["foo"]}}}) == (
        400,
        "illegal_argument_exception",
        "[trained_models] must not be null.",
    )


def test_definition_without_trained_model():
    # TrainedModelDefinition(...): ExceptionsHelper.requireNonNull(trainedModel, TRAINED_MODEL)
    assert _error({"preprocessors": []}) == (400, "illegal_argument_exception", "[trained_model] must not be null.")


def test_both_definition_and_compressed_definition():
    # TrainedModelConfigTests#testParseWithBothDefinitionAndCompressedSupplied (the cause's message)
    status, kind, reason = _error(_tree(feature_names=["foo"], tree_structure=[LEAF]), compressed_definition="H4sI")
    assert (status, kind, reason) == (
        400,
        "illegal_argument_exception",
        "both [compressed_definition] and [definition] cannot be set.",
    )


def test_tree_and_ensemble_schema_deserialization():
    # TrainedModelDefinitionTests#testTreeSchemaDeserialization / #testEnsembleSchemaDeserialization
    def tree(features: list[str]) -> dict[str, Any]:
        nodes = [
            {
                "node_index": 0,
                "split_feature": 0,
                "split_gain": 12.0,
                "threshold": 10.0,
                "decision_type": "lte",
                "default_left": True,
                "left_child": 1,
                "right_child": 2,
            },
            {"node_index": 1, "leaf_value": 1},
            {"node_index": 2, "leaf_value": 2},
        ]
        return {"tree": {"feature_names": features, "tree_structure": nodes, "target_type": "regression"}}

    pre = [
        {"one_hot_encoding": {"field": "col1", "hot_map": {"male": "col1_male", "female": "col1_female"}}},
        {
            "target_mean_encoding": {
                "field": "col2",
                "feature_name": "col2_encoded",
                "target_map": {"S": 5.0, "M": 10.0, "L": 20},
                "default_value": 5.0,
            }
        },
        {
            "frequency_encoding": {
                "field": "col3",
                "feature_name": "col3_encoded",
                "frequency_map": {"none": 0.75, "true": 0.10, "false": 0.15},
            }
        },
    ]
    ensemble = {
        "ensemble": {
            "feature_names": ["col1_male", "col1_female", "col2_encoded", "col3_encoded", "col4"],
            "aggregate_output": {"weighted_sum": {"weights": [0.5, 0.5]}},
            "target_type": "regression",
            "trained_models": [
                tree(["col1_male", "col1_female", "col4"]),
                tree(["col2_encoded", "col3_encoded", "col4"]),
            ],
        }
    }
    for model in (tree(["col1_male", "col1_female", "col4"]), ensemble):
        assert _put({"preprocessors": pre, "trained_model": model}).status == 200
