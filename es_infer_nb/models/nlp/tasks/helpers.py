"""``NlpHelpers``: softmax and top-k as Elasticsearch computes them (float64)."""

from __future__ import annotations

import numpy as np


def softmax(values: np.ndarray | list[float]) -> np.ndarray:
    """Softmax along the last axis (``convertToProbabilitiesBySoftMax``: max-shifted exp over the sum)."""
    x = np.asarray(values, dtype=np.float64)
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
