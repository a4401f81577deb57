"""An Elasticsearch-compatible HTTP endpoint over an :class:`~es_infer_nb.Engine`.

``es_infer_nb.serve()`` (a background thread, notebook friendly) and ``es-infer serve`` (the
foreground command) put uvicorn + starlette in front of ``Engine.request``: the official
``elasticsearch`` client, eland and curl lines from the docs talk to it as to a cluster.

From a shell::

    es-infer serve --home ~/models            # http://127.0.0.1:9200, Ctrl-C to stop
    curl -s localhost:9200/_ml/trained_models/_stats?pretty
    curl -s -H 'Content-Type: application/json' -X POST localhost:9200/_ml/trained_models/m/_infer \
         -d '{"docs": [{"x": 1.5}]}'

From a notebook, with the official client (8.x or 9.x) or eland::

    handle = es_infer_nb.serve(engine, port=0)           # a background thread
    es = elasticsearch.Elasticsearch(handle.url)
    es.ml.put_trained_model(model_id="m", **body)
    es.ml.infer_trained_model(model_id="m", docs=[{"x": 1.5}])
    eland.ml.MLModel.import_model(es, "m2", sklearn_model, feature_names)  # eland needs pandas < 3
    handle.stop()                                        # drains requests, flushes stats

Anything but a loopback address needs ``--api-key`` / ``--user`` (``api_key=`` / ``basic_auth=``).
Requests naming another host in ``Host`` or ``Origin`` get a 403 (DNS rebinding); ``--allowed-hosts``
/ ``allowed_hosts=`` says which hosts to answer.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from .auth import Credentials
from .hosts import HostPolicy
from .runner import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    InsecureBindError,
    ServerHandle,
    ServerSettings,
    parse_byte_size,
    run_forever,
    start_background,
)

if TYPE_CHECKING:  # pragma: no cover
    from ..engine import Engine

__all__ = ["InsecureBindError", "ServerHandle", "ServerSettings", "run_forever", "serve", "settings_from"]


def settings_from(
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    *,
    api_key: str | list[str] | None = None,
    basic_auth: str | tuple[str, str] | None = None,
    max_content_length: str | int = "100mb",
    workers: int = 32,
    access_log: bool = False,
    log_level: str = "warning",
    allowed_hosts: str | list[str] | None = None,
) -> ServerSettings:
    """Validated :class:`ServerSettings` from the user-facing arguments."""
    if not 0 <= int(port) <= 65535:
        raise ValueError(f"port must be between 0 and 65535, got [{port}]")
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got [{workers}]")
    hosts = HostPolicy.build(host, allowed_hosts).hosts if allowed_hosts is not None else None
    return ServerSettings(
        host=host,
        port=int(port),
        credentials=Credentials.build(api_key, basic_auth),
        max_content_length=parse_byte_size(max_content_length),
        workers=workers,
        access_log=access_log,
        log_level=log_level,
        allowed_hosts=hosts,
    )


def serve(
    engine: "Engine | None" = None,
    port: int = DEFAULT_PORT,
    host: str = DEFAULT_HOST,
    *,
    api_key: str | list[str] | None = None,
    basic_auth: str | tuple[str, str] | None = None,
    max_content_length: str | int = "100mb",
    workers: int = 32,
    quiet: bool = False,
    allowed_hosts: str | list[str] | None = None,
) -> ServerHandle:
    """Serve ``engine`` (default: :func:`~es_infer_nb.default_engine`) over HTTP in a background thread.

    ``port=0`` picks a free port; the handle's ``.url`` says which. Binding anything but a
    loopback address needs ``api_key=`` (the encoded key or ``"id:key"``) or
    ``basic_auth=("user", "password")``. Concurrent ``_infer`` calls on one deployed model
    are gathered by the deployment's queue into shared model batches. ``handle.stop()`` finishes requests in flight and
    flushes the engine's state; the handle is also a context manager.

    Requests must name this server in ``Host`` (and ``Origin``, when sent): by default the
    loopback names (``localhost``, ``127.0.0.1``, ``[::1]``) and the bound address; others get
    a 403 (DNS-rebinding protection). ``allowed_hosts`` ("a,b" or a list; ``"*"``: any) replaces
    that list.
    """
    settings = settings_from(host, port, api_key=api_key, basic_auth=basic_auth, max_content_length=max_content_length,
                             workers=workers, allowed_hosts=allowed_hosts)
    handle = start_background(engine, settings)
    if not quiet:
        print(f"es-infer: serving on {handle.url}; {settings.security_line()}", file=sys.stderr, flush=True)
    return handle
