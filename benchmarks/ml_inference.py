"""OpenSearch ``ml_inference`` over a remote model with fixed latency: calls kept in flight (issue 21, point 4).

The service (an asyncio server in a separate process, so it never competes with the client for the GIL)
answers every request after ``--latency-ms`` (20 ms) with one embedding per input and counts the requests
it received. ``--docs`` documents (default 4,000) go through ``df.infer.pipeline`` with one processor:

* ``ml_inference_opensearch``: ``ml_inference`` (``max_prediction_tasks: 10``, one ``input_map`` entry)
  over an OpenSearch remote model (``_plugins/_ml`` connector with ``client_config.max_connection``
  = ``--concurrency``, ``_register``; Predict per call);
* ``ml_inference_endpoint``: the same processor over an ``_inference`` endpoint (a ``custom`` service,
  ``max_concurrent_requests`` = ``--concurrency``, ``batch_size`` 1) used as the ml_inference model;
* ``inference_processor``: ES's ``inference`` processor over that same endpoint (one input per request);
* ``service_limit``: the service's limit for that configuration, ``concurrency / latency`` (computed,
  not timed).

Rounds are interleaved (``--rounds``); one JSON line gives each contender's median and best docs/s and
the ratios of medians: each ``ml_inference`` vs the service's limit and vs the ``inference`` processor.
Checked (fatal): no document failed, every document's vector is the service's answer, and the service
received exactly one request per document per round for each ml_inference contender (one call per
document per ``input_map`` entry, as OpenSearch makes them), and the goal (>= 400 docs/s against the
20 ms service) is reported beside the medians.

    python benchmarks/ml_inference.py [--docs 4000] [--concurrency 16] [--latency-ms 20] [--rounds N] [--quick]
"""

from __future__ import annotations

import argparse
import gc
import multiprocessing as mp
from typing import Any

import harness
from _common import serve_with_latency

DIMS = 16
GOAL_DOCS_PER_S = 400.0
VECTOR = [0.25 * (i % 5) for i in range(DIMS)]


def _answer_body(n: int) -> dict[str, Any]:
    """One embedding per input, in two shapes at once: ``data`` for the ml-commons connector,
    ``result.embeddings`` for the custom endpoint."""
    return {"data": VECTOR, "result": {"embeddings": [{"index": i, "embedding": VECTOR} for i in range(n)]}}


def setup(engine: Any, url: str, concurrency: int) -> dict[str, dict[str, Any]]:
    """The endpoint, the OpenSearch remote model and the three pipelines (by contender name)."""
    def ok(method: str, path: str, body: Any) -> Any:
        resp = engine.request(method, path, body)
        assert resp.status == 200, resp.body
        return resp.body

    ok("PUT", "_inference/text_embedding/bench", {"service": "custom", "service_settings": {
        "url": f"{url}/embeddings", "secret_parameters": {"api_key": "bench-key"},
        "headers": {"Authorization": "Bearer ${api_key}"}, "request": '{"input": ${input}}',
        "response": {"json_parser": {"text_embeddings": "$.result.embeddings[*].embedding"}},
        "batch_size": 1, "max_concurrent_requests": concurrency,
        "rate_limit": {"requests_per_minute": 10_000_000}}})
    connector_id = ok("POST", "_plugins/_ml/connectors/_create", {
        "name": "bench", "protocol": "http", "parameters": {"endpoint": url},
        "credential": {"api_key": "bench-key"}, "client_config": {"max_connection": concurrency},
        "actions": [{"action_type": "predict", "method": "POST", "url": "${parameters.endpoint}/embed",
                     "headers": {"Authorization": "Bearer ${credential.api_key}"},
                     "request_body": '{ "input": "${parameters.input}" }'}]})["connector_id"]
    model_id = ok("POST", "_plugins/_ml/models/_register", {"name": "bench", "function_name": "remote",
                                                            "connector_id": connector_id})["model_id"]

    def ml_inference(model: str, path: str) -> dict[str, Any]:
        return {"processors": [{"ml_inference": {"model_id": model, "max_prediction_tasks": 10,
                                                 "input_map": [{"input": "text"}], "output_map": [{"vec": path}]}}]}

    return {
        "ml_inference_opensearch": ml_inference(model_id, "data"),
        "ml_inference_endpoint": ml_inference("bench", "text_embedding[0].embedding"),
        "inference_processor": {"processors": [{"inference": {
            "model_id": "bench", "input_output": {"input_field": "text", "output_field": "vec"}}}]},
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    harness.add_arguments(parser)
    args = parser.parse_args(argv)
    if args.quick:
        args.docs = min(args.docs, 800)
    bench = harness.Bench("ml_inference_remote", args, {
        "docs": args.docs, "concurrency": args.concurrency, "latency_ms": args.latency_ms,
        "max_prediction_tasks": 10, "input_map_entries": 1})

    import numpy as np
    import pandas as pd

    from es_infer_nb import Engine
    from es_infer_nb.frames.pipeline import run_frame_pipeline

    ctx = mp.get_context("spawn")
    recv, send = ctx.Pipe(duplex=False)
    count = ctx.Value("q", 0)
    proc = ctx.Process(target=serve_with_latency, args=(args.latency_ms / 1000.0, send, _answer_body, count),
                       daemon=True)
    proc.start()
    calls: dict[str, list[int]] = {}
    try:
        url = recv.recv()
        engine = Engine()
        pipelines = setup(engine, url, args.concurrency)
        frame = pd.DataFrame({"n": np.arange(args.docs), "text": [f"document {i} with a few words"
                                                                   for i in range(args.docs)]})

        def contender(name: str) -> harness.Contender:
            def run() -> Any:
                before = count.value
                out = run_frame_pipeline(engine, frame, pipelines[name])
                calls.setdefault(name, []).append(count.value - before)
                return out

            return harness.Contender(run, args.docs, "docs")

        for name in pipelines:  # warm the connection pools and the code paths
            run_frame_pipeline(engine, frame.head(args.concurrency * 2), pipelines[name])
        gc.collect()
        gc.freeze()  # a long-running service's tuning: the imported libraries' objects stay out of full passes
        limit = args.concurrency / (args.latency_ms / 1000.0)
        t = bench.rounds({
            **{name: contender(name) for name in pipelines},
            "service_limit": harness.Contender(lambda: harness.Timed(args.docs / limit), args.docs, "docs"),
        })
    finally:
        proc.terminate()
        proc.join(5)
    expected = np.asarray(VECTOR, dtype=np.float32).astype(float).tolist()
    for name in pipelines:
        out = t.last[name]
        failed = 0 if "_ingest.error.type" not in out else int(out["_ingest.error.type"].notna().sum())
        bench.check(f"{name}: failed documents", failed, 0)
        wrong = sum(1 for v in out["vec"] if v is None or [float(x) for x in v] != expected)
        bench.check(f"{name}: documents whose vector is not the service's answer", wrong, 0)
        bench.check(f"{name}: rounds whose request count is not one per document",
                    sum(1 for c in calls[name] if c != args.docs), 0)
    for name in ("ml_inference_opensearch", "ml_inference_endpoint"):
        bench.compare(name, "service_limit", note="fraction of the service's limit (concurrency / latency)")
        bench.compare(name, "inference_processor", note="vs ES's inference processor over the same endpoint")
    medians = {n: round(args.docs / t.median(n), 1) for n in pipelines}
    return bench.report({"limit_docs_per_s": round(limit, 1), "goal_docs_per_s": GOAL_DOCS_PER_S,
                         "median_docs_per_s": medians,
                         "goal_met": {n: medians[n] >= GOAL_DOCS_PER_S for n in
                                      ("ml_inference_opensearch", "ml_inference_endpoint")},
                         "requests_per_round": calls})


if __name__ == "__main__":
    harness.clean_environment()  # before numpy loads: re-executes without the OPENBLAS overrides
    main()
