"""``NlpHelpers``: softmax and top-k as Elasticsearch computes them (float64), and text offsets as Java counts them."""

from __future__ import annotations

from typing import Callable

import numpy as np


def softmax(values: np.ndarray | list[float]) -> np.ndarray:
    """Softmax along the last axis (``convertToProbabilitiesBySoftMax``: max-shifted exp over the sum)."""
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:  # nothing to normalise: ES gives the empty rows back
        return x.copy()
    shifted = np.exp(x - np.max(x, axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def top_k(k: int, values: np.ndarray | list[float]) -> list[tuple[float, int]]:
    """The ``k`` largest ``(score, index)`` pairs, best first; ties keep the lower index first.
    ``k`` larger than the input gives every value."""
    x = np.asarray(values, dtype=np.float64)
    order = np.argsort(-x, kind="stable")[: max(0, min(k, x.shape[0]))]
    return [(float(x[i]), int(i)) for i in order]


def order_desc(values: np.ndarray) -> list[int]:
    """Indices sorted by value, descending, stable (``Comparator.comparing(...).reversed()``)."""
    return [int(i) for i in np.argsort(-np.asarray(values, dtype=np.float64), kind="stable")]


def java_offset(text: str) -> Callable[[int], int]:
    """Maps an index into ``text`` (code points, as Python counts) to the index ES reports: Java counts
    a string in UTF-16 units, so every character past U+FFFF (an emoji) before it counts twice."""
    if not text or max(text) <= "\uffff":
        return _same
    extra = np.cumsum([0] + [1 if ord(ch) > 0xFFFF else 0 for ch in text])
    return lambda index: index + int(extra[min(max(index, 0), len(text))])


def _same(index: int) -> int:
    return index
