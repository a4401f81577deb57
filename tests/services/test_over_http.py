"""The ``_inference`` API over the HTTP server, driven by the official elasticsearch client."""

from __future__ import annotations

import pytest
from endpoint_servers import vector

from es_infer_nb.server import serve


@pytest.fixture
def es(engine):
    from elasticsearch import Elasticsearch

    handle = serve(engine, port=0, quiet=True)
    client = Elasticsearch(handle.url, request_timeout=30)
    try:
        yield client
    finally:
        client.close()
        handle.stop()


def test_elasticsearch_client_inference_calls(es, model_server):
    config = {"service": "custom", "service_settings": {
        "url": f"{model_server.url}/ali-embeddings", "secret_parameters": {"api_key": "wire-secret-1"},
        "headers": {"Authorization": "Bearer ${api_key}"}, "request": '{"input": ${input}}',
        "response": {"json_parser": {"text_embeddings": "$.result.embeddings[*].embedding"}}}}
    put = es.inference.put(task_type="text_embedding", inference_id="wire", inference_config=config)
    assert put["inference_id"] == "wire" and "wire-secret-1" not in str(put.body)
    got = es.inference.get(inference_id="wire")
    assert got["endpoints"][0]["service_settings"]["url"].endswith("/ali-embeddings")
    answer = es.inference.inference(task_type="text_embedding", inference_id="wire", input=["a", "bc"])
    assert answer.body == {"text_embedding": [{"embedding": vector("a")}, {"embedding": vector("bc")}]}
    assert es.inference.delete(inference_id="wire")["acknowledged"] is True
