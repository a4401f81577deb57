"""``deployment_stats`` of ``_stats`` (``AssignmentStats`` and its ``NodeStats``, fields in ES's order)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..models.deployments import Deployment, deployments, iso_millis
from ..stats import now_millis

if TYPE_CHECKING:  # pragma: no cover
    from ..engine import Engine

#: ``NodeStats.toXContent`` order after ``node`` and ``routing_state`` (``human``: each ``*_string`` comes
#: before its epoch millis, as ``XContentBuilder.timestampFieldsFromUnixEpochMillis`` writes them)
NODE_ORDER = (
    "inference_count", "average_inference_time_ms", "average_inference_time_ms_excluding_cache_hits",
    "inference_cache_hit_count", "last_access_string", "last_access", "number_of_pending_requests", "error_count",
    "rejected_execution_count", "timeout_count", "start_time_string", "start_time", "threads_per_allocation",
    "number_of_allocations", "peak_throughput_per_minute", "throughput_last_minute",
    "average_inference_time_ms_last_minute", "inference_cache_hit_count_last_minute",
)


def node_stats(engine: "Engine", dep: Deployment, *, human: bool = False) -> dict[str, Any]:
    fields = dep.counters.node_fields()
    fields["start_time"] = dep.params.start_time
    fields["threads_per_allocation"] = dep.params.threads_per_allocation
    fields["number_of_allocations"] = dep.params.number_of_allocations
    if human:
        fields["start_time_string"] = iso_millis(dep.params.start_time)
        if "last_access" in fields:
            fields["last_access_string"] = iso_millis(fields["last_access"])
    routing: dict[str, Any] = {"routing_state": dep.routing_state}
    if dep.reason:
        routing["reason"] = dep.reason
    out: dict[str, Any] = {"node": deployments(engine).node.to_dict(), "routing_state": routing}
    out.update((k, fields[k]) for k in NODE_ORDER if k in fields)
    return out


def deployment_stats(engine: "Engine", dep: Deployment, *, human: bool = False) -> dict[str, Any]:
    p = dep.params
    node = node_stats(engine, dep, human=human)
    out: dict[str, Any] = {
        "deployment_id": p.deployment_id,
        "model_id": p.model_id,
        "threads_per_allocation": p.threads_per_allocation,
        "number_of_allocations": p.number_of_allocations,
    }
    if p.adaptive_allocations:
        out["adaptive_allocations"] = p.adaptive_allocations
    out["queue_capacity"] = p.queue_capacity
    out["state"] = dep.state
    if dep.reason:
        out["reason"] = dep.reason
    out["allocation_status"] = dep.allocation_status()
    out["cache_size"] = str(p.cache_bytes)
    out["priority"] = p.priority
    if human:  # the readable field first (``timestampFieldsFromUnixEpochMillis``)
        out["start_time_string"] = iso_millis(p.start_time)
    out["start_time"] = p.start_time
    c = dep.counters
    for key, value in (("error_count", c.error_count), ("rejected_execution_count", c.rejected_execution_count),
                       ("timeout_count", c.timeout_count), ("inference_count", c.inference_count)):
        if value > 0:
            out[key] = value
    out["peak_throughput_per_minute"] = c.peak_throughput
    out["nodes"] = [node]
    out["precision"] = dep.precision  # es_infer_nb's own (after ES's fields): what the model runs in
    return out


def overall_inference_stats(dep: Deployment) -> dict[str, Any]:
    """``AssignmentStats.getOverallInferenceStats``: failures = errors + timeouts + rejections."""
    c = dep.counters
    return {
        "failure_count": c.error_count + c.timeout_count + c.rejected_execution_count,
        "inference_count": c.inference_count,
        "cache_miss_count": 0,
        "missing_all_fields_count": 0,
        "timestamp": now_millis(),
    }
