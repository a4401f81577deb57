"""A deployment's inference queue: concurrent ``_infer`` calls (HTTP, ``Engine.request`` and
``df.infer.run`` alike) gathered into shared model calls, each caller getting its own answer;
ES's 429 when ``queue_capacity`` is exceeded, 408 on ``timeout``, errors kept to their caller.

The model is a held text model: it blocks until the test opens its gate, so a queue builds up
behind the batch it is running, and it records every batch it is given.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pandas as pd
import pytest
from elasticsearch import ApiError as ClientApiError
from elasticsearch import Elasticsearch

import es_infer_nb  # noqa: F401  (registers the df.infer accessor)
from es_infer_nb import Engine
from es_infer_nb.models import deployments as deployments_module
from es_infer_nb.models.doc_columns import DocsResult
from es_infer_nb.models.nlp_backend import text_input
from helpers import wait_until

MODEL = "held"


class HeldModel:
    """``predicted_value`` = [length of the text]; a text ``boom`` makes the whole call raise."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.gate = threading.Event()
        self.entered = threading.Event()

    def infer(self, docs: list[dict[str, Any]], update: Any = None, *, field: str | None = None) -> DocsResult:
        texts = [text_input(doc, field or "text_field") for doc in docs]
        self.batches.append([t if isinstance(t, str) else "<missing>" for t in texts])
        self.entered.set()
        assert self.gate.wait(30), "the test never opened the gate"
        if "boom" in texts:
            raise RuntimeError("the model crashed on [boom]")
        return DocsResult(MODEL, [{"predicted_value": [float(len(t))]} if isinstance(t, str) else {"error": t.reason}
                                  for t in texts])


@pytest.fixture
def model(monkeypatch) -> HeldModel:
    held = HeldModel()
    monkeypatch.setattr(deployments_module, "load_backend", lambda *args, **kwargs: held)
    return held


def deploy(engine: Engine, **params: Any) -> None:
    r = engine.request("PUT", f"_ml/trained_models/{MODEL}", {
        "model_type": "pytorch", "model_size_bytes": 10, "input": {"field_names": ["text_field"]},
        "inference_config": {"pass_through": {"tokenization": {"bert": {}}}}})
    assert r.status == 200, r.body
    r = engine.request("POST", f"_ml/trained_models/{MODEL}/deployment/_start", params={"cache_size": "0b", **params})
    assert r.status == 200, r.body


def infer_body(texts: list[str]) -> dict[str, Any]:
    return {"docs": [{"text_field": t} for t in texts]}


def expected(texts: list[str]) -> list[dict[str, Any]]:
    return [{"predicted_value": [float(len(t))]} for t in texts]


def queue(engine: Engine):
    return deployments_module.deployments(engine).require(MODEL)



def node_stats(engine: Engine) -> dict[str, Any]:
    r = engine.request("GET", f"_ml/trained_models/{MODEL}/_stats")
    assert r.status == 200, r.body
    return r.body["trained_model_stats"][0]["deployment_stats"]


def hold_first_call(engine: Engine, model: HeldModel, pool: ThreadPoolExecutor):
    """A first call that occupies the model until the gate opens."""
    first = pool.submit(engine.request, "POST", f"_ml/trained_models/{MODEL}/_infer", infer_body(["first"]))
    assert model.entered.wait(30)
    return first


def test_concurrent_engine_calls_share_one_model_call_each_getting_its_own(engine, model):
    deploy(engine)
    calls = [[f"text {c}-{i}" + "x" * c for i in range(3)] for c in range(11)]
    with ThreadPoolExecutor(12) as pool:
        first = hold_first_call(engine, model, pool)
        futures = [pool.submit(engine.request, "POST", f"_ml/trained_models/{MODEL}/_infer", infer_body(texts))
                   for texts in calls]
        # the callers wait outside the engine's lock, so all of them reach the queue
        wait_until(lambda: queue(engine).queue.queued == 33, "33 queued documents")
        assert node_stats(engine)["nodes"][0]["number_of_pending_requests"] == 34  # 33 queued + 1 running
        model.gate.set()
        answers = [f.result(30) for f in futures]
    assert first.result(30).status == 200
    for texts, answer in zip(calls, answers):
        assert answer.status == 200, answer.body
        assert answer.body["inference_results"] == expected(texts)
    assert [len(b) for b in model.batches] == [1, 33]  # the 11 waiting calls ran as one model call
    assert sorted(model.batches[1]) == sorted(t for texts in calls for t in texts)
    # the same calls one after the other give the same answers
    sequential = [engine.request("POST", f"_ml/trained_models/{MODEL}/_infer", infer_body(texts)) for texts in calls]
    assert [r.body for r in sequential] == [a.body for a in answers]
    stats = node_stats(engine)
    assert stats["inference_count"] == 1 + 33 + 33
    assert stats["nodes"][0]["number_of_pending_requests"] == 0


def test_http_clients_and_a_dataframe_share_model_calls(engine, model, server):
    deploy(engine)
    calls = [[f"client {c} doc {i}" for i in range(8)] for c in range(6)]
    frame = pd.DataFrame({"text_field": [f"row {i}" for i in range(5)]})

    def client_call(texts: list[str]) -> Any:
        with Elasticsearch(server.url, request_timeout=60) as es:
            return es.ml.infer_trained_model(model_id=MODEL, docs=[{"text_field": t} for t in texts])

    with ThreadPoolExecutor(8) as pool:
        hold_first_call(engine, model, pool)
        futures = [pool.submit(client_call, texts) for texts in calls]
        wait_until(lambda: queue(engine).queue.queued == 48, "the HTTP calls")
        local = pool.submit(lambda: frame.infer.run(MODEL, engine=engine, progress=False))
        wait_until(lambda: queue(engine).queue.queued == 53, "the DataFrame rows")
        model.gate.set()
        results = [f.result(30) for f in futures]
        ran = local.result(30)
    for texts, res in zip(calls, results):
        assert res["inference_results"] == expected(texts)
    assert list(ran["ml.inference.predicted_value"]) == [[float(len(t))] for t in frame["text_field"]]
    assert [len(b) for b in model.batches] == [1, 53]


def test_a_full_queue_answers_429_and_counts_the_rejection(engine, model, server):
    deploy(engine, queue_capacity="4")
    with ThreadPoolExecutor(4) as pool:
        first = hold_first_call(engine, model, pool)
        waiting = pool.submit(engine.request, "POST", f"_ml/trained_models/{MODEL}/_infer",
                              infer_body(["a", "b", "c", "d"]))
        wait_until(lambda: queue(engine).queue.queued == 4, "a full queue")
        raw = httpx.post(f"{server.url}/_ml/trained_models/{MODEL}/_infer", json=infer_body(["e"]), timeout=30)
        assert raw.status_code == 429
        assert raw.headers["x-elastic-product"] == "Elasticsearch"
        err = raw.json()["error"]
        assert (err["type"], err["reason"]) == ("es_rejected_execution_exception",
                                                "inference process queue is full. Unable to execute command")
        assert err["root_cause"][0]["type"] == "es_rejected_execution_exception" and raw.json()["status"] == 429
        with Elasticsearch(server.url, request_timeout=30, retry_on_status=()) as es:
            with pytest.raises(ClientApiError) as refused:
                es.ml.infer_trained_model(model_id=MODEL, docs=[{"text_field": "f"}, {"text_field": "g"}])
        assert refused.value.meta.status == 429
        stats = node_stats(engine)
        assert stats["rejected_execution_count"] == 3 and stats["nodes"][0]["rejected_execution_count"] == 3
        model.gate.set()
        assert first.result(30).status == 200
        assert waiting.result(30).body["inference_results"] == expected(["a", "b", "c", "d"])
    assert httpx.post(f"{server.url}/_ml/trained_models/{MODEL}/_infer", json=infer_body(["e"]),
                      timeout=30).status_code == 200  # room again
    assert all("e" not in b for b in model.batches[:-1])  # the refused calls never ran


def test_a_failing_call_fails_alone_inside_a_merged_batch(engine, model):
    deploy(engine)
    bodies = {"good": infer_body(["x", "yy"]), "bad": infer_body(["boom"]),
              "missing": {"docs": [{"other": 1}, {"text_field": "zzz"}]}}
    with ThreadPoolExecutor(4) as pool:
        hold_first_call(engine, model, pool)
        futures = {}
        for name, body in bodies.items():
            futures[name] = pool.submit(engine.request, "POST", f"_ml/trained_models/{MODEL}/_infer", body)
            wait_until(lambda: queue(engine).queue.queued == sum(len(bodies[n]["docs"]) for n in futures), name)
        model.gate.set()
        answers = {name: f.result(30) for name, f in futures.items()}
    assert answers["good"].status == 200 and answers["good"].body["inference_results"] == expected(["x", "yy"])
    assert answers["bad"].status == 500 and "the model crashed on [boom]" in answers["bad"].body["error"]["reason"]
    assert answers["missing"].status == 200 and answers["missing"].body["inference_results"] == [
        {"error": "Input field [text_field] does not exist in the source document"}, {"predicted_value": [3.0]}]
    # merged first, then call by call once the merged batch failed
    assert model.batches[1] == ["x", "yy", "boom", "<missing>", "zzz"]
    assert model.batches[2:] == [["x", "yy"], ["boom"], ["<missing>", "zzz"]]
    assert node_stats(engine)["error_count"] == 2  # the crashed call and the missing field


def test_timeout_answers_408_and_the_call_never_runs(engine, model, server):
    deploy(engine)
    with ThreadPoolExecutor(2) as pool:
        first = hold_first_call(engine, model, pool)
        late = httpx.post(f"{server.url}/_ml/trained_models/{MODEL}/_infer?timeout=100ms",
                          json=infer_body(["late"]), timeout=30)
        assert late.status_code == 408
        assert late.json()["error"]["type"] == "status_exception"
        assert late.json()["error"]["reason"] == "timeout [100ms] waiting for inference result"
        stats = node_stats(engine)
        assert stats["timeout_count"] == 1 and stats["nodes"][0]["timeout_count"] == 1
        model.gate.set()
        assert first.result(30).status == 200
    r = engine.request("POST", f"_ml/trained_models/{MODEL}/_infer?timeout=30s", infer_body(["on time"]))
    assert r.status == 200 and r.body["inference_results"] == expected(["on time"])
    assert ["late"] not in model.batches
    bad = engine.request("POST", f"_ml/trained_models/{MODEL}/_infer?timeout=soon", infer_body(["x"]))
    assert bad.status == 400 and "failed to parse setting [timeout]" in bad.body["error"]["reason"]


def test_stopping_answers_the_queued_calls_first(engine, model):
    deploy(engine)
    with ThreadPoolExecutor(3) as pool:
        first = hold_first_call(engine, model, pool)
        queued = pool.submit(engine.request, "POST", f"_ml/trained_models/{MODEL}/_infer", infer_body(["q"]))
        wait_until(lambda: queue(engine).queue.queued == 1, "the queued call")
        stop = pool.submit(engine.request, "POST", f"_ml/trained_models/{MODEL}/deployment/_stop")
        model.gate.set()
        assert stop.result(30).body == {"stopped": True}
        assert first.result(30).status == 200
        assert queued.result(30).body["inference_results"] == expected(["q"])
    after = engine.request("POST", f"_ml/trained_models/{MODEL}/_infer", infer_body(["x"]))
    assert after.status == 409
