"""The CPU streams every NLP run shares: persistent threads, the oldest run's batches first.

:func:`~.batching.run_batches` runs a call's token groups on ``streams`` threads at once (one torch
thread each on a 2-core machine). Before, each call made its own threads and waited for its last
group: for the 30-120 ms a call's last group ran, one core idled, and the next call (the next
chunk of a frame, the next batch of the deployment's queue) tokenized before its first pass with
both idle. One process-wide pool per ``(streams, threads)`` instead serves every run:

* jobs are taken by priority, ``(run, group)``: a run's groups go before every later run's, so a run
  started while another finishes only fills the cores the older one leaves idle (its tail) and the
  older run's answer is never delayed by it;
* each thread sets its torch thread count once, for itself only: OpenMP's ``omp_set_num_threads``
  and MKL's ``MKL_Set_Num_Threads_Local`` from the stream thread (``torch.set_num_threads`` also sets
  a process default that every thread takes at its first parallel op: a thread started then — the deployment's queue worker, an HTTP
  handler — would run on one thread and, asking ``torch.get_num_threads()``, plan one stream; where
  torch has no OpenMP the default is put back at once, from a throwaway thread, under a lock);
* a thread idle for :data:`IDLE_EXIT_S` ends (the next job starts another); a forked child starts
  with an empty pool.
"""

from __future__ import annotations

import ctypes
import functools
import heapq
import itertools
import os
import threading
from concurrent.futures import Future
from typing import Any, Callable, TypeVar

__all__ = ["IDLE_EXIT_S", "StreamPool", "next_run", "pool_for", "streams_busy", "streams_finishing"]

T = TypeVar("T")

#: a pool thread with nothing to do for this many seconds ends
IDLE_EXIT_S = 30.0

_runs = itertools.count()


def next_run() -> int:
    """A new run's number: its jobs go after those of every run numbered before it."""
    return next(_runs)


class StreamPool:
    """``streams`` threads of ``threads`` torch threads each, running jobs by ascending priority."""

    def __init__(self, streams: int, threads: int) -> None:
        if streams < 1 or threads < 1:
            raise ValueError(f"a stream pool needs at least one stream and one thread, got [{streams}] x [{threads}]")
        self.streams = streams
        self.threads = threads
        self._heap: list[tuple[Any, int, Future[Any], Callable[[], Any]]] = []
        self._order = itertools.count()  # ties: first submitted, first run
        self._cond = threading.Condition()
        self._workers = 0
        self._idle = 0
        self._unfinished = 0  # jobs queued or running

    @property
    def busy(self) -> bool:
        """Whether a job waits or runs (another run is on the streams)."""
        return self._unfinished > 0

    @property
    def finishing(self) -> bool:
        """Whether jobs run and none waits: the runs on the streams have started their last batches."""
        return self._unfinished > 0 and not self._heap

    def submit(self, priority: Any, fn: Callable[[], T]) -> "Future[T]":
        """Run ``fn()`` on a stream when no job of a lower ``priority`` waits; its future holds the result."""
        future: Future[T] = Future()
        future.add_done_callback(self._finished)
        with self._cond:
            self._unfinished += 1
            heapq.heappush(self._heap, (priority, next(self._order), future, fn))
            if self._idle:
                self._cond.notify()
            elif self._workers < self.streams:
                self._workers += 1
                threading.Thread(target=self._work, name=f"es-infer-stream-{self._workers}", daemon=True).start()
        return future

    def _finished(self, _: "Future[Any]") -> None:
        with self._cond:
            self._unfinished -= 1

    def _work(self) -> None:
        _own_thread_count(self.threads)
        while True:
            with self._cond:
                while not self._heap:
                    self._idle += 1
                    woken = self._cond.wait(IDLE_EXIT_S)
                    self._idle -= 1
                    if not woken and not self._heap:
                        self._workers -= 1
                        return
                _, _, future, fn = heapq.heappop(self._heap)
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = fn()
            except BaseException as exc:  # noqa: BLE001 - the run's thread re-raises it
                future.set_exception(exc)
            else:
                future.set_result(result)
            del future, fn


_setup_lock = threading.Lock()


def _in_new_thread(fn: Callable[[], T]) -> T:
    out: list[T] = []
    thread = threading.Thread(target=lambda: out.append(fn()), name="es-infer-threads")
    thread.start()
    thread.join()
    return out[0]


@functools.cache
def _local_setters() -> tuple[Any, ...] | None:
    """The per-thread thread-count setters of what torch's CPU ops run on: OpenMP's
    ``omp_set_num_threads`` and, where torch has MKL, ``MKL_Set_Num_Threads_Local`` (what
    ``torch.set_num_threads`` calls, less the process default); ``None`` when either is missing."""
    import torch

    from ..native_build import torch_function, torch_uses_openmp

    if not torch_uses_openmp():
        return None
    omp = torch_function(("libgomp*.so*", "libiomp5*", "libomp*", "libgomp.so.1"), "omp_set_num_threads")
    if omp is None:
        return None
    omp.argtypes = [ctypes.c_int]
    if not torch.backends.mkl.is_available():
        return (omp,)
    # the C interface (an int by value): the lower-case symbol is MKL's Fortran one (an int pointer)
    mkl = torch_function(("libtorch_cpu.*", "libmkl_rt*"), "MKL_Set_Num_Threads_Local")
    if mkl is None:
        return None
    mkl.argtypes = [ctypes.c_int]
    return (omp, mkl)


def _own_thread_count(threads: int) -> None:
    """Give the calling thread ``threads`` torch threads and leave the process default as it was.

    With OpenMP (torch's CPU builds), ``omp_set_num_threads`` and MKL's ``MKL_Set_Num_Threads_Local``
    from this thread set this thread's counts only: the process default never changes, so no thread
    started meanwhile can read a wrong one. Elsewhere ``torch.set_num_threads`` (which also sets the
    default) and the default put back from a throwaway thread, under a lock (a thread started in
    between would take one thread)."""
    import torch

    torch.get_num_threads()  # this thread takes its count now (from the default), once
    setters = _local_setters()
    if setters is not None:
        for setter in setters:
            setter(threads)
        if torch.get_num_threads() == threads:
            return
    with _setup_lock:
        default = _in_new_thread(torch.get_num_threads)  # a new thread reads the default
        torch.set_num_threads(threads)  # this thread's count, and the default...
        _in_new_thread(lambda: torch.set_num_threads(default))  # ...put back


_pools: dict[tuple[int, int], StreamPool] = {}
_pools_lock = threading.Lock()


def pool_for(streams: int, threads: int) -> StreamPool:
    """The process's pool of ``streams`` x ``threads``."""
    key = (streams, threads)
    with _pools_lock:
        pool = _pools.get(key)
        if pool is None:
            pool = _pools[key] = StreamPool(streams, threads)
        return pool


def _all_pools() -> list[StreamPool]:
    with _pools_lock:
        return list(_pools.values())


def streams_busy() -> bool:
    """Whether any pool has a job queued or running."""
    return any(pool.busy for pool in _all_pools())


def streams_finishing() -> bool:
    """Whether a pool's runs have all started their last batches (a deployment's queue then starts its
    next model call: it tokenizes while they run, and its batches take the streams they free)."""
    return any(pool.finishing for pool in _all_pools())


def _forget_pools() -> None:
    global _pools_lock, _setup_lock
    _pools.clear()
    _pools_lock = threading.Lock()
    _setup_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pools)
