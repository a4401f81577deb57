"""Gathering concurrent inference calls into full model batches (the deployment's queue).

An Elasticsearch deployment queues every document of every ``_infer`` call for its
inference process; a full queue (``queue_capacity``) rejects with 429
``es_rejected_execution_exception``. :class:`InferenceBatcher` does the same for a local
model: callers on any thread :meth:`~InferenceBatcher.submit` their documents; one worker
thread takes the first waiting call, waits a short gathering window for more, runs the model
on up to ``max_batch_size`` documents at once (documents of several calls together) and
hands each caller exactly its own results, in order.

* Calls merge only with calls of the same ``key`` (for a deployment: the inference config
  update, input field and device), taken in arrival order.
* ``split_calls=False`` keeps a call's documents in one batch (a call larger than
  ``max_batch_size`` then runs alone); ``True`` spreads a large call over several batches.
* A batch that raises is retried call by call, so one bad call fails alone and the others
  still get their results; a ``BaseException`` (``KeyboardInterrupt``) fails every call of
  its batch and leaves the worker running.
* Gathering: the worker waits ``window_s`` after the first waiting call. When the previous batch
  held several calls (concurrent callers), it also waits for as many new calls as that batch
  answered, at most ``RETURN_WAIT_SHARE`` of its model time: clients that just got their answers
  send their next request within a round trip, and without this wait they would split into two
  groups running half batches in turn. A lone caller never waits for anyone: when the previous
  batch answered one call of the main thread and the one call waiting is the main thread's too (a
  notebook's sequential ``_infer`` calls, cells run there), the window is skipped (2-3 ms of a
  single-text call). Calls from other threads (HTTP handlers, worker pools, Dask) always keep it:
  skipping it for them split concurrent HTTP clients' batches (benchmarks/server.py ~28% slower).
* A caller that stops waiting (Ctrl-C: :func:`wait` calls :meth:`InferenceBatcher.abandon`) has its
  documents still queued dropped, and the batch it is in stops between forward passes once every
  caller of that batch has gone (:func:`es_infer_nb.models.run_control.stop_when`); the caller
  returns when the worker has let go of its documents, so nothing runs on for it.
* ``overlap`` (a deployment: "the running model call has started its last batches on the CPU
  streams") lets a second worker start the next batch while one runs, two at most: it gathers and
  prepares its batch while the running one finishes. Without it one worker runs one batch at a time.
* ``wait_for_room=True`` blocks the caller until the queue has room (back-pressure, for
  in-process callers feeding large inputs in queue-sized chunks) instead of rejecting.

The batcher knows nothing about HTTP or the engine: the worker never takes the engine's lock.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from concurrent.futures import Future, InvalidStateError
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, Hashable, Sequence, TypeVar

from ..errors import ApiError
from .run_control import Cancelled, stop_when

T = TypeVar("T")
R = TypeVar("R")

DEFAULT_QUEUE_CAPACITY = 1024
DEFAULT_WINDOW_S = 0.002
#: an idle worker thread ends after this many seconds (the next call starts another)
IDLE_EXIT_S = 30.0
#: how long an abandoned call waits for the worker to stop its batch
ABANDON_WAIT_S = 5.0
#: after a batch of several calls, wait for their callers' next calls at most this share of the
#: batch's model time (and ``MAX_RETURN_WAIT_S``), so concurrent clients keep sharing full batches
RETURN_WAIT_SHARE = 0.25
MAX_RETURN_WAIT_S = 0.1
#: batches in the model at once where ``overlap`` lets a second one start
MAX_OVERLAP = 2
#: while a batch runs and calls wait, how often the worker asks ``overlap`` whether the next may start
OVERLAP_POLL_S = 0.003
QUEUE_FULL_REASON = "queue is full. Unable to execute command"


def queue_full(name: str) -> ApiError:
    """``EsRejectedExecutionException`` of a full process queue (HTTP 429 too_many_requests)."""
    return ApiError("es_rejected_execution_exception", f"{name} {QUEUE_FULL_REASON}", 429)


@dataclass(eq=False)
class _Call(Generic[T, R]):
    items: Sequence[T]
    future: "Future[list[R]]"
    key: Hashable = None
    results: list[R | None] = field(default_factory=list)
    taken: int = 0
    done: int = 0
    #: set when the caller stopped waiting (Ctrl-C)
    cancel: threading.Event = field(default_factory=threading.Event)
    #: slices of this call in the model now; ``idle`` is set whenever that is 0
    running: int = 0
    idle: threading.Event = field(default_factory=threading.Event)
    batcher: Any = field(default=None, repr=False)
    #: submitted from the main thread (a notebook's cells)
    main: bool = field(default_factory=lambda: threading.current_thread() is threading.main_thread())

    def __post_init__(self) -> None:
        self.results = [None] * len(self.items)
        self.idle.set()


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
    batch_sizes: list[int] = field(default_factory=list)  # the last ``KEEP_SIZES`` model calls

    KEEP_SIZES = 1000


class InferenceBatcher(Generic[T, R]):
    """Run ``run_batch(items[, key]) -> results`` on batches gathered from concurrent callers.

    ``run_batch`` takes the key as a second argument when ``keyed=True``.
    """

    def __init__(
        self,
        run_batch: Callable[..., Sequence[R]],
        *,
        max_batch_size: int = 32,
        queue_capacity: int = DEFAULT_QUEUE_CAPACITY,
        window_s: float = DEFAULT_WINDOW_S,
        name: str = "inference process",
        split_calls: bool = True,
        keyed: bool = False,
        return_wait_share: float = RETURN_WAIT_SHARE,
        max_return_wait_s: float = MAX_RETURN_WAIT_S,
        overlap: Callable[[], bool] | None = None,
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
        self.split_calls = split_calls
        self.keyed = keyed
        self.return_wait_share = return_wait_share
        self.max_return_wait_s = max_return_wait_s
        self.overlap = overlap
        self.stats = BatcherStats()
        self._pending: deque[_Call[T, R]] = deque()
        self._queued = 0
        self._running = 0
        self._cond = threading.Condition()
        self._closed = False
        self._workers: set[threading.Thread] = set()  # one, or MAX_OVERLAP with ``overlap``
        self._active = 0  # batches in the model now
        self._gathering = False  # a worker is gathering the next batch
        self._last_calls = 0  # calls the previous batch answered
        self._last_model_s = 0.0
        self._calls_at_done = 0  # stats.calls when the previous batch was answered
        self._last_main = False  # the previous batch answered one call, of the main thread

    # -- callers ---------------------------------------------------------------------------
    @property
    def queued(self) -> int:
        """Documents waiting for the model."""
        return self._queued

    @property
    def pending(self) -> int:
        """Documents waiting or in the model now (ES's ``number_of_pending_requests``)."""
        return self._queued + self._running

    def submit_async(self, items: Sequence[T], *, key: Hashable = None, wait_for_room: bool = False,
                     room_timeout: float | None = None) -> "Future[list[R]]":
        """Queue ``items``; the future holds their results in order.

        Raises 429 when the queue has no room for them, unless ``wait_for_room``: then waits
        (at most ``room_timeout`` s) for room; a call larger than the whole queue waits for an
        empty queue.
        """
        future: Future[list[R]] = Future()
        if not items:
            future.set_result([])
            return future
        n = len(items)
        with self._cond:
            self._check_open()
            if self._queued + n > self.queue_capacity:
                if not wait_for_room:
                    self.stats.rejected += 1
                    raise queue_full(self.name)
                deadline = None if room_timeout is None else time.monotonic() + room_timeout
                while self._queued and self._queued + n > self.queue_capacity:
                    left = None if deadline is None else deadline - time.monotonic()
                    if left is not None and left <= 0:
                        raise TimeoutError(f"timeout [{room_timeout}s] waiting for room in the {self.name} queue")
                    self._cond.wait(left)
                    self._check_open()
            call: _Call[T, R] = _Call(items, future, key, batcher=self)
            future.es_call = call  # type: ignore[attr-defined]  # for abandon()
            self._pending.append(call)
            self._queued += n
            self.stats.calls += 1
            self.stats.peak_queue = max(self.stats.peak_queue, self._queued)
            self._ensure_worker()
            self._cond.notify_all()
        return future

    def submit(self, items: Sequence[T], timeout: float | None = None, *, key: Hashable = None,
               wait_for_room: bool = False) -> list[R]:
        """Queue ``items`` and wait for their results; ``TimeoutError`` after ``timeout`` s."""
        future = self.submit_async(items, key=key, wait_for_room=wait_for_room)
        return wait(future, timeout)

    def abandon(self, future: "Future[list[R]]", timeout: float = ABANDON_WAIT_S) -> None:
        """The caller of ``future`` stopped waiting: drop its queued documents, ask the batch it is
        in to stop (it does once all its callers have gone) and wait (at most ``timeout`` s) until the
        worker no longer runs any of them."""
        call = getattr(future, "es_call", None)
        if not isinstance(call, _Call):
            future.cancel()
            return
        call.cancel.set()
        with self._cond:
            if call in self._pending:
                self._pending.remove(call)
                self._queued -= len(call.items) - call.taken
                call.taken = len(call.items)
                self._cond.notify_all()
        future.cancel()
        if timeout > 0 and threading.current_thread() not in self._workers:
            call.idle.wait(timeout)

    def close(self, timeout: float | None = None) -> None:
        """Finish the batches already queued, then stop the workers."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            workers = list(self._workers)
        deadline = None if timeout is None else time.monotonic() + timeout
        for worker in workers:
            if worker is not threading.current_thread():
                worker.join(None if deadline is None else max(0.0, deadline - time.monotonic()))

    def __enter__(self) -> "InferenceBatcher[T, R]":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise ApiError("status_exception", f"{self.name} is stopped", 409)

    # -- the worker --------------------------------------------------------------------------
    def _ensure_worker(self) -> None:
        """Start the workers (lock held): one, or :data:`MAX_OVERLAP` where batches may overlap, each
        taking the next batch when it may start and running it on its own thread."""
        for _ in range((1 if self.overlap is None else MAX_OVERLAP) - len(self._workers)):
            worker = threading.Thread(target=self._loop, name=f"batcher {self.name}", daemon=True)
            self._workers.add(worker)
            worker.start()

    def _loop(self) -> None:
        while True:
            with self._cond:
                idle_until = time.monotonic() + IDLE_EXIT_S
                while not (self._pending and self._may_start()):
                    now = time.monotonic()
                    if not self._pending and (self._closed or now >= idle_until):
                        self._workers.discard(threading.current_thread())
                        return
                    if self._pending and not self._gathering:  # a batch runs: look again soon
                        self._cond.wait(OVERLAP_POLL_S)
                    else:
                        self._cond.wait(None if self._closed or now >= idle_until else idle_until - now)
                self._gathering = True
                try:
                    self._gather()
                    batch = self._take()
                finally:
                    self._gathering = False
                size = sum(s.stop - s.start for s in batch)
                self._running += size
                self._active += 1
                self._cond.notify_all()  # room for callers waiting to queue
            self._run_and_release(batch, size)

    def _may_start(self) -> bool:
        """Whether a batch may start now (lock held): no other worker gathers one, and none runs, or
        one does and ``overlap`` says the next may start beside it."""
        if self._gathering:
            return False
        if not self._active:
            return True
        return self._active < MAX_OVERLAP and self.overlap is not None and self.overlap()

    def _run_and_release(self, batch: list[_Slice[T, R]], size: int) -> None:
        try:
            if batch:
                self._run(batch)
        finally:
            with self._cond:
                self._running -= size
                self._active -= 1
                self._cond.notify_all()

    def _gather(self) -> None:
        """Wait (lock held) for a full batch: the window, and the callers of the previous batch; no
        wait for the main thread's sequential calls (the previous batch's one call and the one waiting)."""
        if self._last_main and len(self._pending) == 1 and self._pending[0].main:
            return
        now = time.monotonic()
        window_end = now + self.window_s
        expect = self._last_calls if self._last_calls > 1 else 0
        return_end = now + min(self.max_return_wait_s, self.return_wait_share * self._last_model_s) if expect else now
        while self._queued < self.max_batch_size and not self._closed:
            now = time.monotonic()
            returned = self.stats.calls - self._calls_at_done >= expect
            end = window_end if returned else max(window_end, return_end)
            if now >= end:
                return
            self._cond.wait(end - now)

    def _take(self) -> list[_Slice[T, R]]:
        slices: list[_Slice[T, R]] = []
        size = 0
        while self._pending and size < self.max_batch_size:
            call = self._pending[0]
            if call.future.cancelled():
                self._pending.popleft()
                self._queued -= len(call.items) - call.taken
                continue
            if slices and call.key != slices[0].call.key:
                break  # another inference config: its own model call
            n = min(len(call.items) - call.taken, self.max_batch_size - size)
            if not self.split_calls:
                n = len(call.items) - call.taken
                if slices and size + n > self.max_batch_size:
                    break  # the whole call goes into the next batch
            slices.append(_Slice(call, call.taken, call.taken + n))
            call.taken += n
            call.running += 1
            call.idle.clear()
            size += n
            self._queued -= n
            if call.taken == len(call.items):
                self._pending.popleft()
        return slices

    def _run(self, slices: list[_Slice[T, R]]) -> None:
        started = time.monotonic()
        try:
            self._run_slices(slices)
        finally:
            with self._cond:
                for s in slices:
                    s.call.running -= 1
                    if s.call.running <= 0:
                        s.call.idle.set()
                self._last_calls = len({id(s.call) for s in slices})
                self._last_main = self._last_calls == 1 and slices[0].call.main
                self._last_model_s = time.monotonic() - started
                self._calls_at_done = self.stats.calls

    def _run_slices(self, slices: list[_Slice[T, R]]) -> None:
        items = [item for s in slices for item in s.call.items[s.start : s.stop]]
        calls = [s.call for s in slices]
        if all(c.cancel.is_set() for c in calls):
            for call in {id(c): c for c in calls}.values():
                self._fail(call, _cancelled())
            return
        try:
            with stop_when(lambda: all(c.cancel.is_set() for c in calls)):
                results = self._call_model(items, slices[0].call.key)
        except Exception as exc:  # noqa: BLE001 - isolate the failing call
            calls = list({id(s.call): s.call for s in slices}.values())
            if len(calls) == 1:
                self._fail(calls[0], exc)
                return
            for s in slices:
                self._run_slices([s])
            return
        except BaseException as exc:  # KeyboardInterrupt & co: every caller of the batch hears of it
            for call in {id(s.call): s.call for s in slices}.values():
                self._fail(call, exc)
            return
        self._count(len(items))
        offset = 0
        for s in slices:
            n = s.stop - s.start
            self._deliver(s, results[offset : offset + n])
            offset += n

    def _call_model(self, items: list[T], key: Any) -> Sequence[R]:
        results = self._run_batch(items, key) if self.keyed else self._run_batch(items)
        if len(results) != len(items):
            raise RuntimeError(f"the model returned {len(results)} results for a batch of {len(items)}")
        return results

    def _count(self, n: int) -> None:
        with self._cond:
            s = self.stats
            s.batches += 1
            s.items += n
            s.largest_batch = max(s.largest_batch, n)
            s.batch_sizes.append(n)
            if len(s.batch_sizes) > s.KEEP_SIZES:
                del s.batch_sizes[: len(s.batch_sizes) - s.KEEP_SIZES]

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
                self._cond.notify_all()
        try:
            call.future.set_exception(exc)
        except InvalidStateError:  # cancelled by its caller meanwhile
            pass


def _cancelled() -> BaseException:
    return Cancelled("the caller stopped waiting")


def _abandon(future: "Future[Any]", wait_s: float) -> None:
    call = getattr(future, "es_call", None)
    batcher = getattr(call, "batcher", None)
    if batcher is not None:
        batcher.abandon(future, wait_s)
    else:
        future.cancel()


def wait(future: "Future[list[R]]", timeout: float | None = None) -> list[R]:
    """The future's results; ``TimeoutError`` after ``timeout`` s (the call is then abandoned, so
    the worker skips it, or stops its batch if it already runs). An interrupted wait (Ctrl-C)
    abandons the call too, and returns once the worker has let go of it."""
    try:
        return future.result(timeout)
    except FutureTimeout:
        _abandon(future, 0.0)
        raise TimeoutError(f"timeout [{timeout}s] waiting for inference result") from None
    except BaseException:
        if not future.done():
            _abandon(future, ABANDON_WAIT_S)
        raise
