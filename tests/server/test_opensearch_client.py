"""The real ``opensearch-py`` client drives ml-commons over ``es-infer serve``, as against a cluster."""

from __future__ import annotations

import json
from typing import Any, Iterator

import pytest

from es_infer_nb.server import ServerHandle
from es_infer_nb.services.loopback import LoopbackServer
from opensearch_services import API_KEY, connector_body, start, vector_of

opensearchpy = pytest.importorskip("opensearchpy")


@pytest.fixture
def client(server: ServerHandle) -> Iterator[Any]:
    client = opensearchpy.OpenSearch(server.url, timeout=60)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def service() -> Iterator[LoopbackServer]:
    server = start()
    try:
        yield server
    finally:
        server.stop()


def test_connector_model_predict_and_pipeline(client, service):
    ml = client.plugins.ml
    connector_id = ml.create_connector(body=connector_body(service))["connector_id"]
    got = ml.get_connector(connector_id=connector_id)
    assert got["name"] == "loopback embeddings" and "credential" not in got
    assert API_KEY not in json.dumps(got)
    found = ml.search_connectors(body={"query": {"match_all": {}}})
    assert [h["_id"] for h in found["hits"]["hits"]] == [connector_id]

    group_id = ml.register_model_group(body={"name": "client group"})["model_group_id"]
    assert ml.get_model_group(model_group_id=group_id)["name"] == "client group"
    registered = ml.register_model(body={"name": "remote", "function_name": "remote", "model_group_id": group_id,
                                         "connector_id": connector_id})
    model_id = registered["model_id"]
    task = ml.get_task(task_id=registered["task_id"])
    assert (task["state"], task["model_id"]) == ("COMPLETED", model_id)
    assert ml.deploy_model(model_id=model_id)["status"] == "COMPLETED"
    assert ml.get_model(model_id=model_id)["model_state"] == "DEPLOYED"

    answer = ml.predict_model(model_id=model_id, body={"parameters": {"input": "over http"}})
    assert answer["inference_results"][0]["output"][0]["dataAsMap"]["data"] == vector_of("over http")

    client.ingest.put_pipeline(id="remote-embed", body={"processors": [{"ml_inference": {
        "model_id": model_id, "input_map": [{"input": "passage_text"}], "output_map": [{"passage_embedding": "data"}]}}]})
    simulated = client.ingest.simulate(id="remote-embed", body={"docs": [{"_source": {"passage_text": "hello world"}}]})
    assert simulated["docs"][0]["doc"]["_source"]["passage_embedding"] == vector_of("hello world")

    models = ml.search_models(body={"query": {"ids": {"values": [model_id]}}})
    assert models["hits"]["total"]["value"] == 1
    assert ml.undeploy_model(model_id=model_id) == {"es-infer-nb-local-node": {"stats": {model_id: "undeployed"}}}
    assert ml.delete_model(model_id=model_id)["result"] == "deleted"
    assert ml.delete_model_group(model_group_id=group_id)["result"] == "deleted"
    assert ml.delete_connector(connector_id=connector_id)["result"] == "deleted"


def test_errors_are_opensearch_exceptions(client, service):
    ml = client.plugins.ml
    with pytest.raises(opensearchpy.NotFoundError) as missing:
        ml.get_model(model_id="no-such-model")
    assert missing.value.status_code == 404
    assert missing.value.info["error"]["reason"] in (  # ml-commons' two messages: before / after a model was stored
        "Fail to find model", "Failed to find model with the provided model id: no-such-model")
    assert missing.value.error == "status_exception"
    connector_id = ml.create_connector(body=connector_body(service))["connector_id"]
    model_id = ml.register_model(body={"name": "r", "function_name": "remote", "connector_id": connector_id})["model_id"]
    with pytest.raises(opensearchpy.RequestError) as bad:
        ml.predict_model(model_id=model_id, body={"parameters": {"not_input": "x"}})
    assert bad.value.info["error"]["reason"] == "Some parameter placeholder not filled in payload: input"


def test_local_model_predict(client):
    ml = client.plugins.ml
    from es_infer_nb.services.ml_commons import MINILM

    task = ml.register_model(body={"name": MINILM, "version": "1.0.1", "model_format": "TORCH_SCRIPT"})
    model_id = ml.get_task(task_id=task["task_id"])["model_id"]
    ml.deploy_model(model_id=model_id)
    answer = ml.predict(algorithm_name="text_embedding", model_id=model_id,
                        body={"text_docs": ["today is sunny"], "return_number": True,
                              "target_response": ["sentence_embedding"]})
    tensor = answer["inference_results"][0]["output"][0]
    assert tensor["name"] == "sentence_embedding" and tensor["shape"] == [384] and len(tensor["data"]) == 384
