"""The device reaches a frame's pipeline run as a parameter (issue 18): the models the run loads, and a
deployment it starts on first use, run there; the engine's own device is never changed for the call.

The engine here names ``cuda`` and the call ``cpu``: on a machine without CUDA a model that took the
engine's device would fail to load, so a run that succeeds shows the parameter was used (and on one
with CUDA the loaded model's device says it)."""

from __future__ import annotations

import pandas as pd
import pytest
from helpers import stump_regression

import es_infer_nb  # noqa: F401 - registers df.infer
from es_infer_nb.engine import Engine
from es_infer_nb.frames.pipeline import run_frame_pipeline
from es_infer_nb.models import runner
from es_infer_nb.models.deployments import deployments
from es_infer_nb.models.nlp import EMBEDDED_MODEL_ID


@pytest.fixture
def engine() -> Engine:
    eng = Engine(device="cuda")
    assert eng.request("PUT", "_ml/trained_models/stump", stump_regression()).ok
    return eng


@pytest.mark.parametrize("columnar", [True, False])
def test_a_tree_model_in_a_pipeline_loads_on_the_call_device(engine, monkeypatch, columnar):
    seen = []
    original = runner.load_model

    def spy(eng, model_id, device=None):
        seen.append((device, eng.device))
        return original(eng, model_id, device)

    monkeypatch.setattr(runner, "load_model", spy)
    frame = pd.DataFrame({"x": [0.0, 1.0]})
    body = {"processors": [{"inference": {"model_id": "stump"}}]}
    out = run_frame_pipeline(engine, frame, body, device="cpu", columnar=columnar)
    assert out["ml.inference.predicted_value"].tolist() == [1.0, 2.0]
    assert seen and all(s == ("cpu", "cuda") for s in seen)  # the call's device; the engine's left as it was
    assert engine.device == "cuda"


def test_the_accessor_passes_its_device(engine, monkeypatch):
    seen = []
    original = runner.load_model
    monkeypatch.setattr(runner, "load_model", lambda eng, m, device=None: seen.append(device) or original(eng, m, device))
    out = pd.DataFrame({"x": [0.0, 1.0]}).infer.pipeline({"processors": [{"inference": {"model_id": "stump"}}]},
                                                         engine=engine, device="cpu")
    assert out["ml.inference.predicted_value"].tolist() == [1.0, 2.0]
    assert seen and set(seen) == {"cpu"}
    assert engine.device == "cuda"


def test_a_deployment_started_on_first_use_by_a_pipeline_gets_the_call_device(engine):
    frame = pd.DataFrame({"text_field": ["a fox", "a dog"]})
    body = {"processors": [{"inference": {"model_id": EMBEDDED_MODEL_ID}}]}
    out = run_frame_pipeline(engine, frame, body, device="cpu")
    assert "_ingest.error.type" not in out.columns
    vectors = out["ml.inference.predicted_value"].tolist()
    assert len(vectors) == 2 and len(vectors[0]) == 384
    dep = deployments(engine).get(EMBEDDED_MODEL_ID)
    assert dep is not None and dep.default_device == "cpu"
    assert dep.params.device is None  # the deployment names no device of its own, as when started by _infer
    assert engine.device == "cuda"


def test_without_a_device_a_deployment_started_on_first_use_gets_the_engines():
    eng = Engine(device="cpu")
    dep = deployments(eng).for_inference(EMBEDDED_MODEL_ID)
    assert dep is not None and dep.default_device == "cpu"


# -- ml_inference (OpenSearch) over a trained model or an endpoint: the run's device travels too ------------

ML_INFERENCE_TREE = {"processors": [{"ml_inference": {"model_id": "stump", "input_map": [{"x": "x"}],
                                                      "output_map": [{"pred": "predicted_value"}]}}]}


@pytest.mark.parametrize("columnar", [True, False])
def test_ml_inference_over_a_tree_model_loads_on_the_call_device(engine, monkeypatch, columnar):
    seen = []
    original = runner.load_model
    monkeypatch.setattr(runner, "load_model",
                        lambda eng, m, device=None: seen.append((device, eng.device)) or original(eng, m, device))
    out = run_frame_pipeline(engine, pd.DataFrame({"x": [0.0, 1.0]}), ML_INFERENCE_TREE, device="cpu",
                             columnar=columnar)
    assert "_ingest.error.type" not in out.columns
    assert out["pred"].tolist() == [1.0, 2.0]
    assert seen and all(s == ("cpu", "cuda") for s in seen)
    assert engine.device == "cuda"


def test_the_simulate_accessor_passes_its_device_to_ml_inference(engine, monkeypatch):
    seen = []
    original = runner.load_model
    monkeypatch.setattr(runner, "load_model",
                        lambda eng, m, device=None: seen.append(device) or original(eng, m, device))
    answer = pd.DataFrame({"x": [0.0, 1.0]}).infer.simulate(ML_INFERENCE_TREE, engine=engine, device="cpu")
    assert [d["doc"]["_source"]["pred"] for d in answer["docs"]] == [1.0, 2.0]
    assert seen and set(seen) == {"cpu"}
    assert engine.device == "cuda"


def test_ml_inference_over_a_local_nlp_model_starts_its_deployment_on_the_call_device(engine):
    body = {"processors": [{"ml_inference": {"model_id": EMBEDDED_MODEL_ID, "input_map": [{"text_field": "t"}],
                                             "output_map": [{"vec": "predicted_value"}]}}]}
    out = run_frame_pipeline(engine, pd.DataFrame({"t": ["a fox", "a dog"]}), body, device="cpu")
    assert "_ingest.error.type" not in out.columns
    assert len(out["vec"].tolist()[0]) == 384
    dep = deployments(engine).get(EMBEDDED_MODEL_ID)
    assert dep is not None and dep.default_device == "cpu" and dep.params.device is None
    assert engine.device == "cuda"


def test_ml_inference_over_an_endpoint_runs_its_local_model_on_the_call_device(engine, monkeypatch):
    from es_infer_nb.services import elasticsearch as es_service

    assert engine.request("PUT", "_inference/text_embedding/local-ep", {"service": "elasticsearch",
                          "service_settings": {"model_id": "stump", "num_allocations": 1, "num_threads": 1}}).ok
    seen = []
    monkeypatch.setattr(es_service.ElasticsearchService, "_engine_model",
                        lambda self, eng, model_id, inputs, ctx: seen.append(ctx.device) or
                        es_service.TaskOutput("text_embedding", [{"embedding": [1.0]} for _ in inputs]))
    body = {"processors": [{"ml_inference": {"model_id": "local-ep", "input_map": [{"input": "t"}],
                                             "output_map": [{"vec": "text_embedding[0].embedding"}]}}]}
    out = run_frame_pipeline(engine, pd.DataFrame({"t": ["a fox"]}), body, device="cpu")
    assert "_ingest.error.type" not in out.columns, out.to_dict()
    assert out["vec"].tolist() == [[1.0]]
    assert seen == ["cpu"]
    assert engine.device == "cuda"


# -- the device of a REST call is a parameter of that call: calls side by side keep their own ----------------

def test_two_requests_with_different_devices_side_by_side_each_see_their_own(engine, monkeypatch):
    import threading

    both_in = threading.Barrier(2)
    seen: dict[str, str | None] = {}
    original = runner.load_model

    def spy(eng, model_id, device=None):
        seen[threading.current_thread().name] = device
        both_in.wait(timeout=10)  # both calls are inside the model load at once
        return original(eng, model_id, "cpu")

    monkeypatch.setattr(runner, "load_model", spy)
    answers: dict[str, int] = {}

    def call(device: str) -> None:
        resp = engine.request("POST", "_ml/trained_models/stump/_infer", {"docs": [{"x": 0.9}]}, device=device)
        answers[device] = resp.status

    threads = [threading.Thread(target=call, args=(d,), name=d) for d in ("cpu", "cuda:7")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert answers == {"cpu": 200, "cuda:7": 200}
    assert seen == {"cpu": "cpu", "cuda:7": "cuda:7"}
    assert engine.device == "cuda"


def test_a_deployment_start_request_names_the_call_device(engine):
    resp = engine.request("POST", f"_ml/trained_models/{EMBEDDED_MODEL_ID}/deployment/_start", device="cpu")
    assert resp.ok, resp.body
    dep = deployments(engine).get(EMBEDDED_MODEL_ID)
    assert dep is not None and dep.default_device == "cpu" and dep.params.device is None
    assert engine.device == "cuda"


# -- OpenSearch ml-commons local models: the call's device reaches them, one loaded model per device --------

@pytest.fixture
def ml_local(tmp_path, monkeypatch):
    """An engine on ``cuda`` with a TorchScript text embedding model registered (not deployed) from a
    path, and the devices each load of it was asked for (each loads on ``cpu`` whatever it names)."""
    pytest.importorskip("transformers")
    pytest.importorskip("tokenizers")
    from ml_local_models import build

    from es_infer_nb.services import ml_commons as ml_commons_service

    folder = build(tmp_path, "embedding")[0]
    eng = Engine(device="cuda", ml_model_paths=[tmp_path])
    resp = eng.request("POST", "_plugins/_ml/models/_register", {
        "name": "tiny", "function_name": "text_embedding", "model_format": "TORCH_SCRIPT", "url": str(folder),
        "model_config": {"model_type": "bert", "embedding_dimension": 32,
                         "framework_type": "huggingface_transformers"}})
    assert resp.status == 200, resp.body
    model_id = eng.request("GET", f"_plugins/_ml/tasks/{resp.body['task_id']}").body["model_id"]
    loads: list[str | None] = []

    class Spy(ml_commons_service.LocalModel):
        def __init__(self, mid, doc, roots, device, trusted):
            loads.append(device)
            super().__init__(mid, doc, roots, "cpu", trusted)

    monkeypatch.setattr(ml_commons_service, "LocalModel", Spy)
    return eng, model_id, loads


def test_ml_inference_over_an_ml_commons_local_model_runs_on_the_call_device(ml_local):
    eng, model_id, loads = ml_local
    body = {"processors": [{"ml_inference": {"model_id": model_id, "function_name": "text_embedding",
                                             "model_input": '{ "text_docs": ["${input_map.text}"] }',
                                             "input_map": [{"text": "t"}],
                                             "output_map": [{"vec": "$.inference_results[0].output[0].data"}]}}]}
    frame = pd.DataFrame({"t": ["a fox", "a dog"]})
    out = run_frame_pipeline(eng, frame, body, device="cpu")
    assert "_ingest.error.type" not in out.columns, out.to_dict()
    assert len(out["vec"].tolist()[0]) == 32
    assert loads == ["cpu"]  # auto-deployed on the call's device, not the engine's cuda
    run_frame_pipeline(eng, frame, body, device="cpu")
    assert loads == ["cpu"]  # loaded once per (model, device)
    assert eng.device == "cuda"


def test_the_predict_api_loads_one_model_per_device(ml_local):
    eng, model_id, loads = ml_local
    body = {"text_docs": ["a fox"]}
    for device in ("cpu", "cpu", "cuda:7", "cuda:7"):
        resp = eng.request("POST", f"_plugins/_ml/models/{model_id}/_predict", body, device=device)
        assert resp.status == 200, resp.body
        assert len(resp.body["inference_results"][0]["output"][0]["data"]) == 32
    assert loads == ["cpu", "cuda:7"]  # the cache is keyed by (model id, device)
    assert eng.request("POST", f"_plugins/_ml/models/{model_id}/_predict", body).status == 200
    assert loads == ["cpu", "cuda:7", "cuda"]  # no device named: the engine's, read at call time
    assert eng.request("POST", f"_plugins/_ml/models/{model_id}/_undeploy").status == 200
    assert eng.request("POST", f"_plugins/_ml/models/{model_id}/_predict", body, device="cpu").status == 200
    assert loads == ["cpu", "cuda:7", "cuda", "cpu"]  # undeploy forgot every device's copy


# -- df.infer.rerank: the endpoint's local rerank model runs on the call's device ---------------------------

def test_rerank_runs_the_endpoints_local_model_on_the_call_device(engine, monkeypatch):
    from es_infer_nb.notebook.options import options
    from es_infer_nb.services import elasticsearch as es_service

    assert engine.request("PUT", "_inference/rerank/local-rr", {"service": "elasticsearch",
                          "service_settings": {"model_id": "stump", "num_allocations": 1, "num_threads": 1}}).ok
    seen = []

    def spy(self, eng, model_id, inputs, ctx):
        seen.append(ctx.device)
        scored = [{"index": i, "relevance_score": float(len(t))} for i, t in enumerate(inputs)]
        return es_service.TaskOutput("rerank", scored, sorted(scored, key=lambda e: -e["relevance_score"]))

    monkeypatch.setattr(es_service.ElasticsearchService, "_engine_model", spy)
    frame = pd.DataFrame({"n": [1, 2, 3], "text": ["ab", "abcd", "abc"]})
    out = frame.infer.rerank("q", "local-rr", engine=engine, device="cpu")
    assert list(out["n"]) == [2, 3, 1] and out["relevance_score"].tolist() == [4.0, 3.0, 2.0]
    assert seen == ["cpu"]
    frame.infer.rerank("q", "local-rr", engine=engine)
    assert seen == ["cpu", None]  # no device: the engine's (the service reads it when it runs)
    monkeypatch.setattr(options, "device", "cuda:3")
    frame.infer.rerank("q", "local-rr", engine=engine)
    assert seen == ["cpu", None, "cuda:3"]  # the notebook's default (%config InferMagic.device)
    assert engine.device == "cuda"
