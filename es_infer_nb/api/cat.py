"""``GET _cat/ml/trained_models[/<model_id>]``: ES's cat table of the trained models and their usage."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .cat_table import CAT_PARAMS, Bytes, Column, Millis, Timestamp, render_table
from .data_frame_analytics import job_for_model
from .request import Request
from .routing import route
from .stats import model_stats
from .trained_models import paging, with_deployed_builtins

if TYPE_CHECKING:  # pragma: no cover
    from ..engine import Engine

#: ES's RestCatTrainedModelsAction columns, in its order (defaults: id, heap_size, operations,
#: create_time, type, ingest.pipelines, data_frame.id)
TRAINED_MODEL_COLUMNS = [
    Column("id", "the trained model id"),
    Column("created_by", "who created the model", ("c", "createdBy"), default=False, right_aligned=True),
    Column("heap_size", "the estimated heap size to keep the model in memory", ("hs", "modelHeapSize")),
    Column("operations", "the estimated number of operations to use the model", ("o", "modelOperations")),
    Column("license", "The license level of the model", ("l",), default=False),
    Column("create_time", "The time the model was created", ("ct",)),
    Column("version", "The version of Elasticsearch when the model was created", ("v",), default=False),
    Column("description", "The model description", ("d",), default=False),
    Column("type", "The model type", ("t",)),
    Column("ingest.pipelines", "The number of pipelines referencing the model", ("ip", "ingestPipelines")),
    Column("ingest.count", "The total number of docs processed by the model", ("ic", "ingestCount"), default=False),
    Column("ingest.time", "The total time spent processing docs with this model", ("it", "ingestTime"),
           default=False),
    Column("ingest.current", "The total documents currently being handled by the model", ("icurr", "ingestCurrent"),
           default=False),
    Column("ingest.failed", "The total count of failed ingest attempts with this model", ("if", "ingestFailed"),
           default=False),
    Column("data_frame.id", "The data frame analytics config id that created the model (if still available)",
           ("dfid", "dataFrameAnalytics")),
    Column("data_frame.create_time", "The time the data frame analytics config was created",
           ("dft", "dataFrameAnalyticsTime"), default=False),
    Column("data_frame.source_index", "The source index used to train in the data frame analysis",
           ("dfsi", "dataFrameAnalyticsSrcIndex"), default=False),
    Column("data_frame.analysis", "The analysis used by the data frame to build the model",
           ("dfa", "dataFrameAnalyticsAnalysis"), default=False),
]


def _row(engine: "Engine", model_id: str) -> list[Any]:
    config = engine.models.config(model_id)
    stats = model_stats(engine, model_id)
    ingest = (stats.get("ingest") or {}).get("total") or {}
    return [
        model_id,
        config.get("created_by"),
        Bytes(int(config.get("model_size_bytes", 0))),
        int(config.get("estimated_operations", 0)),
        config.get("license_level"),
        Timestamp(int(config["create_time"])) if config.get("create_time") is not None else None,
        config.get("version"),
        config.get("description"),
        config.get("model_type"),
        int(stats.get("pipeline_count", 0)),
        int(ingest.get("count", 0)),
        Millis(int(ingest.get("time_in_millis", 0))),
        int(ingest.get("current", 0)),
        int(ingest.get("failed", 0)),
        *_job_columns(job_for_model(engine, config)),
    ]


def _job_columns(job: dict[str, Any] | None) -> list[Any]:
    """data_frame.id / create_time / source_index / analysis; ES writes ``__none__`` and leaves the
    others empty when no stored job trained the model."""
    if job is None:
        return ["__none__", None, None, None]
    source = (job.get("source") or {}).get("index")
    return [job.get("id"), Timestamp(int(job["create_time"])) if job.get("create_time") is not None else None,
            ",".join(source) if isinstance(source, list) else source, next(iter(job.get("analysis") or {}), None)]


@route("GET", "_cat/ml/trained_models", "allow_no_match", "from", "size", *CAT_PARAMS)
@route("GET", "_cat/ml/trained_models/{model_id}", "allow_no_match", "from", "size", *CAT_PARAMS)
def cat_trained_models(engine: "Engine", req: Request) -> Any:
    expression = req.path_params.get("model_id", "_all")
    allow = req.bool_param("allow_no_match", True)
    start, size = paging(req)
    ids = engine.models.expand(expression, allow_no_match=allow, missing_reason="Could not find trained model [{}]")
    ids = with_deployed_builtins(engine, expression, ids)
    rows = [_row(engine, model_id) for model_id in ids[start : start + size]]
    return render_table(req, TRAINED_MODEL_COLUMNS, rows)
