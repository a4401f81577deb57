"""The one routing table: (method, path pattern) -> handler.

Patterns are ``/``-separated; a ``{name}`` segment captures one path segment.
When several patterns match, the one with the most literal segments wins, as
Elasticsearch's path trie prefers literal nodes over wildcards.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, Callable
from urllib.parse import unquote

from ..errors import ApiError
from .request import Request

if TYPE_CHECKING:  # pragma: no cover
    from ..engine import Engine

Handler = Callable[["Engine", Request], Any]

#: parameters every Elasticsearch endpoint accepts
COMMON_PARAMS = frozenset({"pretty", "human", "error_trace", "filter_path", "format", "timeout", "master_timeout"})


@dataclass(frozen=True)
class Route:
    method: str
    pattern: str
    handler: Handler
    params: frozenset[str] = field(default_factory=frozenset)
    #: the handler runs holding the engine's state lock (a short read or write of the state); a
    #: handler that does work (model calls, remote calls, pipelines, model loads) is registered with
    #: ``exclusive=False`` and takes the lock itself around the state it reads or changes
    exclusive: bool = True

    @cached_property
    def segments(self) -> tuple[str, ...]:
        return tuple(s for s in self.pattern.strip("/").split("/") if s)

    def match(self, segments: list[str]) -> dict[str, str] | None:
        mine = self.segments
        if len(mine) != len(segments):
            return None
        captured: dict[str, str] = {}
        for pat, seg in zip(mine, segments):
            if pat.startswith("{") and pat.endswith("}"):
                if not seg:
                    return None
                captured[pat[1:-1]] = unquote(seg)
            elif pat != seg:
                return None
        return captured

    @cached_property
    def literal_count(self) -> int:
        return sum(1 for s in self.segments if not s.startswith("{"))


def route(method: str, pattern: str, *params: str, exclusive: bool = True) -> Callable[[Handler], Handler]:
    """Decorator used by the ``api`` modules to register a handler in :data:`ROUTES`
    (``exclusive=False``: the handler runs without the engine's state lock, see :class:`Route`)."""

    def deco(fn: Handler) -> Handler:
        ROUTES.append(Route(method.upper(), pattern, fn, frozenset(params), exclusive))
        return fn

    return deco


ROUTES: list[Route] = []


def resolve(method: str, raw_path: str, uri: str | None = None) -> tuple[Route, dict[str, str]]:
    """Find the route for ``method`` and ``raw_path`` (no query string).

    ``uri`` is the request URI as sent (with its query string), used in ES's messages for
    an unknown route (400, ``{"error": "no handler found ..."}``) or a wrong method (405).
    """
    segments = [s for s in raw_path.strip("/").split("/")]
    if segments == [""]:
        segments = []
    best: tuple[Route, dict[str, str]] | None = None
    allowed: set[str] = set()
    for r in ROUTES:
        captured = r.match(segments)
        if captured is None:
            continue
        if r.method != method and not (method == "HEAD" and r.method == "GET"):
            allowed.add(r.method)
            continue
        if best is None or r.literal_count > best[0].literal_count:
            best = (r, captured)
    uri = uri or "/" + raw_path.strip("/")
    if best is not None:
        return best
    if allowed:
        if "GET" in allowed:
            allowed.add("HEAD")
        names = sorted(allowed)
        raise ApiError(
            "method_not_allowed",
            f"Incorrect HTTP method for uri [{uri}] and method [{method}], allowed: [{', '.join(names)}]",
            405,
            headers={"Allow": ",".join(names)},
            simple=True,
        )
    raise ApiError("no_handler_found", f"no handler found for uri [{uri}] and method [{method}]", 400, simple=True)
