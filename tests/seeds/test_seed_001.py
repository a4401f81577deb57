"""Seed 001 (the ES ``inference`` processor reference, in Chinese): every JSON example, as written.

Each processor snippet runs in a ``_simulate`` pipeline over a document holding the fields it names.
The NLP snippets' ``model_deployment_for_inference`` is a deployment of the bundled MiniLM
(``sentence-transformers__all-minilm-l6-v2``, a text_embedding model); the data frame analytics
snippets get tree models with the ids and fields they name. Where the seed's JSON is not what
Elasticsearch takes, the test asserts ES's answer:

* the classification example lacks a comma after ``"model_id":"my_model_id"``: not JSON
  (``x_content_parse_exception``); with the comma it runs;
* the mapping of ``ml.inference.feature_importance`` is an index mapping: es_infer_nb has no indices
  (``PUT <index>/_mapping`` has no handler); the results it describes are checked instead;
* ``{"tag": "foo", "target_field": "my_field"}`` alone has no ``model_id`` (ES's ``parse_exception``).
  With a model, Elasticsearch writes the feature importance to ``my_field.feature_importance``: the
  tag only names the *default* target field (``ml.inference.<tag>``), as the processor's factory
  reads ``target_field`` with that default, so the seed's ``my_field.foo.feature_importance`` is not
  what a cluster writes.
"""

from __future__ import annotations

import json
from typing import Any, Iterator

import numpy as np
import pytest

from es_infer_nb import Engine
from seed_examples import assert_in_seed, error, fill, ok, seed_text, simulate

SEED = seed_text("001_531eb8abdc53c748.txt")

# -- the seed's JSON, as written ---------------------------------------------------------------------

ONE_INPUT = """{
  "inference": {
    "model_id": "model_deployment_for_inference",
    "input_output": [
        {
            "input_field": "content",
            "output_field": "content_embedding"
        }
    ]
  }
}"""

TWO_INPUTS = """{
  "inference": {
    "model_id": "model_deployment_for_inference",
    "input_output": [
        {
            "input_field": "content",
            "output_field": "content_embedding"
        },
        {
            "input_field": "title",
            "output_field": "title_embedding"
        }
    ]
  }
}"""

DATA_FRAME_ANALYTICS = """{
  "inference": {
    "model_id": "model_deployment_for_inference",
    "target_field": "FlightDelayMin_prediction_infer",
    "field_map": {
      "your_field": "my_field"
    },
    "inference_config": { "regression": {} }
  }
}"""

REGRESSION = """"inference":{
  "model_id": "my_model_id",
  "field_map": {
    "original_fieldname": "expected_fieldname"
  },
  "inference_config": {
    "regression": {
      "results_field": "my_regression"
    }
  }
}"""

CLASSIFICATION = """"inference":{
  "model_id":"my_model_id"
  "inference_config": {
    "classification": {
      "num_top_classes": 2,
      "results_field": "prediction",
      "top_classes_results_field": "probabilities"
    }
  }
}"""

MAPPING = """"ml.inference.feature_importance": {
  "type": "nested",
  "dynamic": true,
  "properties": {
    "feature_name": {
      "type": "keyword"
    },
    "importance": {
      "type": "double"
    }
  }
}"""

TAGGED = """{
  "tag": "foo",
  ...
}"""

TAGGED_TARGET = """{
  "tag": "foo",
  "target_field": "my_field"
}"""


def test_examples_are_the_seeds_own():
    assert_in_seed(SEED, ONE_INPUT, TWO_INPUTS, DATA_FRAME_ANALYTICS, REGRESSION, CLASSIFICATION, MAPPING, TAGGED,
                   TAGGED_TARGET)


def member(text: str, **values: str) -> Any:
    """A ``"name": {...}`` member of the seed (a snippet without its braces) as an object."""
    return fill("{" + text + "}", **values)


# -- NLP: input_output -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def nlp_engine() -> Iterator[Engine]:
    engine = Engine()
    ok(engine, "POST", "_ml/trained_models/sentence-transformers__all-minilm-l6-v2/deployment/_start"
                       "?deployment_id=model_deployment_for_inference&wait_for=started")
    yield engine
    ok(engine, "POST", "_ml/trained_models/model_deployment_for_inference/deployment/_stop")


def embedding_of(engine: Engine, text: str) -> np.ndarray:
    answer = ok(engine, "POST", "_ml/trained_models/model_deployment_for_inference/_infer",
                {"docs": [{"text_field": text}]})
    return np.asarray(answer["inference_results"][0]["predicted_value"])


def test_one_input(nlp_engine):
    (doc,) = simulate(nlp_engine, fill(ONE_INPUT), {"content": "the quick brown fox"})
    source = doc["doc"]["_source"]
    assert set(source) == {"content", "content_embedding", "model_id"}
    assert source["model_id"] == "model_deployment_for_inference"  # written once, beside the first output
    vector = source["content_embedding"]
    assert len(vector) == 384 and all(isinstance(v, float) for v in vector)
    np.testing.assert_allclose(vector, embedding_of(nlp_engine, "the quick brown fox"), rtol=1e-5, atol=1e-6)


def test_two_inputs(nlp_engine):
    (doc,) = simulate(nlp_engine, fill(TWO_INPUTS), {"content": "elasticsearch is fun", "title": "search"})
    source = doc["doc"]["_source"]
    assert set(source) == {"content", "title", "content_embedding", "title_embedding", "model_id"}
    np.testing.assert_allclose(source["content_embedding"], embedding_of(nlp_engine, "elasticsearch is fun"),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(source["title_embedding"], embedding_of(nlp_engine, "search"), rtol=1e-5, atol=1e-6)


def test_two_inputs_a_missing_field_fails_unless_ignore_missing(nlp_engine):
    (doc,) = simulate(nlp_engine, fill(TWO_INPUTS), {"content": "only content"})
    assert doc["error"]["type"] == "illegal_argument_exception"
    assert doc["error"]["reason"] == "field [title] not present as part of path [title]"
    processor = fill(TWO_INPUTS)
    processor["inference"]["ignore_missing"] = True
    (doc,) = simulate(nlp_engine, processor, {"content": "only content"})
    source = doc["doc"]["_source"]
    assert set(source) == {"content", "content_embedding", "title_embedding", "model_id"}
    assert source["title_embedding"] == pytest.approx(embedding_of(nlp_engine, "").tolist())  # sent as ""


def test_input_output_with_target_field_is_rejected(nlp_engine):
    processor = fill(TWO_INPUTS)
    processor["inference"]["target_field"] = "ml.inference"
    err = error(nlp_engine.request("PUT", "_ingest/pipeline/both", {"processors": [processor]}), 400,
                "parse_exception", "[target_field] option is incompatible with [input_output]. "
                "Use the [output_field] option to specify where to write the inference results to.")
    assert (err["processor_type"], err["property_name"]) == ("inference", "target_field")


# -- data frame analytics models: target_field and field_map -------------------------------------------

def regression(field: str, importance: bool = False) -> dict[str, Any]:
    """A one-split regression tree on ``field``: ``<= 0.5`` → 1.0, else 2.0."""
    return {"input": {"field_names": [field]}, "inference_config": {"regression": {}},
            "definition": {"trained_model": {"tree": {"feature_names": [field], "tree_structure": [
                {"node_index": 0, "split_feature": 0, "threshold": 0.5, "decision_type": "lte",
                 "left_child": 1, "right_child": 2, "number_samples": 10},
                {"node_index": 1, "leaf_value": 1.0, "number_samples": 6},
                {"node_index": 2, "leaf_value": 2.0, "number_samples": 4}]}}}}


def test_data_frame_analytics_target_field_and_field_map(engine):
    ok(engine, "PUT", "_ml/trained_models/model_deployment_for_inference", regression("my_field"))
    (doc,) = simulate(engine, fill(DATA_FRAME_ANALYTICS), {"your_field": 0.9})
    assert doc["doc"]["_source"] == {"your_field": 0.9, "FlightDelayMin_prediction_infer": {
        "predicted_value": 2.0, "model_id": "model_deployment_for_inference"}}


def test_regression_example(engine):
    ok(engine, "PUT", "_ml/trained_models/my_model_id", regression("expected_fieldname"))
    (doc,) = simulate(engine, member(REGRESSION), {"original_fieldname": 0.1})
    assert doc["doc"]["_source"] == {"original_fieldname": 0.1, "ml": {"inference": {
        "my_regression": 1.0, "model_id": "my_model_id"}}}


CLASSIFIER = {
    "input": {"field_names": ["x"]},
    "inference_config": {"classification": {}},
    "definition": {"trained_model": {"tree": {
        "feature_names": ["x"], "target_type": "classification", "classification_labels": ["no", "yes"],
        "tree_structure": [
            {"node_index": 0, "split_feature": 0, "threshold": 0.5, "decision_type": "lte",
             "left_child": 1, "right_child": 2, "number_samples": 10},
            {"node_index": 1, "leaf_value": [2.0, 0.0], "number_samples": 6},
            {"node_index": 2, "leaf_value": [0.0, 2.0], "number_samples": 4}]}}},
}


def test_classification_example_as_written_is_not_json(engine):
    body = '{"processors": [{' + CLASSIFICATION + "}]}"
    error(engine.request("PUT", "_ingest/pipeline/classify", body), 400, "x_content_parse_exception",
          "[3:3] Unexpected character or end of input: Expecting ',' delimiter")
    with pytest.raises(json.JSONDecodeError):
        json.loads(body)


def test_classification_example_with_its_comma(engine):
    ok(engine, "PUT", "_ml/trained_models/my_model_id", CLASSIFIER)
    processor = member(CLASSIFICATION.replace('"my_model_id"\n', '"my_model_id",\n'))
    ok(engine, "PUT", "_ingest/pipeline/classify", {"processors": [processor]})
    answer = ok(engine, "POST", "_ingest/pipeline/classify/_simulate", {"docs": [{"_source": {"x": 1.0}}]})
    result = answer["docs"][0]["doc"]["_source"]["ml"]["inference"]
    assert set(result) == {"prediction", "probabilities", "prediction_probability", "prediction_score", "model_id"}
    assert result["prediction"] == "yes" and result["model_id"] == "my_model_id"
    assert [c["class_name"] for c in result["probabilities"]] == ["yes", "no"]
    assert [set(c) for c in result["probabilities"]] == [{"class_name", "class_probability", "class_score"}] * 2
    assert result["prediction_probability"] == pytest.approx(1 / (1 + np.exp(-2.0)))  # softmax of the leaf [0, 2]


# -- feature importance ------------------------------------------------------------------------------

def test_feature_importance_mapping_needs_an_index(engine):
    body = {"properties": member(MAPPING)}
    resp = engine.request("PUT", "my-index/_mapping", body)
    assert (resp.status, resp.body) == (400, {"error": "no handler found for uri [/my-index/_mapping] and method [PUT]"})


def importance_model(engine: Engine) -> dict[str, Any]:
    ok(engine, "PUT", "_ml/trained_models/my_model_id", regression("x"))
    return {"model_id": "my_model_id", "inference_config": {"regression": {"num_top_feature_importance_values": 1}}}


def check_importance(values: Any) -> None:
    """The objects the mapping above describes: ``feature_name`` (keyword) and ``importance`` (double)."""
    mapped = member(MAPPING)["ml.inference.feature_importance"]["properties"]
    assert [set(v) for v in values] == [set(mapped)]
    assert values[0]["feature_name"] == "x" and isinstance(values[0]["importance"], float)
    assert values[0]["importance"] == pytest.approx(1.0 - 1.4)  # leaf 1.0 against the mean 0.6*1 + 0.4*2


def test_feature_importance_default_field(engine):
    (doc,) = simulate(engine, {"inference": importance_model(engine)}, {"x": 0.0})
    check_importance(doc["doc"]["_source"]["ml"]["inference"]["feature_importance"])


def test_feature_importance_tagged(engine):
    options = importance_model(engine)
    processor = fill(TAGGED, **{"...": json.dumps(options)[1:-1]})
    assert processor["tag"] == "foo"
    (doc,) = simulate(engine, {"inference": processor}, {"x": 0.0})
    check_importance(doc["doc"]["_source"]["ml"]["inference"]["foo"]["feature_importance"])


def test_feature_importance_tagged_with_target_field(engine):
    err = error(engine.request("PUT", "_ingest/pipeline/tagged", {"processors": [{"inference": fill(TAGGED_TARGET)}]}),
                400, "parse_exception", "[model_id] required property is missing")
    assert (err["processor_type"], err["processor_tag"], err["property_name"]) == ("inference", "foo", "model_id")
    processor = {**fill(TAGGED_TARGET), **importance_model(engine)}
    (doc,) = simulate(engine, {"inference": processor}, {"x": 0.0})
    source = doc["doc"]["_source"]
    assert set(source) == {"x", "my_field"} and "foo" not in source["my_field"]
    check_importance(source["my_field"]["feature_importance"])
