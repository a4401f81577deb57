"""Shared helpers for the benchmarks: environment note, timing, one JSON line of results."""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from typing import Any, Callable

UNSET = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def prepare_environment() -> list[str]:
    """Unset the OpenBLAS overrides that slow a current numpy (for this process only) and say so."""
    removed = [name for name in UNSET if os.environ.pop(name, None) is not None]
    if removed:
        print(f"# benchmark process: unset {', '.join(removed)} (they slow current numpy/OpenBLAS)", file=sys.stderr)
    return removed


def best_of(fn: Callable[[], Any], repeat: int = 3) -> float:
    """Best wall time of ``repeat`` runs (seconds)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def best_of_interleaved(fns: dict[str, Callable[[], Any]], repeat: int = 5) -> dict[str, float]:
    """Best wall time (seconds) of each function, the functions taking turns ``repeat`` times: on a
    shared machine, a slow spell then costs every contender alike instead of only one of them."""
    best = {name: float("inf") for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def report(name: str, figures: dict[str, Any]) -> None:
    import torch

    figures = {"benchmark": name, **figures, "torch_threads": torch.get_num_threads(),
               "cpu_count": os.cpu_count(), "python": platform.python_version()}
    print(json.dumps(figures))


def model_arguments(parser: Any) -> None:
    """The arguments shared by the tree benchmarks (one XGBoost regressor)."""
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--trees", type=int, default=100)
    parser.add_argument("--depth", type=int, default=6)
    parser.add_argument("--device", default="cpu")


def xgboost_model(args: Any) -> tuple[Any, list[str], Any]:
    """(fitted XGBRegressor, feature names, rng): 50,000 training rows, fixed seed."""
    import numpy as np
    import xgboost as xgb

    rng = np.random.default_rng(42)
    names = [f"f{i}" for i in range(args.features)]
    x_train = rng.normal(size=(50_000, args.features))
    y_train = x_train[:, 0] * 2 + np.sin(x_train[:, 1]) * x_train[:, 2] + rng.normal(scale=0.1, size=50_000)
    model = xgb.XGBRegressor(n_estimators=args.trees, max_depth=args.depth, learning_rate=0.1, tree_method="hist")
    model.fit(x_train, y_train)
    return model, names, rng


def float32_rows(rng: Any, rows: int, features: int) -> Any:
    """float32-representable data: XGBoost compares in float32, Elasticsearch (and we) in float64."""
    import numpy as np

    return rng.normal(size=(rows, features)).astype(np.float32).astype(np.float64)
