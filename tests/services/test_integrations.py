"""Endpoints wherever a model id goes: inference processor, ml_inference remote, df.infer, %%infer,
and the elasticsearch service on the bundled MiniLM."""

from __future__ import annotations

import pandas as pd
import pytest
from endpoint_servers import ali_embeddings, ok, vector

from es_infer_nb.errors import ApiError
from es_infer_nb.services import infer_endpoint


@pytest.fixture
def emb(engine, model_server):
    ok(engine.request("PUT", "_inference/text_embedding/emb", ali_embeddings(
        f"{model_server.url}/ali-embeddings", batch_size=2)))
    return "emb"


def _simulate(engine, processors, docs):
    body = {"pipeline": {"processors": processors}, "docs": [{"_source": d} for d in docs]}
    return ok(engine.request("POST", "_ingest/pipeline/_simulate", body))["docs"]


def test_infer_endpoint_runner(engine, emb):
    assert infer_endpoint(engine, emb, ["a", "bb"]) == [{"embedding": vector("a")}, {"embedding": vector("bb")}]
    with pytest.raises(ApiError) as err:
        infer_endpoint(engine, emb, ["a"], task_type="rerank")
    assert err.value.status == 400
    with pytest.raises(ApiError):
        infer_endpoint(engine, "missing", ["a"])


def test_inference_processor_with_an_endpoint(engine, emb):
    docs = _simulate(engine, [{"inference": {"model_id": emb, "input_output": {
        "input_field": "body", "output_field": "body_vec"}}}],
        [{"body": "hello"}, {"body": "abc"}, {"body": "FAIL me"}])  # batches of 2: the 2nd call fails
    assert docs[0]["doc"]["_source"]["body_vec"] == vector("hello")
    assert docs[0]["doc"]["_source"]["model_id"] == emb
    assert docs[1]["doc"]["_source"]["body_vec"] == vector("abc")
    assert "model crashed on a FAIL input" in docs[2]["error"]["reason"]
    target = _simulate(engine, [{"inference": {"model_id": emb, "field_map": {"body": "text_field"}}}],
                       [{"body": "xy"}])
    assert target[0]["doc"]["_source"]["ml"]["inference"] == {"predicted_value": vector("xy"), "model_id": emb}


def test_ml_inference_remote_with_an_endpoint(engine, emb):
    docs = _simulate(engine, [{"ml_inference": {
        "model_id": emb, "function_name": "remote", "input_map": [{"input": "body"}],
        "output_map": [{"body_vec": "text_embedding[0].embedding"}]}}], [{"body": "hello"}])
    assert docs[0]["doc"]["_source"]["body_vec"] == vector("hello")


def test_frame_accessor_with_an_endpoint(engine, emb):
    df = pd.DataFrame({"text": ["a", "ccc", "FAIL"]}, index=[10, 11, 12])
    out = df.infer.run(emb, engine=engine, input_output={"input_field": "text", "output_field": "vec"})
    assert list(out.index) == [10, 11, 12]
    assert out.loc[10, "vec"] == vector("a") and out.loc[11, "vec"] == vector("ccc")
    assert out.loc[12, "vec"] is None and "FAIL" in out.loc[12, "vec.error"]
    assert out.loc[10, "model_id"] == emb
    plain = pd.DataFrame({"body": ["q"]}).infer.run(emb, engine=engine, field_map={"body": "text_field"})
    assert plain.loc[0, "ml.inference.predicted_value"] == vector("q")


def test_infer_magic_sends_inference_requests(engine, emb):
    from IPython.testing import globalipapp

    from es_infer_nb import set_default_engine

    globalipapp.start_ipython()
    ip = globalipapp.get_ipython()
    ip.run_line_magic("load_ext", "es_infer_nb")
    set_default_engine(engine)
    try:
        ip.run_cell_magic("infer", "--out r -q", 'POST _inference/text_embedding/emb\n{"input": ["magic"]}')
        assert ip.user_ns["r"] == {"text_embedding": [{"embedding": vector("magic")}]}
    finally:
        set_default_engine(None)
        ip.user_ns.pop("r", None)


def test_elasticsearch_service_on_the_bundled_minilm_switches_with_the_endpoint(engine, model_server):
    from es_infer_nb.models.nlp import EMBEDDED_MODEL_ID
    from es_infer_nb.models.nlp.embedded import get_model

    ok(engine.request("PUT", "_inference/text_embedding/local", {"service": "elasticsearch", "service_settings": {
        "model_id": EMBEDDED_MODEL_ID, "num_allocations": 1, "num_threads": 1}}))
    got = ok(engine.request("POST", "_inference/local", {"input": ["a sentence", "another"]}))["text_embedding"]
    expected = get_model().embed(["a sentence", "another"])
    assert len(got[0]["embedding"]) == 384
    assert got[0]["embedding"] == pytest.approx([float(x) for x in expected[0]], abs=1e-6)
    # the same pipeline, local then remote: only the endpoint changes
    pipeline = [{"inference": {"model_id": "vecs", "input_output": {"input_field": "t", "output_field": "v"}}}]
    engine.request("PUT", "_inference/text_embedding/vecs", {"service": "elasticsearch",
                   "service_settings": {"model_id": EMBEDDED_MODEL_ID}})
    assert len(_simulate(engine, pipeline, [{"t": "hi"}])[0]["doc"]["_source"]["v"]) == 384
    ok(engine.request("DELETE", "_inference/vecs"))
    ok(engine.request("PUT", "_inference/text_embedding/vecs", ali_embeddings(f"{model_server.url}/ali-embeddings")))
    assert _simulate(engine, pipeline, [{"t": "hi"}])[0]["doc"]["_source"]["v"] == vector("hi")
