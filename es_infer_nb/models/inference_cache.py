"""The per-deployment inference cache: LRU over (input, config), bounded in bytes (``cache_size``).

As in the ES native process, a hit answers without calling the model; only successful results
are cached. Entry sizes are estimates of the memory a result takes (8 bytes per number,
the UTF-8 length plus a header per string, a header per list / object), plus the key.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Hashable

_HEADER = 16


def estimate_bytes(value: Any) -> int:
    if isinstance(value, str):
        return _HEADER + len(value.encode("utf-8", "surrogatepass"))  # a lone surrogate is 3 bytes, as in Java
    if isinstance(value, (bool, int, float)) or value is None:
        return 8
    if isinstance(value, dict):
        return _HEADER + sum(estimate_bytes(k) + estimate_bytes(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        if value and type(value[0]) is float and type(value[-1]) is float:  # a vector: 8 bytes a number
            return _HEADER + 8 * len(value)
        return _HEADER + sum(estimate_bytes(v) for v in value)
    return _HEADER + len(repr(value))


class InferenceCache:
    """A least-recently-used map bounded by ``capacity_bytes`` (0 disables it)."""

    def __init__(self, capacity_bytes: int) -> None:
        self.capacity_bytes = max(0, int(capacity_bytes))
        self._items: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.capacity_bytes > 0

    @property
    def bytes_used(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: Hashable) -> Any:
        with self._lock:
            entry = self._items.get(key)
            if entry is None:
                return None
            self._items.move_to_end(key)
            return entry[0]

    def put(self, key: Hashable, value: Any, key_bytes: int) -> None:
        size = key_bytes + estimate_bytes(value)
        if not self.enabled or size > self.capacity_bytes:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
            while self._items and self._bytes + size > self.capacity_bytes:
                _, (_, evicted) = self._items.popitem(last=False)
                self._bytes -= evicted
            self._items[key] = (value, size)
            self._bytes += size

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0
