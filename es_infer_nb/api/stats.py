"""``GET _ml/trained_models/<ids>/_stats`` (spec §6)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .request import Request
from .routing import route
from .trained_models import _paging, pipelines_using

if TYPE_CHECKING:  # pragma: no cover
    from ..engine import Engine


@route("GET", "_ml/trained_models/_stats", "allow_no_match", "from", "size")
@route("GET", "_ml/trained_models/{model_id}/_stats", "allow_no_match", "from", "size")
def get_stats(engine: "Engine", req: Request) -> Any:
    expression = req.path_params.get("model_id", "_all")
    allow = req.bool_param("allow_no_match", True)
    start, size = _paging(req)
    ids = engine.models.expand(
        expression, allow_no_match=allow, missing_reason="No known trained model with model_id [{}]"
    )
    entries = [model_stats(engine, m) for m in ids[start : start + size]]
    return {"count": len(ids), "trained_model_stats": entries}


def model_stats(engine: "Engine", model_id: str) -> dict[str, Any]:
    config = engine.models.config(model_id)
    ids = {model_id, *engine.models.aliases_of(model_id)}
    entry: dict[str, Any] = {
        "model_id": model_id,
        "model_size_stats": {
            "model_size_bytes": int(config.get("model_size_bytes", 0)),
            "required_native_memory_bytes": 0,
        },
        "pipeline_count": len(pipelines_using(engine, ids)),
    }
    entry["inference_stats"] = engine.stats.for_model(model_id).to_dict()
    pipelines = pipelines_using(engine, ids)
    if pipelines:
        entry["ingest"] = ingest_stats(engine, pipelines)
    return entry


def _inference_processor_names(processors: Any) -> list[str]:
    """Inference processors of a pipeline body in ES's flattened order (on_failure and foreach included)."""
    from ..ingest.pipeline import processor_stats_name

    names: list[str] = []
    for entry in processors if isinstance(processors, list) else []:
        if not isinstance(entry, dict) or len(entry) != 1:
            continue
        ((ptype, conf),) = entry.items()
        if ptype == "inference":
            names.append(processor_stats_name(entry))
        if isinstance(conf, dict):
            if isinstance(conf.get("processor"), dict):
                names.extend(_inference_processor_names([conf["processor"]]))
            names.extend(_inference_processor_names(conf.get("on_failure")))
    return names


def ingest_stats(engine: "Engine", pipeline_ids: list[str]) -> dict[str, Any]:
    """The ``ingest`` section: totals over the pipelines referencing the model, then per pipeline."""
    from ..stats import IngestCounters

    total = IngestCounters()
    per: dict[str, Any] = {}
    for pid in pipeline_ids:
        counters = engine.stats.pipeline_counters(pid)
        total.add(counters)
        body = engine.pipelines.get(pid) or {}
        names = _inference_processor_names(body.get("processors")) + _inference_processor_names(
            body.get("on_failure"))
        per[pid] = {
            **counters.to_dict(),
            "processors": [
                {name: {"type": "inference", "stats": engine.stats.processor_counters(pid, name).to_dict()}}
                for name in names
            ],
        }
    return {"total": total.to_dict(), "pipelines": per}
