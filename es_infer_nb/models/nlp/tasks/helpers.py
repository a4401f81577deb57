"""``NlpHelpers``: softmax and top-k as Elasticsearch computes them (float64), and text offsets as Java counts them."""

from __future__ import annotations

from typing import Callable

import numpy as np


def softmax(values: np.ndarray | list[float]) -> np.ndarray:
    """Softmax along the last axis (``convertToProbabilitiesBySoftMax``: max-shifted exp over the sum, the sum
    taken in order as Java adds it)."""
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:  # nothing to normalise: ES gives the empty rows back
        return x.copy()
    shifted = np.exp(x - np.max(x, axis=-1, keepdims=True))
    return shifted / np.cumsum(shifted, axis=-1)[..., -1:]


def top_k(k: int, values: np.ndarray | list[float]) -> list[tuple[float, int]]:
    """The ``k`` largest ``(score, index)`` pairs, best first, as ``NlpHelpers.topK`` picks and orders them;
    ``k`` larger than the input gives every value. Without ties among the best values that is a descending
    sort; with ties, ES's min-heap decides which tied entries stay and in which order they come out."""
    x = np.asarray(values, dtype=np.float64).reshape(-1)
    k = min(k, x.shape[0])
    if k <= 0:
        return []
    order = np.argsort(-x, kind="stable")[:k]
    contenders = x[x >= x[order[-1]]]
    if np.unique(contenders).size == contenders.size:
        return [(float(x[i]), int(i)) for i in order]
    return _heap_top_k(k, x)


def _heap_top_k(k: int, x: np.ndarray) -> list[tuple[float, int]]:
    """``NlpHelpers.topK`` step by step: a ``java.util.PriorityQueue`` of the first ``k`` values, a later value
    replacing the smallest only when strictly larger, then polled smallest first into the result's tail."""
    heap = JavaMinHeap()
    for i in range(k):
        heap.add(float(x[i]), i)
    floor = heap.peek()
    for i in (np.nonzero(x[k:] > floor)[0] + k).tolist():
        if x[i] > floor:
            heap.poll()
            heap.add(float(x[i]), i)
            floor = heap.peek()
    return [heap.poll() for _ in range(k)][::-1]


class JavaMinHeap:
    """``java.util.PriorityQueue`` ordered by score only (``Comparator.comparingDouble``): its sift-up and
    sift-down, so equal scores leave in the order Java's heap gives them."""

    def __init__(self) -> None:
        self.items: list[tuple[float, int]] = []

    def peek(self) -> float:
        return self.items[0][0]

    def add(self, score: float, index: int) -> None:
        items = self.items
        items.append((score, index))
        k = len(items) - 1
        while k > 0:
            parent = (k - 1) >> 1
            if score >= items[parent][0]:
                break
            items[k] = items[parent]
            k = parent
        items[k] = (score, index)

    def poll(self) -> tuple[float, int]:
        items = self.items
        result = items[0]
        last = items.pop()
        n = len(items)
        if n:
            k = 0
            while k < n >> 1:
                child = 2 * k + 1
                if child + 1 < n and items[child][0] > items[child + 1][0]:
                    child += 1
                if last[0] <= items[child][0]:
                    break
                items[k] = items[child]
                k = child
            items[k] = last
        return result


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
