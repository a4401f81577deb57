"""A slow request stays inside itself: regexes, remote calls and model work run outside the state lock."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import httpx
import pytest

from es_infer_nb.services.loopback import LoopbackServer, Received, Trickle
from helpers import stump_regression

#: (a|aa)+$ backtracks exponentially in Python's and Java's engines; ``regex`` cannot shortcut it either
CATASTROPHIC = "(a|aa)+$"


def custom_endpoint(url: str) -> dict[str, Any]:
    return {"service": "custom", "service_settings": {
        "url": url,
        "headers": {"Authorization": "Bearer ${api_key}"},
        "secret_parameters": {"api_key": "isolation-key"},
        "request": '{"input": ${input}}',
        "response": {"json_parser": {"text_embeddings": "$.data[*].embedding"}},
    }}


def embeddings(texts: list[str]) -> dict[str, Any]:
    return {"data": [{"embedding": [float(len(t)), 1.0]} for t in texts]}


def timed_get(client: httpx.Client, path: str) -> tuple[int, float]:
    t0 = time.perf_counter()
    status = client.get(path).status_code
    return status, time.perf_counter() - t0


def test_catastrophic_gsub_fails_its_document_only_and_does_not_block_the_server(engine, server):
    pipeline = {"processors": [{"gsub": {"field": "t", "pattern": CATASTROPHIC, "replacement": "X"}}]}
    slow_docs = [{"_source": {"t": "a" * 150_000 + "!"}} for _ in range(3)]  # a longer limit each: ~0.55 s
    docs = [{"_source": {"t": "a" * 30 + "!"}}, {"_source": {"t": "aaaa"}}, *slow_docs]
    answer: dict[str, Any] = {}

    def simulate() -> None:
        with httpx.Client(base_url=server.url, timeout=60) as http:
            t0 = time.perf_counter()
            answer["body"] = http.post("/_ingest/pipeline/_simulate", json={"pipeline": pipeline, "docs": docs}).json()
            answer["took"] = time.perf_counter() - t0

    worker = threading.Thread(target=simulate)
    worker.start()
    waits = []
    with httpx.Client(base_url=server.url, timeout=30) as http:
        time.sleep(0.2)
        while worker.is_alive():
            status, took = timed_get(http, "/")
            assert status == 200
            waits.append(took)
            time.sleep(0.05)
    worker.join()
    assert answer["took"] > 1.0 and len(waits) >= 5  # the GET / calls really ran while the regexes did
    assert max(waits) < 1.0, waits
    results = answer["body"]["docs"]
    assert results[1]["doc"]["_source"]["t"] == "X"  # a value the pattern handles is replaced
    for entry in [results[0], *results[2:]]:  # each runaway match fails its own document
        err = entry["error"]
        assert err["type"] == "circuit_breaking_exception" and err["durability"] == "PERMANENT"
        assert f"pattern: [{CATASTROPHIC}]" in err["reason"] and "processor: [gsub]" in err["reason"]


def test_catastrophic_split_separator_is_bounded(engine):
    t0 = time.perf_counter()
    body = engine.request("POST", "_ingest/pipeline/_simulate", {
        "pipeline": {"processors": [{"split": {"field": "t", "separator": "(x+x+)+y|(a|aa)+$"}}]},
        "docs": [{"_source": {"t": "a" * 40 + "!"}}, {"_source": {"t": "1xxy2"}}]}).body
    assert time.perf_counter() - t0 < 3.0
    assert body["docs"][0]["error"]["type"] == "circuit_breaking_exception"
    assert body["docs"][1]["doc"]["_source"]["t"] == ["1", "2"]


def test_a_trickling_service_is_cut_at_the_call_timeout(engine, server):
    body = json.dumps(embeddings(["x"])).encode()
    with LoopbackServer(lambda req: (200, Trickle(body, chunk=1, pause_s=0.2))) as service:
        assert engine.request("PUT", "_inference/text_embedding/trickle",
                              custom_endpoint(service.url)).status == 200
        with httpx.Client(base_url=server.url, timeout=60) as http:
            t0 = time.perf_counter()
            resp = http.post("/_inference/text_embedding/trickle?timeout=2s", json={"input": ["x"]})
            took = time.perf_counter() - t0
            status, root_took = timed_get(http, "/")
    assert resp.status_code == 408, resp.text
    error = resp.json()["error"]
    assert error["type"] == "status_exception" and "timed out after [2s]" in error["reason"]
    assert 1.9 < took < 2.5, took  # the body alone would take ~8 s
    assert status == 200 and root_took < 1.0


def test_a_hanging_service_does_not_hold_other_requests(engine, server):
    release = threading.Event()

    def hang(req: Received):
        release.wait(30)
        return 200, embeddings(req.json()["input"])

    engine.request("PUT", "_ml/trained_models/reg", stump_regression())
    with LoopbackServer(hang) as service:
        assert engine.request("PUT", "_inference/text_embedding/hang", custom_endpoint(service.url)).status == 200
        result: dict[str, Any] = {}

        def call() -> None:
            with httpx.Client(base_url=server.url, timeout=60) as http:
                t0 = time.perf_counter()
                result["status"] = http.post("/_inference/hang?timeout=3s", json={"input": ["x"]}).status_code
                result["took"] = time.perf_counter() - t0

        caller = threading.Thread(target=call)
        caller.start()
        try:
            time.sleep(0.3)
            with httpx.Client(base_url=server.url, timeout=30) as http:
                for _ in range(5):
                    status, took = timed_get(http, "/")
                    assert status == 200 and took < 1.0
                    t0 = time.perf_counter()
                    infer = http.post("/_ml/trained_models/reg/_infer", json={"docs": [{"x": 1.0}]})
                    assert infer.status_code == 200 and time.perf_counter() - t0 < 1.0
                    assert infer.json()["inference_results"] == [{"predicted_value": 2.0}]
                    status, took = timed_get(http, "/_ml/trained_models/_stats")
                    assert status == 200 and took < 1.0
            assert caller.is_alive()  # all of that happened while the remote call waited
            caller.join(10)
        finally:
            release.set()
            caller.join(10)
    assert result["status"] == 408 and 2.9 < result["took"] < 4.0


@pytest.mark.parametrize("path,body", [
    ("_ml/trained_models/reg/_infer", {"docs": [{"x": 1.0}]}),
    ("_inference/text_embedding/any", {"input": ["x"]}),
    ("_ingest/pipeline/_simulate", {"pipeline": {"processors": []}, "docs": [{"_source": {}}]}),
])
def test_timeout_abc_is_a_400_on_every_route(engine, server, path, body):
    engine.request("PUT", "_ml/trained_models/reg", stump_regression())
    resp = httpx.post(f"{server.url}/{path}?timeout=abc", json=body, timeout=30)
    assert resp.status_code == 400
    error = resp.json()["error"]
    assert error["type"] == "illegal_argument_exception"
    assert error["reason"] == ("failed to parse setting [timeout] with value [abc] as a time value: unit is missing "
                               "or unrecognized")


def test_a_deployment_start_loads_outside_the_state_lock(engine, server, monkeypatch):
    from es_infer_nb.models import deployments as deployment_module
    from es_infer_nb.models.builtin import EMBEDDED_MODEL_ID

    loading = threading.Event()

    def slow_load(*args: Any, **kwargs: Any) -> object:
        loading.set()
        time.sleep(2.0)  # a big model loading
        return object()

    monkeypatch.setattr(deployment_module, "load_backend", slow_load)
    engine.request("PUT", "_ml/trained_models/reg", stump_regression())
    started: dict[str, Any] = {}

    def start() -> None:
        with httpx.Client(base_url=server.url, timeout=60) as http:
            t0 = time.perf_counter()
            started["resp"] = http.post(f"/_ml/trained_models/{EMBEDDED_MODEL_ID}/deployment/_start")
            started["took"] = time.perf_counter() - t0

    starter = threading.Thread(target=start)
    starter.start()
    assert loading.wait(30)
    with httpx.Client(base_url=server.url, timeout=30) as http:
        for path in ("/", "/_ml/trained_models/_stats", "/_ingest/pipeline"):
            status, took = timed_get(http, path)
            assert status in (200, 404) and took < 1.0, (path, took)
        t0 = time.perf_counter()
        assert http.post("/_ml/trained_models/reg/_infer", json={"docs": [{"x": 0.0}]}).status_code == 200
        assert time.perf_counter() - t0 < 1.0
        again = http.post(f"/_ml/trained_models/{EMBEDDED_MODEL_ID}/deployment/_start")
        assert starter.is_alive()  # all of that while the model loaded
    starter.join(30)
    assert started["resp"].status_code == 200 and started["took"] >= 2.0
    assert again.status_code == 400 and "existing deployment with the same id" in again.json()["error"]["reason"]
    stop = engine.request("POST", f"_ml/trained_models/{EMBEDDED_MODEL_ID}/deployment/_stop")
    assert stop.status == 200 and stop.body == {"stopped": True}
