"""A small C kernel for tabulated TreeSHAP on CPU, built once with the system C compiler.

It evaluates what :class:`.shap.PathTable` tabulates (the FastTreeSHAP v2 scheme): for every
root-to-leaf path of ``d`` splits and ``m`` unique features, a table ``[2**d, m]`` holds each
feature's contribution ``(o_i - z_i) * W_i`` for every pattern of followed splits. Per block of rows
and per tree, the kernel evaluates the tree's splits once (``go right iff v > t'`` on the feature
copy that reads missing values as ``+inf`` or ``-inf``, as the tree walk does), builds each path's
pattern from them, looks the path's row up and adds it onto the row's features, all in float64.
Two sibling leaves are one entry (their patterns differ only in the last bit), its table holding
both leaves' contributions times their leaf values: half the lookups of one entry per leaf. The table of a tree stays in cache while a block of rows reads it.
Rows are split across threads in chunks; ``ctypes`` releases the GIL during a call.

Built and cached by :func:`..native_build.compile_library`; :func:`kernel` is ``None`` (callers use the
torch path) when there is no compiler, the build fails or ``ES_INFER_NB_NO_NATIVE`` is set.
"""

from __future__ import annotations

import ctypes
import threading
from dataclasses import dataclass

import numpy as np
import torch

from ..native_build import compile_library, load_once, parallel_rows

#: the longest path (in splits) the kernel takes (its table has ``2**splits`` rows; longer paths
#: use the torch path's Shapley polynomial)
MAX_DEPTH = 12

SOURCE = r"""
#include <stdint.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifndef MAXB
#define MAXB 2048 /* rows per block at most */
#endif
#ifndef BUDGET
#define BUDGET 131072 /* doubles of feature copies per row block (1 MiB: L2) */
#endif

/* phi[rows, nf, k] = sum over trees and paths of table[path][pattern(row, path)][slot][0..k) on feature
   slot_feat[slot] (the table holds contributions times leaf values); phi is overwritten.
   Returns 0, or 1 when out of memory. */
int es_shap(const double* x, int64_t rows, int64_t nf, int64_t sr, int64_t sf,
            int64_t trees, const int64_t* tree_inner, const int64_t* tree_paths,
            const int32_t* feat, const double* thr,
            const int64_t* path_split, const int32_t* split_node, const uint16_t* split_flip,
            const int64_t* path_slot, const int32_t* slot_feat,
            const int64_t* path_table, const double* table, int64_t k, int64_t max_inner, double* phi) {
    int64_t B = BUDGET / (2 * (nf > 0 ? nf : 1));
    if (B > MAXB) B = MAXB;
    if (B < 64) B = 64;
    double* both = (double*)malloc(sizeof(double) * B * 2 * nf);
    uint16_t* cmp = (uint16_t*)malloc(sizeof(uint16_t) * B * (max_inner > 0 ? max_inner : 1));
    uint16_t* pat = (uint16_t*)malloc(sizeof(uint16_t) * B);
    if (!both || !cmp || !pat) { free(both); free(cmp); free(pat); return 1; }
    memset(phi, 0, sizeof(double) * rows * nf * k);
    for (int64_t r0 = 0; r0 < rows; r0 += B) {
        int64_t nb = rows - r0 < B ? rows - r0 : B;
        for (int64_t f = 0; f < nf; f++) {
            const double* col = x + f * sf + r0 * sr;
            double* lo = both + f * B;
            double* hi = both + (nf + f) * B;
            for (int64_t r = 0; r < nb; r++) {
                double v = col[r * sr];
                int fin = isfinite(v);
                lo[r] = fin ? v : INFINITY;
                hi[r] = fin ? v : -INFINITY;
            }
        }
        double* out = phi + r0 * nf * k;
        for (int64_t t = 0; t < trees; t++) {
            int64_t i0 = tree_inner[t], ni = tree_inner[t + 1] - i0;
            for (int64_t n = 0; n < ni; n++) {
                const double* col = both + (int64_t)feat[i0 + n] * B;
                double th = thr[i0 + n];
                uint16_t* c = cmp + n * B;
                for (int64_t r = 0; r < nb; r++) c[r] = col[r] > th;
            }
            for (int64_t p = tree_paths[t]; p < tree_paths[t + 1]; p++) {
                int64_t s0 = path_slot[p], m = path_slot[p + 1] - s0;
                if (m == 0) continue;
                int64_t d0 = path_split[p], d = path_split[p + 1] - d0;
                for (int64_t r = 0; r < nb; r++) pat[r] = 0;
                for (int64_t j = 0; j < d; j++) {
                    const uint16_t* c = cmp + (int64_t)split_node[d0 + j] * B;
                    uint16_t flip = split_flip[d0 + j];
                    for (int64_t r = 0; r < nb; r++) pat[r] |= (uint16_t)((c[r] ^ flip) << j);
                }
                const double* tab = table + path_table[p];
                const int32_t* fs = slot_feat + s0;
                if (k == 1) {
                    for (int64_t r = 0; r < nb; r++) {
                        const double* w = tab + (int64_t)pat[r] * m;
                        double* o = out + r * nf;
                        for (int64_t s = 0; s < m; s++) o[fs[s]] += w[s];
                    }
                } else {
                    for (int64_t r = 0; r < nb; r++) {
                        const double* w = tab + (int64_t)pat[r] * m * k;
                        double* o = out + r * nf * k;
                        for (int64_t s = 0; s < m; s++) {
                            double* a = o + (int64_t)fs[s] * k;
                            for (int64_t c = 0; c < k; c++) a[c] += w[s * k + c];
                        }
                    }
                }
            }
        }
    }
    free(both);
    free(cmp);
    free(pat);
    return 0;
}
"""

_lock = threading.Lock()
_state: dict[str, object] = {}


def _bind(lib: ctypes.CDLL) -> None:
    fn = lib.es_shap
    p, i = ctypes.c_void_p, ctypes.c_int64
    fn.argtypes = [p, i, i, i, i, i, p, p, p, p, p, p, p, p, p, p, p, i, i, p]
    fn.restype = ctypes.c_int


def kernel() -> ctypes.CDLL | None:
    """The loaded library, building it on first use; ``None`` when unavailable or disabled."""
    return load_once(_state, _lock, lambda: compile_library(SOURCE, "es_shap", _bind, "feature importances"))


@dataclass
class ShapArrays:
    """The flat, contiguous model tables the kernel reads (see ``es_shap`` in :data:`SOURCE`)."""

    tree_inner: np.ndarray  # int64 [trees + 1]: inner-node range per tree
    tree_paths: np.ndarray  # int64 [trees + 1]: path range per tree
    feat: np.ndarray  # int32 [inner]: feature copy (f, or f + features: missing reads -inf)
    thr: np.ndarray  # float64 [inner]: go right iff value > thr
    path_split: np.ndarray  # int64 [paths + 1]
    split_node: np.ndarray  # int32 [splits]: inner node, local to its tree
    split_flip: np.ndarray  # uint16 [splits]: pattern bit = (value > thr) ^ flip
    path_slot: np.ndarray  # int64 [paths + 1]
    slot_feat: np.ndarray  # int32 [slots]: model feature of each unique-feature slot
    path_table: np.ndarray  # int64 [paths]: offset of the path's [2**d, m, k] table
    table: np.ndarray  # float64: contributions times leaf values
    max_inner: int


def contributions(lib: ctypes.CDLL, arrays: ShapArrays, x: torch.Tensor, num_features: int,
                  num_outputs: int) -> torch.Tensor:
    """SHAP values [rows, features, outputs] of float64 ``x`` [rows, features] (any strides)."""
    rows, nf = x.shape
    out = torch.empty((rows, num_features, num_outputs), dtype=torch.float64)
    if rows == 0:
        return out
    sr, sf = x.stride()
    a = arrays
    ptr = lambda arr: arr.ctypes.data  # noqa: E731
    trees = len(a.tree_inner) - 1
    x_ptr, o_ptr = x.data_ptr(), out.data_ptr()
    row_bytes = 8 * num_features * num_outputs

    def run(lo: int, hi: int) -> int:
        return lib.es_shap(x_ptr + lo * sr * 8, hi - lo, nf, sr, sf, trees, ptr(a.tree_inner), ptr(a.tree_paths),
                           ptr(a.feat), ptr(a.thr), ptr(a.path_split), ptr(a.split_node), ptr(a.split_flip),
                           ptr(a.path_slot), ptr(a.slot_feat), ptr(a.path_table), ptr(a.table),
                           num_outputs, a.max_inner, o_ptr + lo * row_bytes)

    codes = parallel_rows(rows, run, min_rows=512)
    if any(codes):
        raise MemoryError("the native TreeSHAP kernel could not allocate its row buffers")
    return out
