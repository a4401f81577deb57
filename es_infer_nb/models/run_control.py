"""One call's progress bar and its stop request, seen by every layer below the call.

* :class:`RunProgress`: the single ``tqdm.auto`` bar of a ``df.infer.run`` call, made by the frames
  layer and fed with row counts by whichever backend runs the rows (tree chunks, NLP chunks,
  endpoint chunks). Time-based: tqdm's ``delay`` keeps it hidden for the first ~2 s, whatever the
  row count, so a quick call shows nothing; ``show=False`` makes no bar at all.
  :func:`reporting` makes it the current one (a context variable) and :func:`progress_for` gives
  the lower layers the current one, or a bar of their own when they are called directly.
* :func:`ctrl_c_flag` / :func:`result_or_interrupt`: while the calling (main) thread waits on work run by
  other threads, Ctrl-C sets a flag and the wait raises ``KeyboardInterrupt`` itself, at a point of its
  choosing — a ``KeyboardInterrupt`` raised by Python's default handler at whatever bytecode runs
  (a weakref callback, a ``__del__``) can be swallowed as "unraisable" and the stop lost.
* :func:`stop_when` / :func:`stop_requested`: a deployment's queue worker runs a batch under the
  predicate "every caller of this batch gave up" (Ctrl-C in the caller); the NLP batch loop checks it
  between forward passes and raises :class:`Cancelled`, so no thread keeps working for a caller
  that is gone.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, wait
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

import tqdm.auto

__all__ = ["DELAY_S", "Cancelled", "RunProgress", "ctrl_c_flag", "current_progress", "in_worker", "progress_for",
           "reporting", "result_or_interrupt", "stop_requested", "stop_when"]

T = TypeVar("T")

#: how often a wait under :func:`ctrl_c_flag` looks at the flag
POLL_S = 0.05

#: a bar asked for by default appears only after this many seconds of work
DELAY_S = 2.0


class Cancelled(Exception):
    """Every caller of a running batch stopped waiting (Ctrl-C): the batch ends early."""


class RunProgress:
    """A rows bar for one call: ``show`` ``None`` (after :data:`DELAY_S`), ``True`` (at once) or
    ``False`` (no bar: :meth:`advance` only counts)."""

    def __init__(self, total: int, desc: str, show: bool | None = None, unit: str = "rows",
                 leave: bool = False) -> None:
        self.total = total
        self.done = 0
        self._bar: Any = None
        if show is not False and total > 0:
            self._bar = tqdm.auto.tqdm(total=total, desc=desc, unit=unit, leave=leave,
                             delay=DELAY_S if show is None else 0.0)

    @property
    def shown(self) -> bool:
        """Whether this progress has a bar (it may still be inside its delay)."""
        return self._bar is not None

    def set_total(self, total: int) -> None:
        """Several passes over the rows (``input_output`` pairs): the bar counts all of them."""
        self.total = total
        if self._bar is not None:
            self._bar.total = total
            self._bar.refresh()

    def advance(self, rows: int) -> None:
        self.done += rows
        if self._bar is not None:
            self._bar.update(rows)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> "RunProgress":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_progress: ContextVar[RunProgress | None] = ContextVar("es_infer_nb_progress", default=None)
_stop: ContextVar[Callable[[], bool] | None] = ContextVar("es_infer_nb_stop", default=None)


def current_progress() -> RunProgress | None:
    """The bar of the call running in this context (``None`` outside one)."""
    return _progress.get()


@contextmanager
def reporting(progress: RunProgress) -> Iterator[RunProgress]:
    """Make ``progress`` the current call's bar while the block runs; closed at the end."""
    token = _progress.set(progress)
    try:
        yield progress
    finally:
        _progress.reset(token)
        progress.close()


@contextmanager
def progress_for(total: int, desc: str, progress: bool | None, *, min_rows: int) -> Iterator[RunProgress]:
    """The bar a lower layer feeds: the current call's (unless ``progress is False``: a caller that
    counts the rows itself), else its own (``progress`` ``None``: only from ``min_rows`` rows)."""
    current = _progress.get()
    if current is not None and progress is not False:
        yield current
        return
    if progress is None:
        show: bool | None = None if total >= min_rows and current is None else False
    else:
        show = progress
    with RunProgress(total, desc, show=show) as own:
        yield own


@contextmanager
def stop_when(predicate: Callable[[], bool]) -> Iterator[None]:
    """Run the block with ``predicate`` as this thread's stop request (see :func:`stop_requested`)."""
    token = _stop.set(predicate)
    try:
        yield
    finally:
        _stop.reset(token)


def stop_requested() -> bool:
    """Whether the callers of the work running in this context all gave up."""
    predicate = _stop.get()
    return predicate is not None and predicate()


def in_worker() -> bool:
    """Whether this context runs a queue worker's batch (no bar of its own there)."""
    return _stop.get() is not None


@contextmanager
def ctrl_c_flag() -> Iterator[threading.Event]:
    """For the block, Ctrl-C (SIGINT) sets the returned event instead of raising wherever the main thread
    happens to be; waits through :func:`result_or_interrupt` raise ``KeyboardInterrupt`` when they see it.
    A flag still set when the block ends without an exception is raised then, so a stop is never lost.
    Outside the main thread, or where someone else's SIGINT handler is installed, Ctrl-C is left as it is
    (the event then stays clear)."""
    flag = threading.Event()
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
        yield flag
        return
    previous = signal.signal(signal.SIGINT, lambda signum, frame: flag.set())
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)
    if flag.is_set():
        raise KeyboardInterrupt


def result_or_interrupt(future: "Future[T]", flag: threading.Event) -> T:
    """``future.result()``, raising ``KeyboardInterrupt`` within :data:`POLL_S` of Ctrl-C under
    :func:`ctrl_c_flag` (and at once when it came before)."""
    while True:
        if flag.is_set():
            raise KeyboardInterrupt
        if future.done():
            return future.result()
        wait([future], timeout=POLL_S)
