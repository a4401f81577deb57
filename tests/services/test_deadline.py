"""One deadline per outbound call: retries, waits and the whole (streamed) body; bodies decoded as sent."""

from __future__ import annotations

import gzip
import json
import time

import pytest

from es_infer_nb.errors import ApiError
from es_infer_nb.services.loopback import LoopbackServer, Trickle
from es_infer_nb.services.transport import HttpRequest, Transport, TransportSettings


def transport() -> Transport:
    return Transport(TransportSettings(requests_per_minute=60_000, max_retries=2, backoff_s=0.01), "t")


def request(url: str) -> HttpRequest:
    return HttpRequest(url=url, headers={"Content-Type": "application/json"}, body=b"{}")


def test_a_trickled_body_is_cut_at_the_deadline():
    body = json.dumps({"data": "x" * 100}).encode()
    with LoopbackServer(lambda req: (200, Trickle(body, chunk=2, pause_s=0.05))) as server:
        t = transport()
        try:
            t0 = time.perf_counter()
            with pytest.raises(ApiError) as caught:
                t.send(request(server.url), 1.0)
            took = time.perf_counter() - t0
        finally:
            t.close()
    assert caught.value.status == 408 and "timed out after [1s]" in caught.value.reason
    assert 0.95 < took < 1.4, took  # the whole body would take ~3 s


def test_a_slow_but_timely_trickle_is_read_whole():
    body = json.dumps({"data": [1, 2, 3]}).encode()
    with LoopbackServer(lambda req: (200, Trickle(body, chunk=4, pause_s=0.01))) as server:
        t = transport()
        try:
            resp = t.send(request(server.url), 5.0)
        finally:
            t.close()
    assert resp.status_code == 200 and resp.json() == {"data": [1, 2, 3]}


def test_compressed_answers_are_decoded():
    payload = json.dumps({"data": ["é", 1]}).encode()
    with LoopbackServer(lambda req: (200, gzip.compress(payload), {"Content-Encoding": "gzip"})) as server:
        t = transport()
        try:
            resp = t.send(request(server.url), 5.0)
        finally:
            t.close()
    assert resp.json() == {"data": ["é", 1]} and resp.headers["content-encoding"] == "gzip"


def test_the_deadline_covers_retries():
    calls = []

    def failing(req):
        calls.append(time.perf_counter())
        time.sleep(0.3)
        return 503, {"error": "busy"}, {"Retry-After": "1"}

    with LoopbackServer(failing) as server:
        t = transport()
        try:
            t0 = time.perf_counter()
            with pytest.raises(ApiError) as caught:
                t.send(request(server.url), 1.0)
            took = time.perf_counter() - t0
        finally:
            t.close()
    assert caught.value.status == 408 and took < 1.4 and len(calls) <= 2
