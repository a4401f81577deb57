"""Throughput of an ``_inference`` text_embedding endpoint against a loopback service with fixed latency.

The service (an asyncio server in a separate process, so it never competes with the client for the GIL)
answers every
request after ``--latency-ms`` (20 ms) with one embedding per input, in Alibaba Cloud OpenSearch's
format. 20,000 texts go through a ``custom`` endpoint with ``batch_size`` inputs per request and
``max_concurrent_requests`` requests in flight; the service's own limit for that configuration is
``concurrency * batch_size / latency`` (the ``service_limit`` contender: computed, not timed).
The run repeats in rounds (``--rounds``); one JSON line gives the median and best docs/s and the
median's fraction of the limit (the goal is >= 80%). Checked (fatal): no input failed, and every
embedding is the one the service sent for that input's place in its request.

    python benchmarks/endpoints.py [--texts 20000] [--batch-size 100] [--concurrency 4] [--latency-ms 20]
                                   [--rounds N] [--quick]
"""

from __future__ import annotations

import argparse
import gc
import multiprocessing as mp
from typing import Any

import harness
from _common import serve_with_latency

DIMS = 16


def _answer_body(n: int) -> dict[str, Any]:
    """One embedding per input."""
    return {"request_id": "bench", "result": {"embeddings": [
        {"index": i, "embedding": [0.5 + i % 7] * DIMS} for i in range(n)]}}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=20000)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--no-gc-freeze", action="store_true",
                        help="keep the startup heap (torch, transformers: ~1M objects) in the cyclic GC's full passes")
    harness.add_arguments(parser)
    args = parser.parse_args(argv)
    if args.quick:
        args.texts = min(args.texts, 2000)
    bench = harness.Bench("inference_endpoint_text_embedding", args, {
        "texts": args.texts, "batch_size": args.batch_size, "concurrency": args.concurrency,
        "latency_ms": args.latency_ms, "gc_freeze": not args.no_gc_freeze})

    from es_infer_nb import Engine
    from es_infer_nb.services import infer_endpoint

    ctx = mp.get_context("spawn")
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=serve_with_latency, args=(args.latency_ms / 1000.0, send, _answer_body, None, 256),
                       daemon=True)
    proc.start()
    try:
        url = recv.recv()
        engine = Engine()
        resp = engine.request("PUT", "_inference/text_embedding/bench", {"service": "custom", "service_settings": {
            "url": f"{url}/embeddings", "secret_parameters": {"api_key": "bench-key"},
            "headers": {"Authorization": "Bearer ${api_key}"},
            "request": '{"input": ${input}}',
            "response": {"json_parser": {"text_embeddings": "$.result.embeddings[*].embedding"}},
            "batch_size": args.batch_size, "max_concurrent_requests": args.concurrency,
            "rate_limit": {"requests_per_minute": 10_000_000}}})
        assert resp.status == 200, resp.body
        texts = [f"document number {i} with a few words" for i in range(args.texts)]
        infer_endpoint(engine, "bench", texts[: args.batch_size * args.concurrency])  # warm the connection pool
        if not args.no_gc_freeze:
            # a long-running service's usual tuning: the imported libraries' objects never become garbage,
            # so keep them out of the full collections that every ~25 parsed responses would trigger
            gc.collect()
            gc.freeze()
        limit = args.concurrency * args.batch_size / (args.latency_ms / 1000.0)
        t = bench.rounds({
            "ours": harness.Contender(lambda: infer_endpoint(engine, "bench", texts), args.texts, "docs"),
            "service_limit": harness.Contender(lambda: harness.Timed(args.texts / limit), args.texts, "docs"),
        })
    finally:
        proc.terminate()
        proc.join(5)
    results = t.last["ours"]
    bench.check("failed inputs", sum(1 for r in results if not isinstance(r, dict)), 0)
    wrong = sum(1 for i, r in enumerate(results)
                if not isinstance(r, dict) or r.get("embedding") != [0.5 + (i % args.batch_size) % 7] * DIMS)
    bench.check("inputs whose embedding is not the service's answer for them", wrong, 0)
    bench.compare("ours", "service_limit", note="fraction of the service's limit "
                  "(concurrency x batch_size / latency); goal >= 0.8")
    return bench.report({"limit_docs_per_s": round(limit, 1)})


if __name__ == "__main__":
    harness.clean_environment()  # before numpy loads: re-executes without the OPENBLAS overrides
    main()
