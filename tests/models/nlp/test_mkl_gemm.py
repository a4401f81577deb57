"""MKL's packed GEMM behind nn.Linear (es_infer_nb.models.nlp.mkl_gemm): float32 answers, the resolver."""

from __future__ import annotations

import copy
import pickle
import threading

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from es_infer_nb.models.nlp import mkl_gemm, precision
from es_infer_nb.models.nlp.mkl_gemm import MKLLinear

needs_mkl = pytest.mark.skipif(not mkl_gemm.available(), reason="this torch build has no MKL (not x86-64)")


def _exact(linear: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    return F.linear(x.double(), linear.weight.double(), None if linear.bias is None else linear.bias.double())


@needs_mkl
@pytest.mark.parametrize(("features", "bias"), [((384, 1152), True), ((1536, 384), False), ((48, 80), True), ((5, 3), True)])
@pytest.mark.parametrize("rows", [0, 1, 7, 34, 300])
def test_mkl_linear_gives_float32_products_at_any_row_count(features, bias, rows):
    torch.manual_seed(rows)
    linear = nn.Linear(*features, bias=bias)
    fast = MKLLinear(linear)
    x = torch.randn(rows, features[0])
    with torch.inference_mode():
        out = fast(x)
        plain = linear(x)
        exact = _exact(linear, x)
    assert out.shape == (rows, features[1]) and out.dtype is torch.float32
    torch.testing.assert_close(out, plain, atol=2e-5, rtol=1e-5)
    if rows:  # within float32 rounding of the exact product, as close as ATen's own GEMM
        bound = 4 * float((plain.double() - exact).abs().max())
        assert float((out.double() - exact).abs().max()) <= max(bound, 1e-5)


@needs_mkl
def test_mkl_linear_gelu_accumulate_and_layouts():
    torch.manual_seed(0)
    linear = nn.Linear(48, 80)
    fast = MKLLinear(linear)
    x = torch.randn(37, 48)
    h = torch.randn(37, 80)
    with torch.inference_mode():
        expected = linear(x)
        torch.testing.assert_close(fast.gelu(x), F.gelu(expected), atol=1e-5, rtol=1e-5)
        into = h.clone()
        out = fast.accumulate(x, into)
        assert out.data_ptr() == into.data_ptr()  # the GEMM adds into the residual itself
        torch.testing.assert_close(out, h + expected, atol=1e-5, rtol=1e-5)
        # a residual the GEMM cannot write (a column-strided view) still gets the sum, in place
        wide = torch.randn(80, 37).t()
        reference = wide + expected
        torch.testing.assert_close(fast.accumulate(x, wide), reference, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(wide, reference, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(fast(x[::2]), expected[::2], atol=1e-5, rtol=1e-5)  # strided rows
        torch.testing.assert_close(fast(x.t().contiguous().t()), expected, atol=1e-5, rtol=1e-5)  # column-major
        batch = torch.randn(3, 5, 48)
        torch.testing.assert_close(fast(batch), linear(batch), atol=1e-5, rtol=1e-5)  # any leading shape
    assert "MKL packed" in repr(fast)


@needs_mkl
def test_mkl_linear_refuses_what_it_cannot_multiply_with_the_field_named():
    fast = MKLLinear(nn.Linear(8, 4))
    with pytest.raises(ValueError, match="8 features"):
        fast(torch.randn(2, 5))
    with pytest.raises(ValueError, match="float32 CPU rows"):
        fast(torch.randn(2, 8, dtype=torch.float64))
    with pytest.raises(ValueError, match="float32 CPU linear"):
        MKLLinear(nn.Linear(8, 4).to(torch.bfloat16))


@needs_mkl
def test_a_copy_or_a_pickle_packs_its_own_weight_and_threads_share_one_packed_weight():
    torch.manual_seed(1)
    linear = nn.Linear(384, 1536)
    fast = MKLLinear(linear)
    twin = copy.deepcopy(fast)
    unpickled = pickle.loads(pickle.dumps(fast))
    assert len({fast._packed.data_ptr(), twin._packed.data_ptr(), unpickled._packed.data_ptr()}) == 3
    xs = [torch.randn(200, 384) for _ in range(2)]
    with torch.inference_mode():
        expected = [fast(x) for x in xs]
        assert all(torch.equal(twin(x), e) and torch.equal(unpickled(x), e) for x, e in zip(xs, expected))
    wrong: list[int] = []

    def work(i: int) -> None:
        with torch.inference_mode():
            for _ in range(50):
                if not torch.equal(fast(xs[i]), expected[i]):
                    wrong.append(i)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []


AVX512 = frozenset({"avx2", "avx512f"})


@pytest.mark.parametrize(("setting", "vendor", "flags", "isa", "mkl_isa", "expected"), [
    (None, "GenuineIntel", AVX512, None, None, True),
    (None, "AuthenticAMD", AVX512, None, None, False),  # MKL's slow path there: oneDNN
    ("auto", "AuthenticAMD", AVX512, None, None, False),
    (None, "GenuineIntel", frozenset({"avx2"}), None, None, True),  # an AVX2-class Intel CPU: MKL too
    (None, "GenuineIntel", AVX512, "AVX2", None, True),  # the AVX2 class simulated
    (None, "GenuineIntel", AVX512, None, "AVX2", True),
    (None, "GenuineIntel", AVX512, None, "AVX512_E1", True),
    (None, "GenuineIntel", AVX512, None, "SSE4_2", False),  # MKL held below AVX2: oneDNN
    (None, "GenuineIntel", frozenset({"sse4_2"}), None, None, False),  # no AVX2
    ("mkl", "AuthenticAMD", AVX512, None, None, True),
    ("onednn", "GenuineIntel", AVX512, None, None, False),
    (" MKL ", None, frozenset(), None, None, True),
])
def test_the_resolver_picks_mkl_on_intel_avx2_or_avx512_cpus_unless_told(monkeypatch, setting, vendor, flags, isa, mkl_isa,
                                                                  expected):
    monkeypatch.setattr(mkl_gemm, "cpu_capability", lambda: precision.CpuCapability(flags, isa, None, vendor))
    monkeypatch.setattr(mkl_gemm, "available", lambda: True)
    for name, value in ((mkl_gemm.ENV, setting), ("MKL_ENABLE_INSTRUCTIONS", mkl_isa)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    assert mkl_gemm.preferred() is expected
    monkeypatch.setattr(mkl_gemm, "available", lambda: False)
    assert mkl_gemm.preferred() is False  # never without MKL


def test_a_wrong_setting_names_the_variable_and_the_choices(monkeypatch):
    monkeypatch.setenv(mkl_gemm.ENV, "openblas")
    with pytest.raises(ValueError, match=r"ES_INFER_NB_FP32_GEMM must be one of \[auto, mkl, onednn\], got \[openblas\]"):
        mkl_gemm.preferred()


def test_the_cpu_vendor_is_read_from_cpuinfo():
    vendor = precision.cpu_capability().vendor
    with open("/proc/cpuinfo", encoding="utf-8") as fh:
        line = next((row for row in fh if row.startswith("vendor_id")), None)
    assert vendor == (None if line is None else line.split(":", 1)[1].strip())


class _Recorder(nn.Module):
    """A stand-in for the threaded module: records which method ran."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        self.linear, self.calls = linear, []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.append("forward")
        return self.linear(x)

    def gelu(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.append("gelu")
        return F.gelu(self.linear(x))

    def accumulate(self, x: torch.Tensor, h: torch.Tensor, rows: object = None) -> torch.Tensor:
        self.calls.append("accumulate")
        return h.add_(self.linear(x))


@needs_mkl
def test_calls_on_several_threads_go_to_the_threaded_module_and_one_thread_runs_mkl():
    torch.manual_seed(2)
    linear = nn.Linear(32, 48)
    recorder = _Recorder(linear)
    fast = MKLLinear(linear, threaded=recorder)
    x, h = torch.randn(5, 32), torch.randn(5, 48)
    threads = torch.get_num_threads()
    try:
        with torch.inference_mode():
            torch.set_num_threads(2)
            for method in (fast, fast.gelu, lambda v: fast.accumulate(v, h.clone())):
                method(x)
            assert recorder.calls == ["forward", "gelu", "accumulate"]
            torch.set_num_threads(1)
            expected = linear(x)
            torch.testing.assert_close(fast(x), expected, atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(fast.gelu(x), F.gelu(expected), atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(fast.accumulate(x, h.clone()), h + expected, atol=1e-5, rtol=1e-5)
            assert recorder.calls == ["forward", "gelu", "accumulate"]  # none more: MKL ran them
    finally:
        torch.set_num_threads(threads)
    assert "threaded calls" in repr(fast)
