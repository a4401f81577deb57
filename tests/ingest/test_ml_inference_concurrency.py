"""``ml_inference`` keeps a batch's calls of a remote model in flight side by side (issue 21, point 4).

A loopback service answers every call after 50 ms and counts the calls per text. 40 documents with two
``input_map`` entries each (80 calls, 4 s one at a time) go through ``_simulate`` and a frame pipeline
over an OpenSearch remote model (``_plugins/_ml`` connector) and over an ``_inference`` endpoint used as
the model: they finish in well under 40 x 50 ms, with exactly one call per document per entry, each
document's answers in its own fields, and the one document the service refuses failing alone.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections import Counter
from typing import Any, Iterator

import pandas as pd
import pytest

from es_infer_nb import Engine
from es_infer_nb.services.loopback import LoopbackServer, Received

LATENCY_S = 0.05
DOCS = 40
ML = "_plugins/_ml"
BAD = "doc 13 body"  # the service refuses this text (a 400: never retried)


class CountingService:
    """Answers ``{"data": vector}`` for ``{"input": text}`` after a fixed latency; counts calls per text."""

    def __init__(self, latency_s: float = LATENCY_S, slow: dict[str, float] | None = None) -> None:
        self.latency_s = latency_s
        self.slow = slow or {}
        self.calls: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.in_flight = 0
        self.most_in_flight = 0
        self.engine: Engine | None = None  # its state lock must be free while the calls run
        self.lock_held_during_calls = 0
        self.server = LoopbackServer(self.answer)

    def answer(self, req: Received) -> tuple[int, Any]:
        body = req.json()
        text = body["input"] if isinstance(body.get("input"), str) else body["input"][0]
        if self.engine is not None:
            if self.engine.lock.acquire(timeout=1.0):
                self.engine.lock.release()
            else:
                with self.lock:
                    self.lock_held_during_calls += 1
        with self.lock:
            self.calls[text] += 1
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            time.sleep(self.slow.get(text, self.latency_s))
        finally:
            with self.lock:
                self.in_flight -= 1
        if text == BAD:
            return 400, {"error": {"message": f"cannot embed [{text}]"}}
        vector = vector_of(text)
        return 200, {"data": vector, "result": {"embeddings": [{"index": 0, "embedding": vector}]}}


def vector_of(text: str) -> list[float]:
    """The service's answer for ``text``: distinct per text, exact in float32."""
    n = sum(ord(c) * (i + 1) for i, c in enumerate(text))
    return [float(n % 97), float(len(text)), 0.5]


@pytest.fixture()
def service() -> Iterator[CountingService]:
    svc = CountingService()
    svc.server.start()
    try:
        yield svc
    finally:
        svc.server.stop()


def ok(engine: Engine, method: str, path: str, body: Any = None) -> Any:
    resp = engine.request(method, path, body)
    assert resp.status == 200, resp.body
    return resp.body


def remote_model(engine: Engine, url: str, **client_config: Any) -> str:
    connector = {"name": "counting", "version": 1, "protocol": "http", "parameters": {"endpoint": url},
                 "credential": {"api_key": "counting-key"},
                 "actions": [{"action_type": "predict", "method": "POST", "url": "${parameters.endpoint}/embed",
                              "headers": {"Authorization": "Bearer ${credential.api_key}"},
                              "request_body": '{ "input": "${parameters.input}" }'}]}
    if client_config:
        connector["client_config"] = client_config
    connector_id = ok(engine, "POST", f"{ML}/connectors/_create", connector)["connector_id"]
    return ok(engine, "POST", f"{ML}/models/_register",
              {"name": "counting", "function_name": "remote", "connector_id": connector_id})["model_id"]


def endpoint(engine: Engine, url: str) -> str:
    ok(engine, "PUT", "_inference/text_embedding/counting", {"service": "custom", "service_settings": {
        "url": f"{url}/embed", "headers": {"Authorization": "Bearer ${api_key}"},
        "secret_parameters": {"api_key": "counting-key"}, "request": '{"input": ${input}}',
        "response": {"json_parser": {"text_embeddings": "$.result.embeddings[*].embedding"},
                     "error_parser": {"path": "$.error.message"}},
        "max_concurrent_requests": 16, "rate_limit": {"requests_per_minute": 1_000_000}}})
    return "counting"


def processor(model_id: str, kind: str) -> dict[str, Any]:
    # an OpenSearch model answers a tensor whose map is the service's body; an endpoint, its _inference answer
    path = "data" if kind == "opensearch" else "text_embedding[0].embedding"
    return {"ml_inference": {"model_id": model_id, "max_prediction_tasks": 10,
                             "input_map": [{"input": "title"}, {"input": "body"}],
                             "output_map": [{"title_vector": path}, {"body_vector": path}]}}


def model(engine: Engine, service: CountingService, kind: str) -> str:
    return remote_model(engine, service.server.url) if kind == "opensearch" else endpoint(engine, service.server.url)


def sources(prefix: str = "doc") -> list[dict[str, Any]]:
    return [{"n": i, "title": f"{prefix} {i} title", "body": f"{prefix} {i} body"} for i in range(DOCS)]


def warm(engine: Engine, service: CountingService, model_id: str, kind: str) -> None:
    """One batch of other texts first (the connections opened, the code paths loaded); counts reset."""
    ok(engine, "POST", "_ingest/pipeline/_simulate", {"pipeline": {"processors": [processor(model_id, kind)]},
                                                      "docs": [{"_source": s} for s in sources("warm")]})
    with service.lock:
        service.calls.clear()
        service.most_in_flight = 0


def f32(vector: list[float]) -> list[float]:
    return [float(x) for x in pd.array(vector, dtype="float32")]


def check_counts(service: CountingService) -> None:
    expected = Counter({text: 1 for s in sources() for text in (s["title"], s["body"])})
    assert service.calls == expected  # exactly one call per document per input_map entry


@pytest.mark.parametrize("kind", ["opensearch", "endpoint"])
def test_simulate_keeps_calls_in_flight(service, kind):
    engine = Engine()
    model_id = model(engine, service, kind)
    warm(engine, service, model_id, kind)
    service.engine = engine
    body = {"pipeline": {"processors": [processor(model_id, kind)]},
            "docs": [{"_id": str(s["n"]), "_source": s} for s in sources()]}
    started = time.perf_counter()
    docs = ok(engine, "POST", "_ingest/pipeline/_simulate", body)["docs"]
    elapsed = time.perf_counter() - started
    assert elapsed < 0.5 * DOCS * LATENCY_S, elapsed  # one call at a time: 80 x 50 ms = 4 s
    assert service.most_in_flight > 2 and service.lock_held_during_calls == 0
    check_counts(service)
    assert len(docs) == DOCS
    for i, (src, out) in enumerate(zip(sources(), docs)):
        if src["body"] == BAD:
            err = out["error"]
            assert err["type"] == "status_exception" or "cannot embed" in json.dumps(err), err
            assert "doc" not in out
            continue
        got = out["doc"]["_source"]
        assert got["n"] == i and got["title"] == src["title"]  # results in document order
        if kind == "opensearch":
            assert got["title_vector"] == f32(vector_of(src["title"]))
            assert got["body_vector"] == f32(vector_of(src["body"]))
        else:
            assert got["title_vector"] == vector_of(src["title"])
            assert got["body_vector"] == vector_of(src["body"])


def test_frame_pipeline_keeps_calls_in_flight(service):
    from es_infer_nb.frames.pipeline import run_frame_pipeline

    engine = Engine()
    model_id = model(engine, service, "opensearch")
    warm(engine, service, model_id, "opensearch")
    frame = pd.DataFrame(sources())
    started = time.perf_counter()
    out = run_frame_pipeline(engine, frame, {"processors": [processor(model_id, "opensearch")]})
    elapsed = time.perf_counter() - started
    assert elapsed < 0.5 * DOCS * LATENCY_S, elapsed
    check_counts(service)
    assert list(out["n"]) == list(range(DOCS))
    errors = out["_ingest.error.type"].tolist()
    for i, src in enumerate(sources()):
        if src["body"] == BAD:
            assert errors[i] is not None
            continue
        assert errors[i] is None or pd.isna(errors[i])
        assert list(out["title_vector"].iloc[i]) == f32(vector_of(src["title"]))
        assert list(out["body_vector"].iloc[i]) == f32(vector_of(src["body"]))


def test_ignore_failure_and_on_failure_unchanged(service):
    engine = Engine()
    model_id = model(engine, service, "opensearch")
    ignored = processor(model_id, "opensearch")
    ignored["ml_inference"]["ignore_failure"] = True
    handled = processor(model_id, "opensearch")
    handled["ml_inference"]["on_failure"] = [{"set": {"field": "failed", "value": "{{_ingest.on_failure_message}}"}}]
    docs = [{"_source": s} for s in sources()[12:15]]
    for proc, check in ((ignored, lambda d: "failed" not in d), (handled, lambda d: "cannot embed" in d["failed"])):
        out = ok(engine, "POST", "_ingest/pipeline/_simulate", {"pipeline": {"processors": [proc]}, "docs": docs})
        got = [d["doc"]["_source"] for d in out["docs"]]
        assert [g["n"] for g in got] == [12, 13, 14]
        assert "body_vector" not in got[1] and check(got[1])
        assert got[0]["body_vector"] == f32(vector_of("doc 12 body")) and "failed" not in got[0]


def test_a_call_past_its_deadline_fails_its_document_alone():
    service = CountingService(slow={"doc 2 title": 6.0})
    service.server.start()
    try:
        engine = Engine()
        model_id = remote_model(engine, service.server.url, read_timeout=2)
        docs = [{"_source": s} for s in sources()[:6]]
        started = time.perf_counter()
        out = ok(engine, "POST", "_ingest/pipeline/_simulate",
                 {"pipeline": {"processors": [processor(model_id, "opensearch")]}, "docs": docs})["docs"]
        elapsed = time.perf_counter() - started
    finally:
        service.server.stop()
    # the slow call answers after 6 s: its document gave up at its 2 s deadline (room for a loaded machine,
    # where the 50 ms calls of the other documents must still finish well inside theirs)
    assert elapsed < 5.0, elapsed
    assert "timed out" in out[2]["error"]["reason"], out[2]
    for i in (0, 1, 3, 4, 5):
        assert out[i]["doc"]["_source"]["title_vector"] == f32(vector_of(f"doc {i} title"))


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(), reason="signals reach the main thread")
def test_ctrl_c_stops_the_batch():
    service = CountingService(latency_s=2.0)
    service.server.start()
    try:
        engine = Engine()
        model_id = remote_model(engine, service.server.url, max_connection=4)
        docs = [{"_source": s} for s in sources()]
        timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
        started = time.perf_counter()
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            engine.request("POST", "_ingest/pipeline/_simulate",
                           {"pipeline": {"processors": [processor(model_id, "opensearch")]}, "docs": docs})
        elapsed = time.perf_counter() - started
        timer.join()
        assert elapsed < 1.5, elapsed  # not 80 calls / 4 connections x 2 s
        time.sleep(2.2)  # the calls in flight end; the ones not started never go out
        assert sum(service.calls.values()) <= 8
    finally:
        service.server.stop()
