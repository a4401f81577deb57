"""Counters behind every ``_stats`` answer.

One :class:`InferenceStats` per model id, moved by every inference from any entry
point (``_infer``, ``df.infer``, pipelines). Thread-safe.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any


def now_millis() -> int:
    return int(time.time() * 1000)


@dataclass
class InferenceStats:
    inference_count: int = 0
    failure_count: int = 0
    cache_miss_count: int = 0
    missing_all_fields_count: int = 0
    timestamp: int = field(default_factory=now_millis)

    def to_dict(self) -> dict[str, Any]:
        return {
            "failure_count": self.failure_count,
            "inference_count": self.inference_count,
            "cache_miss_count": self.cache_miss_count,
            "missing_all_fields_count": self.missing_all_fields_count,
            "timestamp": self.timestamp,
        }


class StatsRegistry:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._models: dict[str, InferenceStats] = {}

    def for_model(self, model_id: str) -> InferenceStats:
        with self._lock:
            return self._models.setdefault(model_id, InferenceStats())

    def record(
        self,
        model_id: str,
        *,
        inferences: int = 0,
        failures: int = 0,
        missing_all_fields: int = 0,
        cache_misses: int = 0,
    ) -> None:
        with self._lock:
            s = self._models.setdefault(model_id, InferenceStats())
            s.inference_count += inferences
            s.failure_count += failures
            s.missing_all_fields_count += missing_all_fields
            s.cache_miss_count += cache_misses
            s.timestamp = now_millis()

    def forget(self, model_id: str) -> None:
        with self._lock:
            self._models.pop(model_id, None)
