"""Per-document Elasticsearch result objects -> DataFrame columns named by the ES field path.

NLP results (``_infer``'s ``inference_results`` entries) become one column per key under the
target field, Arrow-typed so they survive a Parquet round trip:

* a list of numbers of the same length in every row (``text_embedding``) -> ``fixed_size_list<float32>``;
* a map of token -> weight (``text_expansion``) -> ``map<string, float32>``;
* other lists / objects (``entities``, ``top_classes``, ``pass_through`` tensors) -> the Arrow type
  pyarrow infers; strings -> ``string``; numbers -> float64 (NaN where missing); booleans -> bool.

Rows whose result is an error carry nulls and the message in ``<target>.error``; every row is kept.
"""

from __future__ import annotations

import json
from numbers import Number
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa


def _is_number(v: Any) -> bool:
    return isinstance(v, Number) and not isinstance(v, bool)


def _dense_vectors(values: list[Any], exact: bool = False) -> tuple[np.ndarray, np.ndarray] | None:
    """``(missing, rows)`` when every present value is a flat number list of one length: the rows
    missing (``None``) and a float32 ``(rows, width)`` matrix (zeros where missing); else ``None``.
    ``exact``: only float lists that float32 holds exactly (an int list keeps its ints in the JSON text
    a mixed column writes; the lists here are tensors' ``tolist()``, of one element type each: their
    first and last elements tell it), read once as float64 and checked against their float32 rows."""
    present = [v for v in values if v is not None]
    if not present or not all(isinstance(v, list) for v in present):
        return None
    width = len(present[0])
    if width == 0 or any(len(v) != width for v in present):
        return None
    ends = (lambda v: type(v[0]) is float and type(v[-1]) is float) if exact else (
        lambda v: _is_number(v[0]) and _is_number(v[-1]))
    if not all(ends(v) for v in present):
        return None
    try:
        dense = np.array(present, dtype=np.float64 if exact else np.float32)
    except (TypeError, ValueError):  # a nested or non-numeric element somewhere
        return None
    if dense.ndim != 2:
        return None
    if exact:
        wide, dense = dense, dense.astype(np.float32)
        if not np.array_equal(dense, wide):  # compared in float64: a value float32 rounds fails
            return None
    missing = np.fromiter((v is None for v in values), dtype=bool, count=len(values))
    flat = np.zeros((len(values), width), dtype=np.float32)
    flat[~missing] = dense
    return missing, flat


def _fixed_size_vectors(missing: np.ndarray, flat: np.ndarray) -> pa.Array:
    storage = pa.array(flat.reshape(-1), type=pa.float32())
    if missing.any():
        return pa.FixedSizeListArray.from_arrays(storage, flat.shape[1], mask=pa.array(missing))
    return pa.FixedSizeListArray.from_arrays(storage, flat.shape[1])


def _vector_column(values: list[Any]) -> pa.Array | None:
    """``fixed_size_list<float32>`` when every present value is a flat number list of one length."""
    dense = _dense_vectors(values)
    return None if dense is None else _fixed_size_vectors(*dense)


def _weights_column(values: list[Any]) -> pa.Array | None:
    """``map<string, float32>`` when every present value is an object of numbers."""
    present = [v for v in values if v is not None]
    if not present or not all(isinstance(v, dict) and all(_is_number(x) for x in v.values()) for v in present):
        return None
    typ = pa.map_(pa.string(), pa.float32())
    return pa.array([None if v is None else list(v.items()) for v in values], type=typ)


def column(values: list[Any], index: pd.Index) -> pd.Series:
    """One result key's values over the rows (``None`` where absent) as a typed Series."""
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, bool) for v in present):
        arr = pa.array(values, type=pa.bool_())
        return pd.Series(arr, index=index, dtype=pd.ArrowDtype(arr.type))
    if present and all(_is_number(v) for v in present):
        return pd.Series(np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64), index=index)
    arr = _vector_column(values)
    if arr is None:
        arr = _weights_column(values)
    if arr is None:
        try:
            arr = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed shapes across rows: keep each row as JSON text
            arr = pa.array([None if v is None else json.dumps(v, ensure_ascii=False) for v in values],
                           type=pa.string())
    if pa.types.is_null(arr.type):
        arr = arr.cast(pa.string())
    return pd.Series(arr, index=index, dtype=pd.ArrowDtype(arr.type))


def _ordered(keys: dict[str, None]) -> list[str]:
    """Result keys in first-seen order, the error column last (after the result columns)."""
    return [k for k in keys if k != "error"] + (["error"] if "error" in keys else [])


def docs_to_columns(docs: list[dict[str, Any]], target_field: str, index: pd.Index, model_id: str | None = None,
                    packed: dict[str, pa.Array] | None = None, keys: dict[str, None] | None = None
                    ) -> dict[str, pd.Series]:
    """Columns ``<target_field>.<key>`` for every key of any row's result (first-seen order); ``packed``:
    columns already built for keys the docs no longer hold, placed in ``keys``' order (see :class:`RunResults`)."""
    prefix = f"{target_field}." if target_field else ""
    seen: dict[str, None] = dict(keys or {})
    for doc in docs:
        for key in doc:
            seen.setdefault(key, None)
    cols: dict[str, pd.Series] = {}
    for key in _ordered(seen):
        if packed is not None and key in packed:
            arr = packed[key]
            cols[prefix + key] = pd.Series(arr, index=index, dtype=pd.ArrowDtype(arr.type))
            continue
        values = [doc.get(key) for doc in docs]
        cols[prefix + key] = column(values, index)
    if model_id is not None:
        cols[prefix + "model_id"] = pd.Series(
            pa.repeat(pa.scalar(model_id, type=pa.string()), len(docs)), index=index,
            dtype=pd.ArrowDtype(pa.string()),
        )
    return cols


def error_mask(docs: list[dict[str, Any]]) -> np.ndarray:
    return np.fromiter(("error" in d for d in docs), dtype=bool, count=len(docs))


class DocsResult:
    """Results of a batch as one ES result object per document (errors as ``{"error": msg}``)."""

    def __init__(self, model_id: str, docs: list[dict[str, Any]]) -> None:
        self.model_id = model_id
        self.docs = docs

    def __len__(self) -> int:
        return len(self.docs)

    def to_docs(self) -> list[dict[str, Any]]:
        return self.docs

    @property
    def error_mask(self) -> np.ndarray:
        return error_mask(self.docs)

    def to_columns(self, target_field: str, index: pd.Index) -> dict[str, pd.Series]:
        return docs_to_columns(self.docs, target_field, index, self.model_id)


class RunResults(DocsResult):
    """A run's results gathered chunk by chunk (:meth:`extend`), with each chunk's flat float vectors
    (``text_embedding``'s ``predicted_value``) taken out of the result objects as soon as the chunk
    comes and kept as float32 rows: 4 bytes a number instead of a Python float object in a list (a
    384-number embedding ~1.5 KB a row instead of ~12 KB: a frame of a million texts would otherwise
    hold ~12 GB of floats before its column is built). Lossless: a chunk's vectors are kept so only
    where float32 holds every value exactly, and :meth:`to_columns` (and :meth:`to_docs`) give exactly what
    :class:`DocsResult` gives over the plain result objects — where the whole run does not make a
    ``fixed_size_list<float32>`` column of a key (vectors of another width in another chunk, another
    kind of value), that key's lists are put back first."""

    def __init__(self, model_id: str) -> None:
        super().__init__(model_id, [])
        self._keys: dict[str, None] = {}  # every key seen, first-seen order
        self._packed: dict[str, list[tuple[int, np.ndarray, np.ndarray]]] = {}  # key -> (first row, missing, rows)
        self._unpackable: set[str] = set()  # keys some chunk holds other values of: never packed

    def extend(self, part: list[dict[str, Any]]) -> None:
        start = len(self.docs)
        candidates: dict[str, None] = {}
        for doc in part:
            for key, value in doc.items():
                self._keys.setdefault(key, None)
                if type(value) is list and key not in self._unpackable:
                    candidates.setdefault(key, None)
        taken: set[str] = set()
        for key in candidates:
            values = [doc.get(key) for doc in part]
            dense = _dense_vectors(values, exact=True)
            # a key present as None would come back absent: such a key stays in the objects
            if dense is None or any(
                    key in doc and doc[key] is None for doc in part):
                self._unpack(key)
                continue
            widths = {rows.shape[1] for _, _, rows in self._packed.get(key, [])}
            if widths and widths != {dense[1].shape[1]}:  # another width: a list column in the end
                self._unpack(key)
                continue
            self._packed.setdefault(key, []).append((start, *dense))
            taken.add(key)
        if taken:  # new objects: the deployment's cache may hold the ones it answered with
            part = [{k: v for k, v in doc.items() if k not in taken} for doc in part]
        self.docs.extend(part)

    def _unpack(self, key: str) -> None:
        """Put ``key``'s packed vectors back into the result objects, as the lists they were."""
        self._unpackable.add(key)
        for start, missing, rows in self._packed.pop(key, []):
            for i, (gone, row) in enumerate(zip(missing.tolist(), rows)):
                if not gone:
                    self.docs[start + i][key] = row.tolist()

    def _settle(self) -> None:
        """Unpack the keys some chunk holds other values of (not vectors, or none where another chunk's
        rows have them: those rows are ``None`` either way, so only other values count)."""
        for key in list(self._packed):
            if any(key in doc for doc in self.docs):
                self._unpack(key)

    def to_docs(self) -> list[dict[str, Any]]:
        for key in list(self._packed):
            self._unpack(key)
        return self.docs

    def to_columns(self, target_field: str, index: pd.Index) -> dict[str, pd.Series]:
        self._settle()
        packed: dict[str, pa.Array] = {}
        for key, blocks in self._packed.items():
            missing = np.ones(len(self.docs), dtype=bool)
            flat = np.zeros((len(self.docs), blocks[0][2].shape[1]), dtype=np.float32)
            for start, gone, rows in blocks:
                missing[start:start + len(gone)] = gone
                flat[start:start + len(gone)] = rows
            packed[key] = _fixed_size_vectors(missing, flat)
        return docs_to_columns(self.docs, target_field, index, self.model_id, packed=packed, keys=self._keys)

