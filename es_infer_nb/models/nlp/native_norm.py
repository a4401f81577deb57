"""Layer norms of the fast BERT encoder in C: every layer's, in place, and the embeddings' with the first
layer's Q/K/V projection computed from tables in the same pass.

:func:`layer_norm_` normalises float32 rows where they are (the residual sum the output projection just
wrote: nobody else reads it): one pass over each row in cache, no new tensor. Measured on rows of the
bench corpus's 1,024-token batches, one thread: 82 us where ATen's layer norm takes 150 us; the encoder
end to end 0.1-1.9% faster (three interleaved rounds).

:func:`embed`: the first layer's fused Q/K/V projection reads ``LN(x)`` with ``x = word[id] + position[p] + type[0]``.
Layer norm is ``gamma * (x - mean) * rstd + beta``, so with ``A = W diag(gamma)`` the projection is

    ``W LN(x) + b = (A word[id] + A position[p] + A type[0] - mean * A 1) * rstd + (W beta + b)``

— the same float32 arithmetic regrouped (what the output projections' bias folding does too), with the
products of the weights and every embedding row computed once, when the encoder is built: a table of
``vocab x 3 hidden`` floats (141 MB for MiniLM's 30,522 x 1,152), one of ``positions x 3 hidden``, and
two vectors. Per token the projection is then a gather and a multiply-add over ``3 hidden`` floats instead
of a ``hidden x 3 hidden`` dot product: all-MiniLM-L6-v2 does 4.2% fewer FLOPs per token (the first of
six layers' Q/K/V GEMM); the rounding stays that of float32 (against a float64 reference: 7.7e-6
largest error vs 6.3e-6 for the GEMM on the bench corpus).

:func:`bias_gelu_`: the FFN input's bias add and exact GELU in one pass in place, after a GEMM that does
not fuse them (MKL's; oneDNN's below AVX-512), in the same library.

One call per batch computes, row by row, the summed embeddings, their layer norm (the residual stream's
first rows, ``h``) and the projection: the per-row mean and ``rstd`` it needs are the layer norm's own.
Built once per machine by :func:`..native_build.compile_library`; ``None`` from :func:`kernel` (no
compiler, a failed build, ``ES_INFER_NB_NO_NATIVE``) means the encoder runs ATen's layer norms and the GEMM.
"""

from __future__ import annotations

import ctypes
import hashlib
import threading
import weakref
from dataclasses import dataclass
from typing import Any

import torch

from ..native_build import VECTOR_ROWS_C, compile_library, load_once

__all__ = ["DTYPES", "MAX_TABLE_BYTES", "SOURCE", "EmbeddingTables", "build_tables", "embed", "kernel", "layer_norm_",
           "rows_usable", "takes", "usable"]

#: the largest word table built (bytes): BERT-base's (30,522 x 2,304 floats, 281 MB, for 2.1% of its
#: FLOPs) is not; MiniLM-L6's (141 MB, 4.2%) is
MAX_TABLE_BYTES = 192 * 2**20
#: the kernel's vectors hold 16 floats (8 on AVX2): hidden sizes it takes are multiples of this
VECTOR_MULTIPLE = 16
FLAGS = ("-O3", "-fPIC", "-shared", "-ffp-contract=fast", "-fno-tree-loop-distribute-patterns")

SOURCE = r"""
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

#if defined(__AVX512F__)
#define W 16
#else
#define W 8
#endif
""" + VECTOR_ROWS_C + r"""INLINE const void *row(int bf, const void *p, int64_t r) { return (const char *)p + r * (bf ? 2 : 4); }
INLINE float hsum(vf v) { float s = 0.0f; for (int l = 0; l < W; l++) s += v[l]; return s; }

/* mean and 1 / sqrt(var + eps) of the n floats at t (n a multiple of W) */
INLINE void moments(const float *t, int64_t n, float eps, float *mean, float *rstd) {
    vf s = (vf){0};
    for (int64_t j = 0; j < n; j += W) s += ld32(t + j);
    const float m = hsum(s) / (float)n;
    vf q = (vf){0};
    for (int64_t j = 0; j < n; j += W) { const vf d = ld32(t + j) - m; q += d * d; }
    *mean = m;
    *rstd = 1.0f / sqrtf(hsum(q) / (float)n + eps);
}

/* rows lo..hi-1 of x (n elements each, row stride xs), plus those of res (stride rs) when res is not
   NULL, layer-normed into y (stride ys): in place when y is x. bf: 0 float32 rows, 1 bfloat16 rows
   (float32 arithmetic, one rounding at the end). tmp: n floats. */
INLINE void norm_rows(int bf, int64_t lo, int64_t hi, const void *x, int64_t xs, const void *res, int64_t rs,
                      void *y, int64_t ys, int64_t n, const float *gamma, const float *beta, float eps,
                      float *restrict tmp) {
    for (int64_t r = lo; r < hi; r++) {
        const void *xr = row(bf, x, r * xs);
        void *yr = (void *)row(bf, y, r * ys);
        if (res) {
            const void *rr = row(bf, res, r * rs);
            for (int64_t j = 0; j < n; j += W) st32(tmp + j, ld(bf, xr, j) + ld(bf, rr, j));
        } else {
            for (int64_t j = 0; j < n; j += W) st32(tmp + j, ld(bf, xr, j));
        }
        float mean, rstd;
        moments(tmp, n, eps, &mean, &rstd);
        for (int64_t j = 0; j < n; j += W) st(bf, yr, j, (ld32(tmp + j) - mean) * rstd * ld32(gamma + j) + ld32(beta + j));
    }
}

/* 0; 1: out of memory; 2: n not a multiple of W */
int es_layer_norm(int bf, int64_t lo, int64_t hi, const void *x, int64_t xs, const void *res, int64_t rs, void *y,
                  int64_t ys, int64_t n, const float *gamma, const float *beta, float eps) {
    if (n % W) return 2;
    float *tmp = (float *)malloc(sizeof(float) * (size_t)n);  /* one row, reused: in L1 */
    if (!tmp) return 1;
    if (bf) norm_rows(1, lo, hi, x, xs, res, rs, y, ys, n, gamma, beta, eps, tmp);
    else norm_rows(0, lo, hi, x, xs, res, rs, y, ys, n, gamma, beta, eps, tmp);
    free(tmp);
    return 0;
}

/* rows lo..hi-1: h[r] = layer_norm(word[ids[r]] + position[pos[r]] + type0) and
   proj[r] = (tword[ids[r]] + tpos[pos[r]] - mean * a1) * rstd + c, written as float32 (bf 0) or
   bfloat16 (bf 1); a row whose id is negative is padding: zeros in both. hidden and width are
   multiples of W. */
INLINE void embed_rows(int bf, int64_t lo, int64_t hi, const int64_t *ids, const int64_t *pos, int64_t hidden,
                       int64_t width, const float *word, const float *position, const float *type0,
                       const float *gamma, const float *beta, float eps, const float *tword, const float *tpos,
                       const float *a1, const float *c, void *h, void *proj, float *restrict tmp) {
    for (int64_t r = lo; r < hi; r++) {
        void *hr = (void *)row(bf, h, r * hidden), *pr = (void *)row(bf, proj, r * width);
        if (ids[r] < 0) {
            memset(hr, 0, (size_t)hidden * (bf ? 2 : 4));
            memset(pr, 0, (size_t)width * (bf ? 2 : 4));
            continue;
        }
        const float *we = word + ids[r] * hidden, *pe = position + pos[r] * hidden;
        for (int64_t j = 0; j < hidden; j += W) st32(tmp + j, ld32(we + j) + ld32(pe + j) + ld32(type0 + j));
        float mean, rstd;
        moments(tmp, hidden, eps, &mean, &rstd);
        for (int64_t j = 0; j < hidden; j += W)
            st(bf, hr, j, (ld32(tmp + j) - mean) * rstd * ld32(gamma + j) + ld32(beta + j));
        const float *tw = tword + ids[r] * width, *tp = tpos + pos[r] * width;
        for (int64_t j = 0; j < width; j += W)
            st(bf, pr, j, (ld32(tw + j) + ld32(tp + j) - mean * ld32(a1 + j)) * rstd + ld32(c + j));
    }
}

int es_embed(int bf, int64_t lo, int64_t hi, const int64_t *ids, const int64_t *pos, int64_t hidden, int64_t width,
             const float *word, const float *position, const float *type0, const float *gamma,
             const float *beta, float eps, const float *tword, const float *tpos, const float *a1,
             const float *c, void *h, void *proj) {
    if (hidden % W || width % W) return 2;
    float *tmp = (float *)malloc(sizeof(float) * (size_t)hidden);
    if (!tmp) return 1;
    if (bf) embed_rows(1, lo, hi, ids, pos, hidden, width, word, position, type0, gamma, beta, eps, tword, tpos,
                       a1, c, h, proj, tmp);
    else embed_rows(0, lo, hi, ids, pos, hidden, width, word, position, type0, gamma, beta, eps, tword, tpos,
                    a1, c, h, proj, tmp);
    free(tmp);
    return 0;
}

/* erf(z) for float32 lanes: z clamped to [-4, 4] (erf is +-1 in float32 beyond), then a rational
   function of it, odd numerator of degree 13 over even denominator of degree 8 (the coefficients of
   Eigen's and XLA's float erf) */
INLINE vf verf(vf z) {
    const vf four = (vf){0} + 4.0f;
    vf x = vsel(z < four, z, four);
    x = vsel(x > -four, x, -four);
    const vf x2 = x * x;
    vf p = x2 * -2.72614225801306e-10f + 2.77068142495902e-08f;
    p = p * x2 - 2.10102402082508e-06f;
    p = p * x2 - 5.69250639462346e-05f;
    p = p * x2 - 7.34990630326855e-04f;
    p = p * x2 - 2.95459980854025e-03f;
    p = p * x2 - 1.60960333262415e-02f;
    vf q = x2 * -1.45660718464996e-05f - 2.13374055278905e-04f;
    q = q * x2 - 1.68282697438203e-03f;
    q = q * x2 - 7.37332916720468e-03f;
    q = q * x2 - 1.42647390514189e-02f;
    return p * x / q;
}

/* rows lo .. hi - 1 of x (row stride xs, n floats, n a multiple of W): x = gelu(x + bias) in place, the
   exact (erf) GELU 0.5 v (1 + erf(v / sqrt 2)); bias may be NULL. Returns 0; 2: n not a multiple of W */
int es_bias_gelu(int64_t lo, int64_t hi, float *x, int64_t xs, int64_t n, const float *bias) {
    if (n % W) return 2;
    for (int64_t r = lo; r < hi; r++) {
        float *xr = x + r * xs;
        for (int64_t j = 0; j < n; j += W) {
            const vf v = ld32(xr + j) + (bias ? ld32(bias + j) : (vf){0});
            const vf half = 0.5f * v;
            st32(xr + j, half + half * verf(v * 0.70710678118654752f));
        }
    }
    return 0;
}
"""

_lock = threading.Lock()
_state: dict[str, object] = {}


def _bind(lib: ctypes.CDLL) -> None:
    fn = lib.es_embed
    p, i, f = ctypes.c_void_p, ctypes.c_int64, ctypes.c_float
    fn.argtypes = [ctypes.c_int, i, i, p, p, i, i, p, p, p, p, p, f, p, p, p, p, p, p]
    fn.restype = ctypes.c_int
    fn = lib.es_layer_norm
    fn.argtypes = [ctypes.c_int, i, i, p, i, p, i, p, i, i, p, p, f]
    fn.restype = ctypes.c_int
    fn = lib.es_bias_gelu
    fn.argtypes = [i, i, p, i, i, p]
    fn.restype = ctypes.c_int


def kernel() -> ctypes.CDLL | None:
    """The loaded library, building it on first use; ``None`` when unavailable or disabled."""
    return load_once(_state, _lock, lambda: compile_library(
        SOURCE, "es_embed", _bind, "BERT embeddings", name="embedding", flags=FLAGS))


#: the dtypes of the rows the kernels read and write (their arithmetic is float32)
DTYPES = (torch.float32, torch.bfloat16)


def takes(norm: torch.nn.LayerNorm, width: int) -> bool:
    """Whether :func:`layer_norm_` takes ``norm`` over rows of ``width`` (what does not change from one
    call to the next: float32 weight and bias, that width, a multiple of :data:`VECTOR_MULTIPLE`)."""
    return (width % VECTOR_MULTIPLE == 0 and norm.weight is not None and norm.bias is not None
            and norm.weight.dtype is torch.float32 and tuple(norm.normalized_shape) == (width,))


def rows_usable(x: torch.Tensor) -> bool:
    """Whether :func:`layer_norm_` reads and writes ``x`` where it is (float32 or bfloat16 CPU rows,
    unit column stride)."""
    return x.dtype in DTYPES and x.device.type == "cpu" and x.dim() == 2 and x.stride(1) == 1


def usable(x: torch.Tensor, norm: torch.nn.LayerNorm) -> bool:
    """Whether :func:`layer_norm_` runs ``norm`` on ``x`` here (float32 or bfloat16 CPU rows of a size
    it takes, the norm's weights float32)."""
    return rows_usable(x) and takes(norm, x.shape[1]) and kernel() is not None


def layer_norm_(x: torch.Tensor, norm: torch.nn.LayerNorm, residual: torch.Tensor | None = None,
                lib: ctypes.CDLL | None = None) -> torch.Tensor:
    """``norm(x)``, or ``norm(x + residual)``, written into ``x`` (rows of floats: see :func:`usable`;
    ``residual`` of the same shape and dtype), ``x`` returned. Float32 arithmetic for bfloat16 rows too,
    rounded once at the end (what torch's mixed-dtype layer norm does). ``lib``: the :func:`kernel` a
    caller already holds (the encoder looks it up once a forward pass, not at each of its 12 norms)."""
    lib = lib or kernel()
    if lib is None:
        raise RuntimeError("the native layer norm kernel is not available here")
    rows, n = x.shape
    res, res_stride = None, 0
    if residual is not None:
        if residual.shape != x.shape or residual.dtype != x.dtype or residual.stride(1) != 1:
            raise ValueError(f"the residual must be {x.dtype} rows shaped like x {tuple(x.shape)}, "
                             f"not {residual.dtype} {tuple(residual.shape)}")
        res, res_stride = residual.data_ptr(), residual.stride(0)
    bf = 1 if x.dtype is torch.bfloat16 else 0
    code = lib.es_layer_norm(bf, 0, rows, x.data_ptr(), x.stride(0), res, res_stride, x.data_ptr(), x.stride(0), n,
                             norm.weight.data_ptr(), norm.bias.data_ptr(), float(norm.eps))
    _check(code, "layer norm", f"rows of a multiple of {VECTOR_MULTIPLE} floats")
    return x


def bias_gelu_(x: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``gelu(x + bias)`` (the exact, erf GELU) written into ``x``, float32 rows; ``x`` returned. In C where
    the kernel runs (float32 CPU rows of unit column stride, a multiple of :data:`VECTOR_MULTIPLE` wide, a
    float32 bias): one pass where ATen adds the bias, then runs oneDNN's GELU, in two; erf as a rational
    function (largest error of the GELU against float64 on [-12, 12]: 1.1e-6, ATen's 1.3e-6 with AVX-512
    and 3.7e-7 with AVX2). Measured on 985 x 1,536 rows, one thread: 0.41 ms against ATen's 0.60 with
    AVX-512, 0.58 against 1.16 with AVX2 (oneDNN's GELU there). Elsewhere ATen's ``add_`` and ``gelu_``."""
    lib = kernel()
    if (lib is None or x.dtype is not torch.float32 or x.device.type != "cpu" or x.dim() != 2 or x.stride(1) != 1
            or x.shape[1] % VECTOR_MULTIPLE or (bias is not None and (
                bias.dtype is not torch.float32 or bias.device.type != "cpu" or not bias.is_contiguous()
                or tuple(bias.shape) != (x.shape[1],)))):
        return torch.ops.aten.gelu_(x if bias is None else x.add_(bias))
    code = lib.es_bias_gelu(0, x.shape[0], x.data_ptr(), x.stride(0), x.shape[1], None if bias is None else bias.data_ptr())
    _check(code, "bias GELU", f"rows of a multiple of {VECTOR_MULTIPLE} floats")
    return x


@dataclass(frozen=True)
class EmbeddingTables:
    """What :func:`embed` reads: the embedding rows and layer norm, and the projection's tables."""

    source: Any  #: the projection module the tables were computed from (the encoder checks it is still there)
    word: torch.Tensor
    position: torch.Tensor
    type0: torch.Tensor
    gamma: torch.Tensor
    beta: torch.Tensor
    eps: float
    tword: torch.Tensor  #: [vocab, width]: A word[id]
    tpos: torch.Tensor  #: [positions, width]: A position[p] + A type[0]
    a1: torch.Tensor  #: [width]: A 1
    c: torch.Tensor  #: [width]: W beta + b


def build_tables(word: torch.Tensor, position: torch.Tensor, type0: torch.Tensor, norm: torch.nn.LayerNorm,
                 projection: Any) -> EmbeddingTables | None:
    """The tables of ``projection`` (a float32 CPU linear with ``weight`` [width, hidden] and ``bias``)
    reading ``norm(word[id] + position[p] + type0)``; ``None`` where the kernel cannot run them (no
    kernel, not float32 on the CPU, sizes it does not take, a word table over :data:`MAX_TABLE_BYTES`)."""
    weight, bias = projection.weight, getattr(projection, "bias", None)
    width, hidden = weight.shape
    tensors = (word, position, type0, norm.weight, norm.bias, weight)
    if (bias is None or any(t is None or t.dtype != torch.float32 or t.device.type != "cpu" for t in tensors)
            or hidden % VECTOR_MULTIPLE or width % VECTOR_MULTIPLE or word.shape[0] * width * 4 > MAX_TABLE_BYTES
            or kernel() is None):
        return None
    with torch.no_grad():
        scaled = weight.detach() * norm.weight.detach()  # A = W diag(gamma)
        return EmbeddingTables(
            source=projection, word=word.detach().contiguous(), position=position.detach().contiguous(),
            type0=type0.detach().contiguous(), gamma=norm.weight.detach().contiguous(),
            beta=norm.bias.detach().contiguous(), eps=float(norm.eps),
            tword=_word_table(word.detach(), scaled),
            tpos=((position.detach() + type0.detach()) @ scaled.t()).contiguous(),
            a1=scaled.sum(dim=1).contiguous(), c=(weight.detach() @ norm.bias.detach() + bias.detach()).contiguous())


#: word tables alive in this process, by the bytes they were computed from: the fp32, bf16 and int8
#: encoders of one model (each built from its own copy of the weights) share one table, not one each
_word_tables: "weakref.WeakValueDictionary[str, torch.Tensor]" = weakref.WeakValueDictionary()
_word_tables_lock = threading.Lock()


def _word_table(word: torch.Tensor, scaled: torch.Tensor) -> torch.Tensor:
    """``word @ scaled.T`` (the table of every vocabulary row), shared with any live table of the same
    float32 inputs (a digest of their bytes: ~20 ms for MiniLM's 47 MB of embeddings)."""
    digest = hashlib.blake2b(digest_size=20)
    for tensor in (word, scaled):
        t = tensor.contiguous()
        digest.update(repr((tuple(t.shape), str(t.dtype))).encode())
        digest.update(memoryview(t.view(torch.uint8).reshape(-1).numpy()))
    key = digest.hexdigest()
    with _word_tables_lock:
        table = _word_tables.get(key)
        if table is None:
            table = (word @ scaled.t()).contiguous()
            _word_tables[key] = table
        return table


def embed(tables: EmbeddingTables, ids: torch.Tensor, positions: torch.Tensor, rows: int,
          dtype: torch.dtype = torch.float32, lib: ctypes.CDLL | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(h, proj)`` for ``rows`` rows: row ``r < len(ids)`` is token ``ids[r]`` at position
    ``positions[r]`` (``h`` its embeddings' layer norm, ``proj`` the projection of it); the rows after
    are padding (zeros). ``dtype``: float32 or bfloat16 (float32 arithmetic, rounded once). ``lib``:
    the :func:`kernel` a caller already holds."""
    if dtype not in DTYPES:
        raise ValueError(f"the native embedding kernel writes {DTYPES}, not {dtype}")
    lib = lib or kernel()
    if lib is None:
        raise RuntimeError("the native embedding kernel is not available here")
    tokens = len(ids)
    if rows > tokens:
        pad = torch.full((rows - tokens,), -1, dtype=torch.int64)
        ids = torch.cat([ids.to(torch.int64), pad])
        positions = torch.cat([positions.to(torch.int64), torch.zeros_like(pad)])
    ids = ids.to(torch.int64).contiguous()
    positions = positions.to(torch.int64).contiguous()
    vocab, hidden = tables.word.shape
    width = tables.tword.shape[1]
    real = ids[:tokens]
    if tokens and (int(real.min()) < 0 or int(real.max()) >= vocab
                   or int(positions[:tokens].min()) < 0 or int(positions[:tokens].max()) >= tables.position.shape[0]):
        raise IndexError(f"token ids must be in [0, {vocab}) and positions in [0, {tables.position.shape[0]})")
    h = torch.empty((rows, hidden), dtype=dtype)
    proj = torch.empty((rows, width), dtype=dtype)
    t = tables
    code = lib.es_embed(1 if dtype is torch.bfloat16 else 0, 0, rows, ids.data_ptr(), positions.data_ptr(), hidden,
                        width, t.word.data_ptr(), t.position.data_ptr(), t.type0.data_ptr(), t.gamma.data_ptr(),
                        t.beta.data_ptr(), t.eps, t.tword.data_ptr(), t.tpos.data_ptr(), t.a1.data_ptr(),
                        t.c.data_ptr(), h.data_ptr(), proj.data_ptr())
    _check(code, "embedding", f"sizes that are multiples of {VECTOR_MULTIPLE}")
    return h, proj


def _check(code: int, kernel_name: str, takes_what: str) -> None:
    """The kernels' return codes as exceptions: 1 out of memory, any other non-zero a size they do not take."""
    if code == 1:
        raise MemoryError(f"the native {kernel_name} kernel could not allocate its row buffer")
    if code:
        raise ValueError(f"the native {kernel_name} kernel takes {takes_what}")
