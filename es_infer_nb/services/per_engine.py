"""One object per :class:`~es_infer_nb.Engine`, made on first use and dropped with the engine."""

from __future__ import annotations

import threading
import weakref
from typing import TYPE_CHECKING, Callable, Generic, TypeVar

if TYPE_CHECKING:  # pragma: no cover
    from ..engine import Engine

T = TypeVar("T")


class PerEngine(Generic[T]):
    """``get(engine)``: the engine's ``factory(engine)``, made once (thread-safe), held weakly by engine."""

    def __init__(self, factory: Callable[["Engine"], T]) -> None:
        self._factory = factory
        self._made: "weakref.WeakKeyDictionary[Engine, T]" = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def get(self, engine: "Engine") -> T:
        with self._lock:
            found = self._made.get(engine)
            if found is None:
                found = self._made[engine] = self._factory(engine)
            return found
