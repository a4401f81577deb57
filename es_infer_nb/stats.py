"""Counters behind every ``_stats`` answer.

One :class:`InferenceStats` per model id, moved by every inference from any entry
point (``_infer``, ``df.infer``, pipelines). Thread-safe.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .storage import atomic_write_json


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


@dataclass
class IngestCounters:
    """``IngestStats.Stats``: documents through a pipeline or a processor."""

    count: int = 0
    time_nanos: int = 0
    current: int = 0
    failed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"count": self.count, "time_in_millis": self.time_nanos // 1_000_000, "current": self.current,
                "failed": self.failed}

    def add(self, other: "IngestCounters") -> None:
        self.count += other.count
        self.time_nanos += other.time_nanos
        self.current += other.current
        self.failed += other.failed


class StatsRegistry:
    """Inference counters per model (persisted under the engine's home, as ES persists them) and
    ingest counters per stored pipeline and processor (node-level in ES: kept in memory)."""

    #: persisted inference counters are written at most this often (and on flush / exit)
    SAVE_INTERVAL_S = 1.0

    def __init__(self, home: Path | None = None) -> None:
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()  # snapshots are written in the order they are taken
        self._models: dict[str, InferenceStats] = {}
        self._file = home / "stats" / "inference_stats.json" if home is not None else None
        self._dirty = False
        self._saved_at = 0.0
        if self._file is not None and self._file.is_file():
            with open(self._file, encoding="utf-8") as fh:
                for model_id, values in json.load(fh).items():
                    self._models[model_id] = InferenceStats(**values)
        # stored pipeline id -> counters; (pipeline id, processor name) -> counters
        self._pipelines: dict[str, IngestCounters] = {}
        self._processors: dict[tuple[str, str], IngestCounters] = {}

    def _ingest_counters(self, pipeline_id: str, processor: str | None) -> IngestCounters:
        if processor is None:
            return self._pipelines.setdefault(pipeline_id, IngestCounters())
        return self._processors.setdefault((pipeline_id, processor), IngestCounters())

    def begin_ingest(self, pipeline_id: str, processor: str | None, count: int) -> None:
        """``count`` documents enter a stored pipeline or one of its processors (``current`` goes up, as
        ``IngestMetric.preIngest``); :meth:`record_ingest` with ``leaving=count`` takes them out again."""
        with self._lock:
            self._ingest_counters(pipeline_id, processor).current += count

    def record_ingest(self, pipeline_id: str, processor: str | None, *, count: int, nanos: int, failed: int,
                      leaving: int = 0) -> None:
        """Documents through a stored pipeline (``processor`` None) or one of its processors (``type[:tag]``);
        ``leaving`` of them were counted in flight by :meth:`begin_ingest` (``IngestMetric.postIngest``)."""
        with self._lock:
            c = self._ingest_counters(pipeline_id, processor)
            c.count += count
            c.time_nanos += nanos
            c.failed += failed
            c.current -= leaving

    def pipeline_counters(self, pipeline_id: str) -> IngestCounters:
        with self._lock:
            return IngestCounters(**vars(self._pipelines.get(pipeline_id, IngestCounters())))

    def processor_counters(self, pipeline_id: str, processor: str) -> IngestCounters:
        with self._lock:
            return IngestCounters(**vars(self._processors.get((pipeline_id, processor), IngestCounters())))

    def forget_pipeline(self, pipeline_id: str) -> None:
        with self._lock:
            self._pipelines.pop(pipeline_id, None)
            for key in [k for k in self._processors if k[0] == pipeline_id]:
                del self._processors[key]

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
            self._dirty = True
            due = time.monotonic() - self._saved_at >= self.SAVE_INTERVAL_S
        if due:
            self.flush(wait=False)  # a flush already writing (fsync) is not waited for: it stays dirty

    def forget(self, model_id: str) -> None:
        with self._lock:
            self._models.pop(model_id, None)
            self._dirty = True
        self.flush()

    def flush(self, *, wait: bool = True) -> None:
        """Write the inference counters to the engine's home (atomically), if they changed; without
        ``wait``, nothing when another flush is writing now (the counters stay dirty for the next)."""
        if self._file is None:
            return
        if not self._flush_lock.acquire(blocking=wait):
            return
        try:
            with self._lock:
                if not self._dirty:
                    return
                snapshot = {m: vars(s).copy() for m, s in self._models.items()}
                self._dirty = False
                self._saved_at = time.monotonic()
            atomic_write_json(self._file, snapshot)
        finally:
            self._flush_lock.release()


# -- deployment counters (pytorch models; ES: the native process's ``ResultStats`` per node) ---------


MINUTE_MS = 60_000


@dataclass
class _Period:
    """Counters of one wall-clock minute (ES's "last minute" period)."""

    minute: int
    inference_count: int = 0
    time_ms: float = 0.0
    cache_hits: int = 0


class DeploymentCounters:
    """What ``deployment_stats.nodes[*]`` reports for one deployment on the local node.

    Averages follow ES: ``average_inference_time_ms`` over every inference (cache hits included,
    at the time they took), ``*_excluding_cache_hits`` over the model calls only, ``*_last_minute``
    over the current minute. ``peak_throughput_per_minute`` is the largest per-minute count seen.
    Thread-safe; times are in milliseconds.
    """

    def __init__(self, clock: Any = None) -> None:
        self._lock = threading.Lock()
        self._clock = clock or now_millis
        self.inference_count = 0
        self.error_count = 0
        self.rejected_execution_count = 0
        self.timeout_count = 0
        self.cache_hit_count = 0
        self.pending = 0
        self.total_time_ms = 0.0
        self.time_excluding_cache_hits_ms = 0.0
        self.peak_throughput = 0
        self.last_access: int | None = None
        self._period = _Period(self._clock() // MINUTE_MS)

    def _current(self, now: int) -> _Period:
        minute = now // MINUTE_MS
        if self._period.minute != minute:
            self._period = _Period(minute)
        return self._period

    def record(self, *, inferences: int, time_ms: float, cache_hits: int = 0, hit_time_ms: float = 0.0,
               errors: int = 0) -> None:
        """``inferences`` documents answered (``cache_hits`` of them from the cache), ``errors`` failed."""
        now = self._clock()
        with self._lock:
            period = self._current(now)
            self.inference_count += inferences
            self.error_count += errors
            self.cache_hit_count += cache_hits
            self.total_time_ms += time_ms + hit_time_ms
            self.time_excluding_cache_hits_ms += time_ms
            period.inference_count += inferences
            period.time_ms += time_ms + hit_time_ms
            period.cache_hits += cache_hits
            self.peak_throughput = max(self.peak_throughput, period.inference_count)
            if inferences:
                self.last_access = now

    def add_pending(self, count: int) -> None:
        """Documents entering (``count`` > 0) or leaving (< 0) the deployment's queue."""
        with self._lock:
            self.pending += count

    def record_rejected(self, count: int) -> None:
        with self._lock:
            self.rejected_execution_count += count

    def record_timeout(self, count: int = 1) -> None:
        with self._lock:
            self.timeout_count += count

    def node_fields(self) -> dict[str, Any]:
        """The counter fields of ``AssignmentStats.NodeStats`` (in ES's order and emission rules)."""
        now = self._clock()
        with self._lock:
            period = self._current(now)
            out: dict[str, Any] = {"inference_count": self.inference_count}
            if self.inference_count > 0:
                out["average_inference_time_ms"] = self.total_time_ms / self.inference_count
                misses = self.inference_count - self.cache_hit_count
                out["average_inference_time_ms_excluding_cache_hits"] = (
                    self.time_excluding_cache_hits_ms / misses if misses > 0 else 0.0)
            out["inference_cache_hit_count"] = self.cache_hit_count
            if self.last_access is not None:
                out["last_access"] = self.last_access
            out["number_of_pending_requests"] = self.pending
            if self.error_count > 0:
                out["error_count"] = self.error_count
            if self.rejected_execution_count > 0:
                out["rejected_execution_count"] = self.rejected_execution_count
            if self.timeout_count > 0:
                out["timeout_count"] = self.timeout_count
            last = {
                "throughput_last_minute": period.inference_count,
                "average_inference_time_ms_last_minute": (
                    period.time_ms / period.inference_count if period.inference_count else 0.0),
                "inference_cache_hit_count_last_minute": period.cache_hits,
            }
            return {**out, "peak_throughput_per_minute": self.peak_throughput, **last}
