"""backends.resolve: one backend per kind for model ids, aliases, deployment ids and endpoint ids."""

from __future__ import annotations

import pandas as pd
import pytest
from helpers import stump_regression

from es_infer_nb import ApiError
from es_infer_nb.backends import EndpointBackend, NlpBackend, OpenSearchBackend, TreeBackend, resolve
from es_infer_nb.models.nlp import EMBEDDED_MODEL_ID


def ok(resp):
    assert resp.ok, resp.body
    return resp.body


@pytest.fixture
def eng(engine):
    ok(engine.request("PUT", "_ml/trained_models/stump", stump_regression()))
    ok(engine.request("PUT", "_ml/trained_models/stump/model_aliases/stump-alias"))
    ok(engine.request("PUT", "_inference/text_embedding/local", {"service": "elasticsearch", "service_settings": {
        "model_id": EMBEDDED_MODEL_ID, "num_allocations": 1, "num_threads": 1}}))
    return engine


def test_each_kind_of_id_gets_its_backend(eng):
    assert isinstance(resolve(eng, "stump"), TreeBackend)
    assert isinstance(resolve(eng, "stump-alias"), TreeBackend)
    assert isinstance(resolve(eng, EMBEDDED_MODEL_ID), NlpBackend)
    assert isinstance(resolve(eng, "local"), EndpointBackend)
    # _infer and non-remote ml_inference name trained models only
    assert not isinstance(resolve(eng, "local", endpoints=False), EndpointBackend)
    assert [resolve(eng, i).kind for i in ("stump", EMBEDDED_MODEL_ID, "local")] == ["tree", "nlp", "endpoint"]


def test_a_deployment_id_is_served_by_its_model(eng):
    ok(eng.request("POST", f"_ml/trained_models/{EMBEDDED_MODEL_ID}/deployment/_start",
                   params={"deployment_id": "my-dep", "wait_for": "started"}))
    backend = resolve(eng, "my-dep")
    assert isinstance(backend, NlpBackend)
    assert backend.deployment().model_id == EMBEDDED_MODEL_ID


def test_the_tree_backend_runs_documents_and_columns_as_infer_does(eng):
    backend = resolve(eng, "stump-alias")
    docs = backend.infer_docs([{"x": 0.0}, {"x": 1.0}]).to_docs()
    assert [d["predicted_value"] for d in docs] == [1.0, 2.0]
    assert docs == ok(eng.request("POST", "_ml/trained_models/stump/_infer",
                                  {"docs": [{"x": 0.0}, {"x": 1.0}]}))["inference_results"]
    frame = backend.infer_frame(pd.DataFrame({"x": [0.0, 1.0]}, index=[7, 8]), progress=False)
    assert frame["ml.inference.predicted_value"].tolist() == [1.0, 2.0]
    assert list(frame.index) == [7, 8]
    declared = backend.declared_columns({})
    assert set(frame.columns) <= set(declared)


def test_an_unknown_id_is_the_model_stores_404_where_it_runs(eng):
    backend = resolve(eng, "nope")  # resolving never fails; running does, as it always did
    assert isinstance(backend, TreeBackend)
    for call in (lambda: backend.infer_docs([{"x": 1}]), lambda: backend.declared_columns({}),
                 lambda: backend.infer_frame(pd.DataFrame({"x": [1.0]}))):
        with pytest.raises(ApiError) as err:
            call()
        assert err.value.status == 404 and "Could not find trained model [nope]" in str(err.value)
    answer = eng.request("POST", "_ml/trained_models/nope/_infer", {"docs": [{"x": 1}]})
    assert answer.status == 404 and answer.body["error"]["type"] == "resource_not_found_exception"


def test_input_output_on_a_tree_model_is_refused_by_every_path(eng):
    backend = resolve(eng, "stump")
    with pytest.raises(ApiError, match="only supported for NLP models"):
        backend.declared_columns({"input_output": {"input_field": "x", "output_field": "y"}})
    with pytest.raises(ApiError, match="only supported for NLP models"):
        backend.infer_frame(pd.DataFrame({"x": ["a"]}), input_output={"input_field": "x", "output_field": "y"})


def test_endpoint_declared_columns_match_the_dask_declaration(eng):
    from es_infer_nb.frames.meta import run_columns

    declared = resolve(eng, "local").declared_columns({})
    assert declared == run_columns(eng, "local", {})
    assert list(declared) == ["ml.inference.predicted_value", "ml.inference.model_id", "ml.inference.predicted_value.error"]


def test_an_opensearch_model_is_resolved_only_where_callers_take_one(eng):
    from opensearch_services import connector_body, start

    server = start()
    try:
        connector = eng.request("POST", "_plugins/_ml/connectors/_create", connector_body(server)).body["connector_id"]
        model_id = ok(eng.request("POST", "_plugins/_ml/models/_register",
                                  {"name": "loopback", "function_name": "remote", "connector_id": connector}))["model_id"]
        backend = resolve(eng, model_id, opensearch=True)
        assert isinstance(backend, OpenSearchBackend) and backend.kind == "opensearch"
        assert isinstance(resolve(eng, model_id), TreeBackend)  # ES's paths: not a trained model, their 404
        with pytest.raises(ApiError) as err:
            resolve(eng, model_id).infer_docs([{"x": 1}])
        assert err.value.status == 404
        with pytest.raises(ApiError, match="OpenSearch ml-commons model"):
            backend.infer_frame(pd.DataFrame({"x": [1]}))
    finally:
        server.stop()


def test_each_backend_names_the_fields_it_reads(eng):
    assert resolve(eng, "stump").input_fields() == ["x"] and resolve(eng, "stump").text_field() is None
    assert resolve(eng, "stump-alias").input_fields() == ["x"]
    nlp = resolve(eng, EMBEDDED_MODEL_ID)
    assert nlp.input_fields() == ["text_field"] and nlp.text_field() == "text_field"
    endpoint = resolve(eng, "local")
    assert endpoint.text_field() == "text_field" and endpoint.input_fields() is None
    unknown = resolve(eng, "nope")
    assert unknown.input_fields() is None and unknown.text_field() is None


def test_a_pytorch_models_own_input_field_reaches_the_frame_run(eng, monkeypatch):
    """frames/run asks the backend for a model's text field rather than reading its model_type: the one
    text column of a frame is mapped to it; a backend answering another field moves the map with it."""
    from es_infer_nb.frames.run import model_input_fields, text_field_map

    config = ok(eng.request("GET", f"_ml/trained_models/{EMBEDDED_MODEL_ID}"))["trained_model_configs"][0]
    assert config["model_type"] == "pytorch"
    frame = pd.DataFrame({"words": ["a fox"], "n": [1]})
    assert text_field_map(eng, EMBEDDED_MODEL_ID, frame, None) == {"words": "text_field"}
    assert model_input_fields(eng, EMBEDDED_MODEL_ID) == ["text_field"]
    assert text_field_map(eng, "stump", frame, None) is None  # a tree model reads no one text field
    monkeypatch.setattr(NlpBackend, "text_field", lambda self: "body")
    assert text_field_map(eng, EMBEDDED_MODEL_ID, frame, None) == {"words": "body"}
    assert model_input_fields(eng, EMBEDDED_MODEL_ID) == ["body"]
