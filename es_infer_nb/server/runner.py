"""Starting and stopping the HTTP server (uvicorn), in the foreground or a background thread.

``serve(engine, port=0)`` runs uvicorn on its own thread with its own event loop, so it works
inside a running Jupyter kernel, and returns a :class:`ServerHandle` (``.url``, ``.stop()``).
``run_forever`` is ``es-infer serve``: uvicorn in the main thread, where SIGINT / SIGTERM start
a graceful shutdown. Either way stopping finishes the requests in flight, then flushes the
engine's stored state (``engine.stats.flush()``).
"""

from __future__ import annotations

import re
import signal
import socket
import sys
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import uvicorn

from ..engine import default_engine
from .app import DEFAULT_MAX_CONTENT_LENGTH, EsApplication, WireSettings
from .auth import Credentials, is_loopback
from .hosts import HostPolicy

if TYPE_CHECKING:  # pragma: no cover
    from ..engine import Engine

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9200
#: seconds a stop waits for requests in flight before cancelling them
GRACEFUL_SHUTDOWN_S = 30
_UNITS = {"b": 1, "kb": 1024, "mb": 1024**2, "gb": 1024**3, "tb": 1024**4}


class InsecureBindError(ValueError):
    """Binding a non-loopback address without credentials."""


def parse_byte_size(value: str | int) -> int:
    """ES byte sizes: ``100mb``, ``512kb``, ``1gb`` or a plain number of bytes."""
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"http.max_content_length must not be negative, got [{value}]")
        return value
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(b|kb|mb|gb|tb)?\s*", value.lower())
    if not match:
        raise ValueError(f"failed to parse http.max_content_length [{value}]: use a number with b, kb, mb or gb")
    return int(float(match.group(1)) * _UNITS[match.group(2) or "b"])


@dataclass(frozen=True)
class ServerSettings:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    credentials: Credentials = Credentials()
    max_content_length: int = DEFAULT_MAX_CONTENT_LENGTH
    workers: int = 32
    access_log: bool = False
    log_level: str = "warning"
    #: Host / Origin names answered; None: the bind address plus the loopback names
    allowed_hosts: tuple[str, ...] | None = None

    @property
    def host_policy(self) -> HostPolicy:
        return HostPolicy.build(self.host, self.allowed_hosts)

    def check(self) -> None:
        if not is_loopback(self.host) and not self.credentials.enabled:
            raise InsecureBindError(
                f"refusing to bind [{self.host}] without credentials: pass api_key= / --api-key or "
                "basic_auth= / --user, or bind 127.0.0.1"
            )

    def security_line(self) -> str:
        if self.credentials.enabled:
            return f"security: every request needs {self.credentials.describe()} (Authorization header)"
        return f"security: none (bound to a loopback address only; answering Host {self.host_policy.describe()})"


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError:
        sock.close()
        raise
    # accepted connections inherit TCP_NODELAY: an answer's head and body are two writes, and with
    # Nagle's algorithm the body waited for the client's delayed ACK (~40 ms on every request)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.listen(2048)  # connections wait in the backlog until uvicorn accepts them
    sock.set_inheritable(True)
    return sock


def _url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def _uvicorn(app: EsApplication, settings: ServerSettings) -> uvicorn.Server:
    config = uvicorn.Config(
        app.asgi,
        interface="asgi3",
        lifespan="off",
        proxy_headers=False,
        log_level=settings.log_level,
        access_log=settings.access_log,
        server_header=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )
    return uvicorn.Server(config)


class ServerHandle:
    """A running server: ``.url``, ``.engine``, ``.stop()``; a context manager too."""

    def __init__(self, engine: "Engine", app: EsApplication, server: uvicorn.Server, thread: threading.Thread, url: str) -> None:
        self.engine = engine
        self.url = url
        self._app = app
        self._server = server
        self._thread = thread
        self._stopped = False
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        state = "stopped" if self._stopped else "running"
        return f"<es_infer_nb server {self.url} ({state})>"

    @property
    def running(self) -> bool:
        return not self._stopped and self._thread.is_alive()

    def stop(self, timeout: float | None = GRACEFUL_SHUTDOWN_S + 10) -> None:
        """Stop accepting, finish requests in flight, flush the engine's state."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        self._server.should_exit = True
        self._thread.join(timeout)
        _finish(self.engine, self._app)

    def __enter__(self) -> "ServerHandle":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _finish(engine: "Engine", app: EsApplication) -> None:
    app.close()
    engine.stats.flush()


def _prepare(engine: "Engine | None", settings: ServerSettings) -> tuple["Engine", EsApplication, socket.socket]:
    settings.check()
    engine = engine if engine is not None else default_engine()
    wire = WireSettings(settings.credentials, settings.max_content_length, settings.workers, hosts=settings.host_policy)
    app = EsApplication(engine, wire)
    return engine, app, _bind(settings.host, settings.port)


def start_background(engine: "Engine | None", settings: ServerSettings, startup_timeout: float = 30.0) -> ServerHandle:
    engine, app, sock = _prepare(engine, settings)
    server = _uvicorn(app, settings)
    url = _url(sock)
    failure: list[BaseException] = []

    def target() -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as exc:  # noqa: BLE001 - reported to the starting thread
            failure.append(exc)

    thread = threading.Thread(target=target, name=f"es-infer-server {url}", daemon=True)
    thread.start()
    waited = 0.0
    while not server.started and thread.is_alive() and waited < startup_timeout:
        thread.join(0.02)
        waited += 0.02
    if not server.started:
        server.should_exit = True
        thread.join(5)
        sock.close()
        app.close()
        cause = failure[0] if failure else None
        raise RuntimeError(f"the server on {url} did not start: {cause or 'timed out'}") from cause
    return ServerHandle(engine, app, server, thread, url)


def run_forever(engine: "Engine | None", settings: ServerSettings, announce: Callable[[str], None] | None = None) -> None:
    """Serve in this thread until SIGINT / SIGTERM; then finish in-flight requests and flush.

    While uvicorn runs, its own handlers catch the signal and drain the requests in flight. Ours,
    in place before it starts (and after it puts them back), only tell the server to exit: a signal
    that comes while it is still starting makes it stop as soon as it has started (exit 0). Our
    handler never raises: an exception raised in a signal handler lands wherever the main thread is,
    and inside a weakref callback or a ``__del__`` Python swallows it ("Exception ignored in ..."), so
    a SIGTERM just after the start could be lost and the server would serve on.
    """
    engine, app, sock = _prepare(engine, settings)
    say = announce or (lambda line: print(line, file=sys.stderr, flush=True))
    say(f"es-infer: serving {engine!r} on {_url(sock)}")
    say(f"es-infer: {settings.security_line()}")
    server = _uvicorn(app, settings)

    def stop(signum: int, frame: object) -> None:
        server.should_exit = True  # uvicorn checks it after its start-up and on every tick

    previous = {}
    if threading.current_thread() is threading.main_thread():
        previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.run(sockets=[sock])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _finish(engine, app)
        say("es-infer: stopped; state flushed")
