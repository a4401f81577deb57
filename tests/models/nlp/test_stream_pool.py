"""The CPU streams every NLP run shares (:mod:`es_infer_nb.models.nlp.stream_pool`)."""

from __future__ import annotations

import threading

import pytest
import torch

from es_infer_nb.models.nlp import stream_pool
from es_infer_nb.models.nlp.batching import run_batches
from es_infer_nb.models.nlp.stream_pool import StreamPool
from helpers import wait_until


def test_the_oldest_runs_jobs_go_first_whatever_order_they_came_in():
    pool = StreamPool(1, 1)
    gate = threading.Event()
    ran: list[tuple[int, int]] = []
    first = pool.submit((0, 0), gate.wait)
    wait_until(lambda: pool.busy and pool.finishing, "the first job to run")
    futures = [pool.submit(p, lambda p=p: ran.append(p)) for p in [(7, 0), (6, 1), (6, 0), (7, 1)]]
    assert not pool.finishing  # jobs wait: the runs on the stream are not at their last batches
    gate.set()
    for future in [first, *futures]:
        future.result(10)
    assert ran == [(6, 0), (6, 1), (7, 0), (7, 1)]
    wait_until(lambda: not pool.busy, "the pool to go idle")
    assert not pool.finishing


def test_errors_reach_their_job_and_a_cancelled_job_never_runs():
    pool = StreamPool(1, 1)
    gate = threading.Event()
    ran: list[str] = []
    blocker = pool.submit((0, 0), gate.wait)

    def boom() -> None:
        raise ValueError("this group failed")

    failing = pool.submit((1, 0), boom)
    dropped = pool.submit((1, 1), lambda: ran.append("dropped"))
    kept = pool.submit((1, 2), lambda: ran.append("kept") or 7)
    assert dropped.cancel()
    gate.set()
    assert blocker.result(10) is True
    with pytest.raises(ValueError, match="this group failed"):
        failing.result(10)
    assert kept.result(10) == 7 and ran == ["kept"]
    wait_until(lambda: not pool.busy, "the pool to go idle")


def test_each_stream_has_its_threads_and_the_process_default_is_left_alone():
    """``torch.set_num_threads`` also sets the count every later thread starts with: a stream thread
    sets its own and puts the default back, or a thread started later (a queue worker) would plan
    one stream on one thread."""
    before = torch.get_num_threads()
    pool = StreamPool(2, 1)
    gate = threading.Barrier(2)

    def count() -> int:
        gate.wait(10)  # both streams at once
        return torch.get_num_threads()

    assert [f.result(10) for f in [pool.submit((0, i), count) for i in range(2)]] == [1, 1]
    later: list[int] = []
    thread = threading.Thread(target=lambda: later.append(torch.get_num_threads()))
    thread.start()
    thread.join()
    assert later == [before] and torch.get_num_threads() == before


def test_with_openmp_a_stream_sets_its_own_count_and_never_the_process_default(monkeypatch):
    """torch's CPU builds run on OpenMP (and MKL): a stream thread sets its count with
    ``omp_set_num_threads`` and ``mkl_set_num_threads_local`` (its own only), so the process default never changes, not even for a moment: a thread started
    while a stream starts (a deployment's queue worker) cannot take one thread (before, with
    ``torch.set_num_threads`` and the default put back, such a thread could; seen once in CI)."""
    if stream_pool._local_setters() is None:
        pytest.skip("no per-thread setters in this torch build: streams put the default back instead")
    before = torch.get_num_threads()
    if before < 2:
        pytest.skip("one torch thread: nothing to tell apart")
    calls: list[int] = []
    monkeypatch.setattr(torch, "set_num_threads", lambda n: calls.append(n))
    pool = StreamPool(2, 1)
    seen: list[int] = []
    stop = threading.Event()

    def watch() -> None:  # new threads started all the while the streams start: each reads the default
        while not stop.is_set():
            thread = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
            thread.start()
            thread.join()

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        assert [f.result(10) for f in [pool.submit((0, i), torch.get_num_threads) for i in range(2)]] == [1, 1]
    finally:
        stop.set()
        watcher.join()
    assert not calls  # torch.set_num_threads never called
    assert seen and set(seen) == {before}


def test_idle_stream_threads_end_and_the_next_job_starts_one(monkeypatch):
    monkeypatch.setattr(stream_pool, "IDLE_EXIT_S", 0.05)
    pool = StreamPool(2, 1)
    names = [pool.submit((0, i), lambda: threading.current_thread().name).result(10) for i in range(2)]
    assert all(name.startswith("es-infer-stream") for name in names)
    wait_until(lambda: pool._workers == 0, "the idle threads to end")  # noqa: SLF001 - the pool's own count
    assert pool.submit((1, 0), lambda: 5).result(10) == 5


def test_a_run_started_beside_another_takes_the_streams_only_after_the_older_ones_groups():
    """Two runs at once on one stream: every group of the run started first runs before any of the
    later run's (the later one only fills the cores the older one leaves idle), and each run gets
    its own outputs in input order; a lone group of a run beside another goes to the streams too."""
    pool = stream_pool.pool_for(1, 1)
    gate = threading.Event()
    blocker = pool.submit((-1, 0), gate.wait)  # holds the stream until both runs have queued
    order: list[str] = []
    lock = threading.Lock()

    def forward_of(name: str):
        def forward(indices: list[int]) -> list[str]:
            with lock:
                order.append(name)
            return [f"{name}{i}" for i in indices]
        return forward

    results: dict[str, list[str]] = {}

    def run(name: str, n: int) -> None:
        results[name] = run_batches([5] * n, forward_of(name), token_budget=10, streams=1 if n == 1 else 2)

    import es_infer_nb.models.nlp.batching as batching

    real_pool_for = batching.pool_for
    try:
        batching.pool_for = lambda streams, threads: pool  # both runs on the one stream held above
        older = threading.Thread(target=run, args=("a", 6))
        older.start()
        wait_until(lambda: len(pool._heap) >= 2, "the older run to queue")  # noqa: SLF001
        later = threading.Thread(target=run, args=("b", 4))
        later.start()
        wait_until(lambda: len({job[0][0] for job in pool._heap}) == 2, "the later run to queue")  # noqa: SLF001
        gate.set()
        older.join(10)
        later.join(10)
    finally:
        batching.pool_for = real_pool_for
    assert blocker.result(10) is True
    assert order == ["a"] * 3 + ["b"] * 2
    assert results == {"a": [f"a{i}" for i in range(6)], "b": [f"b{i}" for i in range(4)]}
