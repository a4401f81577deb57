"""``_infer`` results shaped as Elasticsearch shapes them."""

from __future__ import annotations

import math

import pytest

from helpers import churn_model, error_of, stump_regression

SIG = 1.0 / (1.0 + math.exp(-0.4))


def test_classification_default_and_top_classes(engine):
    engine.request("PUT", "_ml/trained_models/churn-gbt", churn_model())
    r = engine.request("POST", "_ml/trained_models/churn-gbt/_infer", {"docs": [{"tenure": 3, "plan": "pro"}, {"other": 1}]})
    assert r.status == 200
    first, second = r.body["inference_results"]
    assert first["predicted_value"] == "churn"
    assert first["prediction_probability"] == pytest.approx(SIG)
    assert first["prediction_score"] == pytest.approx(SIG)
    assert "top_classes" not in first
    assert second == {"warning": "Model [churn-gbt] could not be inferred as all fields were missing"}
    r = engine.request(
        "POST", "_ml/trained_models/churn-gbt/_infer",
        {"docs": [{"tenure": 3, "plan": "pro"}],
         "inference_config": {"classification": {"num_top_classes": -1, "results_field": "label",
                                                  "top_classes_results_field": "tops"}}},
    )
    doc = r.body["inference_results"][0]
    assert list(doc) == ["label", "tops", "prediction_probability", "prediction_score"]
    assert [t["class_name"] for t in doc["tops"]] == ["churn", "stay"]
    assert doc["tops"][1]["class_probability"] == pytest.approx(1 - SIG)
    assert list(doc["tops"][0]) == ["class_name", "class_probability", "class_score"]


def test_7x_path_and_prediction_field_types(engine):
    body = churn_model()
    body["definition"]["trained_model"]["ensemble"]["classification_labels"] = ["0", "1"]
    engine.request("PUT", "_ml/trained_models/c", body)
    for ftype, expected in [("string", "1"), ("number", 1), ("boolean", True)]:
        r = engine.request("POST", "_ml/inference/c/_infer", {
            "docs": [{"tenure": 1}], "inference_config": {"classification": {"prediction_field_type": ftype}}})
        assert r.status == 200, r.body
        assert r.body["inference_results"][0]["predicted_value"] == expected


def test_classification_weights_change_the_winner(engine):
    body = churn_model()
    body["definition"]["trained_model"]["ensemble"]["classification_weights"] = [1.0, 0.5]
    engine.request("PUT", "_ml/trained_models/w", body)
    # tenure 20 -> leaf -0.6; tenure 3 -> leaf 0.4 with p(churn)=0.5987, score 0.2994 < 0.4013
    doc = engine.infer("w", [{"tenure": 3}], {"classification": {"num_top_classes": 2}})[0]
    assert doc["predicted_value"] == "stay"
    assert doc["prediction_probability"] == pytest.approx(1 - SIG)
    assert doc["top_classes"][1]["class_score"] == pytest.approx(SIG * 0.5)


def test_regression_results_field_and_missing_values(engine):
    engine.request("PUT", "_ml/trained_models/r", stump_regression())
    docs = [{"x": 0.2}, {"x": "0.7"}, {"x": None, "y": 1}, {"x": "abc"}, {"x": True}, {"x": [1]}]
    res = engine.infer("r", docs, {"regression": {"results_field": "score"}})
    assert res[0] == {"score": 1.0}
    assert res[1] == {"score": 2.0}
    # x missing/unparseable -> default_left false -> right leaf; a doc without the field only warns
    assert res[2] == {"warning": "Model [r] could not be inferred as all fields were missing"}
    assert res[3] == {"score": 2.0} and res[4] == {"score": 2.0} and res[5] == {"score": 2.0}


def test_infer_errors(engine):
    engine.request("PUT", "_ml/trained_models/r", stump_regression())
    assert engine.request("POST", "_ml/trained_models/nope/_infer", {"docs": [{}]}).status == 404
    r = engine.request("POST", "_ml/trained_models/r/_infer", {"docs": []})
    assert r.status == 400 and error_of(r)["type"] == "action_request_validation_exception"
    r = engine.request("POST", "_ml/trained_models/r/_infer", {"docs": [1, 2]})
    assert r.status == 400
    r = engine.request("POST", "_ml/trained_models/r/_infer", {"docs": [{"x": 1}], "inference_config": {"classification": {}}})
    assert r.status == 400 and "not supported by inference request of type [classification]" in error_of(r)["reason"]
    r = engine.request("POST", "_ml/trained_models/r/_infer", {"docs": [{"x": 1}], "inference_config": {"bogus": {}}})
    assert r.status == 400 and error_of(r)["type"] == "x_content_parse_exception"
    assert error_of(r)["reason"] == "[infer_trained_model_request] failed to parse field [inference_config]"
    assert error_of(r)["caused_by"] == {"type": "named_object_not_found_exception", "reason": "unknown field [bogus]"}
    r = engine.request("POST", "_ml/trained_models/r/_infer", {"docs": [{"x": 1}], "extra": 1})
    assert r.status == 400 and "unknown field [extra]" in error_of(r)["reason"]
    r = engine.request("POST", "_ml/trained_models/r/_infer")
    assert r.status == 400


def test_boolean_type_on_three_classes_is_an_error(engine):
    # a label that is neither a number nor true/false goes by the class index (PredictionFieldType.BOOLEAN)
    body = {
        "input": {"field_names": ["x"]},
        "inference_config": {"classification": {"prediction_field_type": "boolean"}},
        "definition": {"trained_model": {"tree": {
            "feature_names": ["x"], "target_type": "classification", "classification_labels": ["no", "yes", "maybe"],
            "tree_structure": [{"node_index": 0, "leaf_value": [0.0, 0.0, 5.0]}]}}},
    }
    engine.request("PUT", "_ml/trained_models/b", body)
    r = engine.request("POST", "_ml/trained_models/b/_infer", {"docs": [{"x": 1}]})
    assert r.status == 400
    assert error_of(r)["reason"] == "Cannot transform numbers other than 0.0 or 1.0 to boolean. Provided number [2.0]"


def test_worked_examples_from_the_spec(engine):
    def leaf_tree(v):
        tree = {"feature_names": [], "tree_structure": [{"node_index": 0, "leaf_value": v}]}
        if isinstance(v, list):
            tree["target_type"] = "classification"
        return {"tree": tree}

    def put(mid, agg, leaves, target="classification", extra=None):
        ens = {"feature_names": [], "target_type": target, "aggregate_output": agg,
               "trained_models": [leaf_tree(v) for v in leaves]}
        ens.update(extra or {})
        body = {"input": {"field_names": ["f"]}, "inference_config": {target: {}},
                "definition": {"trained_model": {"ensemble": ens}}}
        r = engine.request("PUT", f"_ml/trained_models/{mid}", body)
        assert r.status == 200, r.body

    put("mode", {"weighted_mode": {"num_classes": 3}}, [0.0, 0.0, 1.0])
    doc = engine.infer("mode", [{"f": 1}], {"classification": {"num_top_classes": -1}})[0]
    probs = {t["class_name"]: t["class_probability"] for t in doc["top_classes"]}
    assert probs == pytest.approx({"0": 0.7310585786300049, "1": 0.2689414213699951, "2": 0.0})
    put("multi", {"logistic_regression": {}}, [[0.3, -0.3, 0.5]])
    doc = engine.infer("multi", [{"f": 1}], {"classification": {"num_top_classes": -1}})[0]
    assert doc["predicted_value"] == "2"
    assert [t["class_probability"] for t in doc["top_classes"]] == pytest.approx([0.44091, 0.36098, 0.19811], abs=1e-5)
    put("exp", {"exponent": {}}, [0.5, 1.2], target="regression")
    assert engine.infer("exp", [{"f": 1}])[0]["predicted_value"] == pytest.approx(5.4739473917272)
    put("weighted", {"weighted_sum": {"weights": [0.5, 2.0]}}, [2.0, 3.0], target="regression")
    assert engine.infer("weighted", [{"f": 1}])[0]["predicted_value"] == pytest.approx(7.0)
    put("logreg-reg", {"logistic_regression": {}}, [0.3], target="regression")
    assert engine.infer("logreg-reg", [{"f": 1}])[0]["predicted_value"] == 1.0
