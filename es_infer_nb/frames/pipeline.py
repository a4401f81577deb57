"""Ingest pipelines over DataFrames: ``df.infer.pipeline(...)`` and ``df.infer.simulate(...)``.

Each row is one document's ``_source``; a dotted column name (``user.age``) is a nested field, a
missing value (``None`` / ``NaN`` / ``pd.NA``) is an absent field. The documents go through the
same executor as ``_simulate`` (column-at-a-time: one model call per inference processor per
batch), and every input row comes out, in order, with the caller's index:

* the resulting ``_source`` flattened back to dotted columns (lists and objects inside a field,
  e.g. ``top_classes``, become ``pd.ArrowDtype`` columns when Arrow can type them);
* ``_ingest.dropped``: ``True`` for a document a ``drop`` processor dropped (kept, marked);
* for a document whose failure escaped the pipeline: ``_ingest.error.type``,
  ``_ingest.error.reason``, ``_ingest.error.processor_type``, ``_ingest.error.processor_tag``
  (the row keeps its input values). A pipeline's own ``on_failure`` handlers see
  ``_ingest.on_failure_message`` and friends, as in Elasticsearch, and write what they like.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

from ..errors import ApiError
from ..ingest.document import Doc, clone
from ..ingest.pipeline import SIMULATE_PIPELINE_ID, Run, parse_pipeline, run_pipeline
from ..ingest.simulate import ingest_timestamp
from .columnar import run_frame_columnar
from .documents import (DROPPED, ERROR_COLUMNS, error_fields, flatten, frame_from_columns, frame_sources, is_missing,
                        list_column, plain)

if TYPE_CHECKING:  # pragma: no cover
    from ..engine import Engine

DEFAULT_CHUNK = 50_000


def resolve_pipeline(engine: "Engine", pipeline: Any) -> tuple[Any, str]:
    """A pipeline id (stored) or body (inline) -> (compiled pipeline, the id it runs under)."""
    if isinstance(pipeline, str):
        if pipeline not in engine.pipelines:
            raise ApiError("illegal_argument_exception", f"pipeline with id [{pipeline}] does not exist", 400)
        return parse_pipeline(engine.pipelines.get(pipeline), engine, pipeline), pipeline
    if isinstance(pipeline, dict):
        return parse_pipeline(pipeline, engine, SIMULATE_PIPELINE_ID), SIMULATE_PIPELINE_ID
    raise TypeError(f"pipeline must be a pipeline id (str) or a pipeline body (dict), found {type(pipeline).__name__}")


def run_frame_pipeline(engine: "Engine", frame: pd.DataFrame, pipeline: Any, *,
                       chunk_size: int | None = None, columnar: bool = True, device: str | None = None) -> pd.DataFrame:
    """``df.infer.pipeline``. ``columnar``: run the processors column-at-a-time where they can (same
    result, much faster; ``False`` walks every document, for comparison). ``device``: where the
    pipeline's models run when the engine's device would apply (``None``: the engine's); the engine
    itself is left as it is."""
    compiled, pipeline_id = resolve_pipeline(engine, pipeline)
    timestamp = ingest_timestamp()
    if columnar:
        fast = run_frame_columnar(engine, frame, compiled, pipeline_id, timestamp, chunk_size, device)
        if fast is not None:
            return fast
    sources = frame_sources(frame)
    n = len(sources)
    chunk = max(1, int(chunk_size or DEFAULT_CHUNK))
    rows: list[dict[str, Any]] = []
    dropped = [False] * n
    errors: list[dict[str, Any] | None] = [None] * n
    keep = frozenset(str(c) for c in frame.columns)
    for start in range(0, n, chunk):
        part = sources[start:start + chunk]
        docs = []
        for k, src in enumerate(part):
            data = clone(src)  # the input sources stay intact for failed rows
            data["_index"] = "_index"
            data["_id"] = str(frame.index[start + k])
            data["_version"] = "-3"
            docs.append(Doc(data, {"timestamp": timestamp}))
        failures = run_pipeline(compiled, docs, Run(engine, device=device), pipeline_id)
        for k, (doc, failure) in enumerate(zip(docs, failures)):
            i = start + k
            flat: dict[str, Any] = {}
            if failure is not None:
                errors[i] = error_fields(failure)
                flatten(part[k], "", flat, keep)
            else:
                dropped[i] = doc.dropped
                flatten(doc.source(), "", flat, keep)
            rows.append(flat)
    # columns: the input's, in order, then new ones in first-seen order
    # an input column whose field no document has any more (``remove``) is left out
    present = set().union(*(flat.keys() for flat in rows)) if rows else set(keep)
    names: dict[str, None] = {str(c): None for c in frame.columns if str(c) in present}
    for flat in rows:
        for key in flat:
            if key not in names:
                names[key] = None
    out: dict[str, Any] = {}
    for name in names:
        values = [flat.get(name) for flat in rows]
        if name in frame.columns and not isinstance(frame[name], pd.DataFrame):
            # unchanged everywhere: keep the input column (and its dtype) as it was
            original = frame[name]
            try:
                same = [None if is_missing(a) else plain(a) for a in original.tolist()] == values
            except (ValueError, TypeError):  # pragma: no cover - array-valued cells compare oddly
                same = False
            if same:
                out[name] = original.array
                continue
        out[name] = list_column(values)
    out[DROPPED] = pd.array(dropped, dtype=bool)
    if any(e is not None for e in errors):
        for col in ERROR_COLUMNS:
            out[col] = list_column([e[col] if e is not None else None for e in errors])
    result = frame_from_columns(out, frame.index)
    return result


def simulate_body(frame: pd.DataFrame, pipeline: Any = None, *, ids: bool = True) -> dict[str, Any]:
    """The ``_simulate`` request body for the frame: ``{"pipeline": ..., "docs": [{"_id", "_source"}]}``.

    No ``_index`` is written: Elasticsearch's ``_simulate`` defaults it (to ``"_index"``), and a
    request taken to a cluster should not carry a placeholder index name."""
    docs = []
    for label, src in zip(frame.index, frame_sources(frame)):
        entry: dict[str, Any] = {"_id": str(label)} if ids else {}
        entry["_source"] = src
        docs.append(entry)
    body: dict[str, Any] = {}
    if isinstance(pipeline, dict):
        body["pipeline"] = pipeline
    body["docs"] = docs
    return body
