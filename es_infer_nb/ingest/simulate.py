"""``_ingest/pipeline/_simulate`` (spec §8.2): parse the request, run the batch, render the answer."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from ..errors import ApiError, illegal_argument
from .document import Doc, clone, java_type, nesting_depth_error
from .pipeline import SIMULATE_PIPELINE_ID, Pipeline, Run, parse_pipeline, run_pipeline

if TYPE_CHECKING:  # pragma: no cover
    from ..engine import Engine

DOC_META = ("_index", "_id", "_routing", "_version", "_version_type", "_if_seq_no", "_if_primary_term")


def ingest_timestamp() -> str:
    now = datetime.now(timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond:06d}000Z"


def parse_docs(raw: Any) -> list[Doc | ApiError]:
    """The documents of a ``_simulate`` body; one that cannot be a document (nested too deeply) is its error."""
    if raw is None:
        raise ApiError("parse_exception", "[docs] required property is missing", 400, metadata={"property_name": "docs"})
    if not isinstance(raw, list):
        raise ApiError("parse_exception", f"[docs] property isn't a list, but of type [{java_type(raw)}]", 400,
                       metadata={"property_name": "docs"})
    if not raw:
        raise illegal_argument("must specify at least one document in [docs]")
    timestamp = ingest_timestamp()
    docs = []
    for entry in raw:
        if not isinstance(entry, dict):
            raise ApiError("parse_exception", f"[docs] property isn't a list of maps, found [{java_type(entry)}]", 400)
        source = entry.get("_source")
        if source is None:
            raise ApiError("parse_exception", "[_source] required property is missing", 400,
                           metadata={"property_name": "_source"})
        if not isinstance(source, dict):
            raise ApiError("parse_exception", f"[_source] property isn't a map, but of type [{java_type(source)}]", 400,
                           metadata={"property_name": "_source"})
        too_deep = nesting_depth_error(source)
        if too_deep is not None:
            docs.append(too_deep)
            continue
        data = dict(_deep(source))
        data["_index"] = str(entry.get("_index", "_index"))
        data["_id"] = str(entry.get("_id", "_id"))
        data["_version"] = str(entry["_version"]) if entry.get("_version") is not None else "-3"
        for key in ("_routing", "_version_type", "_if_seq_no", "_if_primary_term"):
            if entry.get(key) is not None:
                data[key] = entry[key]
        docs.append(Doc(data, {"timestamp": timestamp}))
    return docs


def _deep(value: Any) -> Any:
    return clone(value)


def simulate(engine: "Engine", body: Any, pipeline_id: str | None = None, verbose: bool = False, *,
             device: str | None = None) -> dict[str, Any]:
    """``_simulate``: ``device`` is where the pipeline's models run when the engine's would apply."""
    if not isinstance(body, dict):
        raise ApiError("parse_exception", "request body is required", 400)
    if pipeline_id is not None:
        stored = engine.pipelines.get(pipeline_id) if pipeline_id in engine.pipelines else None
        if stored is None:
            raise illegal_argument(f"pipeline [{pipeline_id}] does not exist")
        pipeline = parse_pipeline(stored, engine, pipeline_id)
        run_id = pipeline_id
    else:
        raw = body.get("pipeline")
        if raw is None:
            raise ApiError("parse_exception", "[pipeline] required property is missing", 400,
                           metadata={"property_name": "pipeline"})
        pipeline = parse_pipeline(raw, engine, SIMULATE_PIPELINE_ID)
        run_id = SIMULATE_PIPELINE_ID
    parsed = parse_docs(body.get("docs"))
    docs = [d for d in parsed if isinstance(d, Doc)]
    answers = iter(execute(engine, pipeline, docs, run_id, verbose, device=device) if docs else [])
    return {"docs": [next(answers) if isinstance(d, Doc) else {"error": d.error_object()} for d in parsed]}


def execute(engine: "Engine | None", pipeline: Pipeline, docs: list[Doc], pipeline_id: str,
            verbose: bool = False, *, device: str | None = None) -> list[Any]:
    """Run ``pipeline`` over ``docs`` (one batch) and render each as ``_simulate`` does; ``device``:
    where its models run when the engine's device would apply (``None``: the engine's)."""
    if verbose:
        for doc in docs:
            doc.results = []
    run = Run(engine, verbose, device=device)
    failures = run_pipeline(pipeline, docs, run, pipeline_id)
    out: list[Any] = []
    for doc, failure in zip(docs, failures):
        if verbose:
            out.append({"processor_results": doc.results})
        elif failure is not None:
            out.append({"error": failure.error.error_object()})
        elif doc.dropped:
            out.append(None)
        else:
            out.append({"doc": doc.render(copy_values=False)})  # the documents are ours, not the caller's
    return out
