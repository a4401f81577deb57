"""An engine's counters as plain JSON, and a worker's counter difference added back into an engine.

A DataFrame job run in other processes (Dask workers) counts there; :func:`snapshot` reads an engine's
inference, ingest and deployment counters, :func:`merge` adds a difference of two snapshots to the
engine that started the job (how the difference travels is the entry point's business).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..models.deployments import deployments

if TYPE_CHECKING:  # pragma: no cover
    from ..engine import Engine

__all__ = ["merge", "snapshot"]

MODEL_FIELDS = ("inference_count", "failure_count", "cache_miss_count", "missing_all_fields_count")
INGEST_FIELDS = ("count", "time_nanos", "failed")
DEPLOYMENT_FIELDS = ("inference_count", "error_count", "cache_hit_count", "total_time_ms",
                     "time_excluding_cache_hits_ms", "rejected_execution_count", "timeout_count")


def snapshot(engine: "Engine") -> dict[str, Any]:
    """The engine's counters as plain JSON."""
    model_counters, pipeline_counters, processor_counters = engine.stats.counters()  # one consistent read
    models = {m: {f: getattr(s, f) for f in MODEL_FIELDS} for m, s in model_counters.items()}
    pipes = {p: {f: getattr(c, f) for f in INGEST_FIELDS} for p, c in pipeline_counters.items()}
    procs = {f"{p}\u0000{n}": {f: getattr(c, f) for f in INGEST_FIELDS} for (p, n), c in processor_counters.items()}
    deps = {d.deployment_id: {f: getattr(d.counters, f) for f in DEPLOYMENT_FIELDS}
            for d in deployments(engine).all()}
    return {"models": models, "pipelines": pipes, "processors": procs, "deployments": deps}


def merge(engine: "Engine", delta: dict[str, Any]) -> None:
    """Add a worker's counter difference to ``engine``'s counters."""
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
