"""Seed 002 (OpenSearch ``ml_inference`` processor): every JSON example as written, placeholders filled.

The remote model is a connector to a loopback service on 127.0.0.1 (it takes ``input`` and answers
``{"data": vector}``, as the seed describes); the local model is OpenSearch's pretrained name for
the bundled all-MiniLM-L6-v2 (the seed's all-distilroberta-v1 is not bundled: a 384-wide vector
instead of 768). The seed's local "test the pipeline" request posts to ``ml_inference_pipeline``,
the remote example's pipeline; it is run against ``ml_inference_pipeline_local``, the pipeline the
seed has just created and whose documented response it shows.
"""

from __future__ import annotations

import json
from typing import Any, Iterator

import numpy as np
import pytest

from es_infer_nb import Engine
from es_infer_nb.services.loopback import LoopbackServer
from es_infer_nb.services.ml_commons import MINILM
from opensearch_services import connector_body, start, vector_of
from seed_examples import DATA, assert_in_seed, fill, ok

SEED = DATA / "002_a3ea9caa80214394.txt"

# -- the seed's JSON, as written ---------------------------------------------------------------------

SYNTAX = """{
"ml_inference": {
"model_id": "<model_id>",
"function_name": "<function_name>",
"full_response_path": "<full_response_path>",
"model_config":{
"<model_config_field>": "<config_value>"
},
"model_input": "<model_input>",
"input_map": [
{
"<model_input_field>": "<document_field>"
}
],
"output_map": [
{
"<new_document_field>": "<model_output_field>"
}
],
"override": "<override>"
}
}"""

REMOTE_PIPELINE = """{
"description": "Generate passage_embedding for ingested documents",
"processors": [
{
"ml_inference": {
"model_id": "<your model id>",
"input_map": [
{
"input": "passage_text"
}
],
"output_map": [
{
"passage_embedding": "data"
}
]
}
}
]
}"""

REMOTE_PREDICT = """{
"parameters": {
"input": [
{
...
}
]
}
}"""

INPUT_MAP_REMOTE = """"input_map": [
{
"input": "passage_text"
}
]"""

REMOTE_SIMULATE = """{
"docs": [
{
"_index": "testindex1",
"_id": "1",
"_source":{
"passage_text": "hello world"
}
}
]
}"""

LOCAL_PREDICT = """{
"text_docs":[ "today is sunny"],
"return_number": true,
"target_response": ["sentence_embedding"]
}"""

MODEL_INPUT = """"model_input": "{ \\"text_docs\\": ${input_map.text_docs}, \\"return_number\\": ${model_config.return_number}, \\"target_response\\": ${model_config.target_response} }\""""

LOCAL_PIPELINE = """{
"description": "ingests reviews and generates embeddings",
"processors": [
{
"ml_inference": {
"function_name": "text_embedding",
"full_response_path": true,
"model_id": "<your model id>",
"model_config": {
"return_number": true,
"target_response": ["sentence_embedding"]
},
"model_input": "{ \\"text_docs\\": ${input_map.text_docs}, \\"return_number\\": ${model_config.return_number}, \\"target_response\\": ${model_config.target_response} }",
"input_map": [
{
"text_docs": "book.*.chunk.text.*.context"
}
],
"output_map": [
{
"book.*.chunk.text.*.context_embedding": "$.inference_results.*.output.*.data"
}
],
"ignore_missing": true,
"ignore_failure": true
}
}
]
}"""

LOCAL_SIMULATE = """{
"docs": [
{
"_index": "my_books",
"_id": "1",
"_source": {
"book": [
{
"chunk": {
"text": [
{
"chapter": "first chapter",
"context": "this is the first part"
},
{
"chapter": "first chapter",
"context": "this is the second part"
}
]
}
},
{
"chunk": {
"text": [
{
"chapter": "second chapter",
"context": "this is the third part"
},
{
"chapter": "second chapter",
"context": "this is the fourth part"
}
]
}
}
]
}
}
]
}"""


def test_examples_are_the_seeds_own():
    """The JSON above is copied from the seed, character for character (whitespace aside)."""
    assert_in_seed(SEED.read_text(encoding="utf-8"), SYNTAX, REMOTE_PIPELINE, REMOTE_PREDICT, INPUT_MAP_REMOTE,
                   REMOTE_SIMULATE, LOCAL_PREDICT, MODEL_INPUT, LOCAL_PIPELINE, LOCAL_SIMULATE)


# -- the remote example ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def service() -> Iterator[LoopbackServer]:
    server = start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def remote_model(engine: Engine, service: LoopbackServer) -> str:
    connector_id = ok(engine, "POST", "/_plugins/_ml/connectors/_create", connector_body(service))["connector_id"]
    registered = ok(engine, "POST", "/_plugins/_ml/models/_register",
                    {"name": "remote embeddings", "function_name": "remote", "connector_id": connector_id})
    ok(engine, "POST", f"/_plugins/_ml/models/{registered['model_id']}/_deploy")
    return registered["model_id"]


def test_remote_pipeline_simulate(engine, remote_model):
    assert ok(engine, "PUT", "/_ingest/pipeline/ml_inference_pipeline",
              fill(REMOTE_PIPELINE, **{"<your model id>": remote_model})) == {"acknowledged": True}
    answer = ok(engine, "POST", "_ingest/pipeline/ml_inference_pipeline/_simulate", fill(REMOTE_SIMULATE))
    (doc,) = answer["docs"]
    assert doc["doc"]["_index"] == "testindex1" and doc["doc"]["_id"] == "1"
    assert doc["doc"]["_source"] == {"passage_embedding": vector_of("hello world"), "passage_text": "hello world"}
    assert "timestamp" in doc["doc"]["_ingest"]


def test_remote_predict(engine, remote_model):
    body = fill(REMOTE_PREDICT, **{"...": '"text": "hello world"'})
    answer = ok(engine, "POST", f"/_plugins/_ml/models/{remote_model}/_predict", body)
    sent = json.dumps(body["parameters"]["input"], separators=(",", ":"))
    assert answer == {"inference_results": [{"output": [{"name": "response", "dataAsMap": {"data": vector_of(sent)}}],
                                             "status_code": 200}]}


def test_syntax_example_filled(engine, remote_model):
    processor = fill(SYNTAX, **{
        "<model_id>": remote_model, "<function_name>": "remote", '"<full_response_path>"': "false",
        "<model_config_field>": "model", "<config_value>": "loopback",
        "<model_input>": '{ \\"parameters\\": ${ml_inference.parameters} }',
        "<model_input_field>": "input", "<document_field>": "passage_text",
        "<new_document_field>": "passage_embedding", "<model_output_field>": "data", '"<override>"': "false"})
    ok(engine, "PUT", "_ingest/pipeline/syntax", {"processors": [processor]})
    answer = ok(engine, "POST", "_ingest/pipeline/syntax/_simulate", fill(REMOTE_SIMULATE))
    assert answer["docs"][0]["doc"]["_source"]["passage_embedding"] == vector_of("hello world")


# -- the local example -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def reference():
    st = pytest.importorskip("sentence_transformers")
    from es_infer_nb.models.nlp.embedded import model_path

    return st.SentenceTransformer(str(model_path()), device="cpu", local_files_only=True)


def cos(a: Any, b: Any) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.fixture
def local_model(engine: Engine) -> str:
    task = ok(engine, "POST", "/_plugins/_ml/models/_register",
              {"name": MINILM, "version": "1.0.1", "model_format": "TORCH_SCRIPT"})
    model_id = ok(engine, "GET", f"/_plugins/_ml/tasks/{task['task_id']}")["model_id"]
    ok(engine, "POST", f"/_plugins/_ml/models/{model_id}/_deploy")
    return model_id


def test_local_predict(engine, local_model, reference):
    answer = ok(engine, "POST", f"/_plugins/_ml/_predict/text_embedding/{local_model}", fill(LOCAL_PREDICT))
    (result,) = answer["inference_results"]
    (tensor,) = result["output"]
    assert (tensor["name"], tensor["data_type"], tensor["shape"]) == ("sentence_embedding", "FLOAT32", [384])
    assert cos(tensor["data"], reference.encode("today is sunny")) >= 0.9999


def test_local_pipeline_simulate(engine, local_model, reference):
    assert ok(engine, "PUT", "/_ingest/pipeline/ml_inference_pipeline_local",
              fill(LOCAL_PIPELINE, **{"<your model id>": local_model})) == {"acknowledged": True}
    answer = ok(engine, "POST", "_ingest/pipeline/ml_inference_pipeline_local/_simulate", fill(LOCAL_SIMULATE))
    (doc,) = answer["docs"]
    source = doc["doc"]["_source"]
    assert doc["doc"]["_index"] == "my_books" and set(source) == {"book"}
    entries = [entry for book in source["book"] for entry in book["chunk"]["text"]]
    assert [e["context"] for e in entries] == ["this is the first part", "this is the second part",
                                               "this is the third part", "this is the fourth part"]
    assert [e["chapter"] for e in entries] == ["first chapter"] * 2 + ["second chapter"] * 2
    expected = reference.encode([e["context"] for e in entries])
    for entry, vector in zip(entries, expected):
        assert set(entry) == {"chapter", "context", "context_embedding"}
        assert len(entry["context_embedding"]) == 384
        assert cos(entry["context_embedding"], vector) >= 0.9999
