"""Attention of the fast BERT encoder on CPU: a small C kernel over packed (unpadded) sequences.

For each (text, head) the kernel reads the fused Q/K/V projection's output in place (one row per real
token, the queries pre-scaled), transposes the keys in registers into a float32 buffer, and runs
blocks of four query rows: scores against every key (register-blocked), a float32 softmax (an
exponential vectorised in the kernel, no libm call), the context as ``p @ v``, written in place
into the token-major context rows the output projection reads. Float32 and bfloat16 rows alike
(bfloat16 read exactly, arithmetic in float32, the result rounded to nearest even). No mask and no
padding: a text's keys are its own rows, so the packed layout needs no scatter into a padded one.
The vectors an FMA loop reuses are pinned to registers (GCC folded their load into every FMA that read
them: as many loads as FMAs, the load ports the limit), the block's softmax chains are interleaved, and
each task prefetches the next task's rows towards L2 (a float32 batch's projection, 19 MB at 4,096
tokens, is out of L2 by the time its attention runs). AMD EPYC (Zen 4), one thread, bench corpus batch
by batch interleaved (2026-12-06): attention 28% / 29% less time (float32 / bfloat16), the encoder 2.2%
/ 3.3% faster, answers bit-identical; with the AVX2 build 1.3% faster.

Written with GCC/Clang vector extensions, 16-float vectors where the compiler targets AVX-512 and
8-float ones for AVX2 (``ES_INFER_NB_NATIVE_ISA=avx2`` builds that on an AVX-512 machine); built
without either, the kernel says so (:func:`width` 0) and is not used. Measured against
``scaled_dot_product_attention`` on one thread (Xeon, 2026-12): AVX-512 2-3x faster for texts of
10-30 tokens, even at ~128 (float32) / ~64 (bfloat16) tokens, slower beyond in isolation (the flash
kernel's BRGEMMs win on long rows); AVX2 1.2-1.6x faster up to ~32 tokens, slower from 64. In the
encoder a batch the kernel runs stays packed (no padded layout, no mask, no scatter): bfloat16 batches
of long texts then run faster end to end with the kernel at every length (bench corpus, batch by batch
interleaved, one thread: a limit of 512 tokens against 80 / 128 / 160: 7.1% / 3.9% / 1.6% faster),
and so do float32 ones, since the encoder runs its layer norms in C and the first projection from tables
(the batches holding a text over 128 tokens, interleaved, one thread: a limit of 512 against 128 8.0%
faster with AVX-512; with AVX2 a limit of 128 or 512 against 48 1.7-1.8% faster on those over 48).
:data:`MAX_LENGTH` picks by width and dtype. A call's (text, head) tasks are split over torch's OpenMP
threads in C where the kernel is built with OpenMP (:func:`openmp`: one text's forward pass, 12 tasks a
layer, 3-5% faster than on one thread or the Python pool), else over :func:`..native_build.parallel_rows`'s
pool from :data:`PARALLEL_MIN_TASKS` tasks. The encoder prepares a batch's :class:`Texts` once per pass
(:func:`texts`) and calls :func:`run` in every layer. Built once per machine by
:func:`..native_build.compile_library`; ``None`` from :func:`kernel` (no compiler, a failed build,
``ES_INFER_NB_NO_NATIVE``) means the encoder keeps torch's attention.
"""

from __future__ import annotations

import ctypes
import threading
from dataclasses import dataclass

import torch

from ..native_build import OPENMP_FLAGS, VECTOR_ROWS_C, compile_library, load_once, parallel_rows, torch_uses_openmp

__all__ = ["MAX_LENGTH", "SOURCE", "Texts", "attention", "kernel", "openmp", "run", "texts", "usable", "width"]

#: the longest text (tokens) a batch may hold for the kernel to run its attention, by the kernel's
#: vector width (16 floats: AVX-512, 8: AVX2) and dtype: measured end to end in the encoder, where the
#: kernel wins at every length BERT takes (the packed batches need no padded layout); bfloat16 with
#: AVX2 only (no AVX512-BF16: not what ``auto`` picks there) keeps torch's attention past 48
MAX_LENGTH = {16: {torch.float32: 512, torch.bfloat16: 512}, 8: {torch.float32: 512, torch.bfloat16: 48}}
#: head sizes the kernel takes (multiples of its 16-float vectors)
HEAD_DIMS = (16, 32, 64, 128)
#: the kernel's flags: FP contraction on (FMA, as torch's kernels use), no loop-to-memcpy rewriting
FLAGS = ("-O3", "-fPIC", "-shared", "-ffp-contract=fast", "-fno-tree-loop-distribute-patterns")
#: (text, head) tasks below which a call stays on the calling thread
PARALLEL_MIN_TASKS = 48

SOURCE = r"""
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <immintrin.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#if defined(__AVX512F__)
#define W 16        /* floats per vector */
#define QB 4        /* query rows per block */
#define IOTA {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}
#elif defined(__AVX2__)
#define W 8
#define QB 2
#define IOTA {0, 1, 2, 3, 4, 5, 6, 7}
#else
#define W 8         /* no AVX2: es_attention_simd() says 0 and the caller keeps torch's attention */
#define QB 2
#define IOTA {0, 1, 2, 3, 4, 5, 6, 7}
#endif
#define KC 4        /* key vectors per score chunk */
#define MAXHV (128 / W)  /* head vectors: head_dim at most 128 */
#define VREGS (W == 16 ? 24 : 12)  /* vector registers a block may keep live (of 32 / 16) */
/* keeps a loaded vector in a register: compilers otherwise fold its load into every FMA that reads it,
   one load per FMA where one per row does (p @ v pins its row where QB + 1 rows of vectors fit) */
#if defined(__AVX512F__) || defined(__AVX2__)
#define PIN(x) __asm__("" : "+v"(x))
#else
#define PIN(x) (void)0  /* the portable build (not used: es_attention_simd() is 0) has no such register */
#endif
""" + VECTOR_ROWS_C + r"""

/* e^x for x <= 0, 0 below -87 (Cephes' expf: x = n ln2 + r, a degree-6 polynomial, 2^n from bits) */
INLINE vf vexp_nonpos(vf x) {
    const vi tiny = x < -87.0f;
    const vf y = vsel(tiny, x - x - 87.0f, x);
    const vf kf = y * 1.44269504088896341f + 12582912.0f;
    const vf n = kf - 12582912.0f;
    vf r = y - n * 0.693359375f;
    r = r + n * 2.12194440e-4f;
    vf p = r * 1.9875691500e-4f + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    const vi bits = (((vi)kf - 0x4B400000) + 127) << 23;
    return vsel(tiny, x - x, p * (vf)bits);
}

/* every lane: the max / the sum of v's lanes (butterfly: log2(W) shuffles) */
#if W == 16
#define BUTTERFLY(OP) v = OP(v, __builtin_shuffle(v, (vi){8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7})); \
    v = OP(v, __builtin_shuffle(v, (vi){4, 5, 6, 7, 0, 1, 2, 3, 12, 13, 14, 15, 8, 9, 10, 11}));             \
    v = OP(v, __builtin_shuffle(v, (vi){2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13}));             \
    v = OP(v, __builtin_shuffle(v, (vi){1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14}));
#else
#define BUTTERFLY(OP) v = OP(v, __builtin_shuffle(v, (vi){4, 5, 6, 7, 0, 1, 2, 3}));                        \
    v = OP(v, __builtin_shuffle(v, (vi){2, 3, 0, 1, 6, 7, 4, 5}));                                            \
    v = OP(v, __builtin_shuffle(v, (vi){1, 0, 3, 2, 5, 4, 7, 6}));
#endif
/* lanes of the larger (b where either is NaN, as maxps does) */
#if defined(__AVX512F__)
INLINE vf vmax(vf a, vf b) { return (vf)_mm512_max_ps((__m512)a, (__m512)b); }
#elif defined(__AVX2__)
INLINE vf vmax(vf a, vf b) { return (vf)_mm256_max_ps((__m256)a, (__m256)b); }
#else
INLINE vf vmax(vf a, vf b) { return vsel(a > b, a, b); }
#endif
INLINE vf vadd(vf a, vf b) { return a + b; }
INLINE vf allmax(vf v) { BUTTERFLY(vmax) return v; }
INLINE vf allsum(vf v) { BUTTERFLY(vadd) return v; }

/* r[0..W-1] transposed in registers: log2(W) rounds of two-source shuffles (recursive block swap) */
#define LO(w, l) (((l) & (w)) ? W + (l) - (w) : (l))
#define HI(w, l) (((l) & (w)) ? W + (l) : (l) + (w))
#if W == 16
#define MASK(F, w) { F(w, 0), F(w, 1), F(w, 2), F(w, 3), F(w, 4), F(w, 5), F(w, 6), F(w, 7), F(w, 8), F(w, 9), \
                     F(w, 10), F(w, 11), F(w, 12), F(w, 13), F(w, 14), F(w, 15) }
#else
#define MASK(F, w) { F(w, 0), F(w, 1), F(w, 2), F(w, 3), F(w, 4), F(w, 5), F(w, 6), F(w, 7) }
#endif
#define ROUND(w) { const vi lo = MASK(LO, w), hi = MASK(HI, w);                                         \
    for (int i = 0; i < W; i++) if (!(i & (w))) {                                                        \
        const vf a = r[i], b = r[i + (w)];                                                              \
        r[i] = __builtin_shuffle(a, b, lo); r[i + (w)] = __builtin_shuffle(a, b, hi); } }
#if W == 16
INLINE void transpose(vf r[W]) { ROUND(8) ROUND(4) ROUND(2) ROUND(1) }
#else
INLINE void transpose(vf r[W]) { ROUND(4) ROUND(2) ROUND(1) }
#endif

/* the scores of QB query rows (qf: QB x hd) against keys c0 .. c0 + kc*W of kt (hd x lp, transposed),
   lanes from L on set to -1e30; into sc (QB x lp); m[qi]: the running max vectors */
INLINE void score_chunk(const int kc, const int hv, const float *restrict qf, const float *restrict kt,
                        float *restrict sc, int64_t lp, int64_t c0, int64_t L, vf m[QB]) {
    const int64_t hd = hv * W;
    vf acc[QB][KC];
    for (int qi = 0; qi < QB; qi++) for (int k = 0; k < kc; k++) acc[qi][k] = (vf){0};
    for (int64_t d = 0; d < hd; d++) {
        vf kv[KC];
        for (int k = 0; k < kc; k++) { kv[k] = ld32(kt + d * lp + c0 + k * W); PIN(kv[k]); }
        for (int qi = 0; qi < QB; qi++) {
            const float q = qf[qi * hd + d];
            for (int k = 0; k < kc; k++) acc[qi][k] += q * kv[k];
        }
    }
    const vi lane = IOTA;
    for (int k = 0; k < kc; k++) {
        const vi real = lane + (int32_t)(c0 + k * W) < (int32_t)L;
        for (int qi = 0; qi < QB; qi++) {
            const vf s = vsel(real, acc[qi][k], (vf){0} - 1e30f);
            m[qi] = vmax(m[qi], s);
            st32(sc + qi * lp + c0 + k * W, s);
        }
    }
}

/* QB query rows of one (sequence, head): softmax(q k^T) v into o (QB x hd) */
INLINE void rows(const int hv, const float *restrict qf, const float *restrict kt, const float *restrict vb,
                 float *restrict o, float *restrict sc, int64_t L, int64_t lp) {
    const int64_t hd = hv * W;
    vf m[QB];
    for (int qi = 0; qi < QB; qi++) m[qi] = (vf){0} - 1e30f;
    int64_t c0 = 0;
    for (; c0 + KC * W <= lp; c0 += KC * W) score_chunk(KC, hv, qf, kt, sc, lp, c0, L, m);
    switch ((lp - c0) / W) {
        case 3: score_chunk(3, hv, qf, kt, sc, lp, c0, L, m); break;
        case 2: score_chunk(2, hv, qf, kt, sc, lp, c0, L, m); break;
        case 1: score_chunk(1, hv, qf, kt, sc, lp, c0, L, m); break;
    }
    /* the rows' softmax chains interleaved (each is a long dependent chain of a few vectors) */
    vf inv[QB], mx[QB], s[QB];
    for (int qi = 0; qi < QB; qi++) { mx[qi] = allmax(m[qi]); s[qi] = (vf){0}; }
    for (int64_t j = 0; j < lp; j += W)
        for (int qi = 0; qi < QB; qi++) {
            const vf e = vexp_nonpos(ld32(sc + qi * lp + j) - mx[qi]);
            s[qi] += e;
            st32(sc + qi * lp + j, e);
        }
    for (int qi = 0; qi < QB; qi++) inv[qi] = 1.0f / allsum(s[qi]);
    vf acc[QB][MAXHV];
    for (int qi = 0; qi < QB; qi++) for (int h = 0; h < hv; h++) acc[qi][h] = (vf){0};
    for (int64_t j = 0; j < L; j++) {
        vf v[MAXHV];
        for (int h = 0; h < hv; h++) { v[h] = ld32(vb + j * hd + h * W); if ((QB + 1) * hv <= VREGS) PIN(v[h]); }
        for (int qi = 0; qi < QB; qi++) {
            const float p = sc[qi * lp + j];
            for (int h = 0; h < hv; h++) acc[qi][h] += p * v[h];
        }
    }
    for (int qi = 0; qi < QB; qi++) for (int h = 0; h < hv; h++) st32(o + qi * hd + h * W, acc[qi][h] * inv[qi]);
}

/* one (sequence, head): K transposed and V copied into float32 buffers, then blocks of QB query rows */
INLINE void task(const int bf, const int hv, const void *qkv, int64_t qs, void *out, int64_t os, int64_t base,
                 int64_t L, int64_t h, int64_t hidden, float *restrict kt, float *restrict vb, float *restrict sc,
                 float *restrict qf, float *restrict o) {
    const int64_t hd = hv * W, lp = (L + W - 1) / W * W, kcol = hidden + h * hd, vcol = 2 * hidden + h * hd;
    for (int64_t j0 = 0; j0 < lp; j0 += W)
        for (int64_t d0 = 0; d0 < hd; d0 += W) {
            vf r[W];
            for (int jj = 0; jj < W; jj++) r[jj] = j0 + jj < L ? ld(bf, qkv, (base + j0 + jj) * qs + kcol + d0) : (vf){0};
            transpose(r);
            for (int dd = 0; dd < W; dd++) st32(kt + (d0 + dd) * lp + j0, r[dd]);
        }
    for (int64_t j = 0; j < L; j++)
        for (int x = 0; x < hv; x++) st32(vb + j * hd + x * W, ld(bf, qkv, (base + j) * qs + vcol + x * W));
    for (int64_t i0 = 0; i0 < L; i0 += QB) {
        const int64_t nq = L - i0 < QB ? L - i0 : QB;
        for (int64_t qi = 0; qi < QB; qi++)
            for (int x = 0; x < hv; x++)
                st32(qf + qi * hd + x * W, qi < nq ? ld(bf, qkv, (base + i0 + qi) * qs + h * hd + x * W) : (vf){0});
        rows(hv, qf, kt, vb, o, sc, L, lp);
        for (int64_t qi = 0; qi < nq; qi++)
            for (int x = 0; x < hv; x++) st(bf, out, (base + i0 + qi) * os + h * hd + x * W, ld32(o + qi * hd + x * W));
    }
}

#define TASK(BF, HV) task(BF, HV, qkv, qs, out, os, starts[s], lens[s], t % heads, hidden, kt, vb, sc, qf, o)

/* 1 when built for AVX2 or AVX-512 (where the kernel beats torch's attention), else 0 */
int es_attention_simd(void) {
#if defined(__AVX512F__) || defined(__AVX2__)
    return W;
#else
    return 0;
#endif
}

/* 1 when built with OpenMP: es_attention() then splits its tasks over ``threads`` OpenMP threads */
int es_attention_openmp(void) {
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}

/* the Q, K and V lines of task (text at rows base .. base + L - 1, head h) towards L2 (locality 1): called
   for the next task while this one computes, since a batch's projection is out of L2 by then */
INLINE void prefetch_task(const int bf, const void *qkv, int64_t qs, int64_t base, int64_t L, int64_t h, int64_t hd,
                          int64_t hidden) {
    const int64_t es = bf ? 2 : 4;
    const char *p = (const char *)qkv + es * (base * qs + h * hd);
    for (int64_t j = 0; j < L; j++, p += es * qs)
        for (int64_t c = 0; c < 3; c++)  /* q, k, v */
            for (int64_t b = 0; b < es * hd; b += 64) __builtin_prefetch(p + es * c * hidden + b, 0, 1);
}

/* the tasks [begin, end) of es_attention() on this thread, with their own buffers */
static int run_tasks(int bf, const void *qkv, int64_t qs, void *out, int64_t os, const int64_t *starts,
                     const int64_t *lens, int64_t heads, int64_t hd, int64_t begin, int64_t end) {
    const int64_t hidden = heads * hd, hv = hd / W;
    if (begin >= end) return 0;
    int64_t maxlen = 1;
    for (int64_t s = begin / heads; s <= (end - 1) / heads; s++) maxlen = lens[s] > maxlen ? lens[s] : maxlen;
    const int64_t mp = (maxlen + W - 1) / W * W;
    float *buf = (float *)malloc(sizeof(float) * (size_t)(2 * mp * hd + QB * mp + 2 * QB * hd));
    if (!buf) return 1;
    float *kt = buf, *vb = kt + mp * hd, *sc = vb + mp * hd, *qf = sc + QB * mp, *o = qf + QB * hd;
    for (int64_t t = begin; t < end; t++) {
        const int64_t s = t / heads;
        if (lens[s] <= 0) continue;
        if (t + 1 < end) prefetch_task(bf, qkv, qs, starts[(t + 1) / heads], lens[(t + 1) / heads], (t + 1) % heads, hd, hidden);
        switch (bf * 32 + hv) {
            case 1: TASK(0, 1); break;  case 2: TASK(0, 2); break;  case 4: TASK(0, 4); break;
            case 8: TASK(0, 8); break;  case 16: TASK(0, MAXHV); break;
            case 33: TASK(1, 1); break; case 34: TASK(1, 2); break; case 36: TASK(1, 4); break;
            case 40: TASK(1, 8); break; case 48: TASK(1, MAXHV); break;
        }
    }
    free(buf);
    return 0;
}

/* Attention over packed sequences. Row r of ``qkv`` (row stride ``qs`` elements) holds token r's
   [q | k | v], each ``heads`` x ``hd`` (q pre-scaled); sequence s is rows starts[s] .. starts[s] +
   lens[s] - 1; row r of ``out`` (stride ``os``) gets token r's context, heads x hd. Runs the
   (sequence, head) tasks t = s * heads + h for t in [begin, end), split over ``threads`` OpenMP
   threads where built with OpenMP (each task is computed whole by one thread: the answers do not
   depend on the split). ``bf``: 0 float32, 1 bfloat16 (float32 arithmetic). Returns 0; 1: out of
   memory; 2: a head_dim other than 16, 32, 64, 128. */
int es_attention(int bf, const void *qkv, int64_t qs, void *out, int64_t os, const int64_t *starts,
                 const int64_t *lens, int64_t heads, int64_t hd, int64_t begin, int64_t end, int threads) {
    if (hd % 16 || hd > 128 || (hd & (hd - 1))) return 2;
#ifdef _OPENMP
    if (threads > 1 && end - begin > 1) {
        int err = 0;
        #pragma omp parallel num_threads(threads) reduction(|:err)
        {
            const int64_t n = end - begin, nt = omp_get_num_threads(), id = omp_get_thread_num();
            err |= run_tasks(bf, qkv, qs, out, os, starts, lens, heads, hd, begin + n * id / nt,
                             begin + n * (id + 1) / nt);
        }
        return err;
    }
#endif
    return run_tasks(bf, qkv, qs, out, os, starts, lens, heads, hd, begin, end);
}
"""

_lock = threading.Lock()
_state: dict[str, object] = {}


def _bind(lib: ctypes.CDLL) -> None:
    fn = lib.es_attention
    p, i = ctypes.c_void_p, ctypes.c_int64
    fn.argtypes = [ctypes.c_int, p, i, p, i, p, p, i, i, i, i, ctypes.c_int]
    fn.restype = ctypes.c_int
    lib.es_attention_openmp.argtypes = []
    lib.es_attention_openmp.restype = ctypes.c_int
    lib.es_attention_simd.argtypes = []
    lib.es_attention_simd.restype = ctypes.c_int


def width(lib: ctypes.CDLL) -> int:
    """The kernel's vector width in floats: 16 (AVX-512), 8 (AVX2), 0 (neither: not used)."""
    return int(lib.es_attention_simd())


def kernel() -> ctypes.CDLL | None:
    """The loaded library, building it on first use; ``None`` when unavailable or disabled."""
    return load_once(_state, _lock, lambda: compile_library(
        SOURCE, "es_attention", _bind, "BERT attention", name="attention", flags=FLAGS, optional=OPENMP_FLAGS))


def openmp(lib: ctypes.CDLL) -> bool:
    """Whether the kernel splits a call's tasks over OpenMP threads itself: built with ``-fopenmp``, and
    torch runs on OpenMP too (its threads are the ones the kernel gets; a torch on another thread pool
    would leave a second one spinning beside it, so the kernel is then split by :func:`parallel_rows`)."""
    return bool(lib.es_attention_openmp()) and torch_uses_openmp()


def usable(dtype: torch.dtype, head_dim: int, longest: int, device: torch.device) -> bool:
    """Whether a batch of this dtype, head size and longest text runs its attention in the kernel here."""
    if device.type != "cpu" or head_dim not in HEAD_DIMS:
        return False
    lib = kernel()
    limits = MAX_LENGTH.get(width(lib), {}) if lib is not None else {}
    return longest <= limits.get(dtype, 0)


@dataclass(frozen=True)
class Texts:
    """A packed batch's texts as the kernel reads them (:func:`texts`): prepared once per forward pass
    and read by every layer's :func:`run` (a single text's forward calls the kernel six times, and the
    per-call preparation was a tenth of its attention time)."""

    lib: ctypes.CDLL
    starts: torch.Tensor  #: int64, contiguous: each text's first row
    lengths: torch.Tensor  #: int64, contiguous: each text's token count
    heads: int
    rows: int  #: the rows of the Q/K/V projection (the texts' tokens, then rows no text reads)
    covered: bool  #: every row belongs to a text (nothing to zero in the output)
    openmp: bool  #: the kernel splits the tasks over OpenMP threads (else :func:`parallel_rows` does)


def texts(starts: torch.Tensor, lengths: torch.Tensor, heads: int, rows: int) -> Texts:
    """The batch's texts (rows ``starts[s]`` .. ``starts[s] + lengths[s] - 1`` are text ``s``) in a
    Q/K/V projection of ``rows`` rows, for :func:`run`; ``RuntimeError`` where the kernel is unavailable."""
    lib = kernel()
    if lib is None:
        raise RuntimeError("the native attention kernel is not available here")
    lengths = lengths.to(torch.int64).contiguous()
    return Texts(lib, starts.to(torch.int64).contiguous(), lengths, heads, rows, int(lengths.sum()) == rows,
                 openmp(lib))


def run(qkv: torch.Tensor, batch: Texts) -> torch.Tensor:
    """``softmax(q k^T) v`` per text and head of ``batch``: ``qkv`` [rows, 3 * hidden] (float32 or
    bfloat16 on the CPU); returns [rows, hidden] of ``qkv``'s dtype (rows of no text are zero)."""
    tokens, width = qkv.shape
    if tokens != batch.rows:
        raise ValueError(f"the projection has {tokens} rows, the texts were prepared for {batch.rows}")
    hidden = width // 3
    head_dim = hidden // batch.heads
    if qkv.stride(1) != 1:
        qkv = qkv.contiguous()
    out = (qkv.new_empty if batch.covered else qkv.new_zeros)((tokens, hidden))
    bf = 1 if qkv.dtype is torch.bfloat16 else 0
    fn = batch.lib.es_attention
    args = (qkv.data_ptr(), qkv.stride(0), out.data_ptr(), out.stride(0), batch.starts.data_ptr(),
            batch.lengths.data_ptr(), batch.heads, head_dim)
    tasks = len(batch.lengths) * batch.heads
    if batch.openmp:  # split in C over torch's OpenMP threads (a stream's thread: its one)
        codes = [fn(bf, *args, 0, tasks, max(1, torch.get_num_threads()))]
    else:
        codes = parallel_rows(tasks, lambda lo, hi: fn(bf, *args, lo, hi, 1), min_rows=PARALLEL_MIN_TASKS)
    if any(codes):
        if 1 in codes:
            raise MemoryError("the native attention kernel could not allocate its buffers")
        raise ValueError(f"the native attention kernel takes head sizes {HEAD_DIMS}, not {head_dim}")
    return out


def attention(qkv: torch.Tensor, starts: torch.Tensor, lengths: torch.Tensor, heads: int) -> torch.Tensor:
    """``softmax(q k^T) v`` per text and head: ``qkv`` [tokens, 3 * hidden] (rows ``starts[s]`` ..
    ``starts[s] + lengths[s] - 1`` are text ``s``; float32 or bfloat16 on the CPU, unit column stride),
    ``starts`` / ``lengths`` int64; returns [tokens, hidden] of ``qkv``'s dtype (rows of no text
    are zero). One call: :func:`texts` then :func:`run` (the encoder prepares the texts once a pass)."""
    return run(qkv, texts(starts, lengths, heads, qkv.shape[0]))
