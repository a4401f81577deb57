"""Result columns and dtypes of a job, declared from the model and pipeline configs (no model runs).

Dask needs every partition's columns up front. They come from the stored configs, and the dtypes
from the pandas path's own renderers run on a stand-in result of the right shape:

* runs (``ddf.infer.run``): what the backend serving the id declares, as
  :mod:`es_infer_nb.backends.columns` describes per kind (tree models, pytorch models, ``_inference``
  endpoints);
* pipelines (``ddf.infer.pipeline``): :mod:`.pipeline_meta` walks the compiled pipeline's processors
  over stand-in values (what each one writes, from the same configs) and types them as the pandas
  pipeline path types its columns (``list<double>`` embeddings, ``str`` labels, ...).

Columns that only some rows produce (``warning``, ``error``, ``is_truncated``, ``top_classes``
when ``num_top_classes`` is set) are always declared; a partition without them gets them as nulls
and every column is cast to its declared dtype (:func:`conform`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa

if TYPE_CHECKING:  # pragma: no cover
    from ..engine import Engine


def run_columns(engine: "Engine", model_id: str, args: dict[str, Any]) -> dict[str, Any]:
    """``{column: dtype}`` of ``df.infer.run(model_id, **args)``'s result columns, from the configs of
    the backend serving ``model_id`` (:mod:`es_infer_nb.backends.columns`)."""
    from ..backends import resolve  # the model code loads when a job is declared, not with the Dask hook

    return resolve(engine, model_id).declared_columns(args)


def run_meta(engine: "Engine", meta: pd.DataFrame, model_id: str, args: dict[str, Any],
             given: Any = None) -> pd.DataFrame:
    """The empty frame ``ddf.infer.run`` declares: the input columns then the result columns (from the
    configs, or ``given``, ``{column: dtype}``, instead)."""
    columns: dict[str, Any] = {str(c): meta[c].dtype for c in meta.columns}
    if given is None:
        results = run_columns(engine, model_id, args)
    else:
        results = _given(given)
    columns.update(results)
    return empty(columns, meta.index)


def pipeline_meta(engine: "Engine", meta: pd.DataFrame, pipeline: Any, given: Any = None) -> pd.DataFrame:
    """The empty frame ``ddf.infer.pipeline`` declares: the input columns, the fields the processors write
    (from the pipeline definition and the model configs, :mod:`.pipeline_meta`), ``_ingest.dropped`` and
    ``_ingest.error.*``; ``given`` (``{column: dtype}``) declares columns on top (or instead)."""
    from .pipeline_meta import pipeline_columns  # the ingest layer (~45 ms): loaded when a job is declared

    columns = pipeline_columns(engine, meta, pipeline)
    if given is not None:
        columns.update(_given(given))
    return empty(columns, meta.index)


def _given(given: Any) -> dict[str, Any]:
    if isinstance(given, pd.DataFrame):
        return {str(c): given[c].dtype for c in given.columns}
    if isinstance(given, dict):
        return {str(k): v for k, v in given.items()}
    raise TypeError(f"meta must be a dict {{column: dtype}} or an empty DataFrame, found {type(given).__name__}")


def empty(columns: dict[str, Any], index: pd.Index) -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series([], dtype=dtype, index=index[:0]) for name, dtype in columns.items()},
                        index=index[:0])


def conform(frame: pd.DataFrame, meta: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with exactly ``meta``'s columns, order and dtypes (missing columns as nulls).

    A column the partition has that ``meta`` does not declare is an error naming it (never dropped)."""
    extra = [str(c) for c in frame.columns if c not in meta.columns]
    if extra:
        raise ValueError(f"the partition has columns the Dask frame does not declare: {extra}; pass "
                         "meta={column: dtype} to ddf.infer.run / ddf.infer.pipeline to declare them")
    if list(frame.columns) == list(meta.columns) and (frame.dtypes == meta.dtypes).all():
        return frame
    out: dict[str, Any] = {}
    for name in meta.columns:
        dtype = meta[name].dtype
        if name not in frame.columns:
            out[name] = _nulls(len(frame), dtype, frame.index)
            continue
        col = frame[name]
        if col.dtype != dtype and _lossless(col, dtype):
            try:
                col = col.astype(dtype)
                if dtype == np.dtype(object) and col.hasnans:  # missing as the pandas path has it in Python objects
                    col = col.where(col.notna(), None)
            except (TypeError, ValueError, pa.ArrowException):
                pass  # kept as the pandas path made it
        out[name] = col
    return pd.DataFrame(out, index=frame.index, copy=False)


def _lossless(col: pd.Series, dtype: Any) -> bool:
    """Whether casting keeps every value: never nulls into numpy booleans or integers (None would become
    False), never numbers or objects into text (1.5 would become "1.5")."""
    if isinstance(dtype, np.dtype) and dtype.kind in "biu":
        return not col.hasnans
    text = isinstance(dtype, pd.ArrowDtype) and pa.types.is_string(dtype.pyarrow_dtype)
    if text or isinstance(dtype, pd.StringDtype):
        return pd.api.types.infer_dtype(col, skipna=True) in ("string", "empty")
    return True


def _nulls(n: int, dtype: Any, index: pd.Index) -> pd.Series:
    if isinstance(dtype, pd.ArrowDtype):
        return pd.Series(pa.nulls(n, dtype.pyarrow_dtype), index=index, dtype=dtype)
    if dtype in (np.dtype(bool), np.dtype(object)):
        return pd.Series(np.full(n, None, dtype=object), index=index)
    return pd.Series(pd.array([None] * n, dtype=dtype), index=index)
