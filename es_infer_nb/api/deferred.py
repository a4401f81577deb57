"""Answers finished after the handler returned.

A handler that must wait for something other callers feed as well (a deployment's inference
queue, which gathers concurrent ``_infer`` calls into one model call) queues its work and returns
a :class:`Deferred`; :meth:`Engine.request` resolves it after the dispatch (and any state lock the
route held), so other requests get in meanwhile and their documents can join the same batch."""

from __future__ import annotations

from typing import Any, Callable


class Deferred:
    """An answer body still being computed elsewhere; ``resolve()`` waits for it (may raise ApiError)."""

    __slots__ = ("_resolve",)

    def __init__(self, resolve: Callable[[], Any]) -> None:
        self._resolve = resolve

    def resolve(self) -> Any:
        return self._resolve()
