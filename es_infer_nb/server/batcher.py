"""Gathering concurrent inference calls into full model batches (server independent).

An Elasticsearch deployment queues every document of every ``_infer`` call for its
inference process; a full queue (``queue_capacity``) rejects with 429
``es_rejected_execution_exception``. :class:`InferenceBatcher` does the same for a local
model: callers on any thread :meth:`~InferenceBatcher.submit` their documents and block;
one worker thread waits a short gathering window for more, runs the model on up to
``max_batch_size`` documents at once (documents of several calls together, a large call
split over several batches unless ``split_calls=False``) and hands each caller exactly its own results, in order.

A batch that raises is retried call by call, so one bad call fails alone and the others
still get their results. The batcher knows nothing about HTTP: the deployment code wraps
its model's batch function in one and calls ``submit`` from its ``_infer`` handler.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from concurrent.futures import Future, InvalidStateError
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Callable, Generic, Sequence, TypeVar

from ..errors import ApiError

T = TypeVar("T")
R = TypeVar("R")

DEFAULT_QUEUE_CAPACITY = 1024  # ES's start_trained_model_deployment default
DEFAULT_WINDOW_S = 0.002


def queue_full(name: str) -> ApiError:
    """ES's rejection when the inference queue is full (HTTP 429 too_many_requests)."""
    return ApiError("es_rejected_execution_exception", f"{name} queue is full. Unable to execute command", 429)


@dataclass
class _Call(Generic[T, R]):
    items: Sequence[T]
    future: "Future[list[R]]"
    results: list[R | None] = field(default_factory=list)
    taken: int = 0
    done: int = 0

    def __post_init__(self) -> None:
        self.results = [None] * len(self.items)


@dataclass
class _Slice(Generic[T, R]):
    call: _Call[T, R]
    start: int
    stop: int


@dataclass
class BatcherStats:
    batches: int = 0
    items: int = 0
    calls: int = 0
    rejected: int = 0
    largest_batch: int = 0
    peak_queue: int = 0


class InferenceBatcher(Generic[T, R]):
    """Run ``run_batch(items) -> results`` on batches gathered from concurrent callers."""

    def __init__(
        self,
        run_batch: Callable[[list[T]], Sequence[R]],
        *,
        max_batch_size: int = 32,
        queue_capacity: int = DEFAULT_QUEUE_CAPACITY,
        window_s: float = DEFAULT_WINDOW_S,
        name: str = "inference process",
        split_calls: bool = True,
    ) -> None:
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be at least 1, got [{max_batch_size}]")
        if queue_capacity < 1:
            raise ValueError(f"queue_capacity must be at least 1, got [{queue_capacity}]")
        if window_s < 0:
            raise ValueError(f"window_s must not be negative, got [{window_s}]")
        self._run_batch = run_batch
        self.max_batch_size = max_batch_size
        self.queue_capacity = queue_capacity
        self.window_s = window_s
        self.name = name
        #: False: a call's documents always run in one batch (a batch may then hold fewer)
        self.split_calls = split_calls
        self.stats = BatcherStats()
        self._pending: deque[_Call[T, R]] = deque()
        self._queued = 0
        self._cond = threading.Condition()
        self._closed = False
        self._worker: threading.Thread | None = None

    # -- callers ---------------------------------------------------------------------------
    @property
    def queued(self) -> int:
        """Documents waiting for the model (ES's ``inference_count`` pending)."""
        return self._queued

    def submit_async(self, items: Sequence[T]) -> "Future[list[R]]":
        """Queue ``items``; the future holds their results in order. Raises 429 when full."""
        future: Future[list[R]] = Future()
        if not items:
            future.set_result([])
            return future
        with self._cond:
            if self._closed:
                raise ApiError("status_exception", f"{self.name} is stopped", 409)
            if self._queued + len(items) > self.queue_capacity:
                self.stats.rejected += 1
                raise queue_full(self.name)
            self._pending.append(_Call(items, future))
            self._queued += len(items)
            self.stats.calls += 1
            self.stats.peak_queue = max(self.stats.peak_queue, self._queued)
            self._ensure_worker()
            self._cond.notify_all()
        return future

    def submit(self, items: Sequence[T], timeout: float | None = None) -> list[R]:
        """Queue ``items`` and wait for their results; ``TimeoutError`` after ``timeout`` s."""
        future = self.submit_async(items)
        try:
            return future.result(timeout)
        except FutureTimeout:
            future.cancel()  # the worker skips what it has not started
            raise TimeoutError(f"timeout [{timeout}s] waiting for inference result") from None

    def close(self, timeout: float | None = None) -> None:
        """Finish the batches already queued, then stop the worker."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            worker = self._worker
        if worker is not None:
            worker.join(timeout)

    def __enter__(self) -> "InferenceBatcher[T, R]":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the worker --------------------------------------------------------------------------
    def _ensure_worker(self) -> None:
        if self._worker is None or not self._worker.is_alive():
            self._worker = threading.Thread(target=self._loop, name=f"batcher {self.name}", daemon=True)
            self._worker.start()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closed:
                    self._cond.wait()
                if not self._pending and self._closed:
                    return
                self._gather()
                batch = self._take()
            if batch:
                self._run(batch)

    def _gather(self) -> None:
        """Wait (lock held) up to the window for a full batch."""
        deadline = time.monotonic() + self.window_s
        while self._queued < self.max_batch_size and not self._closed:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self._cond.wait(left)

    def _take(self) -> list[_Slice[T, R]]:
        slices: list[_Slice[T, R]] = []
        size = 0
        while self._pending and size < self.max_batch_size:
            call = self._pending[0]
            if call.future.cancelled():
                self._pending.popleft()
                self._queued -= len(call.items) - call.taken
                continue
            n = min(len(call.items) - call.taken, self.max_batch_size - size)
            if not self.split_calls and slices and n < len(call.items) - call.taken:
                break  # the whole call goes into the next batch
            slices.append(_Slice(call, call.taken, call.taken + n))
            call.taken += n
            size += n
            self._queued -= n
            if call.taken == len(call.items):
                self._pending.popleft()
        return slices

    def _run(self, slices: list[_Slice[T, R]]) -> None:
        items = [item for s in slices for item in s.call.items[s.start : s.stop]]
        try:
            results = self._call_model(items)
        except Exception as exc:  # noqa: BLE001 - isolate the failing call
            if len({id(s.call) for s in slices}) == 1:
                self._fail(slices[0].call, exc)
                return
            for s in slices:
                self._run([s])
            return
        self._count(len(items))
        offset = 0
        for s in slices:
            n = s.stop - s.start
            self._deliver(s, results[offset : offset + n])
            offset += n

    def _call_model(self, items: list[T]) -> Sequence[R]:
        results = self._run_batch(items)
        if len(results) != len(items):
            raise RuntimeError(f"the model returned {len(results)} results for a batch of {len(items)}")
        return results

    def _count(self, n: int) -> None:
        with self._cond:
            self.stats.batches += 1
            self.stats.items += n
            self.stats.largest_batch = max(self.stats.largest_batch, n)

    def _deliver(self, s: _Slice[T, R], results: Sequence[R]) -> None:
        call = s.call
        if call.future.done():
            return
        call.results[s.start : s.stop] = list(results)
        call.done += s.stop - s.start
        if call.done == len(call.items):
            try:
                call.future.set_result(list(call.results))  # type: ignore[arg-type]
            except InvalidStateError:  # cancelled by its caller meanwhile
                pass

    def _fail(self, call: _Call[T, R], exc: BaseException) -> None:
        with self._cond:
            if call.taken < len(call.items) and call in self._pending:
                self._pending.remove(call)
                self._queued -= len(call.items) - call.taken
                call.taken = len(call.items)
        try:
            call.future.set_exception(exc)
        except InvalidStateError:  # cancelled by its caller meanwhile
            pass
