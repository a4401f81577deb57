"""Shared model and data for the tree benchmarks (timing, checks and the JSON line live in harness.py)."""

from __future__ import annotations

from typing import Any


def model_arguments(parser: Any) -> None:
    """The arguments shared by the tree benchmarks (one XGBoost regressor)."""
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--trees", type=int, default=100)
    parser.add_argument("--depth", type=int, default=6)
    parser.add_argument("--train-rows", type=int, default=50_000)
    parser.add_argument("--device", default="cpu")


def quick_sizes(args: Any, **sizes: int) -> None:
    """With ``--quick``: the given sizes (e.g. rows=2000) and a small model, for a smoke run."""
    if not getattr(args, "quick", False):
        return
    for name, value in sizes.items():
        setattr(args, name, value)
    for name, value in {"trees": 20, "depth": 4, "train_rows": 3_000}.items():
        if hasattr(args, name):
            setattr(args, name, value)


def training_data(args: Any) -> tuple[Any, Any, list[str], Any]:
    """(x_train, y_train, feature names, rng): ``--train-rows`` rows, fixed seed."""
    import numpy as np

    rng = np.random.default_rng(42)
    names = [f"f{i}" for i in range(args.features)]
    x_train = rng.normal(size=(args.train_rows, args.features))
    y_train = (x_train[:, 0] * 2 + np.sin(x_train[:, 1]) * x_train[:, 2]
               + rng.normal(scale=0.1, size=args.train_rows))
    return x_train, y_train, names, rng


def xgboost_model(args: Any) -> tuple[Any, list[str], Any]:
    """(fitted XGBRegressor, feature names, rng)."""
    import xgboost as xgb

    x_train, y_train, names, rng = training_data(args)
    model = xgb.XGBRegressor(n_estimators=args.trees, max_depth=args.depth, learning_rate=0.1, tree_method="hist")
    model.fit(x_train, y_train)
    return model, names, rng


def lightgbm_twin(args: Any) -> Any:
    """A LightGBM regressor of the same size trained on the same data as :func:`xgboost_model`."""
    import lightgbm as lgb
    import pandas as pd

    x_train, y_train, names, _ = training_data(args)
    model = lgb.LGBMRegressor(n_estimators=args.trees, max_depth=args.depth, num_leaves=2 ** args.depth,
                              learning_rate=0.1, verbose=-1)
    model.fit(pd.DataFrame(x_train, columns=names), y_train)
    return model


def float32_rows(rng: Any, rows: int, features: int) -> Any:
    """float32-representable data: XGBoost compares in float32, Elasticsearch (and we) in float64."""
    import numpy as np

    return rng.normal(size=(rows, features)).astype(np.float32).astype(np.float64)


def serve_with_latency(latency_s: float, port_out: Any, answer_body: Any, count: Any = None,
                       backlog: int = 512) -> None:
    """A minimal asyncio HTTP/1.1 keep-alive service on 127.0.0.1 (run in its own process): every request
    answered after ``latency_s`` with ``answer_body(n)`` for a body of ``n`` inputs (built once per n: the
    service's work is its latency); ``count`` (a ``multiprocessing.Value``) counts the requests. The URL
    goes back through ``port_out``."""
    import asyncio
    import json

    answers: dict[int, bytes] = {}

    def answer(n: int) -> bytes:
        if n not in answers:
            body = json.dumps(answer_body(n)).encode()
            answers[n] = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                          + str(len(body)).encode() + b"\r\n\r\n" + body)
        return answers[n]

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                body = json.loads(await reader.readexactly(length))
                if count is not None:
                    with count.get_lock():
                        count.value += 1
                inputs = body.get("input")
                await asyncio.sleep(latency_s)
                writer.write(answer(len(inputs) if isinstance(inputs, list) else 1))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def run() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=backlog)
        port_out.send(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}")
        port_out.close()
        async with server:
            await server.serve_forever()

    asyncio.run(run())
