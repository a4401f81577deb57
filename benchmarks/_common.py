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


def report(name: str, figures: dict[str, Any]) -> None:
    import torch

    figures = {"benchmark": name, **figures, "torch_threads": torch.get_num_threads(),
               "cpu_count": os.cpu_count(), "python": platform.python_version()}
    print(json.dumps(figures))
