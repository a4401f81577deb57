"""Seed 000 (a guide to ES ML inference, in Chinese): every ``json`` / ``bash`` block, as written.

The blocks are read from the seed text itself (``data/``), so they are the seed's own. The guide mixes
real Elasticsearch requests with settings Elasticsearch does not have; each block is sent through
``Engine.request`` and either works, with an answer of ES's shape, or gets the error Elasticsearch
gives for it:

* ``PUT _ml/trained_models/my_model`` — ``classification`` has no ``num_classes``: ES's strict parser
  rejects it. The requests that follow need a ``my_model``; the test creates one with the seed's
  inputs (``field1``, ``field2``), two classes and ``num_top_classes: 2``: a tree ensemble (a pytorch
  model cannot be classification, and eland-style NLP models read one text field).
* the ``preprocessors`` block — ``one_hot_encoding`` is ES's; ``normalization`` is not a preprocessor.
* the batch ``_infer`` — ``inference_config`` takes an inference type, not ``batch_size``.
* the "optimisation", "error handling" and "alerts" blocks are not request bodies of any ES API; each
  is sent where it would go (deployment start, a pipeline processor, ``_infer``) and gets ES's error.
* ``PUT .../_update`` and ``POST .../_stop`` are not ES routes (``.../deployment/_update`` and
  ``.../deployment/_stop`` are): ES's "no handler found".
"""

from __future__ import annotations

from typing import Any, Iterator

import pytest

from es_infer_nb import Engine
from seed_examples import console, error, fenced_blocks, ok, replace_all, seed_text, send

SEED = seed_text("000_5e2884b01b02cd57.txt")
NAMES = ("docs_format", "preprocessors", "put_model", "model_stats", "infer_one", "infer_batch", "optimisation",
         "text_classification", "anomaly_detection", "forecast", "error_handling", "alerts", "maintenance")
BLOCK = dict(zip(NAMES, fenced_blocks(SEED, "json", "bash")))


def test_every_block_is_covered():
    blocks = fenced_blocks(SEED, "json", "bash")
    assert len(blocks) == len(NAMES)
    assert BLOCK["put_model"].startswith("PUT _ml/trained_models/my_model\n")
    assert BLOCK["maintenance"].startswith("# 更新模型\nPUT _ml/trained_models/my_model/_update")
    assert '"alerts"' in BLOCK["alerts"] and '"error_handling"' in BLOCK["error_handling"]


# -- models the examples need -----------------------------------------------------------------------

def tree(feature: int, threshold: float, left: float, right: float) -> dict[str, Any]:
    return {"tree": {"feature_names": ["field1", "field2_value1", "field2_value2"], "target_type": "regression",
                     "tree_structure": [
                         {"node_index": 0, "split_feature": feature, "threshold": threshold, "decision_type": "lte",
                          "default_left": True, "left_child": 1, "right_child": 2},
                         {"node_index": 1, "leaf_value": left}, {"node_index": 2, "leaf_value": right}]}}


MY_MODEL = {
    "input": {"field_names": ["field1", "field2"]},
    "description": "My deployed model",
    "inference_config": {"classification": {"num_top_classes": 2}},
    "definition": {
        "preprocessors": [{"one_hot_encoding": {"field": "field2", "hot_map": {
            "value1": "field2_value1", "value2": "field2_value2"}}}],
        "trained_model": {"ensemble": {
            "feature_names": ["field1", "field2_value1", "field2_value2"],
            "target_type": "classification", "classification_labels": ["negative", "positive"],
            "aggregate_output": {"logistic_regression": {}},
            "trained_models": [tree(0, 1.5, -1.0, 1.0), tree(2, 0.5, -0.5, 0.5)]}},
    },
}


def regression(field: str) -> dict[str, Any]:
    return {"input": {"field_names": [field]}, "inference_config": {"regression": {}},
            "definition": {"trained_model": {"tree": {"feature_names": [field], "tree_structure": [
                {"node_index": 0, "split_feature": 0, "threshold": 50.0, "decision_type": "lte",
                 "left_child": 1, "right_child": 2},
                {"node_index": 1, "leaf_value": 0.1}, {"node_index": 2, "leaf_value": 0.9}]}}}}


@pytest.fixture
def my_model(engine: Engine) -> Engine:
    ok(engine, "PUT", "_ml/trained_models/my_model", MY_MODEL)
    return engine


def classification_result(result: dict[str, Any]) -> str:
    """An ES classification result with two top classes; its predicted class."""
    assert set(result) == {"predicted_value", "top_classes", "prediction_probability", "prediction_score"}
    assert [set(c) for c in result["top_classes"]] == [{"class_name", "class_probability", "class_score"}] * 2
    assert {c["class_name"] for c in result["top_classes"]} == {"negative", "positive"}
    assert result["predicted_value"] == result["top_classes"][0]["class_name"]
    assert result["prediction_probability"] == result["top_classes"][0]["class_probability"]
    assert abs(sum(c["class_probability"] for c in result["top_classes"]) - 1.0) < 1e-9
    return result["predicted_value"]


# -- 准备数据 ----------------------------------------------------------------------------------------

def test_docs_format_is_an_infer_body(my_model):
    (req,) = console("POST _ml/trained_models/my_model/_infer\n" + BLOCK["docs_format"])
    (result,) = ok(my_model, req.method, req.path, req.body)["inference_results"]
    assert classification_result(result) in ("negative", "positive")


def test_preprocessors_block_normalization_is_not_an_es_preprocessor(engine):
    body = {**MY_MODEL, "definition": {**MY_MODEL["definition"], **console("POST x\n" + BLOCK["preprocessors"])[0].body}}
    err = error(engine.request("PUT", "_ml/trained_models/my_model", body), 400, "x_content_parse_exception",
                "[trained_model_definition] failed to parse field [preprocessors]")
    assert err["caused_by"] == {"type": "named_object_not_found_exception", "reason": "unknown field [normalization]"}
    assert err["root_cause"] == [err["caused_by"]]


def test_preprocessors_block_one_hot_encoding_works(engine):
    (one_hot, _normalization) = console("POST x\n" + BLOCK["preprocessors"])[0].body["preprocessors"]
    assert one_hot == {"one_hot_encoding": {"field": "category", "hot_map": {"type_a": "1", "type_b": "2"}}}
    model = regression("2")
    model["input"] = {"field_names": ["category"]}
    model["definition"]["preprocessors"] = [one_hot]
    model["definition"]["trained_model"]["tree"]["tree_structure"][0]["threshold"] = 0.5
    ok(engine, "PUT", "_ml/trained_models/by_category", model)
    answer = ok(engine, "POST", "_ml/trained_models/by_category/_infer",
                {"docs": [{"category": "type_a"}, {"category": "type_b"}]})
    assert answer == {"inference_results": [{"predicted_value": 0.1}, {"predicted_value": 0.9}]}


# -- 模型管理 ----------------------------------------------------------------------------------------

def test_put_model_as_written_num_classes_is_unknown(engine):
    (req,) = console(BLOCK["put_model"])
    assert (req.method, req.path, req.body["model_type"]) == ("PUT", "_ml/trained_models/my_model", "pytorch")
    error(send(engine, req), 400, "x_content_parse_exception", "[classification] unknown field [num_classes]")
    error(engine.request("GET", "_ml/trained_models/my_model"), 404, "resource_not_found_exception",
          "Could not find trained model [my_model]")


def test_model_stats(my_model):
    (req,) = console(BLOCK["model_stats"])
    ok(my_model, "POST", "_ml/trained_models/my_model/_infer", {"docs": [{"field1": 1.0, "field2": "value1"}]})
    answer = ok(my_model, req.method, req.path)
    assert answer["count"] == 1
    (stats,) = answer["trained_model_stats"]
    assert stats["model_id"] == "my_model" and stats["pipeline_count"] == 0
    inference = stats["inference_stats"]
    assert set(inference) == {"failure_count", "inference_count", "cache_miss_count", "missing_all_fields_count",
                              "timestamp"}
    assert (inference["inference_count"], inference["failure_count"]) == (1, 0)
    assert set(stats["model_size_stats"]) == {"model_size_bytes", "required_native_memory_bytes"}


# -- 执行推理 ----------------------------------------------------------------------------------------

def test_infer_one(my_model):
    (req,) = console(BLOCK["infer_one"])
    assert req.path == "_ml/inference/my_model/_infer"
    (result,) = ok(my_model, req.method, req.path, req.body)["inference_results"]
    classification_result(result)
    # field1 = 1.0 ≤ 1.5 and field2 is neither value1 nor value2: both trees go left
    assert result["predicted_value"] == "negative"


def test_infer_batch_batch_size_is_not_an_inference_config(my_model):
    (req,) = console(BLOCK["infer_batch"])
    err = error(send(my_model, req), 400, "x_content_parse_exception",
                "[infer_trained_model_request] failed to parse field [inference_config]")
    assert err["caused_by"] == {"type": "named_object_not_found_exception", "reason": "unknown field [batch_size]"}
    # the same documents without the unknown setting: one result per document, in order
    answer = ok(my_model, req.method, req.path, {"docs": req.body["docs"]})
    assert [classification_result(r) for r in answer["inference_results"]] == ["negative", "positive"]


def test_optimisation_block_is_not_a_deployment_setting(my_model):
    (req,) = console("POST _ml/trained_models/my_model/deployment/_start\n" + BLOCK["optimisation"])
    error(send(my_model, req), 400, "x_content_parse_exception",
          "[1:2] [cluster:admin/xpack/ml/trained_models/deployment/start] unknown field [model_memory_limit]")


# -- 使用场景 ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def classifier_folder(tmp_path_factory: pytest.TempPathFactory):
    pytest.importorskip("transformers")
    from models.nlp.tiny_models import build

    return build(tmp_path_factory.mktemp("seed000") / "sequence", "sequence")


def test_text_classification(engine, classifier_folder):
    from models.nlp.tiny_models import CLASS_LABELS

    engine.import_hf_model(classifier_folder, "text_classification", "text_classifier")
    ok(engine, "POST", "_ml/trained_models/text_classifier/deployment/_start?wait_for=started")
    (req,) = console(BLOCK["text_classification"])
    (result,) = ok(engine, req.method, req.path, req.body)["inference_results"]
    assert set(result) == {"predicted_value", "prediction_probability"}
    assert result["predicted_value"] in CLASS_LABELS and 0.0 < result["prediction_probability"] <= 1.0
    ok(engine, "POST", "_ml/trained_models/text_classifier/deployment/_stop")


def test_text_classification_needs_a_deployment(engine, classifier_folder):
    engine.import_hf_model(classifier_folder, "text_classification", "text_classifier")
    (req,) = console(BLOCK["text_classification"])
    error(send(engine, req), 409, "status_exception",
          "Model [text_classifier] must be deployed to use. Please deploy with the start trained model deployment API.")


def test_anomaly_detection(engine):
    ok(engine, "PUT", "_ml/trained_models/anomaly_detector", regression("metric_value"))
    (req,) = console(BLOCK["anomaly_detection"])
    assert req.body == {"docs": [{"metric_value": 100, "timestamp": "2023-01-01T00:00:00Z"}]}
    assert ok(engine, req.method, req.path, req.body) == {"inference_results": [{"predicted_value": 0.9}]}


def test_forecast(engine):
    ok(engine, "PUT", "_ml/trained_models/forecaster", regression("horizon"))
    (req,) = console(BLOCK["forecast"])
    assert req.body["docs"][0]["series"] == [1, 2, 3, 4, 5]
    assert ok(engine, req.method, req.path, req.body) == {"inference_results": [{"predicted_value": 0.1}]}


def test_unknown_model(engine):
    (req,) = console(BLOCK["forecast"])
    error(send(engine, req), 404, "resource_not_found_exception", "Could not find trained model [forecaster]")


# -- 错误处理、告警 ----------------------------------------------------------------------------------

def test_error_handling_block_is_not_a_processor(engine):
    (req,) = console("PUT _ingest/pipeline/with_error_handling\n" + replace_all(
        '{"processors": [BLOCK]}', {"BLOCK": BLOCK["error_handling"]}))
    err = error(send(engine, req), 400, "parse_exception", "No processor type exists with name [error_handling]")
    assert err["processor_type"] == "error_handling"


def test_alerts_block_is_not_an_infer_setting(my_model):
    (req,) = console("POST _ml/trained_models/my_model/_infer\n" + BLOCK["alerts"])
    error(send(my_model, req), 400, "x_content_parse_exception", "[infer_trained_model_request] unknown field [alerts]")


# -- 维护操作 ----------------------------------------------------------------------------------------

@pytest.fixture
def maintenance(my_model) -> Iterator[list]:
    yield [send(my_model, req) for req in console(BLOCK["maintenance"])]


def test_maintenance(my_model, maintenance):
    update, delete, stop = maintenance
    assert (update.status, update.body) == (400, {
        "error": "no handler found for uri [/_ml/trained_models/my_model/_update] and method [PUT]"})
    assert (delete.status, delete.body) == (200, {"acknowledged": True})
    assert (stop.status, stop.body) == (400, {
        "error": "no handler found for uri [/_ml/trained_models/my_model/_stop] and method [POST]"})
    error(my_model.request("GET", "_ml/trained_models/my_model"), 404, "resource_not_found_exception",
          "Could not find trained model [my_model]")
