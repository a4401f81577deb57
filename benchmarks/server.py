"""The HTTP endpoint under load: 16 concurrent clients ``_infer``-ing 8 texts each vs ``df.infer.run``.

Same run, same engine, same texts (``../shared/bench/corpus.jsonl``): the embedded
all-MiniLM-L6-v2, deployed with ``_start``; 16 threads, each with its own official
``elasticsearch`` client, take batches of 8 texts from one work list and POST
``_ml/trained_models/<id>/_infer`` until it is empty. The anchor is ``df.infer.run`` over a
DataFrame of the same texts. Prints one JSON line with both docs/s figures and the ratio
(goal: HTTP >= 70% of ``df.infer.run``), and checks that both give the same vectors.

The server answers concurrent ``_infer`` calls on one model with one engine call of up to
``--infer-batch-docs`` documents (0 turns that off, for comparison).
``--model tree`` measures a tree model's ``_infer`` instead (documents of 4 features), for
engines where the NLP deployment route is not available.
Usage: python benchmarks/server.py [--texts N] [--clients 16] [--per-request 8] [--model minilm|tree]
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from _common import prepare_environment, report

CORPUS = Path(__file__).resolve().parents[1] / ".." / "shared" / "bench" / "corpus.jsonl"


def load_texts(n: int) -> list[str]:
    texts: list[str] = []
    with open(CORPUS, encoding="utf-8") as fh:
        for line in fh:
            texts.append(json.loads(line)["text"])
            if len(texts) == n:
                break
    return texts


def hammer(url: str, model_id: str, docs: list[dict[str, Any]], clients: int, per_request: int) -> tuple[float, list[Any]]:
    """Send ``docs`` in requests of ``per_request`` from ``clients`` threads; (seconds, results in order)."""
    from elasticsearch import Elasticsearch

    chunks = [(i, docs[i : i + per_request]) for i in range(0, len(docs), per_request)]
    results: list[Any] = [None] * len(docs)
    next_chunk = iter(chunks)
    lock = threading.Lock()
    errors: list[BaseException] = []

    def worker() -> None:
        with Elasticsearch(url, request_timeout=120) as es:
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
                    results[start + j] = r["predicted_value"]

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - began
    if errors:
        raise errors[0]
    return elapsed, results


def setup_minilm(engine: Any, n: int) -> tuple[str, list[dict[str, Any]], pd.DataFrame, str]:
    from es_infer_nb.models.nlp import EMBEDDED_MODEL_ID

    resp = engine.request("POST", f"_ml/trained_models/{EMBEDDED_MODEL_ID}/deployment/_start",
                          params={"wait_for": "started", "queue_capacity": "10000", "cache_size": "0b"})
    resp.raise_for_status()
    texts = load_texts(n)
    return EMBEDDED_MODEL_ID, [{"text_field": t} for t in texts], pd.DataFrame({"text_field": texts}), "predicted_value"


def setup_tree(engine: Any, n: int) -> tuple[str, list[dict[str, Any]], pd.DataFrame, str]:
    from xgboost import XGBRegressor

    rng = np.random.default_rng(0)
    names = ["f0", "f1", "f2", "f3"]
    x = rng.normal(size=(5000, 4))
    model = XGBRegressor(n_estimators=100, max_depth=6).fit(x, x[:, 0] - x[:, 1] * x[:, 2])
    engine.import_model("bench-tree", model, names)
    rows = rng.normal(size=(n, 4)).astype(np.float32).astype(np.float64)
    frame = pd.DataFrame(rows, columns=names)
    return "bench-tree", frame.to_dict("records"), frame, "predicted_value"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--texts", type=int, default=1024, help="documents per measurement")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--per-request", type=int, default=8)
    parser.add_argument("--model", choices=["minilm", "tree"], default="minilm")
    parser.add_argument("--infer-batch-docs", type=int, default=0,
                        help="the server gathers concurrent _infer calls into engine calls of up to N docs (default 0: each call alone)")
    args = parser.parse_args()
    prepare_environment()

    import es_infer_nb
    from es_infer_nb.server import serve

    engine = es_infer_nb.Engine()
    setup = setup_minilm if args.model == "minilm" else setup_tree
    model_id, docs, frame, result_field = setup(engine, args.texts)

    # warm both paths up (model load, first-call allocations)
    frame.head(args.per_request * 2).infer.run(model_id, engine=engine, progress=False)
    handle = serve(engine, port=0, quiet=True, infer_batch_docs=args.infer_batch_docs)
    try:
        hammer(handle.url, model_id, docs[: args.per_request * args.clients], args.clients, args.per_request)

        began = time.perf_counter()
        local = frame.infer.run(model_id, engine=engine, progress=False)
        local_s = time.perf_counter() - began

        http_s, remote = hammer(handle.url, model_id, docs, args.clients, args.per_request)
    finally:
        handle.stop()

    column = next(c for c in local.columns if c.endswith(result_field))
    want = np.asarray([np.asarray(v, dtype=np.float64) for v in local[column]])
    got = np.asarray([np.asarray(v, dtype=np.float64) for v in remote])
    max_diff = float(np.max(np.abs(want - got)))

    http_rate = len(docs) / http_s
    local_rate = len(docs) / local_s
    report("server_infer", {
        "model": model_id,
        "docs": len(docs),
        "clients": args.clients,
        "docs_per_request": args.per_request,
        "infer_batch_docs": args.infer_batch_docs,
        "http_docs_per_s": round(http_rate, 1),
        "df_infer_run_docs_per_s": round(local_rate, 1),
        "ratio": round(http_rate / local_rate, 3),
        "goal_ratio": 0.7,
        "max_abs_diff": max_diff,
    })


if __name__ == "__main__":
    main()
