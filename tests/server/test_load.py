"""Mixed concurrent clients against a served engine: every answer checked, latency bounded while a remote
call hangs, counters reconciled at the end (``benchmarks/server_load.py`` is the longer run)."""

from __future__ import annotations

import random
import threading
import time
from collections import defaultdict
from typing import Callable

import httpx

from es_infer_nb.services.loopback import LoopbackServer, Received
from helpers import stump_regression

DURATION_S = 4.0
#: the most an answer to ``GET /`` or a tree ``_infer`` may take while other calls wait or work
LATENCY_BOUND_S = 1.0
PIPELINE = {"processors": [
    {"inference": {"model_id": "reg", "field_map": {"v": "x"}}},
    {"gsub": {"field": "t", "pattern": "[aeiou]", "replacement": "*"}},
]}


def expected(x: float) -> float:
    return 1.0 if x <= 0.5 else 2.0


class Tally:
    """What the clients saw, per request kind."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.docs: dict[str, int] = defaultdict(int)
        self.problems: list[str] = []

    def add(self, kind: str, took: float, docs: int = 0) -> None:
        with self.lock:
            self.latencies[kind].append(took)
            self.docs[kind] += docs

    def problem(self, text: str) -> None:
        with self.lock:
            self.problems.append(text)


def infer_client(http: httpx.Client, rng: random.Random, tally: Tally) -> None:
    xs = [rng.random() for _ in range(rng.randint(1, 8))]
    t0 = time.perf_counter()
    resp = http.post("/_ml/trained_models/reg/_infer", json={"docs": [{"x": x} for x in xs]})
    took = time.perf_counter() - t0
    got = resp.json().get("inference_results") if resp.status_code == 200 else None
    if got != [{"predicted_value": expected(x)} for x in xs]:
        tally.problem(f"_infer: {resp.status_code} {resp.text[:200]}")
        return
    tally.add("infer", took, len(xs))


def simulate_client(http: httpx.Client, rng: random.Random, tally: Tally) -> None:
    rows = [(rng.random(), rng.choice(["hello", "queue", "rhythm"])) for _ in range(rng.randint(1, 5))]
    t0 = time.perf_counter()
    resp = http.post("/_ingest/pipeline/p/_simulate", json={"docs": [{"_source": {"v": v, "t": t}} for v, t in rows]})
    took = time.perf_counter() - t0
    docs = resp.json().get("docs") if resp.status_code == 200 else None
    want = [(expected(v), "".join("*" if c in "aeiou" else c for c in t)) for v, t in rows]
    seen = [(d["doc"]["_source"]["ml"]["inference"]["predicted_value"], d["doc"]["_source"]["t"]) for d in docs or []]
    if seen != want:
        tally.problem(f"_simulate: {resp.status_code} {resp.text[:200]}")
        return
    tally.add("simulate", took, len(rows))


def hang_client(http: httpx.Client, rng: random.Random, tally: Tally) -> None:
    t0 = time.perf_counter()
    resp = http.post("/_inference/text_embedding/hang?timeout=1s", json={"input": ["x"]})
    took = time.perf_counter() - t0
    if resp.status_code != 408 or "timed out after [1s]" not in resp.json()["error"]["reason"] or not 0.9 < took < 2.0:
        tally.problem(f"hanging endpoint: {resp.status_code} in {took:.2f}s {resp.text[:200]}")
        return
    tally.add("hang", took)


def root_client(http: httpx.Client, rng: random.Random, tally: Tally) -> None:
    t0 = time.perf_counter()
    resp = http.get("/")
    took = time.perf_counter() - t0
    if resp.status_code != 200 or resp.json().get("tagline") != "You Know, for Search":
        tally.problem(f"GET /: {resp.status_code}")
        return
    tally.add("root", took)


def stats_client(http: httpx.Client, rng: random.Random, tally: Tally) -> None:
    t0 = time.perf_counter()
    resp = http.get("/_ml/trained_models/reg/_stats")
    took = time.perf_counter() - t0
    entries = resp.json().get("trained_model_stats") if resp.status_code == 200 else None
    if not entries or entries[0]["model_id"] != "reg" or entries[0]["inference_stats"]["failure_count"] != 0:
        tally.problem(f"_stats: {resp.status_code} {resp.text[:200]}")
        return
    tally.add("stats", took)


CLIENTS: list[tuple[Callable[[httpx.Client, random.Random, Tally], None], int]] = [
    (infer_client, 4), (simulate_client, 2), (hang_client, 2), (root_client, 1), (stats_client, 1),
]


def test_mixed_clients_answers_latency_and_counters(engine, server):
    release = threading.Event()

    def hang(req: Received):
        release.wait(30)
        return 200, {"data": []}

    assert engine.request("PUT", "_ml/trained_models/reg", stump_regression()).status == 200
    assert engine.request("PUT", "_ingest/pipeline/p", PIPELINE).status == 200
    tally = Tally()
    with LoopbackServer(hang) as service:
        assert engine.request("PUT", "_inference/text_embedding/hang", {"service": "custom", "service_settings": {
            "url": service.url, "request": '{"input": ${input}}',
            "response": {"json_parser": {"text_embeddings": "$.data[*].embedding"}}}}).status == 200
        stop = time.monotonic() + DURATION_S

        def run(client: Callable[[httpx.Client, random.Random, Tally], None], seed: int) -> None:
            rng = random.Random(seed)
            with httpx.Client(base_url=server.url, timeout=30) as http:
                while time.monotonic() < stop:
                    try:
                        client(http, rng, tally)
                    except Exception as exc:  # noqa: BLE001 - reported below with the other problems
                        tally.problem(f"{client.__name__}: {type(exc).__name__}: {exc}")

        threads = [threading.Thread(target=run, args=(client, i * 100 + j))
                   for i, (client, n) in enumerate(CLIENTS) for j in range(n)]
        try:
            for t in threads:
                t.start()
            for t in threads:
                t.join(DURATION_S + 30)
        finally:
            release.set()
    assert not tally.problems, tally.problems[:5]
    for kind in ("infer", "simulate", "hang", "root", "stats"):
        assert tally.latencies[kind], f"no successful {kind} call"
    assert len(tally.latencies["hang"]) >= 4  # the hanging calls waited for most of the run
    for kind in ("root", "infer"):  # answered while the remote calls hung, and beside the other work
        assert max(tally.latencies[kind]) < LATENCY_BOUND_S, (kind, max(tally.latencies[kind]))
    stats = engine.request("GET", "_ml/trained_models/reg/_stats").body["trained_model_stats"][0]["inference_stats"]
    # every document of every successful _infer and _simulate, exactly; the model loaded once
    assert stats["inference_count"] == tally.docs["infer"] + tally.docs["simulate"]
    assert (stats["failure_count"], stats["cache_miss_count"]) == (0, 1)
