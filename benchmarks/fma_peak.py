"""This CPU's multiply-add ceiling: the GFLOP/s no float32 (or bfloat16 dot-product) kernel can pass here.

A benchmark's shares of a GEMM's rate say how close an engine runs to that GEMM, not to the machine: on
AMD EPYC torch's matmul (MKL) is slower than oneDNN, so a share of it can pass 1.0. :func:`fma_peak_gflops`
measures the hardware instead: ``threads`` OpenMP threads at once, each running independent chains of
vector FMAs (float32: ``a = a * b + c`` on 16- or 8-float vectors, whichever the build targets; bf16:
AVX512-BF16's ``vdpbf16ps``, two products a lane) for about ``seconds``; the best of three blocks.
Built with ``cc`` through :func:`es_infer_nb.models.native_build.compile_library` for the same target
as the encoder's kernels (``ES_INFER_NB_NATIVE_ISA=avx2`` builds the AVX2 loop, as on an AVX2-only CPU).
``None`` where it cannot be built, or for bf16 where the build has no AVX512-BF16. AMX tiles (Intel Xeon
with AMX) run bfloat16 far past the ``vdpbf16ps`` figure: that bf16 ceiling is then not the machine's.

Usage: python benchmarks/fma_peak.py [--threads N]
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import threading
import time

SOURCE = r"""
#include <stdint.h>
#include <time.h>
#include <immintrin.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#if defined(__AVX512F__)
#define W 16
#else
#define W 8
#endif
typedef float vf __attribute__((vector_size(W * 4)));
#define CHAINS 12
/* twelve independent chains as named locals (kept in registers), an empty asm per round so the
   compiler neither folds the rounds nor moves the chains to memory */
#define EACH(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }

/* one thread's chains for ``iters`` rounds; returns a value that depends on every chain */
static float fp32_chains(int64_t iters) {
#define INIT(i) vf a##i = (vf){0} + (float)i;
#define STEP(i) a##i = a##i * b + c;
#define SUM(i) s += a##i[0];
    EACH(INIT)
    const vf b = (vf){0} + 0.999999f, c = (vf){0} + 1e-7f;
    for (int64_t k = 0; k < iters; k++) { EACH(STEP) __asm__ volatile("" ::: "memory"); }
    float s = 0;
    EACH(SUM)
    return s;
}

#if defined(__AVX512BF16__)
static float bf16_chains(int64_t iters) {
#define INIT16(i) __m512 a##i = _mm512_set1_ps((float)i);
#define STEP16(i) a##i = _mm512_dpbf16_ps(a##i, b, c);
#define SUM16(i) s += _mm512_cvtss_f32(a##i);
    EACH(INIT16)
    const __m512bh b = (__m512bh)_mm512_set1_epi16(0x3f80), c = (__m512bh)_mm512_set1_epi16(0x3380);
    for (int64_t k = 0; k < iters; k++) { EACH(STEP16) __asm__ volatile("" ::: "memory"); }
    float s = 0;
    EACH(SUM16)
    return s;
}
#endif

volatile float es_peak_sink;

/* total GFLOP/s of ``threads`` threads each running ``iters`` rounds at once (bf16: 1 for vdpbf16ps);
   -1 where bf16 is asked of a build without AVX512-BF16 */
double es_fma_peak(int bf16, int threads, int64_t iters) {
#if !defined(__AVX512BF16__)
    if (bf16) return -1.0;
#endif
    const double flops_per_round = bf16 ? CHAINS * 64.0 : CHAINS * 2.0 * W;
    double t0 = now();
#ifdef _OPENMP
    #pragma omp parallel num_threads(threads)
#endif
    {
        float s = 0;
#if defined(__AVX512BF16__)
        if (bf16) s = bf16_chains(iters); else
#endif
        s = fp32_chains(iters);
        es_peak_sink = s;
    }
    const double seconds = now() - t0;
#ifndef _OPENMP
    threads = 1;
#endif
    return threads * iters * flops_per_round / seconds / 1e9;
}
"""

_lock = threading.Lock()
_state: dict[str, object] = {}


def _bind(lib: ctypes.CDLL) -> None:
    lib.es_fma_peak.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64]
    lib.es_fma_peak.restype = ctypes.c_double


def _kernel() -> ctypes.CDLL | None:
    from es_infer_nb.models.native_build import OPENMP_FLAGS, compile_library, load_once

    flags = ("-O2", "-fPIC", "-shared", "-ffp-contract=fast")
    return load_once(_state, _lock, lambda: compile_library(SOURCE, "es_fma_peak", _bind, "the FMA peak probe",
                                                             name="fma_peak", flags=flags, optional=OPENMP_FLAGS))


def fma_peak_gflops(threads: int, bf16: bool = False, seconds: float = 0.3) -> float | None:
    """Best total GFLOP/s of ``threads`` threads running vector FMAs at once (float32, or bfloat16
    ``vdpbf16ps`` with ``bf16``) over three blocks of about ``seconds``; ``None`` where it cannot run."""
    lib = _kernel()
    if lib is None or threads < 1:
        return None
    iters = 1 << 16
    while True:  # size a block to about ``seconds`` by its wall time (the first calls also warm the clocks up)
        started = time.perf_counter()
        if lib.es_fma_peak(int(bf16), threads, iters) < 0:
            return None
        if time.perf_counter() - started >= seconds / 2 or iters >= 1 << 34:
            break
        iters *= 4
    return max(lib.es_fma_peak(int(bf16), threads, iters) for _ in range(3))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    result = {"threads": args.threads,
              "fp32_gflops_one_thread": fma_peak_gflops(1), "fp32_gflops": fma_peak_gflops(args.threads),
              "bf16_dot_gflops_one_thread": fma_peak_gflops(1, bf16=True),
              "bf16_dot_gflops": fma_peak_gflops(args.threads, bf16=True)}
    print(json.dumps({k: round(v, 1) if isinstance(v, float) else v for k, v in result.items()}))


if __name__ == "__main__":
    main()
