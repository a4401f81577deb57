"""OpenSearch ml-commons under ``_plugins/_ml``: CRUD, both Predict API forms, errors, write-only credentials."""

from __future__ import annotations

import json
import logging
from typing import Any, Iterator

import numpy as np
import pytest

from es_infer_nb import Engine
from es_infer_nb.services.loopback import LoopbackServer
from es_infer_nb.services.ml_commons import MINILM
from opensearch_services import API_KEY, connector_body, start, vector_of

ML = "_plugins/_ml"


@pytest.fixture(scope="module")
def service() -> Iterator[LoopbackServer]:
    server = start()
    try:
        yield server
    finally:
        server.stop()


def ok(engine: Engine, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None) -> Any:
    resp = engine.request(method, path, body, params)
    assert resp.status == 200, resp
    return resp.body


def error(engine: Engine, method: str, path: str, body: Any = None) -> tuple[int, dict[str, Any]]:
    resp = engine.request(method, path, body)
    assert resp.status >= 400, resp
    err = resp.body["error"]
    assert err["root_cause"][0]["type"] == err["type"] and err["root_cause"][0]["reason"] == err["reason"]
    assert resp.body["status"] == resp.status
    return resp.status, err


def remote_model(engine: Engine, service: LoopbackServer, **action: Any) -> str:
    connector_id = ok(engine, "POST", f"{ML}/connectors/_create", connector_body(service, **action))["connector_id"]
    registered = ok(engine, "POST", f"{ML}/models/_register",
                    {"name": "loopback", "function_name": "remote", "connector_id": connector_id})
    return registered["model_id"]


def test_connector_crud_and_search(engine, service):
    created = ok(engine, "POST", f"{ML}/connectors/_create", connector_body(service))
    connector_id = created["connector_id"]
    assert list(created) == ["connector_id"] and len(connector_id) == 20
    got = ok(engine, "GET", f"{ML}/connectors/{connector_id}")
    assert got["name"] == "loopback embeddings" and got["protocol"] == "http"
    assert got["parameters"] == {"endpoint": service.url}
    assert got["actions"][0]["action_type"] == "PREDICT"
    assert got["actions"][0]["request_body"] == '{ "input": "${parameters.input}" }'
    assert got["actions"][0]["headers"] == {"Authorization": "Bearer ${credential.api_key}"}
    assert "credential" not in got

    other = ok(engine, "POST", f"{ML}/connectors/_create", connector_body(service, path="/openai"))["connector_id"]
    everything = ok(engine, "POST", f"{ML}/connectors/_search", {"query": {"match_all": {}}})
    assert everything["hits"]["total"] == {"value": 2, "relation": "eq"}
    assert {h["_id"] for h in everything["hits"]["hits"]} == {connector_id, other}
    assert all(h["_index"] == ".plugins-ml-connector" for h in everything["hits"]["hits"])
    by_id = ok(engine, "GET", f"{ML}/connectors/_search", {"query": {"ids": {"values": [other]}}})
    assert [h["_id"] for h in by_id["hits"]["hits"]] == [other]

    gone = ok(engine, "DELETE", f"{ML}/connectors/{other}")
    assert gone["result"] == "deleted" and gone["_id"] == other
    status, err = error(engine, "GET", f"{ML}/connectors/{other}")
    assert (status, err["type"], err["reason"]) == (
        404, "status_exception", f"Failed to find connector with the provided connector id: {other}")
    again = engine.request("DELETE", f"{ML}/connectors/{other}")  # no such document: OpenSearch's delete answer
    assert (again.status, again.body["result"]) == (404, "not_found")


def test_model_groups(engine):
    group = ok(engine, "POST", f"{ML}/model_groups/_register", {"name": "embeddings", "description": "a group"})
    assert group["status"] == "CREATED"
    group_id = group["model_group_id"]
    got = ok(engine, "GET", f"{ML}/model_groups/{group_id}")
    assert got["name"] == "embeddings" and got["description"] == "a group" and got["latest_version"] == 0
    status, err = error(engine, "POST", f"{ML}/model_groups/_register", {"name": "embeddings"})
    assert status == 400 and err["reason"] == (
        f"The name you provided is already being used by a model group with ID: {group_id}.")
    assert ok(engine, "DELETE", f"{ML}/model_groups/{group_id}")["result"] == "deleted"
    assert error(engine, "GET", f"{ML}/model_groups/{group_id}")[0] == 404


def test_remote_model_register_task_deploy_predict_undeploy_delete(engine, service):
    connector_id = ok(engine, "POST", f"{ML}/connectors/_create", connector_body(service))["connector_id"]
    group_id = ok(engine, "POST", f"{ML}/model_groups/_register", {"name": "remote group"})["model_group_id"]
    registered = ok(engine, "POST", f"{ML}/models/_register",
                    {"name": "loopback", "function_name": "remote", "model_group_id": group_id,
                     "description": "embeddings over loopback", "connector_id": connector_id})
    assert registered["status"] == "CREATED"
    model_id = registered["model_id"]
    task = ok(engine, "GET", f"{ML}/tasks/{registered['task_id']}")
    assert (task["state"], task["model_id"], task["task_type"], task["function_name"]) == (
        "COMPLETED", model_id, "REGISTER_MODEL", "REMOTE")
    model = ok(engine, "GET", f"{ML}/models/{model_id}")
    assert (model["algorithm"], model["model_state"], model["model_group_id"], model["connector_id"],
            model["model_version"]) == ("REMOTE", "REGISTERED", group_id, connector_id, "1")
    assert ok(engine, "GET", f"{ML}/model_groups/{group_id}")["latest_version"] == 1

    deployed = ok(engine, "POST", f"{ML}/models/{model_id}/_deploy")
    assert deployed["status"] == "COMPLETED" and deployed["task_type"] == "DEPLOY_MODEL"
    assert ok(engine, "GET", f"{ML}/tasks/{deployed['task_id']}")["state"] == "COMPLETED"
    assert ok(engine, "GET", f"{ML}/models/{model_id}")["model_state"] == "DEPLOYED"

    answer = ok(engine, "POST", f"{ML}/models/{model_id}/_predict", {"parameters": {"input": "hello world"}})
    assert answer == {"inference_results": [{"output": [{"name": "response",
                                                         "dataAsMap": {"data": vector_of("hello world")}}],
                                             "status_code": 200}]}
    hits = ok(engine, "POST", f"{ML}/models/_search", {"query": {"term": {"algorithm": "REMOTE"}}})["hits"]
    assert [h["_id"] for h in hits["hits"]] == [model_id]

    status, err = error(engine, "DELETE", f"{ML}/models/{model_id}")
    assert status == 400 and err["reason"].startswith("Model cannot be deleted in deploying or deployed state")
    status, err = error(engine, "DELETE", f"{ML}/connectors/{connector_id}")
    assert status == 409 and model_id in err["reason"]
    assert ok(engine, "POST", f"{ML}/models/{model_id}/_undeploy") == {
        "es-infer-nb-local-node": {"stats": {model_id: "undeployed"}}}
    assert ok(engine, "POST", f"{ML}/models/{model_id}/_undeploy") == {  # not deployed any more
        "es-infer-nb-local-node": {"stats": {model_id: "not_found"}}}
    assert ok(engine, "DELETE", f"{ML}/models/{model_id}")["result"] == "deleted"
    status, err = error(engine, "GET", f"{ML}/models/{model_id}")
    assert (status, err["reason"]) == (404, f"Failed to find model with the provided model id: {model_id}")
    assert ok(engine, "DELETE", f"{ML}/connectors/{connector_id}")["result"] == "deleted"


def test_inline_connector_and_deploy_on_register(engine, service):
    registered = ok(engine, "POST", f"{ML}/models/_register",
                    {"name": "inline", "function_name": "remote", "connector": connector_body(service)},
                    {"deploy": "true"})
    model = ok(engine, "GET", f"{ML}/models/{registered['model_id']}")
    assert model["model_state"] == "DEPLOYED"
    assert model["connector"]["parameters"] == {"endpoint": service.url} and "credential" not in model["connector"]
    answer = ok(engine, "POST", f"{ML}/models/{registered['model_id']}/_predict", {"parameters": {"input": "x"}})
    assert answer["inference_results"][0]["output"][0]["dataAsMap"]["data"] == vector_of("x")


@pytest.mark.parametrize("path, pre, post", [
    ("/openai", "connector.pre_process.openai.embedding", "connector.post_process.openai.embedding"),
    ("/default", "connector.pre_process.default.embedding", "connector.post_process.default.embedding"),
    ("/cohere", "connector.pre_process.cohere.embedding", "connector.post_process.cohere.embedding"),
])
def test_builtin_process_functions_for_text_docs(engine, service, path, pre, post):
    key = "texts" if "cohere" in path else "input"
    model_id = remote_model(engine, service, path=path, request_body='{ "%s": ${parameters.%s} }' % (key, key),
                            pre_process_function=pre, post_process_function=post)
    docs = ["first text", "second \"quoted\" text"]
    answer = ok(engine, "POST", f"{ML}/_predict/text_embedding/{model_id}", {"text_docs": docs})
    outputs = answer["inference_results"][0]["output"]
    assert outputs == [{"name": "sentence_embedding", "data_type": "FLOAT32", "shape": [8], "data": vector_of(t)}
                       for t in docs]
    assert json.loads(service.received[-1].body) == {key: docs}


def test_bedrock_process_functions(engine, service):
    model_id = remote_model(engine, service, path="/bedrock", request_body='{ "inputText": "${parameters.inputText}" }',
                            pre_process_function="connector.pre_process.bedrock.embedding",
                            post_process_function="connector.post_process.bedrock.embedding")
    answer = ok(engine, "POST", f"{ML}/_predict/text_embedding/{model_id}", {"text_docs": ["only one"]})
    assert answer["inference_results"][0]["output"] == [
        {"name": "sentence_embedding", "data_type": "FLOAT32", "shape": [8], "data": vector_of("only one")}]


def test_text_inside_a_string_cannot_change_the_request(engine, service):
    model_id = remote_model(engine, service)
    text = 'x", "input": "injected'
    answer = ok(engine, "POST", f"{ML}/models/{model_id}/_predict", {"parameters": {"input": text}})
    assert answer["inference_results"][0]["output"][0]["dataAsMap"]["data"] == vector_of(text)
    assert json.loads(service.received[-1].body) == {"input": text}


def test_predict_errors(engine, service):
    model_id = remote_model(engine, service)
    status, err = error(engine, "POST", f"{ML}/models/{model_id}/_predict", {"parameters": {"other": "x"}})
    assert (status, err["type"], err["reason"]) == (
        400, "illegal_argument_exception", "Some parameter placeholder not filled in payload: input")
    status, err = error(engine, "POST", f"{ML}/models/missing-model/_predict", {"parameters": {"input": "x"}})
    assert (status, err["reason"]) == (404, "Failed to find model")
    raw = remote_model(engine, service, request_body='{ "input": ${parameters.input} }')
    status, err = error(engine, "POST", f"{ML}/models/{raw}/_predict", {"parameters": {"input": "not json"}})
    assert status == 400 and err["reason"].startswith("Invalid payload: ")
    failing = remote_model(engine, service, path="/fail")
    status, err = error(engine, "POST", f"{ML}/models/{failing}/_predict", {"parameters": {"input": "x"}})
    assert (status, err["type"]) == (503, "status_exception")
    assert err["reason"] == 'Error from remote service: {"error": "overloaded", "seen": "Bearer ::es_redacted::"}'
    status, err = error(engine, "POST", f"{ML}/models/_register",
                        {"name": "x", "function_name": "remote", "connector_id": "nope"})
    assert (status, err["reason"]) == (404, "Failed to find connector:nope")
    status, err = error(engine, "POST", f"{ML}/connectors/_create",
                        {**connector_body(service), "actions": [{"action_type": "predict", "method": "POST"}]})
    assert (status, err["reason"]) == (400, "url can't be null")
    unknown = remote_model(engine, service, post_process_function="connector.post_process.nope")  # a script, then
    status, err = error(engine, "POST", f"{ML}/models/{unknown}/_predict", {"parameters": {"input": "x"}})
    assert (status, err["type"], err["reason"]) == (400, "script_exception", "compile error")
    status, err = error(engine, "GET", f"{ML}/tasks/unknown")
    assert (status, err["reason"]) == (404, "Failed to find task")


def test_credentials_are_write_only(tmp_path, service, caplog):
    caplog.set_level(logging.DEBUG)
    engine = Engine(tmp_path / "home")
    body = connector_body(service, path="/fail")
    connector_id = ok(engine, "POST", f"{ML}/connectors/_create", body)["connector_id"]
    inline = ok(engine, "POST", f"{ML}/models/_register",
                {"name": "inline", "function_name": "remote", "connector": connector_body(service)})["model_id"]
    failing = ok(engine, "POST", f"{ML}/models/_register",
                 {"name": "f", "function_name": "remote", "connector_id": connector_id})["model_id"]
    shown = [engine.request("GET", f"{ML}/connectors/{connector_id}"), engine.request("GET", f"{ML}/models/{inline}"),
             engine.request("POST", f"{ML}/connectors/_search", {}), engine.request("POST", f"{ML}/models/_search", {}),
             engine.request("POST", f"{ML}/models/{failing}/_predict", {"parameters": {"input": API_KEY}})]
    for resp in shown:
        assert API_KEY not in json.dumps(resp.body) and API_KEY not in repr(resp)
    assert "::es_redacted::" in shown[-1].body["error"]["reason"]
    assert API_KEY not in caplog.text
    from es_infer_nb.services.ml_commons import ml_commons

    assert API_KEY not in repr(ml_commons(engine)) and API_KEY not in repr(ml_commons(engine).secrets)
    files = {p: p.read_text() for p in (tmp_path / "home").rglob("*.json")}
    holding = [p for p, text in files.items() if API_KEY in text]
    assert [p.name for p in holding] == ["ml_connector_secrets.json"]
    assert oct(holding[0].stat().st_mode & 0o777) == "0o600"

    again = Engine(tmp_path / "home")  # persisted: a new engine on the home calls the service with the key
    answer = ok(again, "POST", f"{ML}/models/{inline}/_predict", {"parameters": {"input": "persisted"}})
    assert answer["inference_results"][0]["output"][0]["dataAsMap"]["data"] == vector_of("persisted")
    ok(again, "POST", f"{ML}/models/{inline}/_undeploy")
    ok(again, "DELETE", f"{ML}/models/{inline}")
    assert API_KEY in (tmp_path / "home" / "ml_connector_secrets.json").read_text()  # the standalone connector's
    ok(again, "POST", f"{ML}/models/{failing}/_undeploy")  # deployed by its first prediction
    ok(again, "DELETE", f"{ML}/models/{failing}")
    ok(again, "DELETE", f"{ML}/connectors/{connector_id}")
    assert API_KEY not in (tmp_path / "home" / "ml_connector_secrets.json").read_text()


@pytest.fixture(scope="module")
def minilm_reference():
    st = pytest.importorskip("sentence_transformers")
    from es_infer_nb.models.nlp.embedded import model_path

    return st.SentenceTransformer(str(model_path()), device="cpu", local_files_only=True)


def cos(a: Any, b: Any) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_local_pretrained_minilm(engine, minilm_reference):
    registered = ok(engine, "POST", f"{ML}/models/_register",
                    {"name": MINILM, "version": "1.0.1", "model_format": "TORCH_SCRIPT"})
    assert set(registered) == {"task_id", "status"}
    task = ok(engine, "GET", f"{ML}/tasks/{registered['task_id']}")
    assert task["state"] == "COMPLETED" and task["function_name"] == "TEXT_EMBEDDING"
    model_id = task["model_id"]
    model = ok(engine, "GET", f"{ML}/models/{model_id}")
    assert model["algorithm"] == "TEXT_EMBEDDING" and model["model_config"]["embedding_dimension"] == 384
    ok(engine, "POST", f"{ML}/models/{model_id}/_deploy")
    texts = ["today is sunny", "a second document"]
    answer = ok(engine, "POST", f"{ML}/_predict/text_embedding/{model_id}",
                {"text_docs": texts, "return_number": True, "target_response": ["sentence_embedding"]})
    reference = minilm_reference.encode(texts)
    assert len(answer["inference_results"]) == 2
    for result, expected in zip(answer["inference_results"], reference):
        (tensor,) = result["output"]
        assert (tensor["name"], tensor["data_type"], tensor["shape"]) == ("sentence_embedding", "FLOAT32", [384])
        assert cos(tensor["data"], expected) >= 0.9999
    same = ok(engine, "POST", f"{ML}/models/{model_id}/_predict", {"text_docs": texts})
    assert same == answer
    filtered = ok(engine, "POST", f"{ML}/_predict/text_embedding/{model_id}",
                  {"text_docs": texts[:1], "target_response": ["token_embeddings"]})
    assert filtered == {"inference_results": [{}]}  # no tensors: ModelTensors leaves "output" out
    status, err = error(engine, "POST", f"{ML}/models/_register", {"name": "huggingface/unknown/model",
                                                                   "version": "1.0.1", "model_format": "ONNX"})
    assert status == 400 and MINILM in err["reason"]


def test_ml_inference_reads_a_post_processed_tensor_whole(engine, service):
    """A post-processed answer is a ``data`` tensor: ml-commons' processor writes its data whatever the
    output field's name; the request is the default ``{"parameters": ...}`` model input."""
    model_id = remote_model(engine, service, path="/openai", request_body='{ "input": ${parameters.input} }',
                            pre_process_function="connector.pre_process.openai.embedding",
                            post_process_function="connector.post_process.openai.embedding")
    ok(engine, "PUT", "_ingest/pipeline/openai-shaped", {"processors": [{"ml_inference": {
        "model_id": model_id, "input_map": [{"input": "texts"}], "output_map": [{"embedding": "sentence_embedding"}]}}]})
    docs = ok(engine, "POST", "_ingest/pipeline/openai-shaped/_simulate",
              {"docs": [{"_source": {"texts": ["one text"]}}]})["docs"]
    expected = [float(np.float32(x)) for x in vector_of("one text")]
    assert docs[0]["doc"]["_source"]["embedding"] == expected
    assert json.loads(service.received[-1].body) == {"input": ["one text"]}


@pytest.mark.parametrize("method, path, body", [
    ("POST", f"{ML}/connectors/_create", []),
    ("POST", f"{ML}/connectors/_create", {"protocol": "http", "actions": [3]}),
    ("POST", f"{ML}/connectors/_create", {"protocol": "http", "credential": "key"}),
    ("POST", f"{ML}/connectors/_create", {"protocol": "aws_sigv4"}),
    ("POST", f"{ML}/connectors/_create", {"protocol": "http", "client_config": {"max_retry_times": "x"}}),
    ("POST", f"{ML}/models/_register", {"name": "x", "function_name": "remote"}),
    ("POST", f"{ML}/models/_register", {"name": ["x"]}),
    ("POST", f"{ML}/models/_search", {"size": "x"}),
    ("POST", f"{ML}/models/_search", {"from": -1}),
    ("POST", f"{ML}/models/_search", {"query": {"range": {"created_time": {"gte": 0}}}}),
    ("POST", f"{ML}/models/_search", {"query": {"ids": "x"}}),
    ("POST", f"{ML}/model_groups/_register", {"name": ""}),
])
def test_bad_input_is_a_400(engine, method, path, body):
    status, err = error(engine, method, path, body)
    assert status == 400 and err["reason"]


def test_local_asymmetric_prefixes(engine, minilm_reference):
    """A text embedding model registered with ``query_prefix`` / ``passage_prefix`` embeds
    ``prefix + text`` for ``parameters.content_type``; ml-commons' errors when either side is missing."""
    config = {"model_type": "bert", "embedding_dimension": 384, "framework_type": "SENTENCE_TRANSFORMERS",
              "query_prefix": "query >>", "passage_prefix": "passage >> "}
    task = ok(engine, "POST", f"{ML}/models/_register", {"name": MINILM, "version": "1.0.1",
                                                         "model_format": "TORCH_SCRIPT", "model_config": config})
    model_id = ok(engine, "GET", f"{ML}/tasks/{task['task_id']}")["model_id"]
    model = ok(engine, "GET", f"{ML}/models/{model_id}")
    assert model["model_config"]["passage_prefix"] == "passage >> "
    assert model["model_config"]["query_prefix"] == "query >>"
    for kind, prefix in (("passage", "passage >> "), ("QUERY", "query >>")):
        answer = ok(engine, "POST", f"{ML}/_predict/text_embedding/{model_id}",
                    {"text_docs": ["a park"], "parameters": {"content_type": kind}})
        (expected,) = minilm_reference.encode([prefix + "a park"])
        assert cos(answer["inference_results"][0]["output"][0]["data"], expected) >= 0.9999
    # DLModel.predict wraps the model's IllegalArgumentException in an MLException (500) naming the model
    status, err = error(engine, "POST", f"{ML}/_predict/text_embedding/{model_id}", {"text_docs": ["a park"]})
    assert (status, err["type"], err["reason"]) == (500, "m_l_exception",
                                                    f"Failed to inference TEXT_EMBEDDING model: {model_id}")
    assert "asymmetric" in err["caused_by"]["reason"] and "`PASSAGE`" in err["caused_by"]["reason"]
    plain = ok(engine, "POST", f"{ML}/models/_register", {"name": MINILM, "version": "1.0.1", "model_format": "TORCH_SCRIPT"})
    plain_id = ok(engine, "GET", f"{ML}/tasks/{plain['task_id']}")["model_id"]
    status, err = error(engine, "POST", f"{ML}/_predict/text_embedding/{plain_id}",
                        {"text_docs": ["a park"], "parameters": {"content_type": "passage"}})
    assert status == 500 and "`query_prefix` or `passage_prefix`" in err["caused_by"]["reason"]
    status, err = error(engine, "POST", f"{ML}/models/_register", {"name": MINILM, "model_format": "TORCH_SCRIPT",
                                                                   "model_config": {"query_prefix": 3}})
    assert status == 400 and "query_prefix" in err["reason"]


RAW_ANSWERS = {"/nan": '{"data": [0.5, NaN]}', "/neg-inf": '{"score":\n  -Infinity}',
               "/quoted": '{"data": "NaN", "note": "Infinity"}', "/number": "42", "/text": "not json"}


@pytest.fixture(scope="module")
def raw_service() -> Iterator[LoopbackServer]:
    """Answers a fixed raw body per path, whatever the request (bodies no JSON encoder would write)."""
    server = LoopbackServer(lambda req: (200, RAW_ANSWERS[req.path])).start()
    try:
        yield server
    finally:
        server.stop()


def raw_model(engine: Engine, server: LoopbackServer, path: str, **action: Any) -> str:
    body = {"name": "raw", "version": "1", "protocol": "http", "parameters": {"endpoint": server.url},
            "credential": {"key": "local"},
            "actions": [{"action_type": "predict", "method": "POST", "url": "${parameters.endpoint}" + path,
                         "request_body": '{ "input": "${parameters.input}" }', **action}]}
    connector_id = ok(engine, "POST", f"{ML}/connectors/_create", body)["connector_id"]
    return ok(engine, "POST", f"{ML}/models/_register",
              {"name": "raw", "function_name": "remote", "connector_id": connector_id})["model_id"]


JACKSON_NAN = "Non-standard token '{}': enable `JsonReadFeature.ALLOW_NON_NUMERIC_NUMBERS` to allow\n at [Source: " \
              "REDACTED (`StreamReadFeature.INCLUDE_SOURCE_IN_LOCATION` disabled); line: {}, column: {}]"


@pytest.mark.parametrize("path, token, line, column", [("/nan", "NaN", 1, 19), ("/neg-inf", "-Infinity", 2, 12)])
def test_a_bare_nan_in_the_answer_is_rejected_as_ml_commons_does(engine, raw_service, path, token, line, column):
    """Without a post-process function ml-commons reads the answer with Jackson's defaults
    (``StringUtils.fromJson``), which refuse NaN and the infinities: the predict call is a 400 with
    Jackson's message, and an ``ml_inference`` document fails with it."""
    model_id = raw_model(engine, raw_service, path)
    status, err = error(engine, "POST", f"{ML}/models/{model_id}/_predict", {"parameters": {"input": "x"}})
    assert (status, err["type"]) == (400, "illegal_argument_exception")
    assert err["reason"] == "Invalid JSON format: " + JACKSON_NAN.format(token, line, column)
    ok(engine, "PUT", "_ingest/pipeline/raw-nan", {"processors": [{"ml_inference": {
        "model_id": model_id, "input_map": [{"input": "text"}], "output_map": [{"out": "data"}]}}]})
    docs = ok(engine, "POST", "_ingest/pipeline/raw-nan/_simulate", {"docs": [{"_source": {"text": "x"}}]})["docs"]
    assert docs[0]["error"]["reason"].endswith(JACKSON_NAN.format(token, line, column))


def test_answers_that_are_not_an_object_or_array(engine, raw_service):
    """NaN inside a string is text. Without a post-process function ml-commons still reads the answer with
    Jackson first (``ScriptUtils.executePostProcessFunction`` calls ``StringUtils.fromJson`` before it looks
    at the function): a bare number is an "Unsupported response type", text that is not JSON Jackson's
    "Unrecognized token"."""
    quoted = ok(engine, "POST", f"{ML}/models/{raw_model(engine, raw_service, '/quoted')}/_predict",
                {"parameters": {"input": "x"}})["inference_results"][0]["output"][0]["dataAsMap"]
    assert quoted == {"data": "NaN", "note": "Infinity"}
    status, err = error(engine, "POST", f"{ML}/models/{raw_model(engine, raw_service, '/number')}/_predict",
                        {"parameters": {"input": "x"}})
    assert (status, err["type"], err["reason"]) == (400, "illegal_argument_exception", "Unsupported response type")
    status, err = error(engine, "POST", f"{ML}/models/{raw_model(engine, raw_service, '/text')}/_predict",
                        {"parameters": {"input": "x"}})
    assert (status, err["reason"]) == (400, "Invalid JSON format: Unrecognized token 'not': was expecting (JSON "
                                       "String, Number, Array, Object or token 'null', 'true' or 'false')\n at "
                                       "[Source: REDACTED (`StreamReadFeature.INCLUDE_SOURCE_IN_LOCATION` "
                                       "disabled); line: 1, column: 4]")
