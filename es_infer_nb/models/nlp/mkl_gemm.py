"""Float32 projections on MKL's packed GEMM: the fp32 encoder's linears on Intel CPUs.

MKL (which torch's CPU wheels link in, its C interface exported by ``libtorch_cpu``) packs a weight
once (``cblas_sgemm_pack``) into its own blocked layout and multiplies by it (``cblas_sgemm_compute``)
at any row count: the packed layout does not depend on the rows (``cblas_sgemm_pack_get_size`` gives
the same size for 1 row or 4,096). :class:`MKLLinear` is that GEMM behind ``nn.Linear``'s contract,
float32 arithmetic throughout (largest error against float64 the same as ``F.linear``'s).

Measured against oneDNN's packed linear (:class:`.bert_encoder.OneDNNLinear`, the alternative), one
thread, MiniLM's shapes, the weights of a whole model cycled as a forward pass reads them (Xeon with
AVX-512 / AMX, 2026-12): 1,000 rows 228-238 GFLOP/s against 213-220 (QKV and FFN input +10%, FFN
output +6%, attention output +3%); with the AVX2 caps (``MKL_ENABLE_INSTRUCTIONS=AVX2``,
``ONEDNN_MAX_CPU_ISA=AVX2``) 116-120 against 113-116; a single text (34 rows) 8-15% faster; the encoder
end to end (bench corpus, batch by batch interleaved, one thread) 4.4% faster, min cosine 0.9999998.
MKL picks its kernels by CPU vendor (AMD EPYC gets a slow path at these shapes: oneDNN there ran
~1.9x MKL's sgemm end to end), so :func:`preferred` answers by vendor and ISA: MKL on ``GenuineIntel``
CPUs with AVX2 or AVX-512 (with the AVX2 caps the encoder on the two streams runs 1.8% faster on MKL:
its batches pad no rows, which oneDNN's per-row-count kernels need), oneDNN elsewhere;
``$ES_INFER_NB_FP32_GEMM`` (``mkl`` / ``onednn`` / ``auto``) overrides it.

Calls made on more than one thread (a lone batch on all of torch's threads: a single text) go to a
``threaded`` module where one is given (:class:`.bert_encoder.OneDNNLinear`: MKL's packed GEMM barely
splits over threads), which holds its own packed copy: the fp32 encoder then keeps its weights once and
packed twice (MiniLM: +88 MB).

A packed weight is MKL's own structure: it may not be moved (``copy.deepcopy`` and ``pickle`` pack the weight again)
and it holds about the weight's own size in memory (the buffer reserved is larger, its untouched pages
never resident). Calls from several threads on one packed weight are safe (it is only read); each runs
on the calling thread's MKL thread count (a stream's one thread, see :mod:`.stream_pool`).
"""

from __future__ import annotations

import ctypes
import functools
import os
from typing import Any, Callable

import torch
from torch import nn

from ..native_build import torch_function
from .native_norm import bias_gelu_
from .precision import cpu_capability

__all__ = ["ENV", "MKLLinear", "available", "preferred"]

#: ``mkl``, ``onednn`` or ``auto`` (the default: :func:`preferred` decides by CPU vendor and ISA)
ENV = "ES_INFER_NB_FP32_GEMM"
#: the CPU vendor MKL runs its fastest kernels on
MKL_VENDOR = "GenuineIntel"
#: ``MKL_ENABLE_INSTRUCTIONS`` values that leave MKL its AVX2 kernels or better
MKL_ISAS_FROM_AVX2 = ("AVX2", "AVX512", "AVX10")
# CBLAS constants (mkl_cblas.h)
_ROW_MAJOR, _NO_TRANS, _TRANS, _PACKED, _B_MATRIX = 101, 111, 112, 151, 162


@functools.cache
def _cblas() -> tuple[Any, Any, Any] | None:
    """MKL's ``cblas_sgemm_pack_get_size``, ``cblas_sgemm_pack`` and ``cblas_sgemm_compute`` from torch's
    own libraries (LP64: 32-bit ints), checked on a small product; ``None`` where torch has no MKL."""
    if not torch.backends.mkl.is_available():
        return None
    names = ("libtorch_cpu.*", "libmkl_rt*")
    size, pack, compute = (torch_function(names, f"cblas_sgemm_{name}") for name in ("pack_get_size", "pack", "compute"))
    if size is None or pack is None or compute is None:
        return None
    i, p, f = ctypes.c_int, ctypes.c_void_p, ctypes.c_float
    size.argtypes, size.restype = [i, i, i, i], ctypes.c_size_t
    pack.argtypes, pack.restype = [i, i, i, i, i, i, f, p, i, p], None
    compute.argtypes, compute.restype = [i, i, i, i, i, i, p, i, p, i, f, p, i], None
    weight = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    x = torch.tensor([[1.0, -1.0]])
    try:
        packed = _pack(weight, (size, pack, compute))
        out = torch.empty(1, 3)
        compute(_ROW_MAJOR, _NO_TRANS, _PACKED, 1, 3, 2, x.data_ptr(), 2, packed.data_ptr(), 3, 0.0, out.data_ptr(), 3)
    except (OSError, RuntimeError):
        return None
    return (size, pack, compute) if torch.equal(out, torch.tensor([[-1.0, -1.0, -1.0]])) else None


def _pack(weight: torch.Tensor, cblas: tuple[Any, Any, Any]) -> torch.Tensor:
    """``weight`` ([out, in], float32, contiguous) packed as MKL's B matrix of ``x @ weight.T``."""
    size, pack, _ = cblas
    n, k = weight.shape
    # the packed B does not depend on the rows it will multiply (m): any count stands in for them
    nbytes = int(size(_B_MATRIX, max(1, n), n, k))
    buffer = torch.empty(-(-nbytes // 4), dtype=torch.float32)  # 64-byte aligned, as MKL asks
    pack(_ROW_MAJOR, _B_MATRIX, _TRANS, max(1, n), n, k, 1.0, weight.data_ptr(), k, buffer.data_ptr())
    return buffer


def available() -> bool:
    """Whether MKL's packed GEMM runs here (torch built with MKL, its C interface found and checked)."""
    return _cblas() is not None


def preferred() -> bool:
    """Whether the fp32 encoder's projections run on MKL (:class:`MKLLinear`) rather than oneDNN:
    ``$ES_INFER_NB_FP32_GEMM`` when set to ``mkl`` or ``onednn``, else on an Intel CPU (MKL's own
    dispatch) with AVX2 or AVX-512 (``MKL_ENABLE_INSTRUCTIONS`` not holding MKL below AVX2): with the
    AVX2 caps, since the batches MKL runs pad no rows (:data:`.bert_encoder.ROW_BUCKET`), the encoder
    runs 1.8% faster on MKL on the two streams (two runs of six interleaved rounds; 4.6% on one thread),
    where with the padding it ran 2.3% slower; never where MKL's packed GEMM is unavailable."""
    choice = os.environ.get(ENV, "auto").strip().lower() or "auto"
    if choice not in ("auto", "mkl", "onednn"):
        raise ValueError(f"${ENV} must be one of [auto, mkl, onednn], got [{choice}]")
    if choice == "onednn" or not available():
        return False
    if choice == "mkl":
        return True
    cap = cpu_capability()
    mkl_cap = os.environ.get("MKL_ENABLE_INSTRUCTIONS", "").strip().upper()
    return (cap.vendor == MKL_VENDOR and "avx2" in cap.flags
            and (not mkl_cap or mkl_cap.startswith(MKL_ISAS_FROM_AVX2)))


class MKLLinear(nn.Module):
    """A float32 CPU ``nn.Linear`` on MKL's packed GEMM (the weight packed once).

    :meth:`gelu` adds the bias and runs the GELU in one pass in C after the GEMM
    (:func:`.native_norm.bias_gelu_`: 1.9-2.1% faster end to end than ATen's two); :meth:`accumulate`
    adds the product into the residual inside the GEMM (``beta = 1`` on ``h``: no separate pass, no new tensor).

    ``threaded``: the module (same weights, same methods) that calls made on more than one thread go to.
    MKL's packed GEMM barely splits over threads at these shapes (two threads, 34 rows: 239 us where one
    takes 238 and oneDNN's two 143; 1,000 rows of the FFN input 5.9 ms on two threads as on one): a
    single text's call on all of torch's threads ran 38% slower on MKL alone. The streams' batches
    (one thread each) run on MKL."""

    def __init__(self, linear: nn.Module, threaded: nn.Module | None = None) -> None:
        super().__init__()
        self.threaded = threaded
        weight = linear.weight.detach()
        if weight.dtype is not torch.float32 or weight.device.type != "cpu":
            raise ValueError(f"MKLLinear takes a float32 CPU linear, not {weight.dtype} on {weight.device}")
        self.in_features, self.out_features = int(weight.shape[1]), int(weight.shape[0])
        self.register_buffer("weight", weight.contiguous())
        bias = getattr(linear, "bias", None)
        self.register_buffer("bias", None if bias is None else bias.detach().to(torch.float32).contiguous())
        self._pack_weight()

    # MKL's packed structure must not move: a copy or a pickle carries the weight, and packs it again
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("_packed", None)
        state.pop("_compute", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self._pack_weight()

    def _pack_weight(self) -> None:
        """:attr:`weight` packed for MKL (at construction, and again in a copy or an unpickled module)."""
        cblas = _cblas()
        if cblas is None:
            raise RuntimeError("MKL's packed GEMM is not available in this torch build; use OneDNNLinear")
        self._compute = cblas[2]
        self._packed = _pack(self.weight, cblas)

    def extra_repr(self) -> str:
        more = "" if self.threaded is None else ", threaded calls on the module below"
        return f"in_features={self.in_features}, out_features={self.out_features}, float32 (MKL packed{more})"

    def _product(self, x: torch.Tensor, out: torch.Tensor, beta: float) -> torch.Tensor:
        """``out = x @ W.T + beta * out`` (both 2-D, rows contiguous)."""
        rows = int(x.shape[0])
        if rows:
            self._compute(_ROW_MAJOR, _NO_TRANS, _PACKED, rows, self.out_features, self.in_features, x.data_ptr(),
                          x.stride(0), self._packed.data_ptr(), self.out_features, beta, out.data_ptr(), out.stride(0))
        return out

    def _rows(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` as float32 CPU rows of unit column stride, checked against the weight."""
        if x.dtype is not torch.float32 or x.device.type != "cpu" or x.dim() != 2:
            raise ValueError(f"MKLLinear takes 2-D float32 CPU rows, not {tuple(x.shape)} {x.dtype} on {x.device}")
        if x.shape[1] != self.in_features:
            raise ValueError(f"MKLLinear expects {self.in_features} features, got {x.shape[1]}")
        return x if x.stride(1) == 1 and x.stride(0) >= self.in_features else x.contiguous()

    def _delegate(self) -> nn.Module | None:
        """:attr:`threaded` when this thread runs torch's ops on more than one thread, else ``None``."""
        return self.threaded if self.threaded is not None and torch.get_num_threads() > 1 else None

    def any_rows(self) -> bool:
        """Whether a call on this thread runs on MKL, whose packed GEMM takes any row count at no cost
        (no kernel built per count, unlike oneDNN's: the encoder then pads no rows)."""
        return self._delegate() is None

    def _new_product(self, x: torch.Tensor, epilogue: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """``epilogue(x @ W.T)`` in a new tensor (in place on it); ``x`` of any leading shape, as
        ``nn.Linear`` takes it: its rows, then the shape back."""
        if x.dim() != 2:
            return self._new_product(x.reshape(-1, x.shape[-1]), epilogue).view(*x.shape[:-1], self.out_features)
        return epilogue(self._product(self._rows(x), x.new_empty((x.shape[0], self.out_features)), 0.0))

    def _add_bias(self, out: torch.Tensor) -> torch.Tensor:
        return out if self.bias is None else out.add_(self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        threaded = self._delegate()
        if threaded is not None:
            return threaded(x)
        return self._new_product(x, self._add_bias)

    def gelu(self, x: torch.Tensor) -> torch.Tensor:
        """``F.gelu(self(x))`` (exact, erf GELU), in place on the GEMM's output: the bias add and the GELU
        in one pass (:func:`.native_norm.bias_gelu_`)."""
        threaded = self._delegate()
        if threaded is not None:
            return threaded.gelu(x)
        return self._new_product(x, lambda out: bias_gelu_(out, self.bias))

    def accumulate(self, x: torch.Tensor, h: torch.Tensor, rows: Any = None) -> torch.Tensor:
        """``h + self(x)``, written into ``h`` (by the GEMM itself where ``h`` is float32 rows of unit stride)."""
        threaded = self._delegate()
        if threaded is not None:
            return threaded.accumulate(x, h, rows)
        if (h.dtype is not torch.float32 or h.dim() != 2 or h.stride(1) != 1 or h.stride(0) < self.out_features
                or h.shape[0] != x.shape[0] or h.shape[1] != self.out_features):
            return h.add_(self(x))
        return self._add_bias(self._product(self._rows(x), h, 1.0))

