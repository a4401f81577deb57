"""Dynamic uint8 quantization in one C call (native_quant) and the int8 projections that run on oneDNN's
int8 GEMM with it on AMX CPUs (quantize.Int8Linear, "tensor" activations)."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from es_infer_nb.models.nlp import native_quant
from es_infer_nb.models.nlp.quantize import Int8Linear, onednn_int8


def _torch_reference(x: torch.Tensor) -> tuple[torch.Tensor, float, int]:
    low, high = min(float(x.min()), 0.0), max(float(x.max()), 0.0)
    scale = (high - low) / 255.0 or 1.0
    zero = int(min(255, max(0, round(-low / scale))))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.quantize_per_tensor(x, scale, zero, torch.quint8).int_repr(), scale, zero


@pytest.mark.parametrize("shape,shift", [((37, 384), 0.5), ((5, 17), -3.0), ((1, 1), 2.0), ((64, 1536), 0.0)])
def test_quantize_u8_equals_torchs_per_tensor_quantization(shape, shift):
    torch.manual_seed(0)
    x = torch.randn(*shape) * 3 + shift
    want, scale, zero = _torch_reference(x)
    got, got_scale, got_zero = native_quant.quantize_u8(x)
    assert got.dtype is torch.uint8 and got.shape == x.shape
    assert got_scale == pytest.approx(scale, rel=1e-6) and got_zero == zero
    # x * (1 / scale) against torch's x / scale: a value on a rounding tie may land one step over
    assert int((got.int() - want.int()).abs().max()) <= 1
    assert float((got.int() != want.int()).float().mean()) < 1e-3
    # dequantized, every value within one step of the input
    assert float(((got.float() - got_zero) * got_scale - x).abs().max()) <= got_scale * 0.5 + 1e-6


def test_quantize_u8_edge_inputs_and_the_torch_fallback(monkeypatch):
    zeros = torch.zeros(3, 16)
    q, scale, zero = native_quant.quantize_u8(zeros)
    assert scale == 1.0 and zero == 0 and int(q.max()) == 0
    only_negative = -torch.rand(4, 33) - 0.1
    q, scale, zero = native_quant.quantize_u8(only_negative)
    assert zero == 255 and int(q.min()) == 0 and int(q.max()) < 255  # zero (255) is above every value
    x = torch.randn(8, 40)[:, ::2]  # not contiguous
    native = native_quant.quantize_u8(x)
    monkeypatch.setattr(native_quant, "kernel", lambda: None)
    fallback = native_quant.quantize_u8(x)
    assert native[1] == pytest.approx(fallback[1], rel=1e-6) and native[2] == fallback[2]
    assert int((native[0].int() - fallback[0].int()).abs().max()) <= 1


def test_every_build_quantizes_alike(monkeypatch, tmp_path):
    """The AVX-512, AVX2 (``ES_INFER_NB_NATIVE_ISA=avx2``) and portable builds give the same bytes,
    scale and zero point: ties rounded half to even, NaN as 0, huge ranges, tails shorter than a
    vector."""
    if native_quant.kernel() is None:
        pytest.skip("no C compiler here: torch's ops are used")
    torch.manual_seed(5)
    x = torch.randn(7, 131) * 4
    x[0, :8] = torch.tensor([0.5, 1.5, 2.5, -0.5, -1.5, 1e9, -1e9, float("nan")])
    x[1, :4] = torch.tensor([1e30, -1e30, 0.0, -0.0])
    flat = x.flatten()
    builds = {}
    monkeypatch.setenv("ES_INFER_NB_NATIVE_CACHE", str(tmp_path))
    for isa in ("native", "avx2", "portable"):
        monkeypatch.setattr(native_quant, "_state", {})
        monkeypatch.setenv("ES_INFER_NB_NATIVE_ISA", isa)
        assert native_quant.kernel() is not None
        builds[isa] = [native_quant.quantize_u8(flat[:n]) for n in (1, 5, 8, 15, 16, 17, 31, 33, flat.numel())]
    for isa in ("avx2", "portable"):
        for (q, scale, zero), (want, want_scale, want_zero) in zip(builds[isa], builds["native"]):
            assert torch.equal(q, want) and scale == want_scale and zero == want_zero, isa
    q, scale, zero = builds["native"][-1]
    assert int(q.flatten()[7]) == 0  # NaN


def test_ties_round_half_to_even():
    """A tensor whose steps are exactly 1 (range [-127, 128], scale 1, zero point 127): ties go to the
    even neighbour, as torch's ``quantize_per_tensor`` rounds them."""
    x = torch.tensor([-127.0, 128.0, 0.5, 1.5, 2.5, -0.5, -1.5, 3.49, 3.51])
    q, scale, zero = native_quant.quantize_u8(x)
    assert scale == 1.0 and zero == 127
    assert (q.int() - zero).tolist() == [-127, 128, 0, 2, 2, 0, -2, 3, 4]


def _needs_onednn_int8() -> None:
    if not onednn_int8():
        pytest.skip("oneDNN's int8 GEMM path is for AMX / AVX512-VNNI CPUs; this one keeps fbgemm's")


@pytest.mark.parametrize("keep_float_rows", [False, True])
def test_onednn_int8_projection_matches_float_and_fuses_gelu(keep_float_rows):
    _needs_onednn_int8()
    torch.manual_seed(3)
    linear = nn.Linear(64, 96)
    x = torch.randn(40, 64)
    x[::10, 5] = 30.0  # an outlier column in the kept rows
    layer = Int8Linear(linear, activation="tensor", keep_float_rows=keep_float_rows, reduce_range=False)
    assert layer._onednn is not None
    rows = (slice(None, None, 10), None)
    with torch.inference_mode():
        expected = linear(x)
        got = layer(x.clone(), rows)
        fused = layer.gelu(x.clone(), rows)
    assert float((got - expected).norm() / expected.norm()) < 0.05
    torch.testing.assert_close(fused, F.gelu(got), atol=1e-5, rtol=1e-5)
    if keep_float_rows:
        torch.testing.assert_close(got[::10], expected[::10], atol=1e-5, rtol=1e-5)


def test_onednn_and_fbgemm_int8_give_the_same_projection(monkeypatch):
    """The same int8 weights, the same per-call activation range: oneDNN's GEMM and fbgemm's agree to
    within one quantization step's effect."""
    _needs_onednn_int8()
    torch.manual_seed(4)
    linear = nn.Linear(128, 64)
    x = torch.randn(50, 128)
    fast = Int8Linear(linear, activation="tensor", reduce_range=False)
    monkeypatch.setattr(fast, "_onednn", None)
    with torch.inference_mode():
        fbgemm = fast(x.clone())
    fast2 = Int8Linear(linear, activation="tensor", reduce_range=False)
    with torch.inference_mode():
        onednn = fast2(x.clone())
    assert float((onednn - fbgemm).norm() / fbgemm.norm()) < 0.01
