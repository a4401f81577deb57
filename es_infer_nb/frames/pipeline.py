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

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..errors import ApiError
from ..ingest.document import MAX_NESTING_DEPTH, nesting_depth_error

if TYPE_CHECKING:  # pragma: no cover
    from ..engine import Engine

DROPPED = "_ingest.dropped"
ERROR_COLUMNS = ("_ingest.error.type", "_ingest.error.reason", "_ingest.error.processor_type",
                 "_ingest.error.processor_tag")
DEFAULT_CHUNK = 50_000


def _is_missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return False


def _plain(value: Any) -> Any:
    """numpy / pandas scalars and arrays as JSON-like Python values (a cell nested deeper than a document
    may be is a ``ValueError``)."""
    if isinstance(value, (dict, list)):  # a cell sits one level down in its document
        too_deep = nesting_depth_error(value, MAX_NESTING_DEPTH - 1)
        if too_deep is not None:
            raise ValueError(f"a value nested deeper than {MAX_NESTING_DEPTH - 1} levels cannot be a document "
                             "field; flatten it or leave it out of the frame")
    return _plain_value(value)


def _plain_value(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return [_plain_value(v) for v in value.tolist()]
    if isinstance(value, (list, tuple)):
        return [_plain_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain_value(v) for k, v in value.items() if not _is_missing(v)}
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value


def frame_sources(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """One ``_source`` per row (dotted columns nested, missing values left out)."""
    columns = [(str(c), c) for c in frame.columns]
    values = [frame[c].tolist() if not isinstance(frame[c], pd.DataFrame) else None for _, c in columns]
    if any(v is None for v in values):
        raise ValueError("the frame has duplicate column names; give every column a unique name")
    sources: list[dict[str, Any]] = []
    for row in range(len(frame)):
        src: dict[str, Any] = {}
        for (name, _), vals in zip(columns, values):
            value = vals[row]  # type: ignore[index]
            if _is_missing(value):
                continue
            parts = name.split(".")
            node = src
            ok = True
            for part in parts[:-1]:
                nxt = node.get(part)
                if nxt is None:
                    nxt = node[part] = {}
                elif not isinstance(nxt, dict):
                    ok = False
                    break
                node = nxt
            if not ok:
                raise ValueError(f"column [{name}] nests under [{'.'.join(parts[:-1])}], which is not an object")
            try:
                node[parts[-1]] = _plain(value)
            except ValueError as err:
                raise ValueError(f"column [{name}], row [{frame.index[row]}]: {err}") from None
        sources.append(src)
    return sources


def _flatten(value: dict[str, Any], prefix: str, out: dict[str, Any], keep: frozenset[str] = frozenset()) -> None:
    """Dotted columns from a source; an input column's own name stays one column (its objects whole)."""
    for key, v in value.items():
        name = f"{prefix}{key}"
        if isinstance(v, dict) and v and name not in keep:
            _flatten(v, name + ".", out, keep)
        else:
            out[name] = v


def _column(values: list[Any]) -> Any:
    """A column from Python values: plain pandas inference for scalars, Arrow for lists/objects."""
    nested = any(isinstance(v, (list, dict)) for v in values)
    if not nested:
        try:
            return pd.Series(values).array
        except UnicodeEncodeError:  # a lone surrogate: Arrow strings cannot hold it, Python objects can
            return np.array(values, dtype=object)
    try:
        import pyarrow as pa

        arr = pa.array(values, from_pandas=True)
        return pd.array(values, dtype=pd.ArrowDtype(arr.type)) if arr.type != pa.null() else values
    except Exception:  # noqa: BLE001 - mixed shapes stay Python objects
        return pd.array(values, dtype=object)


def frame_from_columns(columns: dict[str, Any], index: pd.Index) -> pd.DataFrame:
    """The output frame; a column holding lone surrogates (which Arrow strings cannot) stays Python objects."""
    try:
        return pd.DataFrame(columns, index=index, copy=False)
    except UnicodeEncodeError:
        return pd.DataFrame({name: _series(values, index) for name, values in columns.items()})


def _series(values: Any, index: pd.Index) -> pd.Series:
    try:
        return pd.Series(values, index=index)
    except UnicodeEncodeError:
        return pd.Series(list(values), index=index, dtype=object)


def resolve_pipeline(engine: "Engine", pipeline: Any) -> tuple[Any, str]:
    """A pipeline id (stored) or body (inline) -> (compiled pipeline, the id it runs under)."""
    from ..ingest.pipeline import SIMULATE_PIPELINE_ID, parse_pipeline

    if isinstance(pipeline, str):
        if pipeline not in engine.pipelines:
            raise ApiError("illegal_argument_exception", f"pipeline with id [{pipeline}] does not exist", 400)
        return parse_pipeline(engine.pipelines.get(pipeline), engine, pipeline), pipeline
    if isinstance(pipeline, dict):
        return parse_pipeline(pipeline, engine, SIMULATE_PIPELINE_ID), SIMULATE_PIPELINE_ID
    raise TypeError(f"pipeline must be a pipeline id (str) or a pipeline body (dict), found {type(pipeline).__name__}")


def error_fields(failure: Any) -> dict[str, Any]:
    """The ``_ingest.error.*`` values of a row whose failure escaped the pipeline."""
    err = failure.error.error_object()
    return {"_ingest.error.type": err.get("type"), "_ingest.error.reason": err.get("reason"),
            "_ingest.error.processor_type": failure.processor_type, "_ingest.error.processor_tag": failure.tag}


def run_frame_pipeline(engine: "Engine", frame: pd.DataFrame, pipeline: Any, *,
                       chunk_size: int | None = None, columnar: bool = True) -> pd.DataFrame:
    """``columnar``: run the processors column-at-a-time where they can (same result, much faster;
    ``False`` walks every document, for comparison)."""
    from ..ingest.document import Doc, clone
    from ..ingest.pipeline import Run, run_pipeline
    from ..ingest.simulate import ingest_timestamp

    compiled, pipeline_id = resolve_pipeline(engine, pipeline)
    timestamp = ingest_timestamp()
    if columnar:
        from .columnar import run_frame_columnar

        fast = run_frame_columnar(engine, frame, compiled, pipeline_id, timestamp, chunk_size)
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
        failures = run_pipeline(compiled, docs, Run(engine), pipeline_id)
        for k, (doc, failure) in enumerate(zip(docs, failures)):
            i = start + k
            flat: dict[str, Any] = {}
            if failure is not None:
                errors[i] = error_fields(failure)
                _flatten(part[k], "", flat, keep)
            else:
                dropped[i] = doc.dropped
                _flatten(doc.source(), "", flat, keep)
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
                same = [None if _is_missing(a) else _plain(a) for a in original.tolist()] == values
            except (ValueError, TypeError):  # pragma: no cover - array-valued cells compare oddly
                same = False
            if same:
                out[name] = original.array
                continue
        out[name] = _column(values)
    out[DROPPED] = pd.array(dropped, dtype=bool)
    if any(e is not None for e in errors):
        for col in ERROR_COLUMNS:
            out[col] = _column([e[col] if e is not None else None for e in errors])
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
