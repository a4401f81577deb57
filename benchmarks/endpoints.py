"""Throughput of an ``_inference`` text_embedding endpoint against a loopback service with fixed latency.

The service (a separate process, so it never competes with the client for the GIL) answers every
request after ``--latency-ms`` (20 ms) with one embedding per input, in Alibaba Cloud OpenSearch's
format. 20,000 texts go through a ``custom`` endpoint with ``batch_size`` inputs per request and
``max_concurrent_requests`` requests in flight; the service's own limit for that configuration is
``concurrency * batch_size / latency``. Prints one JSON line; the goal is >= 80% of the limit.

    python benchmarks/endpoints.py [--texts 20000] [--batch-size 100] [--concurrency 8] [--latency-ms 20]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import time
from typing import Any

DIMS = 16


def _serve(latency_s: float, port_out: Any) -> None:
    from es_infer_nb.services.loopback import LoopbackServer

    answers: dict[int, bytes] = {}  # the answer for n inputs, built once (the service's work is the latency)

    def handle(req: Any) -> tuple[int, Any]:
        n = len(json.loads(req.body)["input"])
        if n not in answers:
            answers[n] = json.dumps({"request_id": "bench", "result": {"embeddings": [
                {"index": i, "embedding": [0.5 + i % 7] * DIMS} for i in range(n)]}}).encode()
        time.sleep(latency_s)
        return 200, answers[n]

    server = LoopbackServer(handle).start()
    port_out.send(server.url)
    port_out.close()
    while True:
        time.sleep(3600)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=20000)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    args = parser.parse_args(argv)

    from es_infer_nb import Engine
    from es_infer_nb.services import infer_endpoint

    ctx = mp.get_context("spawn")
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_serve, args=(args.latency_ms / 1000.0, send), daemon=True)
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
        start = time.perf_counter()
        results = infer_endpoint(engine, "bench", texts)
        elapsed = time.perf_counter() - start
        failed = sum(1 for r in results if not isinstance(r, dict))
        docs_per_s = args.texts / elapsed
        limit = args.concurrency * args.batch_size / (args.latency_ms / 1000.0)
        out = {"benchmark": "inference_endpoint_text_embedding", "texts": args.texts,
               "batch_size": args.batch_size, "concurrency": args.concurrency, "latency_ms": args.latency_ms,
               "seconds": round(elapsed, 3), "docs_per_s": round(docs_per_s, 1), "limit_docs_per_s": round(limit, 1),
               "fraction_of_limit": round(docs_per_s / limit, 3), "failed": failed,
               "load_average_1m": round(os.getloadavg()[0], 2), "cpus": os.cpu_count()}
        print(json.dumps(out))
        return out
    finally:
        proc.terminate()
        proc.join(5)


if __name__ == "__main__":
    main()
