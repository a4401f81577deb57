"""InferenceBatcher on a fake model: gathering, splitting, isolation of failures, 429."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from es_infer_nb.errors import ApiError
from es_infer_nb.models.batcher import InferenceBatcher
from helpers import wait_until


class FakeModel:
    """Doubles numbers; records every batch; can be held to let a queue build up."""

    def __init__(self, fail_on: int | None = None) -> None:
        self.batches: list[list[int]] = []
        self.fail_on = fail_on
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.lock = threading.Lock()

    def __call__(self, items: list[int]) -> list[int]:
        self.entered.set()
        self.gate.wait()
        with self.lock:
            self.batches.append(list(items))
        if self.fail_on is not None and self.fail_on in items:
            raise ValueError(f"cannot infer [{self.fail_on}]")
        return [2 * i for i in items]


def test_each_caller_gets_its_own_results_in_order():
    model = FakeModel()
    with InferenceBatcher(model, max_batch_size=16, window_s=0.05) as batcher:
        calls = [list(range(c * 100, c * 100 + 8)) for c in range(16)]
        with ThreadPoolExecutor(16) as pool:
            results = list(pool.map(batcher.submit, calls))
    assert results == [[2 * i for i in call] for call in calls]
    assert sum(len(b) for b in model.batches) == 16 * 8
    assert all(len(b) <= 16 for b in model.batches)
    assert batcher.stats.items == 128 and batcher.stats.calls == 16


def test_the_main_threads_sequential_calls_skip_the_gathering_window_other_threads_keep_it():
    """A notebook's one-at-a-time calls (the main thread) run without the gathering window once the
    previous batch answered the main thread alone; the first call, and calls from any other thread
    (HTTP handlers, pools), wait it; two calls queued behind a lone one are gathered together."""
    import time

    model = FakeModel()
    with InferenceBatcher(model, max_batch_size=16, window_s=0.3) as batcher:
        started = time.monotonic()
        assert batcher.submit([1]) == [2]
        assert time.monotonic() - started >= 0.25  # the first call: the window
        for i in range(3):
            started = time.monotonic()
            assert batcher.submit([i]) == [2 * i]
            assert time.monotonic() - started < 0.15, "the main thread's sequential call waited the window"
        with ThreadPoolExecutor(1) as pool:  # another thread: the window, every time
            for i in range(2):
                started = time.monotonic()
                assert pool.submit(batcher.submit, [i]).result() == [2 * i]
                assert time.monotonic() - started >= 0.25
        model.gate.clear()  # hold the model: two callers queue behind a lone call
        model.entered.clear()
        lone = batcher.submit_async([7])
        assert model.entered.wait(2)
        first, second = batcher.submit_async([8]), batcher.submit_async([9])
        model.gate.set()
        assert lone.result(5) == [14] and first.result(5) == [16] and second.result(5) == [18]
    assert model.batches[-1] == [8, 9]  # gathered together


def test_concurrent_calls_share_full_batches():
    model = FakeModel()
    model.gate.clear()  # hold the model so the queue fills up behind the first batch
    with InferenceBatcher(model, max_batch_size=32, window_s=0.0) as batcher:
        first = batcher.submit_async([0])
        assert model.entered.wait(10)
        futures = [batcher.submit_async([c] * 8) for c in range(1, 9)]  # 64 documents queued
        assert batcher.queued == 64
        model.gate.set()
        assert first.result(10) == [0]
        assert [f.result(10) for f in futures] == [[2 * c] * 8 for c in range(1, 9)]
    assert [len(b) for b in model.batches] == [1, 32, 32]


def test_a_large_call_is_split_over_batches():
    model = FakeModel()
    with InferenceBatcher(model, max_batch_size=4, window_s=0.0) as batcher:
        assert batcher.submit(list(range(10))) == [2 * i for i in range(10)]
    assert [len(b) for b in model.batches] == [4, 4, 2]


def test_queue_capacity_rejects_with_429():
    model = FakeModel()
    model.gate.clear()
    with InferenceBatcher(model, max_batch_size=2, queue_capacity=4, window_s=0.0, name="inference process") as batcher:
        running = batcher.submit_async([1, 2])
        assert model.entered.wait(10)
        waiting = batcher.submit_async([3, 4, 5, 6])  # the queue holds 4
        with pytest.raises(ApiError) as full:
            batcher.submit_async([7])
        assert full.value.status == 429
        assert full.value.type == "es_rejected_execution_exception"
        assert full.value.reason == "inference process queue is full. Unable to execute command"
        assert batcher.stats.rejected == 1
        model.gate.set()
        assert running.result(10) == [2, 4] and waiting.result(10) == [6, 8, 10, 12]
        assert batcher.submit([7]) == [14]  # room again


def test_a_failing_call_fails_alone():
    model = FakeModel(fail_on=13)
    model.gate.clear()
    with InferenceBatcher(model, max_batch_size=64, window_s=0.0) as batcher:
        first = batcher.submit_async([0])
        assert model.entered.wait(10)
        good_a = batcher.submit_async([1, 2])
        bad = batcher.submit_async([12, 13])
        good_b = batcher.submit_async([3])
        model.gate.set()
        assert first.result(10) == [0]
        assert good_a.result(10) == [2, 4] and good_b.result(10) == [6]
        with pytest.raises(ValueError, match=r"cannot infer \[13\]"):
            bad.result(10)


def test_wrong_result_count_is_an_error_not_a_misalignment():
    with InferenceBatcher(lambda items: items[:-1], max_batch_size=8, window_s=0.0) as batcher:
        with pytest.raises(RuntimeError, match="returned 1 results for a batch of 2"):
            batcher.submit([1, 2])


def test_timeout_cancels_the_waiting_call():
    model = FakeModel()
    model.gate.clear()
    with InferenceBatcher(model, max_batch_size=1, window_s=0.0) as batcher:
        running = batcher.submit_async([1])
        assert model.entered.wait(10)
        with pytest.raises(TimeoutError, match="waiting for inference result"):
            batcher.submit([2], timeout=0.01)
        model.gate.set()
        assert running.result(10) == [2]
        assert batcher.submit([3]) == [6]
    assert [2] not in model.batches  # the timed-out call never ran


def test_closed_batcher_refuses_and_arguments_are_checked():
    batcher = InferenceBatcher(FakeModel())
    assert batcher.submit([]) == []
    batcher.close()
    with pytest.raises(ApiError) as stopped:
        batcher.submit([1])
    assert stopped.value.status == 409
    for kwargs in ({"max_batch_size": 0}, {"queue_capacity": 0}, {"window_s": -1}):
        with pytest.raises(ValueError):
            InferenceBatcher(FakeModel(), **kwargs)


def test_the_callers_of_a_shared_batch_are_waited_for_when_they_come_back():
    """After a batch of two calls, the worker waits for two new calls (within its bound) instead of
    running the first one alone, so concurrent clients keep sharing batches."""
    model = FakeModel()
    model.gate.clear()
    with InferenceBatcher(model, max_batch_size=64, window_s=0.0, return_wait_share=1000.0,
                          max_return_wait_s=30.0) as batcher:
        first = batcher.submit_async([0])
        assert model.entered.wait(10)
        a, b = batcher.submit_async([1]), batcher.submit_async([2])
        model.gate.set()
        assert (first.result(10), a.result(10), b.result(10)) == ([0], [2], [4])
        c = batcher.submit_async([3])
        d = batcher.submit_async([4])  # the worker, woken by c, waited for this second caller
        assert (c.result(10), d.result(10)) == ([6], [8])
        e = batcher.submit_async([5])
        f = batcher.submit_async([6])
        assert (e.result(10), f.result(10)) == ([10], [12])
    assert model.batches == [[0], [1, 2], [3, 4], [5, 6]]


class StoppableModel:
    """Works in steps of 10 ms, checking between steps whether its callers all gave up (as the NLP
    batch loop does between forward passes)."""

    def __init__(self, steps: int = 100) -> None:
        self.steps = steps
        self.entered = threading.Event()
        self.stopped_after: list[int] = []
        self.batches: list[list[int]] = []

    def __call__(self, items: list[int]) -> list[int]:
        import time

        from es_infer_nb.models.run_control import Cancelled, stop_requested

        self.batches.append(list(items))
        self.entered.set()
        for step in range(self.steps):
            if stop_requested():
                self.stopped_after.append(step)
                raise Cancelled("stopped")
            time.sleep(0.01)
        return [2 * i for i in items]


def test_an_abandoned_call_stops_its_batch_and_drops_what_it_queued():
    import time

    model = StoppableModel()
    with InferenceBatcher(model, max_batch_size=4, window_s=0.0) as batcher:
        running = batcher.submit_async([1, 2, 3, 4])
        assert model.entered.wait(2)
        queued = batcher.submit_async([5, 6, 7, 8])
        assert batcher.queued == 4
        t0 = time.monotonic()
        batcher.abandon(queued)
        batcher.abandon(running)
        assert time.monotonic() - t0 < 0.5  # the batch stopped at its next step
        assert model.stopped_after and model.stopped_after[0] < 50
        assert batcher.pending == 0 and running.cancelled() and queued.cancelled()
        assert model.batches == [[1, 2, 3, 4]]  # the queued call never ran
        assert batcher.submit([9], timeout=5) == [18]  # the worker is free for the next caller


def test_a_shared_batch_runs_on_while_one_of_its_callers_stays():
    model = StoppableModel(steps=20)
    model_calls = []

    def run(items: list[int]) -> list[int]:
        model_calls.append(len(items))
        return model(items)

    with InferenceBatcher(run, max_batch_size=8, window_s=0.1) as batcher:
        first = batcher.submit_async([1, 2])
        second = batcher.submit_async([3, 4])
        assert model.entered.wait(2)
        batcher.abandon(first, timeout=0)
        assert second.result(timeout=5) == [6, 8]  # the other caller still gets its answer
        assert first.cancelled() and not model.stopped_after and model_calls == [4]


def test_overlap_starts_the_next_batch_beside_a_running_one_only_when_it_says_so():
    """With ``overlap`` (a deployment: the CPU streams have started the running call's last batches)
    the worker starts the next batch while one runs, two at most; until ``overlap`` says so, and
    without it, batches run one at a time. Every caller still gets exactly its own results, and
    ``close`` waits for the batches running beside the worker."""
    import time

    class Held:
        def __init__(self) -> None:
            self.gates: dict[int, threading.Event] = {}
            self.started: list[int] = []
            self.threads: set[threading.Thread] = set()
            self.lock = threading.Lock()

        def __call__(self, items: list[int]) -> list[int]:
            with self.lock:
                self.started.append(items[0])
                self.threads.add(threading.current_thread())
                gate = self.gates.setdefault(items[0], threading.Event())
            assert gate.wait(30)
            return [2 * i for i in items]

    model = Held()
    may = threading.Event()
    batcher = InferenceBatcher(model, max_batch_size=2, window_s=0.0, split_calls=False, overlap=may.is_set)
    calls = {first: [first, first + 1] for first in (10, 20, 30)}
    futures = {}
    futures[10] = batcher.submit_async(calls[10])
    wait_until(lambda: model.started == [10], "the first batch")
    futures[20] = batcher.submit_async(calls[20])
    futures[30] = batcher.submit_async(calls[30])
    time.sleep(0.1)
    assert model.started == [10] and batcher.queued == 4  # overlap says no: the next waits
    may.set()
    wait_until(lambda: model.started == [10, 20], "the second batch beside the first")
    time.sleep(0.1)
    assert model.started == [10, 20] and batcher.queued == 2  # two at most in the model
    assert batcher.pending == 6  # ES's number_of_pending_requests: queued + in the model
    for first in (20, 10):  # the later batch may finish first: each caller still gets its own
        model.gates.setdefault(first, threading.Event()).set()
        assert futures[first].result(10) == [2 * i for i in calls[first]]
    model.gates.setdefault(30, threading.Event()).set()
    assert futures[30].result(10) == [2 * i for i in calls[30]]
    for first in (40, 50, 60):  # more batches: the same two worker threads run them all
        model.gates.setdefault(first, threading.Event()).set()
        assert batcher.submit([first]) == [2 * first]
    batcher.close(10)
    assert batcher.pending == 0 and batcher.stats.batches == 6
    assert len(model.threads) <= 2

    serial = Held()
    with InferenceBatcher(serial, max_batch_size=4, window_s=0.0, split_calls=False) as one_at_a_time:
        first = one_at_a_time.submit_async([1])
        wait_until(lambda: serial.started == [1], "the first batch")
        second = one_at_a_time.submit_async([5])
        time.sleep(0.1)
        assert serial.started == [1]  # no overlap: the worker itself runs the batch
        serial.gates[1].set()
        assert first.result(10) == [2]
        wait_until(lambda: serial.started == [1, 5], "the second batch")
        serial.gates[5].set()
        assert second.result(10) == [10]
