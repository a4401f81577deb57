"""``GET _ml/trained_models/<ids>/_stats`` (spec §6)."""

from __future__ import annotations

import fnmatch
from typing import TYPE_CHECKING, Any

from ..errors import ApiError
from ..ingest.pipeline import processor_stats_name
from ..models.deployments import Deployment, deployments, iso_millis, required_native_memory_bytes
from ..stats import IngestCounters, now_millis
from .cat_table import byte_size_text, time_value_text
from .deployment_stats import deployment_stats, overall_inference_stats
from .request import Request
from .routing import route
from .trained_models import paging, pipelines_using, with_deployed_builtins

if TYPE_CHECKING:  # pragma: no cover
    from ..engine import Engine


@route("GET", "_ml/trained_models/_stats", "allow_no_match", "from", "size")
@route("GET", "_ml/trained_models/{model_id}/_stats", "allow_no_match", "from", "size")
def get_stats(engine: "Engine", req: Request) -> Any:
    expression = req.path_params.get("model_id", "_all")
    allow = req.bool_param("allow_no_match", True)
    human = req.bool_param("human", False)
    start, size = paging(req)
    expression, only = _deployment_ids(engine, expression)
    ids = engine.models.expand(
        expression, allow_no_match=allow, missing_reason="No known trained model with model_id [{}]"
    )
    ids = with_deployed_builtins(engine, expression, ids)
    entries: list[dict[str, Any]] = []
    for m in ids[start : start + size]:
        entries.extend(model_stats_entries(engine, m, only.get(m), human=human))
    return {"count": len(ids), "trained_model_stats": entries}


def _deployment_ids(engine: "Engine", expression: str) -> tuple[str, dict[str, set[str]]]:
    """Replace deployment ids (that are not model ids) by their model id; remember which were asked for.

    A wildcard matches deployment ids too (``my-dep*``: the model of every matching deployment, with
    only those deployments), as ES adds the models of the deployments an expression matches. A model
    that the expression names itself (its id, an alias or a wildcard over its id) shows all its
    deployments."""
    registry = deployments(engine)
    parts: list[str] = []
    only: dict[str, set[str]] = {}
    named: list[str] = []  # the parts that name models themselves
    for part in [p.strip() for p in expression.split(",") if p.strip()]:
        dep = registry.get(part)
        if "*" in part and part not in ("*", "_all"):
            matched = [d for d in registry.all() if fnmatch.fnmatchcase(d.deployment_id, part)
                       and not fnmatch.fnmatchcase(d.model_id, part)]
            for d in matched:
                only.setdefault(d.model_id, set()).add(d.deployment_id)
                parts.append(d.model_id)
            if not matched or _matches_a_model(engine, part):
                parts.append(part)
                named.append(part)
        elif dep is not None and engine.models.resolve(part) is None:
            only.setdefault(dep.model_id, set()).add(part)
            parts.append(dep.model_id)
        else:
            parts.append(part)
            named.append(part)
    for model_id in list(only):
        if any(p in ("*", "_all") or fnmatch.fnmatchcase(model_id, p) or engine.models.resolve(p) == model_id
               for p in named):
            del only[model_id]
    return ",".join(dict.fromkeys(parts)) or "_all", only


def _matches_a_model(engine: "Engine", pattern: str) -> bool:
    try:
        return bool(engine.models.expand(pattern, allow_no_match=False, missing_reason="{}"))
    except ApiError:
        return False


def model_stats_entries(engine: "Engine", model_id: str, only: set[str] | None = None, *,
                        human: bool = False) -> list[dict[str, Any]]:
    """One entry for a model, or one per deployment of a deployed pytorch model (as ES answers)."""
    deps = sorted((d for d in deployments(engine).of_model(model_id) if only is None or d.deployment_id in only),
                  key=lambda d: d.deployment_id)  # ES lists a model's deployments by deployment id
    if not deps:
        return [model_stats(engine, model_id, human=human)]
    out = []
    for dep in deps:
        entry = model_stats(engine, model_id, dep, human=human)
        entry["deployment_stats"] = deployment_stats(engine, dep, human=human)
        out.append(entry)
    return out


def model_stats(engine: "Engine", model_id: str, deployment: Deployment | None = None, *,
                human: bool = False) -> dict[str, Any]:
    config = engine.models.config(model_id)
    size = int(config.get("model_size_bytes", 0))
    native = required_native_memory_bytes(size) if config.get("model_type") == "pytorch" else 0
    entry: dict[str, Any] = {"model_id": model_id, "model_size_stats": _size_stats(size, native, human)}
    pipelines = _pipelines_of(engine, model_id, deployment)
    entry["pipeline_count"] = len(pipelines)
    if pipelines:  # TrainedModelStats.toXContent: ingest before inference_stats
        entry["ingest"] = ingest_stats(engine, pipelines, human=human)
    if deployment is not None:
        stats = overall_inference_stats(deployment)
    else:
        stats = _stored_inference_stats(engine, model_id)
    entry["inference_stats"] = _with_timestamp_string(stats) if human else stats
    return entry


def _stored_inference_stats(engine: "Engine", model_id: str) -> dict[str, Any]:
    """``TrainedModelProvider.getInferenceStats``: the counters; a model with nothing counted has no stored
    stats document, so its ``timestamp`` is the time of the request."""
    stats = engine.stats.for_model(model_id).to_dict()
    if not any(stats[k] for k in ("failure_count", "inference_count", "cache_miss_count", "missing_all_fields_count")):
        stats["timestamp"] = now_millis()
    return stats


def _pipelines_of(engine: "Engine", model_id: str, deployment: Deployment | None) -> list[str]:
    """The pipelines whose ingest stats a model's entry shows (``Response.Builder.build``): those naming
    the model or one of its aliases; for a deployment's entry those naming the deployment id, if any
    (without a deployment, as ``_cat`` asks: those naming any of the model's ids)."""
    model_ids = {model_id, *engine.models.aliases_of(model_id)}
    if deployment is None:
        return pipelines_using(engine, model_ids | {d.deployment_id for d in deployments(engine).of_model(model_id)})
    if deployment.deployment_id in model_ids:
        return pipelines_using(engine, model_ids)
    return pipelines_using(engine, {deployment.deployment_id}) or pipelines_using(engine, model_ids)


def _size_stats(size: int, native: int, human: bool) -> dict[str, Any]:
    """``TrainedModelSizeStats``: ``humanReadableField`` puts each readable size before its bytes."""
    if not human:
        return {"model_size_bytes": size, "required_native_memory_bytes": native}
    return {"model_size": byte_size_text(size), "model_size_bytes": size,
            "required_native_memory": byte_size_text(native), "required_native_memory_bytes": native}


def _with_timestamp_string(stats: dict[str, Any]) -> dict[str, Any]:
    """``InferenceStats.toXContent`` with ``human``: ``timestamp_string`` just before ``timestamp``."""
    out = {k: v for k, v in stats.items() if k != "timestamp"}
    out["timestamp_string"] = iso_millis(stats["timestamp"])
    out["timestamp"] = stats["timestamp"]
    return out


def _counters(counters: IngestCounters, human: bool) -> dict[str, Any]:
    """``IngestStats.Stats.toXContent``: with ``human``, ``time`` (a ``TimeValue``) before ``time_in_millis``."""
    out = counters.to_dict()
    if not human:
        return out
    return {"count": out["count"], "time": time_value_text(out["time_in_millis"]),
            **{k: v for k, v in out.items() if k != "count"}}


def _processor_types(processors: Any) -> dict[str, str]:
    """A pipeline's top-level processors by stats name, in order, each name once with the type of its first
    processor (node ingest stats surface neither ``on_failure`` handlers nor what ``foreach`` runs, and
    ``TransportGetTrainedModelsStatsAction.mergeStats`` merges the processors of one name)."""
    types: dict[str, str] = {}
    for entry in processors if isinstance(processors, list) else []:
        if isinstance(entry, dict) and len(entry) == 1:
            types.setdefault(processor_stats_name(entry), str(next(iter(entry))))
    return types


def ingest_stats(engine: "Engine", pipeline_ids: list[str], *, human: bool = False) -> dict[str, Any]:
    """The ``ingest`` section: totals over the pipelines referencing the model, then per pipeline."""
    total = IngestCounters()
    per: dict[str, Any] = {}
    for pid in pipeline_ids:
        counters = engine.stats.pipeline_counters(pid)
        total.add(counters)
        body = engine.pipelines.get(pid) or {}
        per[pid] = {
            **_counters(counters, human),
            "processors": [
                {name: {"type": ptype, "stats": _counters(engine.stats.processor_counters(pid, name), human)}}
                for name, ptype in _processor_types(body.get("processors")).items()
            ],
        }
    return {"total": _counters(total, human), "pipelines": per}
