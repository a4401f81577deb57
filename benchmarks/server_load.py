"""The served engine under mixed load: N clients for T seconds, every answer checked.

Request kinds (clients spread over them by weight): a tree model's ``_infer`` (``infer``), a stored
pipeline's ``_simulate`` (inference + gsub, ``simulate``), a custom ``_inference`` endpoint on a loopback
service that takes ``--remote-ms`` (``remote``), one on a service that never answers, called with
``?timeout=1s`` (``hang``: each call must come back as 408 after ~1 s), ``GET /`` (``root``),
``_stats`` (``stats``), and with ``--nlp`` the bundled MiniLM's ``_infer`` through its deployment
(``nlp``). The clients run in a child process (their JSON work does not compete with the server for
this process's GIL), each with its own keep-alive connection.

Printed: per kind the count, p50 / p99 / max latency (ms) and documents; the server process's RSS
before the load, after it, and after ``gc.collect()`` + glibc's ``malloc_trim(0)`` (where glibc);
and the counters reconciled: the tree model's ``inference_count`` against the documents of every
successful ``_infer`` and ``_simulate`` (and the deployment's against the ``nlp`` documents).
Any wrong answer or unreconciled counter makes the run fail (exit 1).
Usage: python benchmarks/server_load.py [--clients 16] [--seconds 30] [--remote-ms 20] [--nlp]
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import platform
import random
import statistics
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from _common import prepare_environment, report

EMBEDDED = "sentence-transformers__all-minilm-l6-v2"
TREE = {
    "input": {"field_names": ["x"]},
    "inference_config": {"regression": {}},
    "definition": {"trained_model": {"tree": {"feature_names": ["x"], "tree_structure": [
        {"node_index": 0, "split_feature": 0, "threshold": 0.5, "decision_type": "lte", "left_child": 1,
         "right_child": 2},
        {"node_index": 1, "leaf_value": 1.0}, {"node_index": 2, "leaf_value": 2.0}]}}},
}
PIPELINE = {"processors": [{"inference": {"model_id": "reg", "field_map": {"v": "x"}}},
                           {"gsub": {"field": "t", "pattern": "[aeiou]", "replacement": "*"}}]}
WEIGHTS = {"infer": 4, "simulate": 2, "remote": 2, "hang": 1, "root": 1, "stats": 1, "nlp": 3}
WORDS = ["hello", "queue", "rhythm", "inference", "local", "node"]


def expected(x: float) -> float:
    return 1.0 if x <= 0.5 else 2.0


def vector(text: str) -> list[float]:
    return [float(len(text)), float(sum(map(ord, text)) % 97), 1.0]


# -- the clients (child process) ------------------------------------------------------------------------


def _call(kind: str, http: Any, rng: random.Random) -> tuple[bool, int, str]:
    """One request of ``kind``: (answer correct, documents, problem)."""
    if kind == "infer":
        xs = [rng.random() for _ in range(rng.randint(1, 8))]
        r = http.post("/_ml/trained_models/reg/_infer", json={"docs": [{"x": x} for x in xs]})
        good = r.status_code == 200 and r.json()["inference_results"] == [{"predicted_value": expected(x)} for x in xs]
        return good, len(xs), r.text[:200]
    if kind == "simulate":
        rows = [(rng.random(), rng.choice(WORDS)) for _ in range(rng.randint(1, 5))]
        r = http.post("/_ingest/pipeline/p/_simulate", json={"docs": [{"_source": {"v": v, "t": t}} for v, t in rows]})
        if r.status_code != 200:
            return False, 0, r.text[:200]
        seen = [(d["doc"]["_source"]["ml"]["inference"]["predicted_value"], d["doc"]["_source"]["t"])
                for d in r.json()["docs"]]
        want = [(expected(v), "".join("*" if c in "aeiou" else c for c in t)) for v, t in rows]
        return seen == want, len(rows), r.text[:200]
    if kind == "remote":
        texts = [rng.choice(WORDS) for _ in range(rng.randint(1, 4))]
        r = http.post("/_inference/text_embedding/remote", json={"input": texts})
        good = r.status_code == 200 and r.json() == {"text_embedding": [{"embedding": vector(t)} for t in texts]}
        return good, len(texts), r.text[:200]
    if kind == "hang":
        t0 = time.perf_counter()
        r = http.post("/_inference/text_embedding/hang?timeout=1s", json={"input": ["x"]})
        took = time.perf_counter() - t0
        return r.status_code == 408 and 0.9 < took < 2.0, 0, f"{r.status_code} in {took:.2f}s {r.text[:150]}"
    if kind == "root":
        r = http.get("/")
        return r.status_code == 200 and r.json()["tagline"] == "You Know, for Search", 0, r.text[:200]
    if kind == "stats":
        r = http.get("/_ml/trained_models/reg/_stats")
        good = r.status_code == 200 and r.json()["trained_model_stats"][0]["inference_stats"]["failure_count"] == 0
        return good, 0, r.text[:200]
    if kind == "nlp":
        texts = [" ".join(rng.choices(WORDS, k=rng.randint(3, 12))) for _ in range(rng.randint(1, 8))]
        r = http.post(f"/_ml/trained_models/{EMBEDDED}/_infer", json={"docs": [{"text_field": t} for t in texts]})
        good = r.status_code == 200 and all(len(e["predicted_value"]) == 384 for e in r.json()["inference_results"])
        return good, len(texts), r.text[:200]
    raise ValueError(kind)


def drive(url: str, kinds: list[str], seconds: float) -> dict[str, Any]:
    """Run one client thread per entry of ``kinds`` for ``seconds``; what they saw."""
    import httpx

    lock = threading.Lock()
    latencies: dict[str, list[float]] = defaultdict(list)
    docs: dict[str, int] = defaultdict(int)
    problems: list[str] = []
    stop = time.monotonic() + seconds

    def client(kind: str, seed: int) -> None:
        rng = random.Random(seed)
        with httpx.Client(base_url=url, timeout=60) as http:
            while time.monotonic() < stop:
                t0 = time.perf_counter()
                try:
                    good, n, text = _call(kind, http, rng)
                except Exception as exc:  # noqa: BLE001 - a failed call is a problem to report
                    good, n, text = False, 0, f"{type(exc).__name__}: {exc}"
                took = time.perf_counter() - t0
                with lock:
                    if good:
                        latencies[kind].append(took)
                        docs[kind] += n
                    else:
                        problems.append(f"{kind}: {text}")

    threads = [threading.Thread(target=client, args=(k, i)) for i, k in enumerate(kinds)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"latencies": latencies, "docs": docs, "problems": problems}


# -- the server (this process) ---------------------------------------------------------------------------


def rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def trim() -> bool:
    """``gc.collect()``, then glibc's ``malloc_trim(0)`` (returns freed heap pages to the system)."""
    gc.collect()
    if platform.libc_ver()[0] != "glibc":
        return False
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    return True


def assign(clients: int, nlp: bool) -> list[str]:
    """``clients`` kinds, spread by :data:`WEIGHTS` (every kind at least once when there is room)."""
    kinds = [k for k in WEIGHTS if nlp or k != "nlp"]
    pool = [k for k in kinds for _ in range(WEIGHTS[k])]
    out = kinds[:clients]
    while len(out) < clients:
        out.append(pool[len(out) % len(pool)])
    return out


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    if not ordered:
        return {"count": 0}
    q = statistics.quantiles(ordered, n=100, method="inclusive") if len(ordered) > 1 else [ordered[0]] * 99
    return {"count": len(ordered), "p50_ms": round(q[49] * 1000, 2), "p99_ms": round(q[98] * 1000, 2),
            "max_ms": round(ordered[-1] * 1000, 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--remote-ms", type=float, default=20.0)
    parser.add_argument("--nlp", action="store_true", help="add the bundled MiniLM's _infer (deployed)")
    parser.add_argument("--drive", help=argparse.SUPPRESS)  # the child process: URL
    parser.add_argument("--kinds", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.drive:
        print(json.dumps(drive(args.drive, args.kinds.split(","), args.seconds)))
        return 0
    prepare_environment()
    from es_infer_nb import Engine, serve
    from es_infer_nb.services.loopback import LoopbackServer, Received

    release = threading.Event()

    def remote(req: Received) -> tuple[int, Any]:
        time.sleep(args.remote_ms / 1000)
        return 200, {"data": [{"embedding": vector(t)} for t in req.json()["input"]]}

    def hang(req: Received) -> tuple[int, Any]:
        release.wait(120)
        return 200, {"data": []}

    engine = Engine()
    with LoopbackServer(remote) as remote_service, LoopbackServer(hang) as hang_service:
        for resp in (
            engine.request("PUT", "_ml/trained_models/reg", TREE),
            engine.request("PUT", "_ingest/pipeline/p", PIPELINE),
            *[engine.request("PUT", f"_inference/text_embedding/{name}", {"service": "custom", "service_settings": {
                "url": service.url, "request": '{"input": ${input}}',
                "response": {"json_parser": {"text_embeddings": "$.data[*].embedding"}}}})
              for name, service in (("remote", remote_service), ("hang", hang_service))],
        ):
            resp.raise_for_status()
        if args.nlp:
            engine.request("POST", f"_ml/trained_models/{EMBEDDED}/deployment/_start",
                           params={"wait_for": "started"}).raise_for_status()
        handle = serve(engine, port=0, quiet=True)
        try:
            kinds = assign(args.clients, args.nlp)
            trim()
            rss_before = rss_mb()
            proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--drive", handle.url, "--kinds",
                                   ",".join(kinds), "--seconds", str(args.seconds)],
                                  capture_output=True, text=True, timeout=args.seconds + 300)
            if proc.returncode != 0:
                print(proc.stderr, file=sys.stderr)
                return 1
            seen = json.loads(proc.stdout.strip().splitlines()[-1])
            rss_after = rss_mb()
            trimmed = trim()
            rss_trimmed = rss_mb()
            stats = engine.request("GET", "_ml/trained_models/_stats").body["trained_model_stats"]
        finally:
            release.set()
            handle.stop()
    by_id = {s["model_id"]: s for s in stats}
    tree_count = by_id["reg"]["inference_stats"]["inference_count"]
    docs = seen["docs"]
    counters = {"tree_inference_count": tree_count,
                "tree_docs_answered": docs.get("infer", 0) + docs.get("simulate", 0)}
    reconciled = counters["tree_inference_count"] == counters["tree_docs_answered"]
    if args.nlp:
        counters["nlp_inference_count"] = by_id[EMBEDDED]["inference_stats"]["inference_count"]
        counters["nlp_docs_answered"] = docs.get("nlp", 0)
        reconciled = reconciled and counters["nlp_inference_count"] == counters["nlp_docs_answered"]
    total = sum(len(v) for v in seen["latencies"].values())
    figures = {
        "clients": args.clients, "seconds": args.seconds, "kinds": dict(sorted((k, kinds.count(k)) for k in set(kinds))),
        "requests": total, "requests_per_s": round(total / args.seconds, 1),
        "per_kind": {k: {**percentiles(v), "docs": docs.get(k, 0)} for k, v in sorted(seen["latencies"].items())},
        "wrong_answers": len(seen["problems"]), "first_problems": seen["problems"][:3],
        "rss_mb": {"before": round(rss_before, 1), "after": round(rss_after, 1),
                   "after_trim": round(rss_trimmed, 1), "malloc_trim": trimmed},
        "counters": counters, "counters_reconciled": reconciled,
    }
    report("server_load", figures)
    return 0 if reconciled and not seen["problems"] else 1


if __name__ == "__main__":
    sys.exit(main())
