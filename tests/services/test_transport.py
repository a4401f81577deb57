"""Transport: retries on 429/5xx, timeouts, per-batch failures, malformed answers, rate limit, concurrency."""

from __future__ import annotations

import threading
import time

import pytest
from endpoint_servers import ali_embeddings, ok, vector

from es_infer_nb.errors import ApiError
from es_infer_nb.services import infer_endpoint
from es_infer_nb.services.loopback import LoopbackServer
from es_infer_nb.services.transport import HttpRequest, RateLimiter, Transport, TransportSettings


def test_a_failing_call_fails_only_its_documents(engine, model_server):
    ok(engine.request("PUT", "_inference/text_embedding/b2", ali_embeddings(
        f"{model_server.url}/ali-embeddings", batch_size=2)))
    results = infer_endpoint(engine, "b2", ["a", "FAIL here", "b", "c", "d"])
    assert isinstance(results[0], ApiError) and isinstance(results[1], ApiError)
    assert results[0].status == 500
    assert results[0].reason == ("Received a server error status code for request from inference entity id [b2] "
                                 "status [500]. Error message: [model crashed on a FAIL input]")
    assert results[2:] == [{"embedding": vector(t)} for t in "bcd"]
    whole = engine.request("POST", "_inference/b2", {"input": ["a", "FAIL"]})
    assert whole.status == 500 and "model crashed on a FAIL input" in whole.body["error"]["reason"]


def test_429_is_retried_with_backoff(engine, model_server, router):
    ok(engine.request("PUT", "_inference/text_embedding/rl", ali_embeddings(
        f"{model_server.url}/ratelimited/ali-embeddings")))
    assert ok(engine.request("POST", "_inference/rl", {"input": ["x"]})) == {
        "text_embedding": [{"embedding": vector("x")}]}
    assert router.calls["/ratelimited/ali-embeddings"] == 3


def test_slow_service_times_out(engine, model_server):
    ok(engine.request("PUT", "_inference/text_embedding/slow", ali_embeddings(f"{model_server.url}/slow/ali-embeddings")))
    resp = engine.request("POST", "_inference/slow", {"input": ["x"]}, params={"timeout": "200ms"})
    assert resp.status == 408
    assert "timed out" in resp.body["error"]["reason"]


def test_malformed_services(engine, model_server):
    ok(engine.request("PUT", "_inference/text_embedding/nj", ali_embeddings(f"{model_server.url}/not-json")))
    resp = engine.request("POST", "_inference/nj", {"input": ["x"]})
    assert resp.status == 500 and "is not JSON: [<html>oops</html>]" in resp.body["error"]["reason"]
    ok(engine.request("PUT", "_inference/text_embedding/ws", ali_embeddings(f"{model_server.url}/wrong-shape",
       response={"json_parser": {"text_embeddings": "$.result.embeddings[*].embedding"}})))
    resp = engine.request("POST", "_inference/ws", {"input": ["x"]})
    assert resp.status == 400
    assert resp.body["error"]["reason"].startswith("Current path [[*].embedding] matched the array field pattern")
    ok(engine.request("PUT", "_inference/text_embedding/down", ali_embeddings("http://127.0.0.1:9/none")))
    results = infer_endpoint(engine, "down", ["x"])
    assert isinstance(results[0], ApiError) and results[0].status == 502


def test_rate_limiter_paces_requests():
    now = [0.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    limiter = RateLimiter(120, clock=lambda: now[0], sleep=sleep)  # 2 per second, burst 2
    waits = [limiter.acquire() for _ in range(4)]
    assert waits[:2] == [0.0, 0.0]
    assert waits[2] == pytest.approx(0.5) and waits[3] == pytest.approx(0.5)
    assert sum(slept) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        RateLimiter(0)


def test_rate_limit_setting_reaches_the_transport(engine, model_server):
    from es_infer_nb.services.registry import endpoints

    ok(engine.request("PUT", "_inference/text_embedding/r", ali_embeddings(
        f"{model_server.url}/ali-embeddings", rate_limit={"requests_per_minute": 60}, max_concurrent_requests=3)))
    endpoint = endpoints(engine).get("r")
    transport = endpoints(engine).transport(endpoint)
    assert transport.limiter.rate == pytest.approx(1.0)
    assert transport.settings.max_concurrent_requests == 3
    bad = engine.request("PUT", "_inference/text_embedding/r2", ali_embeddings(
        model_server.url, rate_limit={"requests_per_minute": -1}))
    assert bad.status == 400


def test_concurrency_is_bounded_and_connections_reused():
    lock = threading.Lock()
    state = {"now": 0, "peak": 0}

    def handler(req):
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
        time.sleep(0.02)
        with lock:
            state["now"] -= 1
        return 200, {"ok": True}

    with LoopbackServer(handler) as server:
        transport = Transport(TransportSettings(requests_per_minute=1e9, max_concurrent_requests=3), "t")
        req = HttpRequest(server.url, {}, b"{}")
        out = transport.map(lambda r: transport.send(r).status_code, [req] * 12)
        transport.close()
    assert out == [200] * 12
    assert 1 < state["peak"] <= 3


def test_many_documents_per_request(engine, model_server):
    ok(engine.request("PUT", "_inference/text_embedding/batched", ali_embeddings(
        f"{model_server.url}/ali-embeddings", batch_size=4)))
    before = len(model_server.received)
    texts = [f"t{i}" for i in range(10)]
    got = infer_endpoint(engine, "batched", texts)
    assert got == [{"embedding": vector(t)} for t in texts]
    sizes = sorted(len(r.json()["input"]) for r in model_server.received[before:])
    assert sizes == [2, 4, 4]
