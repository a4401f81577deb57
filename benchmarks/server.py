"""The HTTP endpoint under load: 16 concurrent clients ``_infer``-ing 8 texts each vs ``df.infer.run``.

Same run, same engine, same texts (``benchmarks/data/corpus.jsonl``): the embedded
all-MiniLM-L6-v2, deployed with ``_start``; 16 threads, each with its own official
``elasticsearch`` client, take batches of 8 texts from one work list and POST
``_ml/trained_models/<id>/_infer`` until it is empty. The anchor is ``df.infer.run`` over a
DataFrame of the same texts. Both go through the deployment's queue, which gathers the
concurrent calls into shared model batches.

The two take turns in interleaved rounds (``--rounds``; a slow spell on the shared machine then
costs both); printed: the median and best docs/s of each, the ratio of medians (goal: HTTP >= 70%
of ``df.infer.run``), the range of the per-round ratios, and where the HTTP run's median round
went (model calls and their sizes, rendering the answers to JSON, the clients parsing them).
Checks (fatal past the printed bound) that both paths give the same vectors.

``--clients-process`` runs the clients in a child process, as real clients would be, so
their JSON parsing does not compete with the server for this process's GIL.
``--model tree`` measures a tree model's ``_infer`` instead (documents of 4 features).
Usage: python benchmarks/server.py [--texts N] [--clients 16] [--per-request 8] [--rounds N]
       [--model minilm|tree] [--clients-process] [--quick]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import harness

if TYPE_CHECKING:
    import pandas as pd

#: the same model; batches gathered differently may round differently: at float32's level, or at
#: bfloat16's where the embedded model runs in bf16 (``precision`` auto on an AMX / AVX512-BF16 CPU)
BOUND_MAX_ABS_DIFF = {"fp32": 1e-4, "bf16": 5e-3}
CORPUS = Path(__file__).resolve().parents[1] / "benchmarks" / "data" / "corpus.jsonl"


def load_texts(n: int) -> list[str]:
    texts: list[str] = []
    with open(CORPUS, encoding="utf-8") as fh:
        for line in fh:
            texts.append(json.loads(line)["text"])
            if len(texts) == n:
                break
    return texts


def hammer(url: str, model_id: str, docs: list[dict[str, Any]], clients: int, per_request: int,
           result_field: str = "predicted_value") -> tuple[float, list[Any]]:
    """Send ``docs`` in requests of ``per_request`` from ``clients`` threads; (seconds, results in order)."""
    from elasticsearch import Elasticsearch

    chunks = [(i, docs[i : i + per_request]) for i in range(0, len(docs), per_request)]
    results: list[Any] = [None] * len(docs)
    next_chunk = iter(chunks)
    lock = threading.Lock()
    errors: list[BaseException] = []
    ready = threading.Barrier(clients + 1)

    def worker() -> None:
        with Elasticsearch(url, request_timeout=300) as es:
            es.info()  # connect before the clock starts
            ready.wait()
            while True:
                with lock:
                    item = next(next_chunk, None)
                if item is None:
                    return
                start, chunk = item
                try:
                    res = es.ml.infer_trained_model(model_id=model_id, docs=chunk)
                except BaseException as exc:  # noqa: BLE001 - reported after the run
                    errors.append(exc)
                    return
                for j, r in enumerate(res["inference_results"]):
                    results[start + j] = r[result_field]

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    ready.wait()
    began = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - began
    if errors:
        raise errors[0]
    return elapsed, results


def hammer_in_child(url: str, model_id: str, docs: list[dict[str, Any]], clients: int, per_request: int,
                    result_field: str) -> tuple[float, list[Any]]:
    """:func:`hammer` in a child process (clients as separate programs); same return."""
    payload = json.dumps({"url": url, "model_id": model_id, "docs": docs, "clients": clients,
                          "per_request": per_request, "result_field": result_field})
    out = subprocess.run([sys.executable, __file__, "--child"], input=payload, capture_output=True, text=True,
                         check=True, cwd=Path(__file__).parent)
    answer = json.loads(out.stdout)
    return answer["seconds"], answer["results"]


def child_main() -> None:
    args = json.loads(sys.stdin.read())
    seconds, results = hammer(args["url"], args["model_id"], args["docs"], args["clients"],
                              args["per_request"], args["result_field"])
    json.dump({"seconds": seconds, "results": results}, sys.stdout)


def setup_minilm(engine: Any, n: int) -> tuple[str, list[dict[str, Any]], pd.DataFrame, str]:
    import pandas as pd

    from es_infer_nb.models.nlp import EMBEDDED_MODEL_ID

    resp = engine.request("POST", f"_ml/trained_models/{EMBEDDED_MODEL_ID}/deployment/_start",
                          params={"wait_for": "started", "queue_capacity": "10000", "cache_size": "0b"})
    resp.raise_for_status()
    texts = load_texts(n)
    return EMBEDDED_MODEL_ID, [{"text_field": t} for t in texts], pd.DataFrame({"text_field": texts}), "predicted_value"


def setup_tree(engine: Any, n: int) -> tuple[str, list[dict[str, Any]], pd.DataFrame, str]:
    import numpy as np
    import pandas as pd
    from xgboost import XGBRegressor

    rng = np.random.default_rng(0)
    names = ["f0", "f1", "f2", "f3"]
    x = rng.normal(size=(5000, 4))
    model = XGBRegressor(n_estimators=100, max_depth=6).fit(x, x[:, 0] - x[:, 1] * x[:, 2])
    engine.import_model("bench-tree", model, names)
    rows = rng.normal(size=(n, 4)).astype(np.float32).astype(np.float64)
    frame = pd.DataFrame(rows, columns=names)
    return "bench-tree", frame.to_dict("records"), frame, "predicted_value"


def json_costs(engine: Any, model_id: str, docs: list[dict[str, Any]], per_request: int) -> dict[str, float]:
    """Seconds per request to render one answer to JSON (server) and to parse it (client)."""
    from es_infer_nb.server.render import to_json_bytes

    answer = engine.request("POST", f"_ml/trained_models/{model_id}/_infer", {"docs": docs[:per_request]}).body
    payload = to_json_bytes(answer)
    reps = 50
    t0 = time.perf_counter()
    for _ in range(reps):
        to_json_bytes(answer)
    render_s = (time.perf_counter() - t0) / reps
    t0 = time.perf_counter()
    for _ in range(reps):
        json.loads(payload)
    parse_s = (time.perf_counter() - t0) / reps
    return {"render_s": render_s, "parse_s": parse_s, "bytes": float(len(payload))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=1024, help="documents per measurement")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--per-request", type=int, default=8)
    parser.add_argument("--model", choices=["minilm", "tree"], default="minilm")
    parser.add_argument("--clients-process", action="store_true", help="run the HTTP clients in a child process")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    harness.add_arguments(parser)
    args = parser.parse_args()
    if args.child:
        child_main()
        return
    if args.quick:
        args.texts, args.clients = min(args.texts, 64), min(args.clients, 4)
    bench = harness.Bench("server_infer", args, {
        "model": args.model, "docs": args.texts, "clients": args.clients, "docs_per_request": args.per_request,
        "clients_process": args.clients_process})

    import numpy as np

    import es_infer_nb
    from es_infer_nb.models.deployments import deployments
    from es_infer_nb.server import serve

    engine = es_infer_nb.Engine()
    setup = setup_minilm if args.model == "minilm" else setup_tree
    model_id, docs, frame, result_field = setup(engine, args.texts)
    profiles: list[dict[str, float]] = []

    def run_http() -> harness.Timed:
        before = (dep.queue.stats.batches, dep.counters.time_excluding_cache_hits_ms) if dep else (0, 0.0)
        if args.clients_process:
            seconds, results = hammer_in_child(handle.url, model_id, docs, args.clients, args.per_request,
                                               result_field)
        else:
            seconds, results = hammer(handle.url, model_id, docs, args.clients, args.per_request, result_field)
        after = (dep.queue.stats.batches, dep.counters.time_excluding_cache_hits_ms) if dep else (0, 0.0)
        profiles.append({"http_s": seconds, "model_calls": after[0] - before[0],
                         "model_s": (after[1] - before[1]) / 1000.0})
        return harness.Timed(seconds, results)

    # warm both paths up (model load, first-call allocations)
    frame.head(args.per_request * 2).infer.run(model_id, engine=engine, progress=False)
    handle = serve(engine, port=0, quiet=True)
    dep = deployments(engine).get(model_id)
    try:
        hammer(handle.url, model_id, docs[: args.per_request * args.clients], args.clients, args.per_request, result_field)
        t = bench.rounds({
            "ours": harness.Contender(run_http, len(docs), "docs"),
            "df_infer_run": harness.Contender(lambda: frame.infer.run(model_id, engine=engine, progress=False),
                                              len(docs), "docs"),
        })
        costs = json_costs(engine, model_id, docs, args.per_request)
    finally:
        handle.stop()

    local, remote = t.last["df_infer_run"], t.last["ours"]
    column = next(c for c in local.columns if c.endswith(result_field))
    want = np.asarray([np.asarray(v, dtype=np.float64) for v in local[column]])
    got = np.asarray([np.asarray(v, dtype=np.float64) for v in remote])
    precision = dep.precision if dep is not None else "fp32"  # what the deployment runs in (a tree: fp32)
    bench.check(f"max_abs_diff HTTP _infer vs df.infer.run ({precision})", float(np.max(np.abs(want - got))),
                BOUND_MAX_ABS_DIFF.get(precision, BOUND_MAX_ABS_DIFF["bf16"]))
    bench.compare("ours", "df_infer_run", note="ours: HTTP _infer from concurrent clients; goal >= 0.7")

    n = len(docs)
    ratios = sorted(a / b for a, b in zip(t.seconds["df_infer_run"], t.seconds["ours"]))
    typical = sorted(profiles, key=lambda r: r["http_s"])[len(profiles) // 2]
    requests = -(-n // args.per_request)
    bench.report({
        "model_id": model_id,
        "ratio_per_round": {"min": round(ratios[0], 3), "median": round(statistics.median(ratios), 3),
                            "max": round(ratios[-1], 3)},
        "goal_ratio": 0.7,
        "http_profile_median_round": {
            "wall_s": round(typical["http_s"], 3),
            "model_s": round(typical["model_s"], 3),
            "model_calls": typical["model_calls"],
            "docs_per_model_call": round(n / typical["model_calls"], 1) if typical["model_calls"] else None,
            "render_json_s": round(costs["render_s"] * requests, 3),
            "client_parse_json_s": round(costs["parse_s"] * requests, 3),
            "answer_bytes": int(costs["bytes"]),
        },
    })


if __name__ == "__main__":
    harness.clean_environment()  # before numpy loads: re-executes without the OPENBLAS overrides
    main()
