"""``df.infer.pipeline`` column-at-a-time: DataFrame columns in, DataFrame columns out.

:func:`run_frame_columnar` gives exactly the frame :func:`es_infer_nb.frames.pipeline.run_frame_pipeline`
gives document by document (same values, dtypes, failure and ``_ingest.dropped`` columns; new
columns in the order the pipeline creates them), without building a dict per row: the frame's
columns become a :class:`~.columnar_table.Table` (numeric columns shared, not copied), the
pipeline runs over it (:mod:`.columnar`), and the rows handed to the per-document path are merged
back at their positions. Returns ``None`` for a frame or pipeline the columns do not take (the
caller then runs the per-document path).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa

from ..ingest.columnar import run_columnar, worth_it
from ..ingest.columnar_table import Column, Table, is_prefix, object_array, scalar_kind
from ..ingest.pipeline import Pipeline, Run
from .documents import (DROPPED, ERROR_COLUMNS, error_fields, flatten, frame_from_columns, frame_sources, is_missing,
                        list_column, plain)

if TYPE_CHECKING:  # pragma: no cover
    from ..engine import Engine


def table_from_frame(frame: pd.DataFrame) -> Table | None:
    """The frame as a table (dotted names nest; missing values are absent fields), or ``None`` for
    column names the table cannot hold (duplicates, metadata names, a name nesting under another)."""
    names = [str(c) for c in frame.columns]
    if len(set(names)) != len(names) or any(not name or name.startswith("_") or not all(name.split("."))
                                            for name in names):
        return None
    known = set(names)
    if any(".".join(name.split(".")[:j]) in known for name in names for j in range(1, name.count(".") + 1)):
        return None  # ``a`` and ``a.b``: the per-document path decides what a row of both means
    table = Table(len(frame))
    for name, label in zip(names, frame.columns):
        table.cols[name] = _column(frame[label])
    return table


def _column(s: pd.Series) -> Column:
    """One frame column as ``frame_sources`` reads it (``tolist`` values, missing -> absent)."""
    dtype = s.dtype
    n = len(s)
    if isinstance(dtype, np.dtype):
        if dtype.kind == "f":
            values = s.to_numpy(dtype=np.float64)
            return Column(values, ~np.isnan(values), owned=False)
        if dtype.kind == "i" or (dtype.kind == "u" and (n == 0 or int(s.max()) < 2**63)):
            return Column(s.to_numpy(dtype=np.int64), np.ones(n, dtype=bool), owned=False)
        if dtype.kind == "b":
            return Column(s.to_numpy(dtype=bool), np.ones(n, dtype=bool), owned=False)
    elif isinstance(dtype, pd.StringDtype):
        missing = s.isna().to_numpy(dtype=bool)
        if getattr(dtype, "storage", None) == "pyarrow" and not missing.any():
            arrow = pa.array(s.array)  # the frame's own buffers; Python strings only when asked for
            return Column(None, ~missing, strings=True, arrow=arrow)
        return Column(s.to_numpy(dtype=object, na_value=None), ~missing, strings=True)
    raw = s.tolist()
    present = np.fromiter((not is_missing(v) for v in raw), dtype=bool, count=n)
    values: list[Any] = []
    for row, (v, p) in enumerate(zip(raw, present.tolist())):
        try:
            values.append(plain(v) if p else None)
        except ValueError as err:  # as ``frame_sources`` says it
            raise ValueError(f"column [{s.name}], row [{s.index[row]}]: {err}") from None
    return Column(object_array(values), present)


def run_frame_columnar(engine: "Engine", frame: pd.DataFrame, compiled: Pipeline, pipeline_id: str,
                       timestamp: str, chunk_size: int | None = None, device: str | None = None) -> pd.DataFrame | None:
    """The whole frame goes through the columns at once; ``chunk_size`` documents at a time go
    through the per-document path, for rows handed to it; models run on ``device`` where the
    engine's would apply (:class:`~es_infer_nb.ingest.pipeline.Run`)."""
    if not worth_it(compiled) or len(frame) == 0:
        return None
    table = table_from_frame(frame)
    if table is None:
        return None
    originals = dict(table.cols)
    initial = {name: _snapshot(col) for name, col in table.cols.items()}
    labels = frame.index

    def metadata(idx: np.ndarray) -> list[dict[str, Any]]:
        return [{"_index": "_index", "_id": str(labels[i]), "_version": "-3"} for i in idx.tolist()]

    result = run_columnar(compiled, table, Run(engine, device=device), pipeline_id, metadata=metadata,
                          ingest={"timestamp": timestamp}, chunk_size=chunk_size)
    return _output(frame, initial, originals, result)


def _snapshot(col: Column) -> Column:
    """The column as the input had it (values copied where the run may change them in place)."""
    if col.kind == "O" and col.owned and col.arrow is None:
        return Column(col.values.copy(), col.present.copy())
    return Column(col._values, col.present.copy(), arrow=col.arrow)


def _output(frame: pd.DataFrame, initial: dict[str, Column], originals: dict[str, Column],
            result: Any) -> pd.DataFrame:
    n = len(frame)
    table: Table = result.table
    keep = frozenset(str(c) for c in frame.columns)
    flats: dict[int, dict[str, Any]] = {}
    failed = [i for i in sorted(result.docs) if result.failures[i] is not None]
    for i, src in zip(failed, frame_sources(frame.iloc[failed]) if failed else []):
        flatten(src, "", flats.setdefault(i, {}), keep)
    for i in sorted(result.docs):
        if i not in flats:
            flatten(result.docs[i].source(), "", flats.setdefault(i, {}), keep)
    # an input column's objects stay whole: rows with fields under one leave the columns
    whole = np.zeros(n, dtype=bool)
    for name, col in table.cols.items():
        if any(is_prefix(k, name) for k in keep):
            whole |= col.present
    if whole.any():
        idx = np.flatnonzero(whole)
        for i, src in zip(idx.tolist(), table.sources(idx)):
            flatten(src, "", flats.setdefault(i, {}), keep)
        for col in table.cols.values():
            col.present[idx] = False
    rows = np.asarray(sorted(flats), dtype=np.int64)
    live = {name for name, col in table.cols.items() if col.present.any()}
    seen: dict[str, None] = {}
    for i in rows.tolist():
        seen.update(dict.fromkeys(flats[i]))
    present = live | set(seen)
    names = [name for name in keep_order(frame) if name in present]
    names += [name for name in table.cols if name in live and name not in keep]
    names += [name for name in seen if name not in keep and name not in live]
    out: dict[str, Any] = {}
    for name in names:
        col = table.cols.get(name)
        untouched = name not in table.touched and col is not None and col is originals.get(name)
        out[name] = _assemble(name, col, initial.get(name), untouched, flats, rows, frame, list_column)
    dropped = result.dropped.copy()
    for i, doc in result.docs.items():
        dropped[i] = doc.dropped and result.failures[i] is None
    out[DROPPED] = pd.array(dropped, dtype=bool)
    if failed:
        errors: list[dict[str, Any] | None] = [None] * n
        for i in failed:
            errors[i] = error_fields(result.failures[i])
        for col in ERROR_COLUMNS:
            out[col] = list_column([e[col] if e is not None else None for e in errors])
    return frame_from_columns(out, frame.index)  # arrays are ours or the input's (copy on write)


def keep_order(frame: pd.DataFrame) -> list[str]:
    return [str(c) for c in frame.columns]


def _assemble(name: str, col: Column | None, init: Column | None, untouched: bool, flats: dict[int, dict[str, Any]],
              rows: np.ndarray, frame: pd.DataFrame, list_column: Any) -> Any:
    """One output column: the table's values, the per-document rows' values at their positions,
    typed as ``_column`` types the same values (an input column equal to its input stays as it was)."""
    n = len(frame)
    over = [flats[i].get(name) for i in rows.tolist()]
    if col is None:
        values, present = np.full(n, None, dtype=object), np.zeros(n, dtype=bool)
    else:
        values, present = col.values, col.present
    if rows.size:
        kind = values.dtype.kind
        if kind != "O" and all(v is None or scalar_kind(v) == kind for v in over):
            values, present = values.copy(), present.copy()
            for i, v in zip(rows.tolist(), over):
                present[i] = v is not None
                if v is not None:
                    values[i] = v
        else:
            values = _objects(values, present)
            present = present.copy()
            for i, v in zip(rows.tolist(), over):
                values[i] = v
                present[i] = v is not None
    if init is not None and name in frame.columns and _same(values, present, init, untouched, rows, over):
        return frame[name].array
    kind = values.dtype.kind
    if kind == "f":
        return np.where(present, values, np.nan)
    if kind == "i":
        return values if present.all() else np.where(present, values.astype(np.float64), np.nan)
    if kind == "b" and present.all():
        return values
    if col is not None and col.consts is not None and not rows.size and _STR is not None:
        return _constants(values, present, col.consts)
    objects = _objects(values, present)
    inferred = pd.api.types.infer_dtype(objects, skipna=True)
    if inferred == "string" and _STR is not None:
        try:
            return pd.array(objects, dtype=_STR)
        except UnicodeEncodeError:  # a lone surrogate: Arrow strings cannot hold it
            return objects
    if inferred in ("floating", "integer", "mixed-integer-float", "boolean", "decimal"):
        return pd.Series(objects.tolist()).array  # ``_column``'s own inference, without its list/dict scan
    return list_column(objects.tolist())


def _string_dtype() -> Any:
    dtype = pd.Series(["a"]).array.dtype
    return dtype if isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow" else None


#: the dtype pandas infers for a list of strings (``str``, Arrow-backed), or None when it infers another
_STR = _string_dtype()


def _constants(values: np.ndarray, present: np.ndarray, consts: frozenset[str]) -> Any:
    """A column of a few distinct strings (and missing values), as pandas would infer it, built by
    taking from the distinct values instead of converting a million Python strings."""
    texts = sorted(consts)
    n = values.shape[0]
    if len(texts) == 1:  # one string where present: the Arrow buffers directly
        data = texts[0].encode("utf-8")
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(present * len(data), out=offsets[1:])
        validity = None if present.all() else pa.array(present).buffers()[1]
        arr = pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data * int(present.sum())),
                                               validity, n - int(present.sum()))
        return pd.array(arr, dtype=_STR)
    codes = np.full(n, -1, dtype=np.int64)
    for k, text in enumerate(texts):
        codes[present & (values == text)] = k
    taken = pa.array(texts, type=pa.large_string()).take(pa.array(codes, mask=codes < 0))
    return pd.array(taken, dtype=_STR)


def _objects(values: np.ndarray, present: np.ndarray) -> np.ndarray:
    out = values.astype(object) if values.dtype != object else values.copy()
    out[~present] = None
    return out


def _same(values: np.ndarray, present: np.ndarray, init: Column, untouched: bool, rows: np.ndarray,
          over: list[Any]) -> bool:
    """Whether the column's final values equal its input ones (Python ``==``, missing equal to missing)."""
    if untouched:  # only the per-document rows can differ
        before = _objects(init.values[rows], init.present[rows]).tolist() if rows.size else []
        return before == over
    shown = present & ~np.equal(values, None) if values.dtype == object else present
    if values.dtype.kind == init.kind and values.dtype.kind != "O":
        return bool(np.array_equal(shown, init.present) and np.array_equal(values[shown], init.values[shown]))
    for start in range(0, values.shape[0], 4096):  # stops at the first difference
        stop = start + 4096
        after = _objects(values[start:stop], present[start:stop]).tolist()
        if init._values is None:  # Arrow strings, every row present
            before = init.arrow.slice(start, stop - start).to_pylist()
        else:
            before = _objects(init.values[start:stop], init.present[start:stop]).tolist()
        if after != before:
            return False
    return True
