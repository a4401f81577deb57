"""Dynamic per-tensor uint8 quantization of a float32 activation in one C call (for the int8 encoder).

What oneDNN's int8 GEMM (``onednn::qlinear_pointwise``) is fed by :class:`.quantize.Int8Linear` on AMX
and AVX512-VNNI CPUs: the range ``[min(x, 0), max(x, 0)]`` of the whole tensor (one vectorised pass),
``scale = (max - min) / 255`` and ``zero_point = round(-min / scale)`` as fbgemm's dynamic kernel picks
them, and ``q = clamp(round_half_even(x / scale) + zero_point, 0, 255)`` (a second pass) written
straight into a ``uint8`` tensor. torch's ``aminmax`` + ``quantize_per_tensor`` + ``int_repr`` make
three passes and a copy (measured: ~27% of the int8 encoder's time on one thread, as much as its
GEMMs). Both passes are AVX-512 or AVX2 intrinsics (min / max, the rounding conversion, a saturating
narrow to uint8: 7-8 Gelem/s on AMD EPYC Zen 4 where generic vector selects made 2.1), a scalar loop
in a build for neither. Built once per machine by :func:`..native_build.compile_library`; ``None``
from :func:`kernel` means torch's ops.
"""

from __future__ import annotations

import ctypes
import threading
import warnings

import torch

from ..native_build import compile_library, load_once

__all__ = ["SOURCE", "kernel", "quantize_u8"]

FLAGS = ("-O3", "-fPIC", "-shared", "-fno-fast-math", "-fno-tree-loop-distribute-patterns")

SOURCE = r"""
#include <stdint.h>
#include <string.h>
#include <math.h>
#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

/* the scalar steps of both passes (tails, and the whole of a build without AVX2) */
static inline void fold(const float *restrict x, int64_t i, int64_t n, float *sa, float *sb) {
    for (; i < n; i++) { *sa = x[i] < *sa ? x[i] : *sa; *sb = x[i] > *sb ? x[i] : *sb; }
}

static inline uint8_t quant1(float x, float inv, int32_t zp) {
    float v = x * inv;
    v = v > 300.0f ? 300.0f : v < -300.0f ? -300.0f : v;  /* NaN stays NaN */
    if (!(v == v)) return 0;
    int32_t q = (int32_t)rintf(v) + zp;
    return (uint8_t)(q < 0 ? 0 : q > 255 ? 255 : q);
}

#if defined(__AVX512F__)
/* [min(x, 0), max(x, 0)]: the accumulator is the second operand of min / max, so NaN is skipped */
static void range(const float *restrict x, int64_t n, float *lo, float *hi) {
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, b0 = a0, b1 = a0;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        const __m512 u = _mm512_loadu_ps(x + i), v = _mm512_loadu_ps(x + i + 16);
        a0 = _mm512_min_ps(u, a0); b0 = _mm512_max_ps(u, b0);
        a1 = _mm512_min_ps(v, a1); b1 = _mm512_max_ps(v, b1);
    }
    for (; i + 16 <= n; i += 16) {
        const __m512 u = _mm512_loadu_ps(x + i);
        a0 = _mm512_min_ps(u, a0); b0 = _mm512_max_ps(u, b0);
    }
    *lo = _mm512_reduce_min_ps(_mm512_min_ps(a0, a1));
    *hi = _mm512_reduce_max_ps(_mm512_max_ps(b0, b1));
    fold(x, i, n, lo, hi);
}

/* q = clamp(rint(x * inv) + zp, 0, 255): clamped to +-300 first (NaN stays NaN, converts to INT_MIN,
   ends as 0), rounded half to even by the conversion, saturated to uint8 by vpmovusdb */
static void quantize(const float *restrict x, int64_t n, uint8_t *restrict q, float inv, int32_t zp) {
    const __m512 vinv = _mm512_set1_ps(inv), top = _mm512_set1_ps(300.0f), bottom = _mm512_set1_ps(-300.0f);
    const __m512i vzp = _mm512_set1_epi32(zp), zero = _mm512_setzero_si512();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 v = _mm512_mul_ps(_mm512_loadu_ps(x + i), vinv);
        v = _mm512_max_ps(bottom, _mm512_min_ps(top, v));
        __m512i r = _mm512_add_epi32(_mm512_cvt_roundps_epi32(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC), vzp);
        _mm_storeu_si128((__m128i *)(q + i), _mm512_cvtusepi32_epi8(_mm512_max_epi32(r, zero)));
    }
    for (; i < n; i++) q[i] = quant1(x[i], inv, zp);
}
#elif defined(__AVX2__)
static void range(const float *restrict x, int64_t n, float *lo, float *hi) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, b0 = a0, b1 = a0;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m256 u = _mm256_loadu_ps(x + i), v = _mm256_loadu_ps(x + i + 8);
        a0 = _mm256_min_ps(u, a0); b0 = _mm256_max_ps(u, b0);
        a1 = _mm256_min_ps(v, a1); b1 = _mm256_max_ps(v, b1);
    }
    float la[8], lb[8];
    _mm256_storeu_ps(la, _mm256_min_ps(a0, a1)); _mm256_storeu_ps(lb, _mm256_max_ps(b0, b1));
    *lo = 0.0f; *hi = 0.0f;
    fold(la, 0, 8, lo, hi);
    fold(lb, 0, 8, lo, hi);
    fold(x, i, n, lo, hi);
}

static void quantize(const float *restrict x, int64_t n, uint8_t *restrict q, float inv, int32_t zp) {
    const __m256 vinv = _mm256_set1_ps(inv), top = _mm256_set1_ps(300.0f), bottom = _mm256_set1_ps(-300.0f);
    const __m256i vzp = _mm256_set1_epi32(zp);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x + i), vinv);
        v = _mm256_max_ps(bottom, _mm256_min_ps(top, v));
        const __m256i r = _mm256_add_epi32(_mm256_cvtps_epi32(_mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT |
                                                                                  _MM_FROUND_NO_EXC)), vzp);
        const __m128i w = _mm_packus_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1));
        _mm_storel_epi64((__m128i *)(q + i), _mm_packus_epi16(w, w));
    }
    for (; i < n; i++) q[i] = quant1(x[i], inv, zp);
}
#else
static void range(const float *restrict x, int64_t n, float *lo, float *hi) {
    *lo = 0.0f; *hi = 0.0f;
    fold(x, 0, n, lo, hi);
}

static void quantize(const float *restrict x, int64_t n, uint8_t *restrict q, float inv, int32_t zp) {
    for (int64_t i = 0; i < n; i++) q[i] = quant1(x[i], inv, zp);
}
#endif

/* the whole call: returns the scale and zero point through *scale / *zero */
int es_quantize_u8(const float *x, int64_t n, uint8_t *q, float *scale, int32_t *zero) {
    float lo, hi;
    range(x, n, &lo, &hi);
    float s = (hi - lo) / 255.0f;
    if (!(s > 0.0f)) s = 1.0f;
    float z = rintf(-lo / s);
    z = z < 0.0f ? 0.0f : z > 255.0f ? 255.0f : z;
    quantize(x, n, q, 1.0f / s, (int32_t)z);
    *scale = s;
    *zero = (int32_t)z;
    return 0;
}
"""

_lock = threading.Lock()
_state: dict[str, object] = {}


def _bind(lib: ctypes.CDLL) -> None:
    fn = lib.es_quantize_u8
    fn.argtypes = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p, ctypes.POINTER(ctypes.c_float),
                   ctypes.POINTER(ctypes.c_int32)]
    fn.restype = ctypes.c_int


def kernel() -> ctypes.CDLL | None:
    """The loaded library, building it on first use; ``None`` when unavailable or disabled."""
    return load_once(_state, _lock, lambda: compile_library(
        SOURCE, "es_quant", _bind, "int8 activations", name="quantize", flags=FLAGS))


def quantize_u8(x: torch.Tensor) -> tuple[torch.Tensor, float, int]:
    """``(q, scale, zero_point)``: float32 CPU ``x`` quantized per tensor to ``uint8`` over its range
    with zero included (``x ~ (q - zero_point) * scale``)."""
    x = x.contiguous()
    lib = kernel()
    if lib is None:
        low, high = torch.aminmax(x)
        low, high = min(float(low), 0.0), max(float(high), 0.0)
        scale = (high - low) / 255.0 or 1.0
        zero = int(min(255, max(0, round(-low / scale))))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch deprecates quantized tensors in favour of torchao
            return torch.quantize_per_tensor(x, scale, zero, torch.quint8).int_repr(), scale, zero
    q = torch.empty(x.shape, dtype=torch.uint8)
    scale, zero = ctypes.c_float(), ctypes.c_int32()
    lib.es_quantize_u8(x.data_ptr(), x.numel(), q.data_ptr(), ctypes.byref(scale), ctypes.byref(zero))
    return q, float(scale.value), int(zero.value)
