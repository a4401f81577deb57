"""``_bulk`` (``POST /_bulk``, ``POST /<index>/_bulk``): NDJSON actions into the in-memory indices,
each document through its ingest pipeline first (``?pipeline=`` or the action's ``pipeline``), as ES
does; a failing item fails alone and the answer lists every item."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from ..errors import ApiError
from ..indices import NUMERIC_TYPES, Index, new_id
from ..ingest.document import Doc
from ..ingest.pipeline import Run, parse_pipeline, run_pipeline
from ..ingest.simulate import ingest_timestamp
from .request import Request
from .routing import route
from .xcontent import parse_json

if TYPE_CHECKING:  # pragma: no cover
    from ..engine import Engine

ACTIONS = ("create", "delete", "index", "update")
_META_KEYS = frozenset({"_index", "_id", "pipeline", "routing", "require_alias", "if_seq_no", "if_primary_term",
                        "version", "version_type", "dynamic_templates", "op_type", "retry_on_conflict"})
_BULK_PARAMS = ("refresh", "pipeline", "routing", "require_alias", "wait_for_active_shards", "_source")


def parse_ndjson(text: str) -> list[Any]:
    """The objects of an NDJSON body (one JSON value per non-empty line), with ES's parse errors."""
    return [parse_json(line) for line in text.splitlines() if line.strip()]


def _meta_text(meta: dict[str, Any]) -> dict[str, Any]:
    """The action's index and pipeline names as ES reads them (``parser.text()``: a number or a boolean as its
    text)."""
    out = dict(meta)
    for key in ("_index", "pipeline"):
        value = out.get(key)
        if isinstance(value, bool):
            out[key] = "true" if value else "false"
        elif isinstance(value, (int, float)):
            out[key] = str(value)
    return out


def pair_lines(lines: Any) -> list[tuple[dict[str, Any], dict[str, Any] | None]]:
    """``(action, source)`` pairs (no source for ``delete``), with ES's errors for malformed lines."""
    if not isinstance(lines, list) or not lines:
        raise ApiError("action_request_validation_exception", "Validation Failed: 1: no requests added;", 400)
    pairs: list[tuple[dict[str, Any], dict[str, Any] | None]] = []
    i = 0
    while i < len(lines):
        action = lines[i]
        line_no = i + 1
        if not isinstance(action, dict) or len(action) != 1:
            raise ApiError("illegal_argument_exception", f"Malformed action/metadata line [{line_no}], expected "
                           "START_OBJECT or END_OBJECT but found [VALUE]", 400)
        ((verb, meta),) = action.items()
        if verb not in ACTIONS:
            raise ApiError("illegal_argument_exception", f"Malformed action/metadata line [{line_no}], expected one "
                           f"of [create, delete, index, update] but found [{verb}]", 400)
        if not isinstance(meta, dict):
            raise ApiError("illegal_argument_exception", f"Malformed action/metadata line [{line_no}], expected "
                           "START_OBJECT but found [VALUE]", 400)
        for key, value in meta.items():
            if key not in _META_KEYS:
                raise ApiError("illegal_argument_exception", f"Action/metadata line [{line_no}] contains an unknown "
                               f"parameter [{key}]", 400)
            if isinstance(value, (dict, list)):
                token = "START_OBJECT" if isinstance(value, dict) else "START_ARRAY"
                raise ApiError("illegal_argument_exception", f"Malformed action/metadata line [{line_no}], expected "
                               f"a simple value for field [{key}] but found [{token}]", 400)
        action = {verb: _meta_text(meta)}
        if verb == "delete":
            pairs.append((action, None))
            i += 1
            continue
        if i + 1 >= len(lines):
            raise ApiError("illegal_argument_exception", "The bulk request must be terminated by a newline [\\n]", 400)
        source = lines[i + 1]
        if not isinstance(source, dict):
            raise ApiError("illegal_argument_exception", f"Malformed action/metadata line [{line_no + 1}], "
                           "expected START_OBJECT", 400)
        pairs.append((action, source))
        i += 2
    return pairs


@route("POST", "_bulk", *_BULK_PARAMS, exclusive=False)
@route("PUT", "_bulk", *_BULK_PARAMS, exclusive=False)
@route("POST", "{index}/_bulk", *_BULK_PARAMS, exclusive=False)
@route("PUT", "{index}/_bulk", *_BULK_PARAMS, exclusive=False)
def bulk(engine: "Engine", req: Request) -> Any:
    started = time.perf_counter()
    body = req.require_body()
    if isinstance(body, dict):
        body = [body]
    pairs = pair_lines(body)
    refresh = req.has("refresh") and req.str_param("refresh") != "false"
    items = write_documents(engine, pairs, req.path_params.get("index"), req.str_param("pipeline"), refresh,
                            device=req.device)
    errors = any("error" in next(iter(item.values())) for item in items)
    return {"errors": errors, "took": int((time.perf_counter() - started) * 1000), "items": items}


def _item_error(verb: str, index: str | None, doc_id: str | None, err: ApiError) -> dict[str, Any]:
    body = err.error_object()
    body.pop("root_cause", None)
    return {verb: {"_index": index, "_id": doc_id, "status": err.status, "error": body}}


def write_documents(engine: "Engine", pairs: list[tuple[dict[str, Any], dict[str, Any] | None]],
                    default_index: str | None, default_pipeline: str | None, refresh: bool, *,
                    device: str | None = None) -> list[dict[str, Any]]:
    """Run each document through its pipeline (one batch per pipeline), then write them in order."""
    items: list[dict[str, Any] | None] = [None] * len(pairs)
    prepared: list[tuple[str, str | None, str | None, dict[str, Any] | None]] = []  # verb, index, id, source
    by_pipeline: dict[str, list[tuple[int, Doc]]] = {}
    for n, (action, source) in enumerate(pairs):
        ((verb, meta),) = action.items()
        index = meta.get("_index", default_index)
        doc_id = None if meta.get("_id") is None else str(meta["_id"])
        if doc_id is None and verb in ("index", "create"):
            doc_id = new_id()  # ES names an auto-generated id before the document is parsed or ingested
        prepared.append((verb, index, doc_id, source))
        if index is None:
            items[n] = _item_error(verb, None, doc_id, ApiError("action_request_validation_exception",
                                                                 "Validation Failed: 1: index is missing;", 400))
            continue
        if verb == "update":
            items[n] = _item_error(verb, index, doc_id, ApiError(
                "illegal_argument_exception", "es_infer_nb's _bulk takes index, create and delete actions", 400))
            continue
        pipeline = meta.get("pipeline", default_pipeline)
        if verb != "delete" and pipeline and pipeline != "_none" and source is not None:
            data = {**source, "_index": index, "_id": doc_id, "_version": "-3"}
            by_pipeline.setdefault(pipeline, []).append((n, Doc(data, {"timestamp": ingest_timestamp()})))
    for pipeline_id, entries in by_pipeline.items():
        _run_ingest(engine, pipeline_id, entries, prepared, items, device)
    with engine.lock:
        for n, (verb, index, doc_id, source) in enumerate(prepared):
            if items[n] is None:
                items[n] = _write_one(engine, verb, index, doc_id, source, refresh)
    return [item for item in items if item is not None]


def _run_ingest(engine: "Engine", pipeline_id: str, entries: list[tuple[int, Doc]],
                prepared: list[tuple[str, str | None, str | None, dict[str, Any] | None]],
                items: list[dict[str, Any] | None], device: str | None) -> None:
    with engine.lock:
        stored = engine.pipelines.get(pipeline_id) if pipeline_id in engine.pipelines else None
    if stored is None:
        err = ApiError("illegal_argument_exception", f"pipeline with id [{pipeline_id}] does not exist", 400)
        for n, _ in entries:
            items[n] = _item_error(prepared[n][0], prepared[n][1], prepared[n][2], err)
        return
    pipeline = parse_pipeline(stored, engine, pipeline_id)
    docs = [doc for _, doc in entries]
    failures = run_pipeline(pipeline, docs, Run(engine, False, device=device), pipeline_id)
    for (n, doc), failure in zip(entries, failures):
        verb, index, doc_id, _ = prepared[n]
        if failure is not None:
            items[n] = _item_error(verb, index, doc_id, failure.error)
        elif doc.dropped:
            items[n] = {verb: {"_index": index, "_id": doc_id, "_version": -3, "result": "noop",
                               "_shards": {"total": 0, "successful": 0, "failed": 0}, "status": 200}}
        else:
            new_index = doc.data.get("_index", index)
            new_id = doc.data.get("_id", doc_id)
            prepared[n] = (verb, None if new_index is None else str(new_index),
                           None if new_id is None else str(new_id), doc.source())


def _write_one(engine: "Engine", verb: str, index_name: str | None, doc_id: str | None,
               source: dict[str, Any] | None, refresh: bool) -> dict[str, Any]:
    try:
        if verb == "delete":
            index = engine.indices.get(str(index_name))
            if doc_id is None or doc_id not in index.docs:
                return {verb: {"_index": index.name, "_id": doc_id, "_version": 1, "result": "not_found",
                               "_shards": {"total": 2, "successful": 1, "failed": 0}, "status": 404}}
            del index.docs[doc_id]
            index.seq_no += 1
            version = index.versions[doc_id] + 1
            index.versions[doc_id] = version
            return {verb: {"_index": index.name, "_id": doc_id, "_version": version, "result": "deleted",
                           "_shards": {"total": 2, "successful": 1, "failed": 0}, "_seq_no": index.seq_no,
                           "_primary_term": 1, "status": 200}}
        index = engine.indices.get_or_create(str(index_name))
        check_mapping(index, doc_id, source or {})
        new_id, result, version, seq_no = index.put(doc_id, dict(source or {}), create=verb == "create")
    except ApiError as err:
        return _item_error(verb, index_name, doc_id, err)
    out: dict[str, Any] = {"_index": index.name, "_id": new_id, "_version": version, "result": result}
    if refresh:
        out["forced_refresh"] = True
    out.update({"_shards": {"total": 2, "successful": 1, "failed": 0}, "_seq_no": seq_no, "_primary_term": 1,
                "status": 201 if result == "created" else 200})
    return {verb: out}


def check_mapping(index: Index, doc_id: str | None, source: dict[str, Any]) -> None:
    """A value its mapped type cannot take is the document's ``document_parsing_exception`` (400)."""
    for path, kind in index.mappings.items():
        node: Any = source
        for part in path.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        for value in node if isinstance(node, list) else [node]:
            if value is None or _fits(value, kind):
                continue
            preview = value if isinstance(value, str) else str(value)
            raise ApiError("document_parsing_exception", f"[1:1] failed to parse field [{path}] of type [{kind}] in "
                           f"document with id '{doc_id}'. Preview of field's value: '{preview}'", 400)


def _fits(value: Any, kind: str) -> bool:
    if kind in NUMERIC_TYPES and kind != "date":
        if isinstance(value, bool) or isinstance(value, (dict, list)):
            return False
        if isinstance(value, (int, float)):
            return True
        try:
            float(value)
        except (TypeError, ValueError):
            return False
        return True
    if kind == "boolean":
        return isinstance(value, bool) or value in ("true", "false", "")
    if kind == "date":
        return isinstance(value, (int, str)) and not isinstance(value, bool)
    if kind in ("keyword", "text"):
        return not isinstance(value, (dict, list))
    return True
