"""Fixtures: a server started on a free 127.0.0.1 port per test, always stopped afterwards."""

from __future__ import annotations

import threading
from typing import Iterator

import pytest

from es_infer_nb import Engine
from es_infer_nb.server import ServerHandle, serve


@pytest.fixture
def server(engine: Engine) -> Iterator[ServerHandle]:
    handle = serve(engine, port=0, quiet=True)
    try:
        yield handle
    finally:
        handle.stop()
    assert not handle.running


@pytest.fixture
def es(server: ServerHandle):
    from elasticsearch import Elasticsearch

    client = Elasticsearch(server.url, request_timeout=30)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture(autouse=True)
def _no_server_threads_left() -> Iterator[None]:
    yield
    left = [t.name for t in threading.enumerate() if t.name.startswith("es-infer-server")]
    assert not left, f"servers still running: {left}"
