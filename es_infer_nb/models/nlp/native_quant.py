"""Dynamic per-tensor uint8 quantization of a float32 activation in one C call (for the int8 encoder).

What oneDNN's int8 GEMM (``onednn::qlinear_pointwise``) is fed by :class:`.quantize.Int8Linear` on AMX
and AVX512-VNNI CPUs: the range ``[min(x, 0), max(x, 0)]`` of the whole tensor (one vectorised pass), ``scale =
(max - min) / 255`` and ``zero_point = round(-min / scale)`` as fbgemm's dynamic kernel picks them, and
``q = clamp(round_half_even(x / scale) + zero_point, 0, 255)`` (a second pass) written straight into
a ``uint8`` tensor. torch's ``aminmax`` + ``quantize_per_tensor`` + ``int_repr`` make three passes
and a copy (measured: ~27% of the int8 encoder's time on one thread, as much as its GEMMs). Built
once per machine by :func:`..native_build.compile_library`; ``None`` from :func:`kernel` means torch's ops.
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

#if defined(__AVX512F__)
#define W 16
#else
#define W 8
#endif
typedef float vf __attribute__((vector_size(W * 4)));
typedef int32_t vi __attribute__((vector_size(W * 4)));
typedef uint8_t vq __attribute__((vector_size(W)));

static inline vf vsel(vi m, vf a, vf b) { return (vf)((m & (vi)a) | (~m & (vi)b)); }
static inline vf ld(const float *p) { vf v; memcpy(&v, p, sizeof v); return v; }

/* [min(x, 0), max(x, 0)] of x[0..n) */
static void range(const float *restrict x, int64_t n, float *lo, float *hi) {
    vf a = (vf){0}, b = (vf){0};
    int64_t i = 0;
    for (; i + W <= n; i += W) { const vf v = ld(x + i); a = vsel(v < a, v, a); b = vsel(v > b, v, b); }
    float sa = 0.0f, sb = 0.0f;
    for (int l = 0; l < W; l++) { sa = a[l] < sa ? a[l] : sa; sb = b[l] > sb ? b[l] : sb; }
    for (; i < n; i++) { sa = x[i] < sa ? x[i] : sa; sb = x[i] > sb ? x[i] : sb; }
    *lo = sa; *hi = sb;
}

/* q = clamp(rint(x * inv) + zp, 0, 255): round half to even by adding and taking away 1.5 * 2^23
   (exact for |x * inv| < 2^22: the values are clamped to +-300 first) */
static inline vf vquant(vf v, float inv, float zp) {
    v = v * inv;
    v = vsel(v > 300.0f, v - v + 300.0f, v);
    v = vsel(v < -300.0f, v - v - 300.0f, v);
    v = (v + 12582912.0f) - 12582912.0f + zp;
    v = vsel(v < 0.0f, v - v, v);
    return vsel(v > 255.0f, v - v + 255.0f, v);
}

static void quantize(const float *restrict x, int64_t n, uint8_t *restrict q, float inv, float zp) {
    int64_t i = 0;
    for (; i + W <= n; i += W) {
        const vq r = __builtin_convertvector(__builtin_convertvector(vquant(ld(x + i), inv, zp), vi), vq);
        memcpy(q + i, &r, sizeof r);
    }
    for (; i < n; i++) {
        float v = x[i] * inv;
        v = v > 300.0f ? 300.0f : v < -300.0f ? -300.0f : v;
        v = (v + 12582912.0f) - 12582912.0f + zp;
        q[i] = (uint8_t)(v < 0.0f ? 0.0f : v > 255.0f ? 255.0f : v);
    }
}

/* the whole call: returns the scale and zero point through *scale / *zero */
int es_quantize_u8(const float *x, int64_t n, uint8_t *q, float *scale, int32_t *zero) {
    float lo, hi;
    range(x, n, &lo, &hi);
    float s = (hi - lo) / 255.0f;
    if (!(s > 0.0f)) s = 1.0f;
    float z = rintf(-lo / s);
    z = z < 0.0f ? 0.0f : z > 255.0f ? 255.0f : z;
    quantize(x, n, q, 1.0f / s, z);
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
