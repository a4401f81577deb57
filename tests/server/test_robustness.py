"""Many clients at once, slow and vanishing clients, graceful stop that keeps every stored state."""

from __future__ import annotations

import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import httpx
from elasticsearch import Elasticsearch

from es_infer_nb import Engine
from es_infer_nb.server import serve
from helpers import churn_model, stump_regression


def _address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 80


def test_many_clients_at_once_get_their_own_answers(server):
    with Elasticsearch(server.url) as es:
        es.ml.put_trained_model(model_id="churn-model", **churn_model())

    def client_work(c: int) -> list[str]:
        out = []
        with Elasticsearch(server.url) as es:
            es.ingest.put_pipeline(id=f"p-{c}", processors=[{"set": {"field": "client", "value": c}}])
            for i in range(10):
                tenure = 3 if (c + i) % 2 else 30
                res = es.ml.infer_trained_model(model_id="churn-model", docs=[{"tenure": tenure, "plan": "pro"}])
                out.append(res["inference_results"][0]["predicted_value"])
                sim = es.ingest.simulate(id=f"p-{c}", docs=[{"_source": {}}])
                assert sim["docs"][0]["doc"]["_source"]["client"] == c
        return out

    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(client_work, range(16)))
    for c, got in enumerate(answers):
        assert got == ["churn" if (c + i) % 2 else "stay" for i in range(10)]
    with Elasticsearch(server.url) as es:
        assert len(es.ingest.get_pipeline(id="p-*")) == 16
        stats = es.ml.get_trained_models_stats(model_id="churn-model")
        assert stats["trained_model_stats"][0]["inference_stats"]["inference_count"] == 160


def test_a_slow_client_does_not_stall_the_others(server):
    host, port = _address(server.url)
    body = b'{"processors": [{"set": {"field": "a", "value": 1}}]}'
    slow = socket.create_connection((host, port))
    try:
        slow.sendall(
            b"PUT /_ingest/pipeline/slow HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body[: len(body) // 2]
        )
        # while that body is half sent, others are served
        with httpx.Client(base_url=server.url, timeout=10) as http:
            for i in range(5):
                assert http.get("/").status_code == 200
                assert http.put(f"/_ingest/pipeline/fast-{i}", content=body, headers={"content-type": "application/json"}).status_code == 200
        # the slow client finishes its body and gets its answer
        slow.sendall(body[len(body) // 2 :])
        slow.settimeout(10)
        answer = slow.recv(65536)
        assert answer.startswith(b"HTTP/1.1 200"), answer
        assert b"x-elastic-product: Elasticsearch" in answer
    finally:
        slow.close()


def test_a_client_vanishing_mid_body_changes_nothing(server):
    host, port = _address(server.url)
    for _ in range(3):
        gone = socket.create_connection((host, port))
        gone.sendall(
            b"PUT /_ingest/pipeline/gone HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000\r\n\r\n{\"processors\": ["
        )
        gone.close()
    with httpx.Client(base_url=server.url, timeout=10) as http:
        assert http.get("/_ingest/pipeline/gone").status_code == 404
        assert http.get("/").status_code == 200


class HeldEngine(Engine):
    """An engine whose GET of model ``held`` waits until the test lets it go."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.entered = threading.Event()
        self.release = threading.Event()

    def request(self, method, path, body=None, params=None, **options):  # type: ignore[override]
        if method == "GET" and path.startswith("/_ml/trained_models/held"):
            self.entered.set()
            self.release.wait(30)
        return super().request(method, path, body, params, **options)


def test_stop_finishes_requests_in_flight_and_keeps_state(tmp_path):
    engine = HeldEngine(tmp_path)
    handle = serve(engine, port=0, quiet=True)
    with httpx.Client(base_url=handle.url, timeout=30) as http:
        assert http.put("/_ml/trained_models/held", json=stump_regression()).status_code == 200
        assert http.post("/_ml/trained_models/held/_infer", json={"docs": [{"x": 0.0}, {"x": 1.0}]}).status_code == 200
    answers: list[httpx.Response] = []
    in_flight = threading.Thread(target=lambda: answers.append(httpx.get(handle.url + "/_ml/trained_models/held", timeout=30)))
    in_flight.start()
    assert engine.entered.wait(10)
    stopper = threading.Thread(target=handle.stop)
    stopper.start()
    time.sleep(0.2)  # the stop is under way while the request is still held
    assert stopper.is_alive()
    engine.release.set()
    in_flight.join(30)
    stopper.join(30)
    assert answers and answers[0].status_code == 200
    assert answers[0].json()["trained_model_configs"][0]["model_id"] == "held"
    assert not handle.running
    # a new engine on the same home sees the model and the inference counts
    again = Engine(tmp_path)
    stats = again.request("GET", "_ml/trained_models/held/_stats").body
    assert stats["trained_model_stats"][0]["inference_stats"]["inference_count"] == 2
    try:
        httpx.get(handle.url + "/", timeout=2)
        raise AssertionError("the server still answers after stop()")
    except httpx.TransportError:
        pass


def test_stop_is_idempotent_and_a_context_manager(engine):
    with serve(engine, port=0, quiet=True) as handle:
        assert handle.running and handle.url.startswith("http://127.0.0.1:")
        assert "running" in repr(handle)
    assert not handle.running and "stopped" in repr(handle)
    handle.stop()


def test_serve_inside_a_running_event_loop(engine):
    """A notebook kernel runs an asyncio loop: serve() must work from inside it."""
    import asyncio

    async def main() -> int:
        handle = serve(engine, port=0, quiet=True)
        try:
            async with httpx.AsyncClient(base_url=handle.url) as http:
                return (await http.get("/")).status_code
        finally:
            handle.stop()

    assert asyncio.run(main()) == 200


def test_top_level_serve_export(engine):
    import es_infer_nb

    handle = es_infer_nb.serve(engine, port=0, quiet=True)
    try:
        assert httpx.get(handle.url + "/").json()["version"]["build_flavor"] == "default"
        assert handle.engine is engine
    finally:
        handle.stop()
