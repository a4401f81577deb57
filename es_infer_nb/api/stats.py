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
    return entry
