"""``_ingest/pipeline/_simulate`` (spec §8.2): parse the request, run the batch, render the answer."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from ..errors import ApiError, illegal_argument
from ..models.java_hash import hashmap_order
from .document import Doc, clone, java_type, nesting_depth_error
from .pipeline import SIMULATE_PIPELINE_ID, Pipeline, Run, parse_pipeline, run_pipeline

if TYPE_CHECKING:  # pragma: no cover
    from ..engine import Engine

DOC_META = ("_index", "_id", "_routing", "_version", "_version_type", "_if_seq_no", "_if_primary_term")


def ingest_timestamp() -> str:
    now = datetime.now(timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond:06d}000Z"


def parse_docs(raw: Any) -> list[Doc | ApiError]:
    """The documents of a ``_simulate`` body (``SimulatePipelineRequest.parseDocs``); one that cannot be a
    document (nested too deeply) is its error."""
    if raw is None:
        raise ApiError("parse_exception", "[docs] required property is missing", 400, metadata={"property_name": "docs"})
    if not isinstance(raw, list):
        raise ApiError("parse_exception", f"[docs] property isn't a list, but of type [{java_type(raw)}]", 400,
                       metadata={"property_name": "docs"})
    if not raw:
        raise illegal_argument("must specify at least one document in [docs]")
    timestamp = ingest_timestamp()
    docs: list[Doc | ApiError] = []
    for entry in raw:
        if not isinstance(entry, dict):
            raise illegal_argument("malformed [docs] section, should include an inner object")
        source = entry.get("_source")
        if source is None:
            raise _property_error("_source", "required property is missing")
        if not isinstance(source, dict):
            raise _property_error("_source", f"property isn't a map, but of type [{java_type(source)}]")
        metadata = _doc_metadata(entry)
        too_deep = nesting_depth_error(source)
        if too_deep is not None:
            docs.append(too_deep)
            continue
        data = dict(_deep(source))
        data.update(metadata)
        docs.append(Doc(data, {"timestamp": timestamp}))
    return docs


def _property_error(key: str, message: str) -> ApiError:
    return ApiError("parse_exception", f"[{key}] {message}", 400, metadata={"property_name": key})


def _string_or_int(entry: dict[str, Any], key: str) -> str | None:
    """``ConfigurationUtils.readOptionalStringOrIntProperty``."""
    value = entry.get(key)
    if value is None or isinstance(value, str):
        return value
    if java_type(value) == "java.lang.Integer":
        return str(value)
    raise _property_error(key, f"property isn't a string or int, but of type [{java_type(value)}]")


def _long(entry: dict[str, Any], key: str) -> str | None:
    """``readOptionalStringOrLongProperty`` then ``Long.parseLong``: ``[key] cannot be null`` for a present
    null; the value's text (as ES's answer writes it)."""
    if key not in entry:
        return None
    value = entry[key]
    if value is None:
        raise illegal_argument(f"[{key}] cannot be null")
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise _property_error(key, f"property isn't a string or long, but of type [{java_type(value)}]")
    text = str(value)
    if not _LONG_TEXT.fullmatch(text) or not -(2 ** 63) <= int(text) < 2 ** 63:
        raise ApiError("number_format_exception", f'For input string: "{text}"', 400)
    return str(int(text))


_LONG_TEXT = re.compile(r"[+-]?[0-9]+")
_VERSION_TYPES = {"internal": "internal", "external": "external", "external_gt": "external",
                  "external_gte": "external_gte"}


def _doc_metadata(entry: dict[str, Any]) -> dict[str, Any]:
    """A document's metadata fields, read and checked as ES's parser does, each as ES's answer writes it
    (``toString``); ``_version`` defaults to ``Versions.MATCH_ANY`` (-3)."""
    index, doc_id = _string_or_int(entry, "_index"), _string_or_int(entry, "_id")
    meta: dict[str, Any] = {"_index": "_index" if index is None else index, "_id": "_id" if doc_id is None else doc_id}
    routing = _string_or_int(entry, "_routing")
    version = _long(entry, "_version")
    meta["_version"] = "-3" if version is None else version
    if routing is not None:
        meta["_routing"] = routing
    if "_version_type" in entry:
        kind = entry["_version_type"]
        if kind is None:
            raise _property_error("_version_type", "required property is missing")
        if not isinstance(kind, str):
            raise _property_error("_version_type", f"property isn't a string, but of type [{java_type(kind)}]")
        if kind not in _VERSION_TYPES:
            raise illegal_argument(f"No version type match [{kind}]")
        meta["_version_type"] = _VERSION_TYPES[kind]
    for key in ("_if_seq_no", "_if_primary_term"):
        value = _long(entry, key)
        if value is not None:
            meta[key] = value
    if "_dynamic_templates" in entry:
        meta["_dynamic_templates"] = _dynamic_templates(entry["_dynamic_templates"])
    return meta


def _dynamic_templates(value: Any) -> dict[str, Any]:
    """``ConfigurationUtils.readMap`` of ``_dynamic_templates`` (a null one is missing), kept as the
    ``new HashMap<>(...)`` ES sets it to: its keys in that map's order."""
    if value is None:
        raise _property_error("_dynamic_templates", "required property is missing")
    if not isinstance(value, dict):
        raise _property_error("_dynamic_templates", f"property isn't a map, but of type [{java_type(value)}]")
    return {key: value[key] for key in hashmap_order(value, copied=True)}


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
