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


def _vector_column(values: list[Any]) -> pa.Array | None:
    """``fixed_size_list<float32>`` when every present value is a flat number list of one length."""
    present = [v for v in values if v is not None]
    if not present or not all(isinstance(v, list) for v in present):
        return None
    width = len(present[0])
    if width == 0 or any(len(v) != width for v in present):
        return None
    if not all(_is_number(v[0]) and _is_number(v[-1]) for v in present):
        return None
    try:
        dense = np.array(present, dtype=np.float32)
    except (TypeError, ValueError):  # a nested or non-numeric element somewhere
        return None
    mask = np.fromiter((v is None for v in values), dtype=bool, count=len(values))
    flat = np.zeros((len(values), width), dtype=np.float32)
    flat[~mask] = dense
    storage = pa.array(flat.reshape(-1), type=pa.float32())
    arr = pa.FixedSizeListArray.from_arrays(storage, width)
    if mask.any():
        arr = pa.FixedSizeListArray.from_arrays(storage, width, mask=pa.array(mask))
    return arr


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


def docs_to_columns(docs: list[dict[str, Any]], target_field: str, index: pd.Index, model_id: str | None = None
                    ) -> dict[str, pd.Series]:
    """Columns ``<target_field>.<key>`` for every key of any row's result (first-seen order)."""
    prefix = f"{target_field}." if target_field else ""
    keys: dict[str, None] = {}
    for doc in docs:
        for key in doc:
            keys.setdefault(key, None)
    if "error" in keys:  # the error column last, after the result columns
        keys.pop("error")
        keys["error"] = None
    cols: dict[str, pd.Series] = {}
    for key in keys:
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
