"""``GET /``: the cluster info a node answers (main action), registered in the routing table.

The ``cluster_uuid`` is stable per engine home (kept in ``<home>/cluster_uuid``) and per
in-memory engine; it has ES's form (22 characters of URL-safe base64).
"""

from __future__ import annotations

import base64
import socket
import threading
import uuid
from typing import TYPE_CHECKING, Any

from ..api.request import Request
from ..api.routing import ROUTES, route
from ..storage import atomic_write_text, quarantine, writing

if TYPE_CHECKING:  # pragma: no cover
    from ..engine import Engine

VERSION = {
    "number": "9.1.0",
    "build_flavor": "default",
    "build_type": "tar",
    "build_hash": "es-infer-nb",
    "build_date": "2025-07-24T00:00:00.000000000Z",
    "build_snapshot": False,
    "lucene_version": "10.2.2",
    "minimum_wire_compatibility_version": "8.19.0",
    "minimum_index_compatibility_version": "8.0.0",
}
CLUSTER_NAME = "elasticsearch"
TAGLINE = "You Know, for Search"
UUID_FILE = "cluster_uuid"
_UUID_LOCK = threading.Lock()


def _new_uuid() -> str:
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode("ascii").rstrip("=")


def _valid_uuid(text: str) -> bool:
    return len(text) == 22 and all(c.isalnum() or c in "-_" for c in text)


def cluster_uuid(engine: "Engine") -> str:
    """The engine's cluster UUID, created on first use and kept under its home (an unreadable file is
    moved aside, ``cluster_uuid.corrupt``, and a new UUID made)."""
    known = getattr(engine, "_cluster_uuid", None)
    if known:
        return known
    with _UUID_LOCK:  # GET / runs without the engine's state lock: one uuid even for concurrent first calls
        known = getattr(engine, "_cluster_uuid", None)
        return known or _create_uuid(engine)


def _create_uuid(engine: "Engine") -> str:
    value = None
    if engine.home is not None:
        path = engine.home / UUID_FILE
        with writing(engine.home):  # two engines starting together agree on one UUID
            if path.is_file():
                try:
                    value = path.read_text(encoding="utf-8").strip()
                except (OSError, UnicodeDecodeError):
                    value = ""
                if not _valid_uuid(value):
                    quarantine(path, engine.home, "not a cluster UUID")
                    value = None
            if value is None:
                value = _new_uuid()
                atomic_write_text(path, value)
    engine._cluster_uuid = value or _new_uuid()  # type: ignore[attr-defined]
    return engine._cluster_uuid  # type: ignore[attr-defined]


def cluster_info(engine: "Engine") -> dict[str, Any]:
    return {
        "name": socket.gethostname() or "es-infer-nb",
        "cluster_name": CLUSTER_NAME,
        "cluster_uuid": cluster_uuid(engine),
        "version": dict(VERSION),
        "tagline": TAGLINE,
    }


def register() -> None:
    """Add ``GET /`` to the routing table once (HEAD / is answered by the GET route)."""
    if any(r.method == "GET" and not r.segments for r in ROUTES):
        return

    @route("GET", "/", exclusive=False)
    def _main(engine: "Engine", req: Request) -> Any:
        return cluster_info(engine)


register()
