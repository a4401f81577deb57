"""Fixtures: real HTTP model services on 127.0.0.1 (see :mod:`endpoint_servers`), one per test session."""

from __future__ import annotations

import pytest
from endpoint_servers import Router

from es_infer_nb import Engine
from es_infer_nb.services.loopback import LoopbackServer, Received


@pytest.fixture(scope="session")
def router() -> Router:
    return Router()


@pytest.fixture(scope="session")
def model_server(router: Router):
    def handle(req: Received):
        if req.path.startswith("/echo-auth"):
            return 401, {"error": {"message": f"invalid key [{req.headers.get('Authorization')}] "
                                              f"body {req.body.decode()}"}}
        return router(req)

    with LoopbackServer(handle) as server:
        yield server


@pytest.fixture
def engine() -> Engine:
    return Engine()
