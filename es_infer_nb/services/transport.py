"""HTTP transport of the remote inference services (httpx).

One :class:`Transport` per endpoint: a pooled ``httpx.Client`` (keep-alive connections, up to
``max_concurrent_requests``), per-request timeouts, retries with exponential backoff on 429 / 5xx /
connection errors (``Retry-After`` honoured), a token-bucket :class:`RateLimiter` for
``rate_limit.requests_per_minute``, and :meth:`Transport.map`, which sends many requests at once
with bounded concurrency and returns one outcome per request (a response or an ``ApiError``), so a
failing call never takes the other calls down with it.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence, TypeVar

import httpx

from ..errors import ApiError
from .secrets import Secret, redact

T = TypeVar("T")
R = TypeVar("R")

DEFAULT_TIMEOUT_S = 30.0
DEFAULT_MAX_RETRIES = 3
DEFAULT_BACKOFF_S = 0.05
MAX_BACKOFF_S = 5.0


class _DeadlinePassed(Exception):
    """The call's deadline passed while its response was still arriving."""


def _seconds(total: float) -> str:
    """``2s``, ``500ms``, ``1.5s``: the call's timeout as it reads in an error."""
    if total < 1:
        return f"{round(total * 1000)}ms"
    return f"{total:g}s"


class _RedactSecrets(logging.Filter):
    """Scrubs the secrets of every live transport from httpx / httpcore log records (they log URLs,
    which may carry a secret placed in a query parameter)."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: dict[int, tuple[Secret, ...]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        live = [s for group in list(self.secrets.values()) for s in group]
        if live:
            record.msg = redact(record.getMessage(), live)
            record.args = ()
        return True


_REDACT = _RedactSecrets()
for _name in ("httpx", "httpcore"):
    logging.getLogger(_name).addFilter(_REDACT)


def java_utf8(text: str) -> bytes:
    """``String.getBytes(UTF_8)``: a rendered request body as Java sends it, a lone surrogate (a JSON
    ``"\\ud800"`` escape came in) as ``?``."""
    return text.encode("utf-8", "replace")


@dataclass
class HttpRequest:
    """A rendered request. ``repr`` hides headers and body (they may hold secrets)."""

    url: str
    headers: dict[str, str]
    body: bytes
    method: str = "POST"

    def __repr__(self) -> str:
        return f"HttpRequest({self.method} <{len(self.body)} bytes>, headers={sorted(self.headers)})"


class RateLimiter:
    """Token bucket: ``requests_per_minute`` tokens a minute, bursts of up to one second's worth."""

    def __init__(self, requests_per_minute: float, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if requests_per_minute <= 0:
            raise ValueError(f"requests_per_minute must be positive, got [{requests_per_minute}]")
        self.rate = requests_per_minute / 60.0
        self.capacity = max(1.0, self.rate)
        self._tokens = self.capacity
        self._clock = clock
        self._sleep = sleep
        self._last = clock()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Take one token, waiting for it if needed; returns the seconds waited."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
            self._last = now
            self._tokens -= 1.0
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
        if wait > 0:
            self._sleep(wait)
        return wait


@dataclass
class TransportSettings:
    requests_per_minute: float
    max_concurrent_requests: int = 8
    timeout_s: float = DEFAULT_TIMEOUT_S
    max_retries: int = DEFAULT_MAX_RETRIES
    backoff_s: float = DEFAULT_BACKOFF_S
    #: ``exponential`` (the wait doubles each retry), ``constant``, or ml-commons' jittered ones
    #: (``exponential_equal_jitter``: half the doubled wait plus up to as much again at random;
    #: ``exponential_full_jitter``: up to the doubled wait at random)
    backoff_policy: str = "exponential"


@dataclass
class Transport:
    settings: TransportSettings
    inference_id: str = ""
    secrets: Sequence[Secret] = field(default_factory=tuple)
    #: the error of a request that never got an answer: ``(what happened, ES status) -> ApiError`` (default:
    #: ES inference's "Failed to send the request for inference endpoint [...]")
    failure: Callable[[str, int], ApiError] | None = None

    def __post_init__(self) -> None:
        n = max(1, self.settings.max_concurrent_requests)
        self.client = httpx.Client(
            limits=httpx.Limits(max_connections=n, max_keepalive_connections=n),
            timeout=httpx.Timeout(self.settings.timeout_s),
        )
        self.limiter = RateLimiter(self.settings.requests_per_minute)
        self._pool = ThreadPoolExecutor(max_workers=n, thread_name_prefix=f"inference-{self.inference_id}")
        # the exchanges themselves (:meth:`send` waits for them with the call's deadline)
        self._calls = ThreadPoolExecutor(max_workers=n, thread_name_prefix=f"inference-call-{self.inference_id}")
        self.requests_sent = 0
        self.retries = 0
        if self.secrets:
            _REDACT.secrets[id(self)] = tuple(self.secrets)

    def __repr__(self) -> str:
        return f"<Transport {self.inference_id}: {self.settings}>"

    def close(self) -> None:
        _REDACT.secrets.pop(id(self), None)
        self._pool.shutdown(wait=False)
        self._calls.shutdown(wait=False)
        self.client.close()

    # -- one request ---------------------------------------------------------------------
    def send(self, request: HttpRequest, timeout_s: float | None = None, *,
             deadline: float | None = None) -> httpx.Response:
        """Send with retries; returns the final response (maybe an error status) or raises an ``ApiError``
        for a connection failure that outlived the retries, or ES's 408 once the call's deadline passes.

        One deadline per call (``timeout_s`` from now, or ``deadline`` on ``time.monotonic()``) covers the
        retries, the waits and the whole response body: the exchange runs on a worker thread that reads
        the body as it streams in and gives up at the deadline, and the caller stops waiting at the
        deadline whatever the worker is doing (a service trickling its body cannot hold the call)."""
        total = timeout_s or self.settings.timeout_s
        if deadline is None:
            deadline = time.monotonic() + total
        abandoned = threading.Event()
        future = self._calls.submit(self._send, request, total, deadline, abandoned)
        try:
            return future.result(timeout=max(0.0, deadline - time.monotonic()))
        except FutureTimeout:
            abandoned.set()  # the worker stops at its next chunk; its read timeout bounds a silent wait
            raise self._failure(f"timed out after [{_seconds(total)}]", 408) from None
        except BaseException:  # Ctrl-C: no retry, and the worker stops reading at its next chunk
            abandoned.set()
            future.cancel()
            raise

    def _send(self, request: HttpRequest, total: float, deadline: float, abandoned: threading.Event) -> httpx.Response:
        s = self.settings
        attempt = 0
        while True:
            self.limiter.acquire()
            remaining = deadline - time.monotonic()
            if remaining <= 0 or abandoned.is_set():
                raise self._failure(f"timed out after [{_seconds(total)}]", 408)
            try:
                self.requests_sent += 1
                resp = self._exchange(request, remaining, deadline, abandoned)
            except _DeadlinePassed:
                raise self._failure(f"timed out after [{_seconds(total)}] (reading the response)", 408) from None
            except httpx.TimeoutException as exc:
                if attempt < s.max_retries and deadline - time.monotonic() > 0:
                    attempt = self._backoff(attempt, None)
                    continue
                raise self._failure(f"timed out after [{_seconds(total)}] ({type(exc).__name__})", 408) from exc
            except httpx.TransportError as exc:
                if attempt < s.max_retries:
                    attempt = self._backoff(attempt, None)
                    continue
                raise self._failure(f"failed: {type(exc).__name__}: {exc}", 502) from exc
            if (resp.status_code == 429 or resp.status_code >= 500) and attempt < s.max_retries:
                attempt = self._backoff(attempt, resp.headers.get("retry-after"))
                continue
            return resp

    def _exchange(self, request: HttpRequest, remaining: float, deadline: float,
                  abandoned: threading.Event) -> httpx.Response:
        """One HTTP exchange, the body read chunk by chunk with the deadline checked after each."""
        with self.client.stream(request.method, request.url, headers=request.headers, content=request.body,
                                timeout=remaining) as streamed:
            raw = bytearray()
            for chunk in streamed.iter_raw():
                raw += chunk
                if abandoned.is_set() or time.monotonic() > deadline:
                    raise _DeadlinePassed
            # a complete response (decoded as the original would be: gzip, deflate...)
            return httpx.Response(streamed.status_code, headers=streamed.headers, content=bytes(raw),
                                  request=streamed.request)

    def _backoff(self, attempt: int, retry_after: str | None) -> int:
        self.retries += 1
        policy = self.settings.backoff_policy
        delay = self.settings.backoff_s * (1 if policy == "constant" else 2**attempt)
        if policy == "exponential_equal_jitter":
            delay = delay / 2 + random.uniform(0, delay / 2)
        elif policy == "exponential_full_jitter":
            delay = random.uniform(0, delay)
        if retry_after:
            try:
                delay = max(delay, float(retry_after))
            except ValueError:
                pass
        time.sleep(min(delay, MAX_BACKOFF_S))
        return attempt + 1

    def _failure(self, what: str, status: int) -> ApiError:
        if self.failure is not None:
            err = self.failure(what, status)
            err.reason = redact(err.reason, self.secrets)
            return err
        reason = redact(f"Failed to send the request for inference endpoint [{self.inference_id}]: {what}",
                        self.secrets)
        return ApiError("status_exception", reason, status)

    # -- many requests -------------------------------------------------------------------
    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> list[R | ApiError]:
        """``fn`` over ``items`` with at most ``max_concurrent_requests`` at a time, in order;
        an item whose call raises gets its ``ApiError`` (other exceptions become one)."""
        items = list(items)
        if len(items) <= 1:
            return [self._guard(fn, it) for it in items]
        return list(self._pool.map(lambda it: self._guard(fn, it), items))

    def _guard(self, fn: Callable[[T], R], item: T) -> R | ApiError:
        try:
            return fn(item)
        except ApiError as err:
            return err
        except Exception as exc:  # noqa: BLE001 - one failing call fails only its documents
            return ApiError("status_exception", redact(f"{type(exc).__name__}: {exc}", self.secrets), 500)
