"""benchmarks/fma_peak.py: the CPU's vector FMA ceiling that the embeddings benchmark reports its shares of."""

from __future__ import annotations

import importlib.util
import math
import shutil
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "fma_peak.py"


def load():
    spec = importlib.util.spec_from_file_location("fma_peak", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None, reason="needs a C compiler")
def test_the_peak_is_a_finite_rate_and_bf16_only_where_the_build_has_it():
    from es_infer_nb.models.native_build import disabled

    if disabled():
        pytest.skip("native kernels are turned off (ES_INFER_NB_NO_NATIVE)")
    peak = load()
    one = peak.fma_peak_gflops(1, seconds=0.05)
    assert one is not None and math.isfinite(one) and one > 1.0  # any x86-64 core with FMA: tens of GFLOP/s
    bf16 = peak.fma_peak_gflops(1, bf16=True, seconds=0.05)
    assert bf16 is None or (math.isfinite(bf16) and bf16 > 1.0)
    assert peak.fma_peak_gflops(0) is None
