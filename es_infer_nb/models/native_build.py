"""Small C kernels built once per machine with the system C compiler, and the thread pool they run on.

The tree walk (:mod:`.tree.native`), TreeSHAP (:mod:`.tree.native_shap`) and the attention of the
fast BERT encoder (:mod:`.nlp.native_attention`) each hand :func:`compile_library` their C source.
The shared library is compiled with ``cc -O3 -march=native`` (plain ``-O3`` when that fails) into
``$ES_INFER_NB_NATIVE_CACHE`` (default ``~/.cache/es_infer_nb/native``), keyed by the hash of the
source, flags, compiler and CPU; later processes load it in milliseconds. When no compiler is
present or the build fails, :func:`compile_library` returns ``None`` (with a warning) and callers
use their torch paths; ``ES_INFER_NB_NO_NATIVE`` makes every kernel's ``kernel()`` answer ``None``.
``$ES_INFER_NB_NATIVE_ISA`` (:func:`target_isa`) builds for another instruction set, so that an
AVX2-only machine is simulated on an AVX-512 one. ``ctypes`` releases the GIL during a call, so
:func:`parallel_rows` splits a call's rows across a shared thread pool; a kernel built with OpenMP
(``optional=OPENMP_FLAGS``: the attention kernel) splits its work in C over torch's own OpenMP threads
instead, with a fraction of the pool's cost per call.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

import torch

__all__ = ["EXACT_FLAGS", "ISA_FLAGS", "OPENMP_FLAGS", "VECTOR_ROWS_C", "cache_dir", "compile_library", "compiler_path",
           "disabled", "load_once", "parallel_rows", "target_isa", "torch_function", "torch_uses_openmp"]

log = logging.getLogger(__name__)

#: flags for kernels that must reproduce torch's float64 arithmetic bit for bit: no fast-math, no FP contraction
EXACT_FLAGS = ("-O3", "-fPIC", "-shared", "-ffp-contract=off", "-fno-fast-math")
#: the optional flag of kernels that split their work over OpenMP threads: the library then needs
#: ``libgomp.so.1``, which the loader finds already loaded by torch (its own copy: one OpenMP runtime,
#: the threads torch's GEMMs just ran on); where the build or the load fails, the kernel is built without
OPENMP_FLAGS = ("-fopenmp",)
#: rows below which a call stays on the calling thread
PARALLEL_MIN_ROWS = 4096
#: row chunks per thread in a parallel call
CHUNKS_PER_THREAD = 4
#: ``$ES_INFER_NB_NATIVE_ISA``: the instruction set the native kernels are built for — ``native`` (the
#: default: this CPU's), ``avx2`` (x86-64-v3: simulates an AVX2-only machine on an AVX-512 one, as
#: ``ONEDNN_MAX_CPU_ISA`` does for oneDNN) or ``portable`` (no ``-march``)
ISA_FLAGS = {"native": ("-march=native",), "avx2": ("-march=x86-64-v3",), "portable": ()}

_state: dict[str, object] = {}

#: C shared by the vector kernels of the text encoder (:mod:`.nlp.native_attention`, :mod:`.nlp.native_norm`),
#: placed after their ``W`` (floats per vector): the vector types, ``INLINE``, a lane select (``vsel``),
#: and loads / stores of float32 and bfloat16 rows (``ld`` / ``st`` pick by a ``bf`` flag; bfloat16 is widened exactly and
#: narrowed to nearest even)
VECTOR_ROWS_C = r"""
typedef float vf __attribute__((vector_size(W * 4)));
typedef int32_t vi __attribute__((vector_size(W * 4)));
typedef uint16_t vh __attribute__((vector_size(W * 2)));
#define INLINE static inline __attribute__((always_inline))
/* lanes of a where m, else b */
INLINE vf vsel(vi m, vf a, vf b) { return (vf)((m & (vi)a) | (~m & (vi)b)); }
INLINE vf ld32(const float *p) { vf v; memcpy(&v, p, sizeof v); return v; }
INLINE void st32(float *p, vf v) { memcpy(p, &v, sizeof v); }
/* bfloat16 <-> float32: widening is exact; narrowing rounds to nearest even, NaN stays NaN */
INLINE vf ld16(const uint16_t *p) { vh h; memcpy(&h, p, sizeof h); return (vf)(__builtin_convertvector(h, vi) << 16); }
INLINE void st16(uint16_t *p, vf v) {
    vi u = (vi)v;
    vi nan = (u & 0x7fffffff) > 0x7f800000;
    vi r = (u + (0x7fff + ((u >> 16) & 1))) >> 16;
    r = (nan & ((u >> 16) | 0x40)) | (~nan & r);
    vh h = __builtin_convertvector(r & 0xffff, vh);
    memcpy(p, &h, sizeof h);
}
/* a vector of row ``p`` (float32 when ``bf`` is 0, bfloat16 when 1) */
INLINE vf ld(int bf, const void *p, int64_t i) { return bf ? ld16((const uint16_t *)p + i) : ld32((const float *)p + i); }
INLINE void st(int bf, void *p, int64_t i, vf v) { if (bf) st16((uint16_t *)p + i, v); else st32((float *)p + i, v); }
"""


def torch_function(names: tuple[str, ...], symbol: str) -> Any:
    """The C function ``symbol`` from the first of torch's own libraries ``names`` (glob patterns under
    ``torch/lib``, then plain names) that exports it, its argument types left to the caller; ``dlopen``
    hands back the copy torch already loaded. ``None`` when none has it."""
    here = Path(torch.__file__).parent / "lib"
    candidates = [str(p) for pattern in names for p in sorted(here.glob(pattern))]
    candidates += [n for n in names if "*" not in n]
    for name in candidates:
        try:
            return getattr(ctypes.CDLL(name), symbol)
        except (OSError, AttributeError):
            continue
    return None


@functools.cache
def torch_uses_openmp() -> bool:
    """Whether torch's CPU ops run on OpenMP threads (its parallel backend): then a thread's count is
    OpenMP's per-thread setting, and a kernel built with OpenMP runs on the same threads."""
    return "parallel backend: OpenMP" in torch.__config__.parallel_info()


def disabled() -> bool:
    """Whether ``$ES_INFER_NB_NO_NATIVE`` turns the native kernels off (callers use torch)."""
    return bool(os.environ.get("ES_INFER_NB_NO_NATIVE"))


def _cpu_signature() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return line
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _compiler() -> str | None:
    for name in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def compiler_path() -> str | None:
    """The C compiler the kernels are built with (``$CC``, else cc, gcc or clang), or ``None``."""
    return _compiler()


def cache_dir() -> Path:
    env = os.environ.get("ES_INFER_NB_NATIVE_CACHE")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "es_infer_nb" / "native"


def target_isa() -> str:
    """The instruction set the native kernels are built for (``$ES_INFER_NB_NATIVE_ISA``, default native)."""
    isa = os.environ.get("ES_INFER_NB_NATIVE_ISA", "native").strip().lower() or "native"
    if isa not in ISA_FLAGS:
        raise ValueError(f"ES_INFER_NB_NATIVE_ISA={isa!r}: use one of {', '.join(ISA_FLAGS)}")
    return isa


def _build(cc: str, march: bool, source: str, stem: str, base_flags: tuple[str, ...]) -> Path:
    flags = base_flags + (ISA_FLAGS[target_isa()] if march else ())
    version = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=30).stdout
    key = hashlib.sha256("\0".join([source, " ".join(flags), version, _cpu_signature()]).encode()).hexdigest()[:16]
    target = cache_dir() / f"{stem}_{key}.so"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        src = Path(tmp) / f"{stem}.c"
        src.write_text(source)
        out = Path(tmp) / target.name
        done = subprocess.run([cc, "-x", "c", *flags, str(src), "-o", str(out), "-lm"],
                              capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(done.stderr.strip()[-2000:] or f"{cc} exited with {done.returncode}")
        os.replace(out, target)  # atomic: a concurrent process sees the whole library or none
    return target


def compile_library(source: str, stem: str, bind: Callable[[ctypes.CDLL], None], what: str,
                    name: str | None = None, flags: tuple[str, ...] = EXACT_FLAGS,
                    optional: tuple[str, ...] = ()) -> ctypes.CDLL | None:
    """Build (or find in the cache) and load the C ``source`` as ``{stem}_{hash}.so``; ``bind`` sets its
    functions' signatures. ``optional`` flags (``-fopenmp``) are tried first and left out where the
    build or the load fails. ``None``, with a warning naming ``what`` falls back, when that fails."""
    cc = _compiler()
    if cc is None:
        log.warning("no C compiler found; %s use the torch path", what)
        return None
    errors = []
    for march in (True, False):
        for extra in ((optional, ()) if optional else ((),)):
            try:
                lib = ctypes.CDLL(str(_build(cc, march, source, stem, flags + extra)))
                bind(lib)
                return lib
            except Exception as exc:  # noqa: BLE001 - any toolchain failure means: use torch
                errors.append(str(exc))
    log.warning("building the native %s kernel failed (%s); %s use the torch path", name or stem, errors[-1], what)
    return None


def load_once(state: dict[str, object], lock: threading.Lock,
              build: Callable[[], ctypes.CDLL | None]) -> ctypes.CDLL | None:
    """A kernel module's loaded library: ``build()`` on first use, kept in its ``state``; ``None``
    when unavailable or turned off (``ES_INFER_NB_NO_NATIVE``)."""
    if disabled():
        return None
    with lock:
        if "lib" not in state:
            state["lib"] = build()
        return state["lib"]  # type: ignore[return-value]


def _pool(threads: int) -> ThreadPoolExecutor:
    pool = _state.get("pool")
    owner = (threads, os.getpid())  # a forked child starts its own pool: its parent's threads are not there
    if pool is None or _state.get("owner") != owner:
        pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="es-native")
        _state["pool"], _state["owner"] = pool, owner
    return pool  # type: ignore[return-value]


def parallel_rows(rows: int, run: Callable[[int, int], int], min_rows: int = PARALLEL_MIN_ROWS) -> list[int]:
    """``run(lo, hi)`` over chunks of ``[0, rows)`` on the shared pool (one call below ``min_rows``
    rows or with one torch thread); the return codes in order."""
    threads = max(1, torch.get_num_threads())
    if threads == 1 or rows < min_rows:
        return [run(0, rows)]
    # a few chunks per thread: a thread slowed by other work on its core takes fewer of them
    step = max(min_rows, -(-rows // (threads * CHUNKS_PER_THREAD)))
    return list(_pool(threads).map(lambda lo: run(lo, min(rows, lo + step)), range(0, rows, step)))
