"""Ctrl-C while the main thread waits on other threads' work: a flag the wait raises from, never lost."""

from __future__ import annotations

import os
import signal
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor

import pytest

from es_infer_nb.models.run_control import ctrl_c_flag, result_or_interrupt

main_only = pytest.mark.skipif(threading.current_thread() is not threading.main_thread(),
                               reason="signals reach the main thread")


@main_only
def test_ctrl_c_during_a_wait_raises_from_the_wait_and_restores_the_handler() -> None:
    before = signal.getsignal(signal.SIGINT)
    with ThreadPoolExecutor(1) as pool:
        slow: Future[str] = pool.submit(time.sleep, 1.5)
        timer = threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT))
        started = time.perf_counter()
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            with ctrl_c_flag() as interrupted:
                result_or_interrupt(slow, interrupted)
        elapsed = time.perf_counter() - started
        timer.join()
    assert elapsed < 1.0, elapsed
    assert signal.getsignal(signal.SIGINT) is before


@main_only
def test_a_ctrl_c_that_lands_between_waits_is_raised_when_the_block_ends() -> None:
    with pytest.raises(KeyboardInterrupt):
        with ctrl_c_flag() as interrupted:
            os.kill(os.getpid(), signal.SIGINT)
            deadline = time.monotonic() + 2
            while not interrupted.is_set() and time.monotonic() < deadline:
                time.sleep(0.01)  # the handler only sets the flag: nothing raises here
            assert interrupted.is_set()


def test_a_future_failing_with_timeout_error_keeps_its_own_error() -> None:
    """The call's own TimeoutError is its answer, not a wait that timed out."""
    failed: Future[int] = Future()
    failed.set_exception(TimeoutError("the service timed out"))
    with pytest.raises(TimeoutError, match="the service timed out"):
        result_or_interrupt(failed, threading.Event())
    done: Future[int] = Future()
    done.set_result(7)
    assert result_or_interrupt(done, threading.Event()) == 7


def test_outside_the_main_thread_ctrl_c_is_left_alone() -> None:
    seen: list[object] = []

    def body() -> None:
        with ctrl_c_flag() as interrupted:
            seen.append(signal.getsignal(signal.SIGINT))
            seen.append(interrupted.is_set())

    before = signal.getsignal(signal.SIGINT)
    worker = threading.Thread(target=body)
    worker.start()
    worker.join()
    assert seen == [before, False]
