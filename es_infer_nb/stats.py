"""Counters behind every ``_stats`` answer.

One :class:`InferenceStats` per model id, moved by every inference from any entry
point (``_infer``, ``df.infer``, pipelines). Thread-safe.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .storage import atomic_write_json, load_state_file, stamp, writing

log = logging.getLogger("es_infer_nb.stats")


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


#: persisted fields of :class:`InferenceStats`: summed across engines, and the one kept at its largest
_MODEL_SUMS = ("inference_count", "failure_count", "cache_miss_count", "missing_all_fields_count")
_MODEL_MAX = ("timestamp",)
#: persisted fields of :class:`DeploymentCounters`
_DEPLOYMENT_SUMS = ("inference_count", "error_count", "rejected_execution_count", "timeout_count", "cache_hit_count",
                    "total_time_ms", "time_excluding_cache_hits_ms")
_DEPLOYMENT_MAX = ("peak_throughput", "last_access")


def _numbers(raw: Any, sums: tuple[str, ...], maxed: tuple[str, ...]) -> dict[str, Any] | None:
    """One persisted entry, or None when it is not one (a garbage entry is dropped, not fatal)."""
    if not isinstance(raw, dict):
        return None
    out: dict[str, Any] = {}
    for name in (*sums, *maxed):
        value = raw.get(name, 0 if name in sums else None)
        if value is None and name in maxed:
            out[name] = None
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[name] = value
        else:
            return None
    return out


class _CounterFile:
    """Counters per key in one JSON file under the home, shared by every engine on that home: each
    engine adds what it counted since its last merge (a delta) under the home's lock, so two engines
    never overwrite each other's counts."""

    def __init__(self, home: Path, name: str, sums: tuple[str, ...], maxed: tuple[str, ...]) -> None:
        self.home = home
        self.path = home / "stats" / name
        self.sums = sums
        self.maxed = maxed
        self.synced: dict[str, dict[str, Any]] = {}  # what the file held at this engine's last merge
        self.forgotten: set[str] = set()
        self.stamp: tuple[int, int, int] | None = None

    def read(self) -> dict[str, dict[str, Any]]:
        raw = load_state_file(self.path, self.home, lambda v: isinstance(v, dict), default={})
        self.stamp = stamp(self.path)
        out = {}
        for key, entry in raw.items():
            numbers = _numbers(entry, self.sums, self.maxed)
            if numbers is not None:
                out[key] = numbers
        return out

    def changed(self) -> bool:
        return stamp(self.path) != self.stamp

    def merge(self, taken: dict[str, dict[str, Any]], forgotten: set[str]) -> dict[str, dict[str, Any]]:
        """Add ``taken - synced`` to the file and drop ``forgotten`` (under the home's lock); returns what
        the file holds now."""
        with writing(self.home):
            disk = self.read()
            write = False
            for key in forgotten:
                write |= disk.pop(key, None) is not None
            for key, values in taken.items():
                base = self.synced.get(key)
                entry = disk.get(key)
                if entry is None:
                    entry = {n: 0 for n in self.sums} | {n: None for n in self.maxed}
                for n in self.sums:
                    delta = values[n] - (base[n] if base else 0)
                    if delta:
                        entry[n] += delta
                        write = True
                for n in self.maxed:
                    if values[n] is not None and (entry[n] is None or values[n] > entry[n]):
                        entry[n] = values[n]
                        write = True
                if key in disk or any(entry[n] for n in self.sums):
                    disk[key] = entry
            if write:
                atomic_write_json(self.path, disk)
                self.stamp = stamp(self.path)
        self.synced = {k: dict(v) for k, v in disk.items()}
        return disk


def _adopt(current: dict[str, Any], taken: dict[str, Any] | None, merged: dict[str, Any] | None,
           sums: tuple[str, ...], maxed: tuple[str, ...]) -> dict[str, Any]:
    """The new local totals: the merged file plus what was counted here since ``taken`` was read."""
    out = {}
    for n in sums:
        out[n] = (merged[n] if merged else 0) + current[n] - (taken[n] if taken else 0)
    for n in maxed:
        values = [v for v in (current[n], merged[n] if merged else None) if v is not None]
        out[n] = max(values) if values else None
    return out


class StatsRegistry:
    """Inference counters per model and per deployment (persisted under the engine's home, as ES
    persists them; merged with the other engines of that home) and ingest counters per stored
    pipeline and processor (node-level in ES: kept in memory)."""

    #: persisted counters are written at most this often (and on flush / close / exit)
    SAVE_INTERVAL_S = 1.0

    def __init__(self, home: Path | None = None) -> None:
        self._lock = threading.Lock()
        self._flush_lock = threading.RLock()  # one save at a time (each adds what it took since the last)
        self._models: dict[str, InferenceStats] = {}
        self._deployments: dict[str, DeploymentCounters] = {}
        self._model_file = _CounterFile(home, "inference_stats.json", _MODEL_SUMS, _MODEL_MAX) if home else None
        self._deployment_file = (_CounterFile(home, "deployment_stats.json", _DEPLOYMENT_SUMS, _DEPLOYMENT_MAX)
                                 if home else None)
        self._dirty = False
        self._timer: threading.Timer | None = None
        if self._model_file is not None:
            for model_id, values in self._model_file.read().items():
                self._models[model_id] = InferenceStats(**values)
            self._model_file.synced = {m: vars(s).copy() for m, s in self._models.items()}
        if self._deployment_file is not None:
            self._deployment_file.synced = self._deployment_file.read()
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

    def counters(self) -> tuple[dict[str, InferenceStats], dict[str, IngestCounters],
                                dict[tuple[str, str], IngestCounters]]:
        """Copies of every model's, pipeline's and (pipeline, processor)'s counters, read at one moment
        (this engine's own counts, as :func:`es_infer_nb.frames.counters.snapshot` takes them)."""
        with self._lock:
            return ({m: InferenceStats(**vars(s)) for m, s in self._models.items()},
                    {p: IngestCounters(**vars(c)) for p, c in self._pipelines.items()},
                    {k: IngestCounters(**vars(c)) for k, c in self._processors.items()})

    def forget_pipeline(self, pipeline_id: str) -> None:
        with self._lock:
            self._pipelines.pop(pipeline_id, None)
            for key in [k for k in self._processors if k[0] == pipeline_id]:
                del self._processors[key]

    def for_model(self, model_id: str) -> InferenceStats:
        """The model's counters, with what the other engines of the home counted until their last save."""
        self._read_through()
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
        self._changed()

    def forget(self, model_id: str) -> None:
        self._forget(self._models, self._model_file, model_id)

    # -- deployments -------------------------------------------------------------------------------------
    def deployment_counters(self, deployment_id: str) -> "DeploymentCounters":
        """The counters of a started deployment: what was saved for it under the home, counted on."""
        with self._lock:
            found = self._deployments.get(deployment_id)
            if found is None:
                found = self._deployments[deployment_id] = DeploymentCounters(on_record=self._changed)
                saved = self._deployment_file.synced.get(deployment_id) if self._deployment_file else None
                if saved is not None:
                    found.restore(saved)
            return found

    def forget_deployment(self, deployment_id: str) -> None:
        """A stopped deployment: its counters go (a new start counts from zero, as in ES)."""
        self._forget(self._deployments, self._deployment_file, deployment_id)

    def _forget(self, counters: dict[str, Any], file: _CounterFile | None, key: str) -> None:
        """Drop ``key``'s counters here and, at the next flush (run now), from ``file``."""
        with self._flush_lock:
            with self._lock:
                counters.pop(key, None)
                if file is not None:
                    file.forgotten.add(key)
                    file.synced.pop(key, None)
                self._dirty = True
            self.flush()

    # -- persistence -------------------------------------------------------------------------------------
    def _changed(self) -> None:
        """Counters moved: save them within :attr:`SAVE_INTERVAL_S` (a timer, off the caller's path)."""
        if self._model_file is None:
            return
        with self._lock:
            self._dirty = True
            if self._timer is not None:
                return
            self._timer = threading.Timer(self.SAVE_INTERVAL_S, self._timed_flush)
            self._timer.daemon = True
        self._timer.start()

    def _timed_flush(self) -> None:
        with self._lock:
            self._timer = None
        try:
            self.flush()
        except Exception as exc:  # noqa: BLE001 - a failed background save is retried at the next one
            log.warning("es_infer_nb: could not save the inference counters: %s", exc)

    def _read_through(self) -> None:
        files = (self._model_file, self._deployment_file)
        if any(f is not None and f.changed() for f in files):
            self.flush(force=True)

    def flush(self, *, force: bool = False) -> None:
        """Add the counters counted since the last save to the engine's home (under its lock, so the
        other engines' counts are kept) and take theirs in."""
        if self._model_file is None or self._deployment_file is None:
            return
        with self._flush_lock:
            self._save(force)

    def _save(self, force: bool) -> None:
        assert self._model_file is not None and self._deployment_file is not None
        with self._lock:
            if not self._dirty and not force:
                return
            self._dirty = False
            taken_models = {m: vars(s).copy() for m, s in self._models.items()}
            deployments = dict(self._deployments)
            forgotten_models, forgotten_deployments = set(self._model_file.forgotten), set(self._deployment_file.forgotten)
        taken_deployments = {d: c.persisted() for d, c in deployments.items()}
        try:
            merged_models = self._model_file.merge(taken_models, forgotten_models)
            merged_deployments = self._deployment_file.merge(taken_deployments, forgotten_deployments)
        except BaseException:
            with self._lock:
                self._dirty = True
            raise
        with self._lock:
            self._model_file.forgotten -= forgotten_models
            self._deployment_file.forgotten -= forgotten_deployments
        with self._lock:
            for model_id in set(self._models) | set(merged_models):
                current = self._models.get(model_id)
                now = vars(current) if current is not None else {n: 0 for n in _MODEL_SUMS} | {"timestamp": None}
                values = _adopt(now, taken_models.get(model_id), merged_models.get(model_id), _MODEL_SUMS, _MODEL_MAX)
                if model_id not in merged_models and not any(values[n] for n in _MODEL_SUMS):
                    self._models.pop(model_id, None)  # forgotten by another engine, nothing new here
                    continue
                if values["timestamp"] is None:
                    values["timestamp"] = now_millis()
                self._models[model_id] = InferenceStats(**values)
        for deployment_id, counters in deployments.items():
            counters.absorb(taken_deployments[deployment_id], merged_deployments.get(deployment_id))


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

    def __init__(self, clock: Any = None, on_record: Callable[[], None] | None = None) -> None:
        self._lock = threading.Lock()
        self._clock = clock or now_millis
        self._on_record = on_record
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
        if self._on_record is not None:
            self._on_record()

    def add_pending(self, count: int) -> None:
        """Documents entering (``count`` > 0) or leaving (< 0) the deployment's queue."""
        with self._lock:
            self.pending += count

    def record_rejected(self, count: int) -> None:
        with self._lock:
            self.rejected_execution_count += count
        if self._on_record is not None:
            self._on_record()

    def record_timeout(self, count: int = 1) -> None:
        with self._lock:
            self.timeout_count += count
        if self._on_record is not None:
            self._on_record()

    # -- persistence (:class:`StatsRegistry`) ------------------------------------------------------------
    def persisted(self) -> dict[str, Any]:
        """The counters kept across engines and restarts (not the queue, not the current minute)."""
        with self._lock:
            return {n: getattr(self, n) for n in (*_DEPLOYMENT_SUMS, *_DEPLOYMENT_MAX)}

    def restore(self, saved: dict[str, Any]) -> None:
        with self._lock:
            for n in (*_DEPLOYMENT_SUMS, *_DEPLOYMENT_MAX):
                setattr(self, n, saved[n])

    def absorb(self, taken: dict[str, Any], merged: dict[str, Any] | None) -> None:
        """After a save: the home's totals plus what was counted here since ``taken`` was read."""
        with self._lock:
            values = _adopt({n: getattr(self, n) for n in (*_DEPLOYMENT_SUMS, *_DEPLOYMENT_MAX)}, taken, merged,
                            _DEPLOYMENT_SUMS, _DEPLOYMENT_MAX)
            for n, v in values.items():
                setattr(self, n, v)

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
