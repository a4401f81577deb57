"""A tiny threaded HTTP server on 127.0.0.1 that answers with a Python function.

Used by the tests, the benchmark and the conformance adapter to stand in for remote model services::

    with LoopbackServer(lambda req: (200, {"data": []})) as server:
        server.url  # http://127.0.0.1:<port>
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class Trickle:
    """A body sent ``chunk`` bytes at a time with ``pause_s`` between writes (a slow or hostile service):
    its whole length is announced, its bytes arrive over ``len(data) / chunk * pause_s`` seconds."""

    data: bytes
    chunk: int = 1
    pause_s: float = 0.1


#: a handler answers (status, body) or (status, body, headers); a dict/list body is sent as JSON, a
#: :class:`Trickle` slowly
Answer = tuple[int, Any] | tuple[int, Any, dict[str, str]]


class LoopbackServer:
    def __init__(self, handler: Callable[[Received], Answer]) -> None:
        self.handler = handler
        self.received: list[Received] = []
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body are separate writes: no 40 ms delayed-ACK stall

            def do_POST(self) -> None:  # noqa: N802 - http.server naming
                length = int(self.headers.get("Content-Length") or 0)
                req = Received(self.command, self.path, dict(self.headers.items()), self.rfile.read(length))
                with outer._lock:
                    outer.received.append(req)
                answer = outer.handler(req)
                status, body = answer[0], answer[1]
                headers = answer[2] if len(answer) > 2 else {}  # type: ignore[misc]
                trickle = body if isinstance(body, Trickle) else None
                data = trickle.data if trickle is not None else (
                    body if isinstance(body, bytes) else (body.encode() if isinstance(body, str)
                                                          else json.dumps(body).encode()))
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    if trickle is None:
                        self.wfile.write(data)
                        return
                    for i in range(0, len(data), max(1, trickle.chunk)):
                        self.wfile.write(data[i:i + max(1, trickle.chunk)])
                        self.wfile.flush()
                        time.sleep(trickle.pause_s)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True  # the client gave up (a timeout): nothing to answer

            do_GET = do_POST
            do_PUT = do_POST

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.request_queue_size = 128
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "LoopbackServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> "LoopbackServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
