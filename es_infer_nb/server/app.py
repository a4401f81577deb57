"""The ASGI application: Elasticsearch's wire format around :meth:`Engine.request`.

The app adds nothing but the wire: it reads the body (size limit, gzip/deflate), checks
credentials and media types, hands ``(method, uri, body)`` to the engine on a worker thread
(so a slow request never blocks the event loop and many clients are served at once), then
writes the answer as ES does: ``X-Elastic-Product: Elasticsearch`` on every response, the
negotiated content type, ``filter_path`` / ``pretty``, gzip when the client accepts it, no
body for HEAD.
"""

from __future__ import annotations

import asyncio
import functools
import gzip
import logging
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from ..api import routing
from ..api.xcontent import decode_utf8
from ..errors import ApiError, without_paths
from . import info  # noqa: F401  (registers GET /)
from .auth import WWW_AUTHENTICATE, Credentials
from .hosts import HostPolicy
from .media import JSON, negotiate
from .render import filter_path, to_json_bytes

if TYPE_CHECKING:  # pragma: no cover
    from ..engine import Engine

log = logging.getLogger("es_infer_nb.server")

PRODUCT_HEADER = (b"x-elastic-product", b"Elasticsearch")
DEFAULT_MAX_CONTENT_LENGTH = 100 * 1024 * 1024


class BodyTooLarge(Exception):
    """The request body (or its decompressed form) is over ``http.max_content_length``."""


@dataclass(frozen=True)
class WireSettings:
    """The HTTP settings of one server (ES names in comments)."""

    credentials: Credentials = field(default_factory=Credentials)
    max_content_length: int = DEFAULT_MAX_CONTENT_LENGTH  # http.max_content_length
    workers: int = 32
    compression: bool = True  # http.compression
    #: the Host / Origin names answered (DNS-rebinding protection); default: the loopback names
    hosts: HostPolicy = field(default_factory=HostPolicy)


def _is_true(params: dict[str, str], name: str) -> bool:
    return name in params and params[name] != "false"


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _decode_content(raw: bytes, encoding: str | None, limit: int) -> bytes:
    """Undo ``Content-Encoding: gzip`` / ``deflate`` without inflating past ``limit``."""
    coding = (encoding or "identity").strip().lower()
    if coding in ("identity", "") or not raw:
        return raw
    if coding not in ("gzip", "x-gzip", "deflate"):
        raise ApiError("illegal_argument_exception", f"unsupported Content-Encoding [{encoding}]", 400)
    wbits = 16 + zlib.MAX_WBITS if coding != "deflate" else zlib.MAX_WBITS
    inflater = zlib.decompressobj(wbits)
    try:
        out = inflater.decompress(raw, limit + 1)
    except zlib.error as exc:
        raise ApiError("illegal_argument_exception", f"failed to decompress the request body ({coding}): {exc}", 400) from None
    if len(out) > limit:
        raise BodyTooLarge
    return out


def _body_text(raw: bytes) -> str | None:
    if not raw:
        return None

    return decode_utf8(raw)


def _require_route(method: str, path: str, uri: str) -> None:
    """Raise ES's no-handler 400 / 405 when nothing serves ``method path`` (routing table only)."""
    routing.resolve(method, path.split("?", 1)[0], uri)


class EsApplication:
    """One engine behind Elasticsearch's REST wire format (an ASGI app via ``.asgi``)."""

    def __init__(self, engine: "Engine", settings: WireSettings | None = None) -> None:
        self.engine = engine
        self.settings = settings or WireSettings()
        self.executor = ThreadPoolExecutor(max_workers=self.settings.workers, thread_name_prefix="es-infer-http")

    async def asgi(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI entry point: every method and path goes to :meth:`handle`."""
        if scope["type"] != "http":  # lifespan / websocket: nothing to do
            return
        request = Request(scope, receive)
        try:
            response = await self.handle(request)
        except Exception as exc:  # noqa: BLE001 - an ES 500 body, never a traceback
            log.exception("internal error answering %s %s", scope.get("method"), scope.get("path"))
            err = ApiError("exception", f"{type(exc).__name__}: {exc}", 500)
            body = without_paths(err.body(), getattr(self.engine, "home", None))
            response = self._write(request, request.method.upper(), {}, 500, body, [], JSON)
        await response(scope, receive, send)

    def close(self) -> None:
        """Finish the engine work in flight and release the worker threads."""
        self.executor.shutdown(wait=True)

    async def handle(self, request: Request) -> Response:
        method = request.method.upper()
        raw_path = request.scope.get("raw_path") or request.url.path.encode("utf-8")
        query = request.scope.get("query_string", b"").decode("latin-1")
        uri = raw_path.decode("latin-1") + (f"?{query}" if query else "")
        params = {k: v for k, v in request.query_params.items()}
        response_type = JSON
        try:
            try:
                # Host / Origin, then credentials, are checked on the headers, before a byte of the body is read
                self.settings.hosts.check(request.headers.get("host"), request.headers.get("origin"))
                self.settings.credentials.check(request.headers.get("authorization"), uri)
                raw = await _read_body(request, self.settings.max_content_length)
                raw = _decode_content(raw, request.headers.get("content-encoding"), self.settings.max_content_length)
            except BodyTooLarge:
                return self._too_large(request)
            try:
                negotiated = negotiate(request.headers.get("accept"), request.headers.get("content-type"), bool(raw))
            except ApiError:
                _require_route(method, raw_path.decode("latin-1"), uri)  # ES looks the handler up first
                raise
            response_type = negotiated.response_type
            text = _body_text(raw)
        except ClientDisconnect:
            log.debug("client disconnected before sending its whole body: %s %s", method, request.url.path)
            return Response(status_code=400)
        except ApiError as err:
            return self._write(request, method, params, err.status, err.body(), self._error_headers(err), response_type)
        loop = asyncio.get_running_loop()
        # remote=True: a request over HTTP is not the Python API (e.g. no {"env": ...} secrets)
        call = functools.partial(self.engine.request, method, uri, text, remote=True)
        answer = await loop.run_in_executor(self.executor, call)
        return self._write(request, method, params, answer.status, answer.body, list(answer.headers.items()), response_type)

    @staticmethod
    def _error_headers(err: ApiError) -> list[tuple[str, str]]:
        headers = list(err.headers.items())
        if err.status == 401 and err.type == "security_exception":
            headers.extend(("WWW-Authenticate", value) for value in WWW_AUTHENTICATE)
        return headers

    def _too_large(self, request: Request) -> Response:
        # ES answers an oversized body at the HTTP layer: 413 with an empty body
        response = Response(status_code=413)
        response.raw_headers.append(PRODUCT_HEADER)
        response.raw_headers.append((b"connection", b"close"))
        return response

    def _write(
        self,
        request: Request,
        method: str,
        params: dict[str, str],
        status: int,
        body: Any,
        headers: list[tuple[str, str]],
        content_type: str,
    ) -> Response:
        payload = b""
        if isinstance(body, str):  # a cat table as text
            payload, content_type = body.encode("utf-8"), "text/plain; charset=UTF-8"
        elif body is not None:
            payload = to_json_bytes(filter_path(body, params.get("filter_path")), pretty=_is_true(params, "pretty"))
        raw_headers: list[tuple[bytes, bytes]] = [PRODUCT_HEADER]
        raw_headers.extend((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers)
        if payload:
            raw_headers.append((b"content-type", content_type.encode("latin-1")))
            if self.settings.compression and "gzip" in request.headers.get("accept-encoding", "").lower():
                payload = gzip.compress(payload, compresslevel=3)
                raw_headers.append((b"content-encoding", b"gzip"))
                raw_headers.append((b"vary", b"Accept-Encoding"))
        raw_headers.append((b"content-length", str(len(payload)).encode("ascii")))
        response = Response(content=b"" if method == "HEAD" else payload, status_code=status)
        response.raw_headers = raw_headers
        return response
