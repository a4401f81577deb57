"""A small C kernel for the perfect-tree walk on CPU, built once with the system C compiler.

The kernel walks the tables of :class:`.perfect.PerfectTrees` exactly as the torch walk does:
the same canonical node (``go right iff v > t'``), the same missing-value rule (a node whose
feature index is ``f + num_features`` reads ``-inf`` for a missing value, else ``+inf``;
NaN and +-inf are missing, as in ES), and the weighted leaves summed tree by tree, left to
right, starting from the first tree's value (``values[:, 0] + values[:, 1] + ...``): the answers
are bit for bit those of the torch paths. It works on blocks of up to 1024 rows whose two
feature copies stay in L2, takes the trees 16 at a time (their node tables stay in L1 while every
group of rows walks them) and walks a group of rows in lockstep, the level loop unrolled per depth.
Where the compiler targets AVX-512 (``-march=native`` on such a CPU), a group is 64 rows, eight
vectors of eight, each walking with gathers and in-register node tables (the tree's top six levels);
elsewhere a group is 16 rows walked one by one in lockstep (independent loads overlap). Both read
the feature matrix through its strides (the column-major matrix built from a DataFrame is read
without a copy). Rows are split across threads in chunks; ``ctypes`` releases the GIL during a call.

Built by :func:`..native_build.compile_library` (``-O3 -march=native``, no fast-math, no FP
contraction). When no compiler is present, the build fails, the device is not the CPU, or
``ES_INFER_NB_NO_NATIVE`` is set, :func:`kernel` returns ``None`` and callers use the torch paths.
"""

from __future__ import annotations

import ctypes
import threading

import torch

from ..native_build import compile_library, load_once, parallel_rows

SOURCE = r"""
#include <stdint.h>
#include <math.h>
#include <stdlib.h>
#if defined(__AVX512F__) && !defined(ES_NO_SIMD)
#include <immintrin.h>
#define ES_SIMD 1
#endif
#ifndef G
#ifdef ES_SIMD
#define G 64     /* rows walked in lockstep through a tree: eight vectors of eight */
#else
#define G 16     /* rows walked in lockstep through a tree */
#endif
#endif
#ifndef TB
#define TB 16    /* trees per block: their tables (~1.5 KiB a tree at depth 6) stay in L1 */
#endif
#ifndef MAXB
#define MAXB 1024 /* rows per block at most */
#endif
#ifndef BUDGET
#define BUDGET 32768 /* doubles of feature copies per row block (256 KiB: L2) */
#endif

/* Both copies of the features of rows [r0, r0 + nb): missing (NaN, +-inf) as +inf, then as -inf.
   Grouped by G rows: both[group][feature copy][g], so a group's walk reads from one base pointer.
   Rows past nb (up to a whole group) are zeros: walked, never emitted. */
static void fill(const double* x, int64_t r0, int64_t nb, int64_t nf, int64_t sr, int64_t sf,
                 double* both) {
    int64_t padded = (nb + G - 1) / G * G;
    for (int64_t f = 0; f < nf; f++) {
        const double* col = x + f * sf + r0 * sr;
        for (int64_t r = 0; r < padded; r++) {
            double v = r < nb ? col[r * sr] : 0.0;
            int fin = isfinite(v);
            double* at = both + (r / G) * 2 * nf * G + (r % G);
            at[f * G] = fin ? v : INFINITY;
            at[(nf + f) * G] = fin ? v : -INFINITY;
        }
    }
}

/* a node is two slots: its feature copy as a byte offset into a row group, then its threshold */
typedef union { int64_t off; double t; } slot_t;

static inline __attribute__((always_inline)) void
emit(int64_t t, int64_t row, int64_t leaf, const double* lv, int64_t k, double* sums, int64_t* rows_out,
     int64_t trees, int64_t base) {
    if (sums) {
        const double* v = lv + leaf * k;
        double* a = sums + row * k;
        if (k == 1) a[0] = t == 0 ? v[0] : a[0] + v[0];
        else if (t == 0) for (int64_t c = 0; c < k; c++) a[c] = v[c];
        else for (int64_t c = 0; c < k; c++) a[c] = a[c] + v[c];
    }
    if (rows_out) rows_out[row * trees + t] = base + leaf;
}

static inline __attribute__((always_inline)) int
walk_depth(const double* x, int64_t rows, int64_t nf, int64_t sr, int64_t sf,
           const int32_t* feat, const double* thr, int64_t trees, const int64_t depth,
           const double* wleaf, int64_t k, double* sums, int64_t* rows_out) {
    int64_t inner = ((int64_t)1 << depth) - 1, width = inner + 1;
    int64_t B = BUDGET / (2 * nf);
    if (B < G) B = G;
    if (B > MAXB) B = MAXB;
    B = (B / G) * G;
    double* both = (double*)malloc(sizeof(double) * B * 2 * nf);
    slot_t* nodes = (slot_t*)malloc(sizeof(slot_t) * 2 * trees * inner);
    if (!both || !nodes) { free(both); free(nodes); return 1; }
    for (int64_t n = 0; n < trees * inner; n++) {
        nodes[2 * n].off = (int64_t)feat[n] * G * (int64_t)sizeof(double);
        nodes[2 * n + 1].t = thr[n];
    }
    for (int64_t r0 = 0; r0 < rows; r0 += B) {
        int64_t nb = rows - r0 < B ? rows - r0 : B;
        fill(x, r0, nb, nf, sr, sf, both);
        /* trees in blocks whose tables stay in L1 while every row group of the block walks them;
           each row still adds the trees in order 0, 1, 2, ... */
        for (int64_t t0 = 0; t0 < trees; t0 += TB)
        for (int64_t r = 0; r < nb; r += G)
        for (int64_t t = t0; t < t0 + TB && t < trees; t++) {
            const slot_t* nd = nodes + 2 * t * inner;
            __asm__("" : "+r"(nd));  /* keep the tree's base in a register: slot address = nd + 8 j */
            int64_t base = t * width - inner;  /* leaf-table row of perfect index i: base + i */
            const double* lv = wleaf ? wleaf + base * k : 0;
            {
                const char* bp = (const char*)(both + (r / G) * 2 * nf * G);
                __asm__("" : "+r"(bp));  /* one base register: value address = bp + offset + 8 g */
                int64_t j[G];  /* 2 * perfect index of the current node */
                for (int g = 0; g < G; g++) j[g] = 0;
#pragma GCC unroll 16
                for (int64_t d = 0; d < depth; d++)
#pragma GCC unroll 16
                    for (int g = 0; g < G; g++) {
                        int64_t go = *(const double*)(bp + nd[j[g]].off + g * sizeof(double)) > nd[j[g] + 1].t;
                        j[g] = 2 * (j[g] + 1 + go);
                    }
                int64_t idx[G];
                for (int g = 0; g < G; g++) idx[g] = j[g] >> 1;
                int64_t m = nb - r < G ? nb - r : G;
                for (int g = 0; g < m; g++) emit(t, r0 + r + g, idx[g], lv, k, sums, rows_out, trees, base);
            }
        }
    }
    free(both);
    free(nodes);
    return 0;
}

#ifdef ES_SIMD
/* The same walk with AVX-512: the G rows of a group are eight vectors of eight rows, each walking the
   tree in lockstep. At the root every row reads one feature (a plain load); the nodes of levels 1-3
   (15) and of level 4 (16) sit in registers (two each for the feature offsets and the thresholds) and
   are picked with a permute, those of level 5 (32) with two permutes and a blend; deeper levels are
   gathered. The feature value of each row is gathered from the row group's copies. The comparison is the scalar one (v > t, false when either is NaN); a
   row's leaves are still added tree by tree, in order, from the first tree's value. */
#define NV (G / 8)
static inline __attribute__((always_inline)) int
walk_depth_simd(const double* x, int64_t rows, int64_t nf, int64_t sr, int64_t sf,
                const int32_t* feat, const double* thr, int64_t trees, const int64_t depth,
                const double* wleaf, int64_t k, double* sums, int64_t* rows_out) {
    int64_t inner = ((int64_t)1 << depth) - 1, width = inner + 1;
    int64_t S = ((inner < 31 ? 31 : inner) + 8) & ~(int64_t)7;  /* per-tree stride: loads up to node 30 */
    int64_t B = BUDGET / (2 * nf);
    if (B < G) B = G;
    if (B > MAXB) B = MAXB;
    B = (B / G) * G;
    double* both = (double*)aligned_alloc(64, sizeof(double) * B * 2 * nf);
    int64_t* offs = (int64_t*)aligned_alloc(64, sizeof(int64_t) * S * trees);
    double* thrs = (double*)aligned_alloc(64, sizeof(double) * S * trees);
    if (!both || !offs || !thrs) { free(both); free(offs); free(thrs); return 1; }
    for (int64_t t = 0; t < trees; t++)
        for (int64_t n = 0; n < S; n++) {
            offs[t * S + n] = n < inner ? (int64_t)feat[t * inner + n] * G * (int64_t)sizeof(double) : 0;
            thrs[t * S + n] = n < inner ? thr[t * inner + n] : INFINITY;
        }
    const __m512i one = _mm512_set1_epi64(1);
    __m512i lane[NV];
    for (int v = 0; v < NV; v++)
        lane[v] = _mm512_slli_epi64(_mm512_add_epi64(_mm512_set1_epi64(8 * v),
                                    _mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0)), 3);  /* byte offset of the row */
    int fast_sum = sums && k == 1 && !rows_out;
    for (int64_t r0 = 0; r0 < rows; r0 += B) {
        int64_t nb = rows - r0 < B ? rows - r0 : B;
        fill(x, r0, nb, nf, sr, sf, both);
        for (int64_t t0 = 0; t0 < trees; t0 += TB)
        for (int64_t r = 0; r < nb; r += G) {
            const char* bp = (const char*)(both + (r / G) * 2 * nf * G);
            int64_t m = nb - r < G ? nb - r : G;
            __mmask8 valid[NV];
            __m512d acc[NV];
            for (int v = 0; v < NV; v++) {
                int64_t c = m - 8 * v;
                c = c < 0 ? 0 : (c > 8 ? 8 : c);
                valid[v] = (__mmask8)((1u << c) - 1);
                acc[v] = (fast_sum && t0 > 0) ? _mm512_maskz_loadu_pd(valid[v], sums + r0 + r + 8 * v)
                                              : _mm512_setzero_pd();
            }
            for (int64_t t = t0; t < t0 + TB && t < trees; t++) {
                const int64_t* ot = offs + t * S;
                const double* tt = thrs + t * S;
                __m512i o0 = _mm512_load_si512(ot), o1 = _mm512_load_si512(ot + 8);
                __m512d h0 = _mm512_load_pd(tt), h1 = _mm512_load_pd(tt + 8);
                __m512i o2 = _mm512_loadu_si512(ot + 15), o3 = _mm512_loadu_si512(ot + 23);
                __m512d h2 = _mm512_loadu_pd(tt + 15), h3 = _mm512_loadu_pd(tt + 23);
                __m512i j[NV];
                for (int v = 0; v < NV; v++) j[v] = _mm512_setzero_si512();
#pragma GCC unroll 16
                for (int64_t d = 0; d < depth; d++)
#pragma GCC unroll 8
                    for (int v = 0; v < NV; v++) {
                        __m512i off;
                        __m512d th;
                        if (d == 0) {  /* every row at the root: its feature's values are contiguous */
                            __m512d val = _mm512_load_pd((const double*)(bp + ot[0]) + 8 * v);
                            __mmask8 go = _mm512_cmp_pd_mask(val, _mm512_set1_pd(tt[0]), _CMP_GT_OQ);
                            j[v] = _mm512_mask_add_epi64(one, go, one, one);
                            continue;
                        }
                        if (d < 4) {
                            off = _mm512_permutex2var_epi64(o0, j[v], o1);
                            th = _mm512_permutex2var_pd(h0, j[v], h1);
                        } else if (d == 4) {
                            __m512i jj = _mm512_sub_epi64(j[v], _mm512_set1_epi64(15));
                            off = _mm512_permutex2var_epi64(o2, jj, o3);
                            th = _mm512_permutex2var_pd(h2, jj, h3);
                        }
                        else if (d == 5) {  /* depth > 5: the tree has nodes 31..62 */
                            __m512i jj = _mm512_sub_epi64(j[v], _mm512_set1_epi64(31));
                            __mmask8 upper = _mm512_test_epi64_mask(jj, _mm512_set1_epi64(16));
                            off = _mm512_mask_blend_epi64(upper,
                                _mm512_permutex2var_epi64(_mm512_loadu_si512(ot + 31), jj, _mm512_loadu_si512(ot + 39)),
                                _mm512_permutex2var_epi64(_mm512_loadu_si512(ot + 47), jj, _mm512_loadu_si512(ot + 55)));
                            th = _mm512_mask_blend_pd(upper,
                                _mm512_permutex2var_pd(_mm512_loadu_pd(tt + 31), jj, _mm512_loadu_pd(tt + 39)),
                                _mm512_permutex2var_pd(_mm512_loadu_pd(tt + 47), jj, _mm512_loadu_pd(tt + 55)));
                        } else {
                            off = _mm512_i64gather_epi64(j[v], (const void*)ot, 8);
                            th = _mm512_i64gather_pd(j[v], (const void*)tt, 8);
                        }
                        __m512d val = _mm512_i64gather_pd(_mm512_add_epi64(off, lane[v]), (const void*)bp, 1);
                        __mmask8 go = _mm512_cmp_pd_mask(val, th, _CMP_GT_OQ);
                        j[v] = _mm512_add_epi64(_mm512_add_epi64(j[v], j[v]), one);
                        j[v] = _mm512_mask_add_epi64(j[v], go, j[v], one);
                    }
                int64_t base = t * width - inner;  /* leaf-table row of perfect index i: base + i */
                if (fast_sum) {
                    __m512i lb = _mm512_set1_epi64(base);
                    for (int v = 0; v < NV; v++) {
                        __m512d lvv = _mm512_i64gather_pd(_mm512_add_epi64(j[v], lb), (const void*)wleaf, 8);
                        acc[v] = t == 0 ? lvv : _mm512_add_pd(acc[v], lvv);
                    }
                } else {
                    int64_t idx[G];
                    for (int v = 0; v < NV; v++)
                        _mm512_storeu_si512(idx + 8 * v, j[v]);  /* perfect index: leaf row base + i */
                    const double* lv = wleaf ? wleaf + base * k : 0;
                    for (int g = 0; g < m; g++) emit(t, r0 + r + g, idx[g], lv, k, sums, rows_out, trees, base);
                }
            }
            if (fast_sum)
                for (int v = 0; v < NV; v++) _mm512_mask_storeu_pd(sums + r0 + r + 8 * v, valid[v], acc[v]);
        }
    }
    free(both);
    free(offs);
    free(thrs);
    return 0;
}
#define WALK walk_depth_simd
#else
#define WALK walk_depth
#endif

/* 1 when this build walks with AVX-512, else 0 */
int es_walk_simd(void) {
#ifdef ES_SIMD
    return 1;
#else
    return 0;
#endif
}

/* Walk every tree for rows [0, rows). sums: [rows, k] weighted leaf sums (or NULL);
   rows_out: [rows, trees] rows of the leaf table (or NULL). Returns 0, or 1 when out of memory.
   Each depth up to 10 gets its own copy with the level loop unrolled. */
int es_walk(const double* x, int64_t rows, int64_t nf, int64_t sr, int64_t sf,
            const int32_t* feat, const double* thr, int64_t trees, int64_t depth,
            const double* wleaf, int64_t k, double* sums, int64_t* rows_out) {
#define AT(D) case D: return WALK(x, rows, nf, sr, sf, feat, thr, trees, D, wleaf, k, sums, rows_out);
    switch (depth) {
        AT(1) AT(2) AT(3) AT(4) AT(5) AT(6) AT(7) AT(8) AT(9) AT(10)
        default: return WALK(x, rows, nf, sr, sf, feat, thr, trees, depth, wleaf, k, sums, rows_out);
    }
#undef AT
}
"""

_lock = threading.Lock()
_state: dict[str, object] = {}


def bind_walk(lib: ctypes.CDLL) -> None:
    """Set the signatures of a library built from :data:`SOURCE`."""
    fn = lib.es_walk
    p, i = ctypes.c_void_p, ctypes.c_int64
    fn.argtypes = [p, i, i, i, i, p, p, i, i, p, i, p, p]
    fn.restype = ctypes.c_int
    lib.es_walk_simd.argtypes = []
    lib.es_walk_simd.restype = ctypes.c_int


def uses_simd(lib: ctypes.CDLL) -> bool:
    """Whether ``lib`` walks with AVX-512 (built with ``-march=native`` on a CPU that has it)."""
    return bool(lib.es_walk_simd())


def _load() -> ctypes.CDLL | None:
    return compile_library(SOURCE, "es_trees", bind_walk, "tree ensembles", name="tree")


def kernel() -> ctypes.CDLL | None:
    """The loaded library, building it on first use; ``None`` when unavailable or disabled."""
    return load_once(_state, _lock, _load)


def walk(lib: ctypes.CDLL, x: torch.Tensor, feat: torch.Tensor, thr: torch.Tensor, depth: int,
         weighted_leaf: torch.Tensor | None) -> torch.Tensor:
    """Weighted leaf sums [rows, K] (``weighted_leaf`` given) or leaf-table rows [rows, trees].

    ``x``: float64 [rows, features] on the CPU, any non-negative strides; ``feat`` int32 and
    ``thr`` float64, contiguous perfect-tree tables; ``weighted_leaf`` float64 [trees * 2**depth, K].
    """
    rows, nf = x.shape
    trees = feat.shape[0] // (2**depth - 1)
    sr, sf = x.stride()
    if weighted_leaf is not None:
        k = weighted_leaf.shape[1]
        out = torch.empty((rows, k), dtype=torch.float64)
        row_bytes = 8 * k
    else:
        k = 0
        out = torch.empty((rows, trees), dtype=torch.int64)
        row_bytes = 8 * trees
    if rows == 0:
        return out
    x_ptr, o_ptr = x.data_ptr(), out.data_ptr()
    leaf_ptr = weighted_leaf.data_ptr() if weighted_leaf is not None else None

    def run(lo: int, hi: int) -> int:
        o = o_ptr + lo * row_bytes
        return lib.es_walk(x_ptr + lo * sr * 8, hi - lo, nf, sr, sf, feat.data_ptr(), thr.data_ptr(), trees,
                           depth, leaf_ptr, k, o if k else None, None if k else o)

    codes = parallel_rows(rows, run)
    if any(codes):
        raise MemoryError("the native tree kernel could not allocate its row buffer")
    return out
