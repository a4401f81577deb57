"""Java's ``String.hashCode`` and the iteration order of a ``java.util.HashMap`` of strings.

ES and ml-commons collect names into ``HashMap`` objects in several places (feature importances,
processor inputs) and list them in its iteration order; reproducing that order needs the hash.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any


def string_hash(text: str) -> int:
    """``String.hashCode`` (over UTF-16 code units, wrapping at 32 bits) as a signed Java int."""
    h = 0
    data = text.encode("utf-16-be", "surrogatepass")
    for i in range(0, len(data), 2):
        h = (31 * h + (data[i] << 8 | data[i + 1])) & 0xFFFFFFFF
    return h - (1 << 32) if h >= 1 << 31 else h


def key_text(key: Any) -> str:
    """A map key as the JSON text would name it: a key only the Python API can give (a number, a boolean,
    ``None``) as ``json.dumps`` writes it (``1``, ``true``, ``null``)."""
    if isinstance(key, str):
        return key
    if key is None or isinstance(key, (bool, int, float)):
        return json.dumps(key)
    return str(key)


def hashmap_order(keys: Iterable[str], *, copied: bool = False) -> list[str]:
    """Iteration order of a ``new HashMap<String, ?>()`` the keys were put into in this order: by
    bucket (``spread(hash) & (capacity - 1)``, the capacity doubling from 16 past 3/4 full), then by
    insertion within a bucket. ``copied``: a ``new HashMap<>(map)`` of them instead, sized for them
    (``tableSizeFor(ceil(size / 0.75))``, JDK 19 and later)."""
    distinct = list(dict.fromkeys(keys))
    cap = 16
    if copied:
        cap = 1
        while cap < -(-len(distinct) * 4 // 3):
            cap <<= 1
    while len(distinct) > cap * 3 // 4:
        cap <<= 1

    def bucket(key: str) -> int:
        h = string_hash(key_text(key)) & 0xFFFFFFFF
        return (h ^ (h >> 16)) & (cap - 1)

    return [k for _, _, k in sorted((bucket(k), i, k) for i, k in enumerate(distinct))]
