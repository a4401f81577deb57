"""Counters moved on workers, gathered back into the engine that started the job.

Each partition takes a snapshot of its worker engine's counters before and after running and
sends the difference (inference counts, failures, cache misses, ingest counts per pipeline and
processor, deployment counters). On a ``distributed`` cluster the difference travels as a
worker event (``Worker.log_event`` on :data:`TOPIC`); the client that was current when the job
was built subscribes to the topic and merges each difference into the job's engine as the
partition finishes, so the engine's ``_stats`` is complete when ``compute()`` returns. On the
local threaded / synchronous schedulers the partition merges straight into the engine.
A partition killed before it finished sends nothing; a partition Dask runs again counts again
(its model really ran again), as a node would count it.
"""

from __future__ import annotations

import threading
import weakref
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from ..engine import Engine

TOPIC = "es-infer-nb-stats"

_MODEL_FIELDS = ("inference_count", "failure_count", "cache_miss_count", "missing_all_fields_count")
_INGEST_FIELDS = ("count", "time_nanos", "failed")
_DEPLOYMENT_FIELDS = ("inference_count", "error_count", "cache_hit_count", "total_time_ms",
                      "time_excluding_cache_hits_ms", "rejected_execution_count", "timeout_count")

_jobs: "dict[str, weakref.ref[Engine]]" = {}
_subscribed: "weakref.WeakSet[Any]" = weakref.WeakSet()
_lock = threading.Lock()


def snapshot(engine: "Engine") -> dict[str, Any]:
    """The engine's counters as plain JSON."""
    from ..models.deployments import deployments

    stats = engine.stats
    with stats._lock:  # noqa: SLF001 - a consistent read of the registry's own counters
        models = {m: {f: getattr(s, f) for f in _MODEL_FIELDS} for m, s in stats._models.items()}  # noqa: SLF001
        pipes = {p: {f: getattr(c, f) for f in _INGEST_FIELDS} for p, c in stats._pipelines.items()}  # noqa: SLF001
        procs = {f"{p}\u0000{n}": {f: getattr(c, f) for f in _INGEST_FIELDS}
                 for (p, n), c in stats._processors.items()}  # noqa: SLF001
    deps = {d.deployment_id: {f: getattr(d.counters, f) for f in _DEPLOYMENT_FIELDS}
            for d in deployments(engine).all()}
    return {"models": models, "pipelines": pipes, "processors": procs, "deployments": deps}


def difference(after: dict[str, Any], before: dict[str, Any]) -> dict[str, Any]:
    """``after - before``, keeping only the entries that moved."""
    out: dict[str, Any] = {}
    for section, entries in after.items():
        moved = {}
        for key, values in entries.items():
            old = before.get(section, {}).get(key, {})
            delta = {f: v - old.get(f, 0) for f, v in values.items()}
            if any(delta.values()):
                moved[key] = delta
        if moved:
            out[section] = moved
    return out


def merge(engine: "Engine", delta: dict[str, Any]) -> None:
    """Add a worker's counter difference to ``engine``'s counters."""
    from ..models.deployments import deployments

    for model_id, d in delta.get("models", {}).items():
        engine.stats.record(model_id, inferences=d.get("inference_count", 0), failures=d.get("failure_count", 0),
                            missing_all_fields=d.get("missing_all_fields_count", 0),
                            cache_misses=d.get("cache_miss_count", 0))
    for pipeline_id, d in delta.get("pipelines", {}).items():
        engine.stats.record_ingest(pipeline_id, None, count=d.get("count", 0), nanos=d.get("time_nanos", 0),
                                   failed=d.get("failed", 0))
    for key, d in delta.get("processors", {}).items():
        pipeline_id, name = key.split("\u0000", 1)
        engine.stats.record_ingest(pipeline_id, name, count=d.get("count", 0), nanos=d.get("time_nanos", 0),
                                   failed=d.get("failed", 0))
    deps = deployments(engine)
    for dep_id, d in delta.get("deployments", {}).items():
        dep = deps.get(dep_id)
        if dep is None:
            continue
        excl = d.get("time_excluding_cache_hits_ms", 0.0)
        dep.counters.record(inferences=d.get("inference_count", 0), time_ms=excl,
                            cache_hits=d.get("cache_hit_count", 0), hit_time_ms=d.get("total_time_ms", 0.0) - excl,
                            errors=d.get("error_count", 0))
        if d.get("rejected_execution_count"):
            dep.counters.record_rejected(d["rejected_execution_count"])
        if d.get("timeout_count"):
            dep.counters.record_timeout(d["timeout_count"])


def register_job(job: str, engine: "Engine") -> None:
    """Route the job's counter differences to ``engine``; subscribe the current distributed client."""
    with _lock:
        for dead in [j for j, ref in _jobs.items() if ref() is None]:
            del _jobs[dead]
        _jobs[job] = weakref.ref(engine)
    try:
        from distributed import default_client
    except ImportError:  # pragma: no cover - dask without distributed
        return
    try:
        client = default_client()
    except ValueError:  # no client: the local schedulers run partitions in this process
        return
    with _lock:
        if client in _subscribed:
            return
        _subscribed.add(client)
    client.subscribe_topic(TOPIC, _on_event)


def _on_event(event: Any) -> None:
    _, message = event
    deliver(message.get("job", ""), message.get("delta", {}))


def deliver(job: str, delta: dict[str, Any]) -> bool:
    """Merge ``delta`` into the job's engine if this process holds it; False otherwise."""
    with _lock:
        ref = _jobs.get(job)
    engine = ref() if ref is not None else None
    if engine is None:
        return False
    merge(engine, delta)
    return True


def report(job: str, delta: dict[str, Any]) -> None:
    """Send a partition's counter difference home (a worker event, or straight into this process's engine)."""
    if not delta:
        return
    if deliver(job, delta):
        return
    try:
        from distributed import get_worker

        worker = get_worker()
    except (ImportError, ValueError):
        return  # a local process pool: the counters stay with the pool's process
    worker.log_event(TOPIC, {"job": job, "delta": delta})
