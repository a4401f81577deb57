"""Between frames and documents: one ``_source`` per row (:func:`frame_sources`), a frame back from the
resulting sources (:func:`flatten`, :func:`list_column`, :func:`frame_from_columns`), and the columns every
pipeline run over a frame adds (:data:`DROPPED`, :data:`ERROR_COLUMNS`). The pandas path, the columnar
path and the declared columns of Dask all type values with these."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from ..ingest.document import MAX_NESTING_DEPTH, nesting_depth_error

__all__ = ["DROPPED", "ERROR_COLUMNS", "error_fields", "flatten", "frame_from_columns", "frame_sources",
           "is_missing", "list_column", "plain", "plain_value"]

DROPPED = "_ingest.dropped"
ERROR_COLUMNS = ("_ingest.error.type", "_ingest.error.reason", "_ingest.error.processor_type",
                 "_ingest.error.processor_tag")


def is_missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return False


def plain(value: Any) -> Any:
    """numpy / pandas scalars and arrays as JSON-like Python values (a cell nested deeper than a document
    may be is a ``ValueError``)."""
    if isinstance(value, (dict, list)):  # a cell sits one level down in its document
        too_deep = nesting_depth_error(value, MAX_NESTING_DEPTH - 1)
        if too_deep is not None:
            raise ValueError(f"a value nested deeper than {MAX_NESTING_DEPTH - 1} levels cannot be a document "
                             "field; flatten it or leave it out of the frame")
    return plain_value(value)


def plain_value(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return [plain_value(v) for v in value.tolist()]
    if isinstance(value, (list, tuple)):
        return [plain_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain_value(v) for k, v in value.items() if not is_missing(v)}
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
            if is_missing(value):
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
                node[parts[-1]] = plain(value)
            except ValueError as err:
                raise ValueError(f"column [{name}], row [{frame.index[row]}]: {err}") from None
        sources.append(src)
    return sources


def flatten(value: dict[str, Any], prefix: str, out: dict[str, Any], keep: frozenset[str] = frozenset()) -> None:
    """Dotted columns from a source; an input column's own name stays one column (its objects whole)."""
    for key, v in value.items():
        name = f"{prefix}{key}"
        if isinstance(v, dict) and v and name not in keep:
            flatten(v, name + ".", out, keep)
        else:
            out[name] = v


def list_column(values: list[Any]) -> Any:
    """A column from Python values: plain pandas inference for scalars, Arrow for lists/objects."""
    nested = any(isinstance(v, (list, dict)) for v in values)
    if not nested:
        try:
            return pd.Series(values).array
        except UnicodeEncodeError:  # a lone surrogate: Arrow strings cannot hold it, Python objects can
            return np.array(values, dtype=object)
    try:
        arr = pa.array(values, from_pandas=True)
        return pd.array(values, dtype=pd.ArrowDtype(arr.type)) if arr.type != pa.null() else values
    except Exception:  # noqa: BLE001 - mixed shapes stay Python objects
        return pd.array(values, dtype=object)


def frame_from_columns(columns: dict[str, Any], index: pd.Index) -> pd.DataFrame:
    """The output frame; a column holding lone surrogates (which Arrow strings cannot) stays Python objects."""
    try:
        return pd.DataFrame(columns, index=index, copy=False)
    except UnicodeEncodeError:
        frame = pd.DataFrame({n: _series(values, index) for n, values in enumerate(columns.values())})
        frame.columns = pd.Index(list(columns), dtype=object)  # a name may hold one too (a key from Python)
        return frame


def _series(values: Any, index: pd.Index) -> pd.Series:
    try:
        return pd.Series(values, index=index)
    except UnicodeEncodeError:
        return pd.Series(list(values), index=index, dtype=object)


def error_fields(failure: Any) -> dict[str, Any]:
    """The ``_ingest.error.*`` values of a row whose failure escaped the pipeline."""
    err = failure.error.error_object()
    return {"_ingest.error.type": err.get("type"), "_ingest.error.reason": err.get("reason"),
            "_ingest.error.processor_type": failure.processor_type, "_ingest.error.processor_tag": failure.tag}
