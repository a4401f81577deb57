"""ml-commons' REST answers beyond the happy path, as its REST handlers, transport actions and ITs have
them (RestMLRemoteInferenceIT, RestMLDeployModelActionIT, MLRegisterModelInput(Test), ModelResultFilter,
ModelTensors, TransportPredictionTaskAction.validateInputSchema ...): not-found messages, validation,
deploy / undeploy answers, the local Predict result filter, a model's ``interface``, the update endpoints."""

from __future__ import annotations

import base64
import json
from typing import Any, Iterator

import numpy as np
import pytest

from es_infer_nb import Engine
from es_infer_nb.services.loopback import LoopbackServer
from opensearch_services import call, ok, serving
from es_infer_nb.services.ml_commons import MINILM, NODE_ID

ML = "_plugins/_ml"


@pytest.fixture(scope="module")
def service() -> Iterator[LoopbackServer]:
    yield from serving(lambda req: (200, {"echo": json.loads(req.body or b"{}")}))


def error(engine: Engine, method: str, path: str, body: Any = None) -> tuple[int, str, str]:
    status, out = call(engine, method, path, body)
    assert status >= 400, out
    return status, out["error"]["type"], out["error"]["reason"]


def connector(server: LoopbackServer, **extra: Any) -> dict[str, Any]:
    return {"name": "echo", "version": "1", "protocol": "http", "parameters": {}, "credential": {"k": "echo-key"},
            "actions": [{"action_type": "predict", "method": "POST", "url": server.url + "/x",
                         "request_body": '{ "prompt": "${parameters.prompt}" }'}], **extra}


def remote(engine: Engine, server: LoopbackServer, **register: Any) -> tuple[str, str]:
    connector_id = ok(engine, "POST", f"{ML}/connectors/_create", connector(server))["connector_id"]
    body = {"name": "remote", "function_name": "remote", "connector_id": connector_id, **register}
    return connector_id, ok(engine, "POST", f"{ML}/models/_register", body)["model_id"]


def test_not_found_answers_before_and_after_the_index_exists(engine, service):
    """GET of a missing object: ml-commons' index-missing message until one of the kind was stored, then
    one naming the id; a DELETE of a missing connector / group then is OpenSearch's 404 delete answer."""
    assert error(engine, "GET", f"{ML}/models/nope") == (404, "status_exception", "Fail to find model")
    assert error(engine, "GET", f"{ML}/connectors/nope") == (404, "status_exception", "Failed to find connector")
    assert error(engine, "GET", f"{ML}/model_groups/nope")[2] == "Failed to find model group index"
    connector_id, model_id = remote(engine, service)
    assert error(engine, "GET", f"{ML}/models/nope")[2] == "Failed to find model with the provided model id: nope"
    assert error(engine, "GET", f"{ML}/connectors/nope")[2] == \
        "Failed to find connector with the provided connector id: nope"
    assert error(engine, "GET", f"{ML}/model_groups/nope")[2] == \
        "Failed to find model group with the provided model group id: nope"
    status, body = call(engine, "DELETE", f"{ML}/connectors/nope")
    assert (status, body["result"], body["_id"], body["_index"]) == (404, "not_found", "nope", ".plugins-ml-connector")
    status, body = call(engine, "DELETE", f"{ML}/model_groups/nope")
    assert (status, body["result"]) == (404, "not_found")
    assert error(engine, "DELETE", f"{ML}/connectors/{connector_id}") == (
        409, "status_exception", f"1 models are still using this connector, please delete or update the models first: "
                                 f"[{model_id}]")


@pytest.mark.parametrize("body, reason", [
    ({"name": "m", "function_name": "remote"},
     "You must provide connector content when creating a remote model without connector id!"),
    ({"name": "m", "function_name": "bogus", "model_format": "TORCH_SCRIPT"}, "Wrong function name"),
    ({"name": MINILM, "version": "1.0.1"}, "model format is null"),
    ({"name": MINILM, "version": "1.0.1", "model_format": "bogus"}, "Wrong model format"),
    ({"name": "m", "function_name": "remote", "connector_id": "nope"}, "Failed to find connector:nope"),
])
def test_register_validation(engine, body, reason):
    assert error(engine, "POST", f"{ML}/models/_register", body)[2] == reason


@pytest.mark.parametrize("group, token", [({"k": "v"}, "START_OBJECT"), ([], "START_ARRAY")])
def test_register_model_group_id_must_be_text(engine, group, token):
    # found by the request fuzzer: an object or array as model_group_id answered a 500 (type_error_exception)
    body = {"name": "m", "function_name": "remote", "model_group_id": group,
            "connector": {"name": "c", "version": "1", "protocol": "http", "actions": []}}
    assert error(engine, "POST", f"{ML}/models/_register", body) == (
        400, "illegal_state_exception", f"[model_group_id] Can't get text on a {token}")
    assert ok(engine, "GET", f"{ML}/model_groups/_search")["hits"]["total"]["value"] == 0  # nothing registered


def test_empty_bodies_and_access_modes(engine):
    assert error(engine, "POST", f"{ML}/model_groups/_register") == (
        400, "parse_exception", "Model group request has empty body")
    assert error(engine, "POST", f"{ML}/connectors/_create") == (
        500, "i_o_exception", "Create Connector request has empty body")
    assert error(engine, "POST", f"{ML}/model_groups/_register", {"name": "g", "access_mode": "bogus"})[2] == \
        "Wrong access value"
    assert ok(engine, "POST", f"{ML}/model_groups/_register", {"name": "g", "access_mode": "PRIVATE"})["status"] == \
        "CREATED"


def test_deploy_and_undeploy_answers(engine, service):
    """A remote deploy is COMPLETED at once, a local one CREATED (it loads in the background in ml-commons);
    undeploy answers ``undeployed`` (RestMLDeployModelActionIT), ``not_found`` for a model not deployed;
    a remote register task is not async, a deploy task is."""
    _, model_id = remote(engine, service)
    deployed = ok(engine, "POST", f"{ML}/models/{model_id}/_deploy")
    assert deployed["status"] == "COMPLETED"
    assert ok(engine, "GET", f"{ML}/tasks/{deployed['task_id']}")["is_async"] is True
    assert ok(engine, "POST", f"{ML}/models/{model_id}/_undeploy") == {NODE_ID: {"stats": {model_id: "undeployed"}}}
    assert ok(engine, "POST", f"{ML}/models/{model_id}/_undeploy") == {NODE_ID: {"stats": {model_id: "not_found"}}}
    registered = ok(engine, "POST", f"{ML}/models/_register",
                    {"name": MINILM, "version": "1.0.1", "model_format": "TORCH_SCRIPT"})
    task = ok(engine, "GET", f"{ML}/tasks/{registered['task_id']}")
    assert task["is_async"] is True
    local = ok(engine, "POST", f"{ML}/models/{task['model_id']}/_deploy")
    assert local["status"] == "CREATED"
    remote_task = ok(engine, "GET", f"{ML}/tasks/{ok(engine, 'POST', f'{ML}/models/_register', {'name': 'r', 'function_name': 'remote', 'connector': connector(service)})['task_id']}")
    assert remote_task["is_async"] is False


def test_predict_with_a_lone_surrogate_sends_javas_bytes(engine, service):
    # found by the request fuzzer: a lone surrogate in a remote predict's parameters answered a 500
    # (unicode_encode_error_exception); ml-commons sends String.getBytes(UTF_8), the surrogate as "?"
    _, model_id = remote(engine, service)
    answer = ok(engine, "POST", f"{ML}/models/{model_id}/_predict", {"parameters": {"prompt": "a\ud800b"}})
    assert answer["inference_results"][0]["output"][0]["dataAsMap"] == {"echo": {"prompt": "a?b"}}


def test_local_predict_result_filter(engine):
    registered = ok(engine, "POST", f"{ML}/models/_register?deploy=true",
                    {"name": MINILM, "version": "1.0.1", "model_format": "TORCH_SCRIPT"})
    model_id = ok(engine, "GET", f"{ML}/tasks/{registered['task_id']}")["model_id"]
    path = f"{ML}/_predict/text_embedding/{model_id}"
    full = ok(engine, "POST", path, {"text_docs": ["a park"], "return_bytes": True})["inference_results"][0]["output"][0]
    assert list(full) == ["name", "data_type", "shape", "data", "byte_buffer"]
    assert full["byte_buffer"]["order"] == "LITTLE_ENDIAN"
    decoded = np.frombuffer(base64.b64decode(full["byte_buffer"]["array"]), dtype="<f4")
    assert decoded.tolist() == pytest.approx(full["data"], abs=0)
    for body, keys in [({"result_filter": {"return_number": False, "return_bytes": True}},
                        ["name", "data_type", "shape", "byte_buffer"]),
                       ({"return_number": "false"}, ["name", "data_type", "shape"]),
                       ({"target_response_positions": [0]}, ["name", "data_type", "shape", "data"])]:
        out = ok(engine, "POST", path, {"text_docs": ["a park"], **body})["inference_results"][0]["output"][0]
        assert list(out) == keys, body
    assert ok(engine, "POST", path, {"text_docs": ["a"], "target_response_positions": [5]}) == {"inference_results": [{}]}
    assert error(engine, "POST", path, {"text_docs": "a park"}) == (
        400, "parsing_exception", "Failed to parse object: expecting token of type [START_ARRAY] but found [VALUE_STRING]")
    assert error(engine, "POST", path, {"text_docs": ["a"], "return_number": "maybe"})[2] == \
        "Failed to parse value [maybe] as only [true] or [false] are allowed."


def test_interface_schemas_check_the_predict_input_and_output(engine, service):
    """RestMLRemoteInferenceIT's wrong input / output interfaces: the prompt declared an integer, the output
    an integer: 400s naming the schema to update; a matching interface passes and GET shows it as text."""
    wrong_input = {"input": {"properties": {"parameters": {"properties": {"prompt": {"type": "integer"}}}}}}
    _, model_id = remote(engine, service, interface=wrong_input)
    shown = ok(engine, "GET", f"{ML}/models/{model_id}")["interface"]
    assert json.loads(shown["input"]) == wrong_input["input"] and "output" not in shown
    status, kind, reason = error(engine, "POST", f"{ML}/models/{model_id}/_predict", {"parameters": {"prompt": "hi"}})
    assert (status, kind) == (400, "status_exception")
    assert reason.startswith("Error validating input schema, if you think this is expected, please update your 'input' "
                             "field in the 'interface' field for this model: Validation failed: [/parameters/prompt: "
                             "string found, integer expected] for instance: ")
    assert ok(engine, "POST", f"{ML}/models/{model_id}/_predict", {"parameters": {"prompt": "7"}})  # read back as JSON
    wrong_output = {"output": {"properties": {"inference_results": {"type": "array", "items": {
        "type": "object", "properties": {"output": {"type": "integer"}}}}}}}
    _, out_id = remote(engine, service, interface=wrong_output)
    reason = error(engine, "POST", f"{ML}/models/{out_id}/_predict", {"parameters": {"prompt": "hi"}})[2]
    assert reason.startswith("Error validating output schema, if you think this is expected, please update your "
                             "'output' field in the 'interface' field for this model: Validation failed: "
                             "[/inference_results/0/output: array found, integer expected]")
    status, kind, reason = error(engine, "POST", f"{ML}/models/_register",
                                 {"name": "m", "function_name": "remote", "connector": connector(service),
                                  "interface": {"input": {"type": 3}}})
    assert status == 400 and reason.startswith("[interface.input] is not a JSON schema")


def test_update_endpoints_and_task_delete(engine, service):
    connector_id, model_id = remote(engine, service)
    assert ok(engine, "PUT", f"{ML}/connectors/{connector_id}",
              {"description": "changed", "parameters": {"p": "1"}})["result"] == "updated"
    got = ok(engine, "GET", f"{ML}/connectors/{connector_id}")
    assert (got["description"], got["parameters"], got["name"]) == ("changed", {"p": "1"}, "echo")
    assert "credential" not in got
    ok(engine, "POST", f"{ML}/models/{model_id}/_predict", {"parameters": {"prompt": "still authorised"}})
    assert error(engine, "PUT", f"{ML}/connectors/{connector_id}", {}) == (
        400, "parse_exception", "Failed to update connector: Request body is empty")
    assert error(engine, "PUT", f"{ML}/connectors/{connector_id}", {"name": "x"}) == (
        400, "status_exception", f"1 models are still using this connector, please undeploy the models first: "
                                 f"[{model_id}]")
    ok(engine, "POST", f"{ML}/models/{model_id}/_undeploy")
    assert ok(engine, "PUT", f"{ML}/models/{model_id}", {"name": "renamed", "description": "d"})["result"] == "updated"
    assert ok(engine, "GET", f"{ML}/models/{model_id}")["name"] == "renamed"
    assert error(engine, "PUT", f"{ML}/models/{model_id}") == (400, "parse_exception", "Update model request has empty body")
    assert error(engine, "PUT", f"{ML}/models/{model_id}", {"connector_id": "a", "connector": {}})[2] == (
        "Model cannot have both stand-alone connector and internal connector. Please check your update input body.")
    assert error(engine, "PUT", f"{ML}/models/nope", {"name": "x"}) == (
        404, "status_exception", "Failed to find model to update with the provided model id: nope")
    group_id = ok(engine, "GET", f"{ML}/models/{model_id}")["model_group_id"]
    assert ok(engine, "PUT", f"{ML}/model_groups/{group_id}", {"name": "new group name"}) == {"status": "Updated"}
    assert ok(engine, "GET", f"{ML}/model_groups/{group_id}")["name"] == "new group name"
    task_id = ok(engine, "POST", f"{ML}/models/{model_id}/_deploy")["task_id"]
    assert ok(engine, "DELETE", f"{ML}/tasks/{task_id}")["result"] == "deleted"
    assert error(engine, "GET", f"{ML}/tasks/{task_id}") == (404, "status_exception", "Failed to find task")
