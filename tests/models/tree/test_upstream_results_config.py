"""Tree results and inference config updates as the newest upstream classes give them:
``PredictionFieldType`` (label-aware ``boolean``), ``InferenceConfigUpdate.checkFieldUniqueness`` and
the order ES lists feature importances in (a Java ``HashMap`` of the feature names)."""

from __future__ import annotations

import math

import pytest

from es_infer_nb import Engine
from es_infer_nb.errors import ApiError
from es_infer_nb.models.inference_config import ClassificationConfig, RegressionConfig, apply_update
from es_infer_nb.models.results import top_feature_importance, transform_label
from es_infer_nb.models.java_hash import hashmap_order as java_hashmap_order
from es_infer_nb.models.java_hash import string_hash as java_string_hash
from es_infer_nb.models.tree.definition import parse_definition


# -- PredictionFieldType -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("index", "label", "expected"),
    [
        (1.0, None, True),
        (1.0, "not_boolean", True),
        (0.0, None, False),
        (0.0, "not_boolean", False),
        (0.0, "1", True),
        (0.0, "0", False),
        (0.0, "TruE", True),
        (0.0, "fAlsE", False),
        (1.0, "0", False),
        (1.0, "1", True),
        (1.0, "TruE", True),
        (1.0, "fAlse", False),
    ],
)
def test_boolean_goes_by_a_numeric_or_true_false_label(index, label, expected):
    # PredictionFieldTypeTests#testTransformPredictedValueBoolean
    assert transform_label(label, index, "boolean") is expected


@pytest.mark.parametrize(("index", "label"), [(0.1, None), (1.1, "not_boolean"), (2.0, "maybe")])
def test_boolean_of_another_index_without_a_usable_label_is_an_error(index, label):
    # PredictionFieldTypeTests#testTransformPredictedValueBoolean (expectThrows IllegalArgumentException)
    with pytest.raises(ApiError) as err:
        transform_label(label, index, "boolean")
    assert err.value.type == "illegal_argument_exception"
    assert err.value.reason == f"Cannot transform numbers other than 0.0 or 1.0 to boolean. Provided number [{index}]"


def test_boolean_of_a_numeric_label_other_than_one_is_false():
    # PredictionFieldType.BOOLEAN: Integer.parseInt(label) == 1, so class "2" (no labels) is false
    assert transform_label("2", 2.0, "boolean") is False


def test_number_and_string_labels():
    # PredictionFieldTypeTests#testTransformPredictedValueNumber / #testTransformPredictedValueString
    assert transform_label("foo", 1.0, "number") == 1.0
    assert transform_label(None, 1.0, "number") == 1.0
    assert transform_label("", 1.0, "number") == 1.0
    assert transform_label("-9223372036854775808", 1.0, "number") == -9223372036854775808
    assert transform_label("foo", 1.0, "string") == "foo"
    assert transform_label(None, 1.0, "string") == "1.0"


def _three_class_model(labels=None):
    tree = {
        "feature_names": ["x"],
        "target_type": "classification",
        "tree_structure": [{"node_index": 0, "leaf_value": [0.0, 0.0, 5.0]}],
    }
    if labels is not None:
        tree["classification_labels"] = labels
    return {
        "input": {"field_names": ["x"]},
        "inference_config": {"classification": {"prediction_field_type": "boolean", "num_top_classes": -1}},
        "definition": {"trained_model": {"tree": tree}},
    }


def test_infer_boolean_of_unlabelled_third_class_is_false():
    # no labels: InferenceHelpers.topClasses names class i String.valueOf(i); BOOLEAN parses it as an int
    engine = Engine()
    assert engine.request("PUT", "_ml/trained_models/tri", _three_class_model()).status == 200
    r = engine.request("POST", "_ml/trained_models/tri/_infer", {"docs": [{"x": 1}]})
    assert r.status == 200
    result = r.body["inference_results"][0]
    assert result["predicted_value"] is False
    assert [c["class_name"] for c in result["top_classes"]] == [False, False, True]


def test_infer_boolean_of_true_false_labels():
    # PredictionFieldType.BOOLEAN: a label starting with t/f is Boolean.parseBoolean of it
    engine = Engine()
    model = _three_class_model(["false", "TRUE", "true"])
    assert engine.request("PUT", "_ml/trained_models/tf", model).status == 200
    result = engine.request("POST", "_ml/trained_models/tf/_infer", {"docs": [{"x": 1}]}).body["inference_results"][0]
    assert result["predicted_value"] is True
    assert [c["class_name"] for c in result["top_classes"]] == [True, False, True]


# -- InferenceConfigUpdate.checkFieldUniqueness ----------------------------------------------------


@pytest.mark.parametrize(
    ("config", "update", "duplicate"),
    [
        (
            RegressionConfig(),
            {"regression": {"results_field": "warning"}},
            "warning",
        ),  # testInvalidResultFieldNotUnique
        (RegressionConfig(), {"regression": {"results_field": "model_id"}}, "model_id"),
        (
            ClassificationConfig(),
            {"classification": {"results_field": "foo", "top_classes_results_field": "foo", "num_top_classes": 5}},
            "foo",
        ),  # testDuplicateFieldNamesThrow
        (ClassificationConfig(), {"classification": {"top_classes_results_field": "warning"}}, "warning"),
    ],
)
def test_update_field_names_must_be_unique(config, update, duplicate):
    # RegressionConfigUpdateTests#testInvalidResultFieldNotUnique, ClassificationConfigUpdateTests#testDuplicateFieldNamesThrow
    with pytest.raises(ApiError) as err:
        apply_update("m", config, update)
    assert (err.value.type, err.value.status) == ("status_exception", 400)
    assert err.value.reason == f"Invalid inference config. More than one field is configured as [{duplicate}]"


def test_update_of_other_fields_applies():
    # ClassificationConfigUpdateTests#testApply
    merged = apply_update(
        "m",
        ClassificationConfig(),
        {
            "classification": {
                "num_top_classes": 5,
                "num_top_feature_importance_values": 1,
                "prediction_field_type": "boolean",
                "results_field": "foo",
                "top_classes_results_field": "bar",
            }
        },
    )
    assert merged == ClassificationConfig("foo", 5, "bar", 1, "boolean")


def test_infer_with_a_reserved_results_field_is_a_status_exception():
    engine = Engine()
    body = {
        "input": {"field_names": ["x"]},
        "inference_config": {"regression": {}},
        "definition": {
            "trained_model": {
                "tree": {"feature_names": ["x"], "tree_structure": [{"node_index": 0, "leaf_value": 1.0}]}
            }
        },
    }
    assert engine.request("PUT", "_ml/trained_models/r", body).status == 200
    r = engine.request(
        "POST",
        "_ml/trained_models/r/_infer",
        {"docs": [{"x": 1}], "inference_config": {"regression": {"results_field": "warning"}}},
    )
    assert r.status == 400
    assert r.body["error"]["type"] == "status_exception"
    assert r.body["error"]["reason"] == "Invalid inference config. More than one field is configured as [warning]"


# -- feature importance order -----------------------------------------------------------------------


def test_java_string_hash_and_hashmap_order():
    assert java_string_hash("foo") == 101574
    assert java_string_hash("hello") == 99162322
    assert java_string_hash("\u00e9t\u00e9") == 227742  # UTF-16 code units: 233*961 + 116*31 + 233
    # HashMap<String, ?> of default capacity 16: "bar" lands in bucket 2, "foo" in bucket 7
    assert java_hashmap_order(["foo", "bar"]) == ["bar", "foo"]
    assert java_hashmap_order(["col1", "col2", "col3", "col4"]) == ["col4", "col2", "col3", "col1"]


def test_importance_names_are_the_sub_model_features_in_hashmap_order():
    # EnsembleInferenceModel: featureNames are the sub-models' features (not the ensemble's own
    # feature_names), collected by Collectors.toMap into a HashMap
    tree = {"tree": {"feature_names": ["foo", "bar"], "tree_structure": [{"node_index": 0, "leaf_value": 1.0}]}}
    definition = parse_definition(
        {"trained_model": {"ensemble": {"feature_names": ["foo", "bar", "unused"], "trained_models": [tree]}}}
    )
    assert definition.importance_report_names() == ["foo", "bar"]  # the importance matrix's columns
    assert definition.importance_tie_order() == ["bar", "foo"]  # the order ES lists equal importances in


def test_equal_importances_keep_the_hashmap_order_in_infer():
    # InferenceResults.takeTopFeatureImportances sorts a HashMap-ordered list by |importance| (stably):
    # features off the document's path tie at 0.0 and come in HashMap order
    engine = Engine()
    nodes = [
        {
            "node_index": 0,
            "split_feature": 0,
            "threshold": 0.5,
            "left_child": 1,
            "right_child": 2,
            "number_samples": 10,
        },
        {"node_index": 1, "leaf_value": 1.0, "number_samples": 5},
        {"node_index": 2, "leaf_value": 3.0, "number_samples": 5},
    ]
    names = ["col1", "col2", "col3", "col4"]
    body = {
        "input": {"field_names": names},
        "inference_config": {"regression": {}},
        "definition": {"trained_model": {"tree": {"feature_names": names, "tree_structure": nodes}}},
    }
    assert engine.request("PUT", "_ml/trained_models/fi", body).status == 200
    r = engine.request(
        "POST",
        "_ml/trained_models/fi/_infer",
        {
            "docs": [{"col1": 0.0, "col2": 1, "col3": 1, "col4": 1}],
            "inference_config": {"regression": {"num_top_feature_importance_values": 4}},
        },
    )
    importance = r.body["inference_results"][0]["feature_importance"]
    assert importance == [
        {"feature_name": "col1", "importance": -1.0},
        {"feature_name": "col4", "importance": 0.0},
        {"feature_name": "col2", "importance": 0.0},
        {"feature_name": "col3", "importance": 0.0},
    ]


def test_nan_importance_sorts_first():
    # Double.compare holds NaN above every number, so takeTopFeatureImportances puts it first
    items = [{"feature_name": "a", "importance": 2.0}, {"feature_name": "b", "importance": math.nan}]
    assert [i["feature_name"] for i in top_feature_importance(items, 2)] == ["b", "a"]
