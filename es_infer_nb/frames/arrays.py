"""Plain arrays from result columns: embeddings as an ``(n, d)`` float32 matrix, class probabilities
and feature importance as frames (``df.infer.vectors()`` / ``.proba()`` / ``.importance_frame()``).

Every input row gives one output row, in order: a row without a result (missing input, an error, a
failed document) is a row of NaN, never dropped. Arrow columns are read with pyarrow compute (no
Python loop per row); object columns (lists, numpy arrays, dicts) are read value by value.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..models.results import target_prefix

__all__ = ["embedding_column", "importance_classes", "importance_frame", "proba_frame", "result_column",
           "to_vectors"]


def result_column(frame: pd.DataFrame, name: str, target_field: str | None, column: str | None) -> str:
    """``column`` if given (it must exist), else ``<target_field>.<name>`` (``ml.inference.<name>``)."""
    if column is not None:
        if column not in frame.columns:
            raise KeyError(f"column [{column}] is not in the frame; columns: {', '.join(map(str, frame.columns))}")
        return column
    prefix = target_prefix(target_field)
    wanted = f"{prefix}.{name}" if prefix else name
    if wanted not in frame.columns:
        raise KeyError(f"the frame has no [{wanted}] column: run a model with df.infer.run first, or pass "
                       "column= (or target_field=) to name the result column")
    return wanted


def embedding_column(frame: pd.DataFrame, target_field: str | None, column: str | None) -> str:
    """The embedding column of a result frame: ``column``, else ``<target_field>.predicted_value``,
    else the one column holding lists of numbers (``input_output`` results)."""
    if column is not None or target_field is not None:
        return result_column(frame, "predicted_value", target_field, column)
    default = f"{target_prefix(None)}.predicted_value"
    if default in frame.columns:
        return default
    lists = [str(c) for c in frame.columns if _is_vector_dtype(frame[c].dtype)]
    if len(lists) == 1:
        return lists[0]
    if not lists:
        raise KeyError(f"the frame has no [{default}] column and no embedding column; pass column=")
    raise ValueError(f"the frame has {len(lists)} embedding columns ({', '.join(lists)}): pick one with column=")


def _is_vector_dtype(dtype: Any) -> bool:
    if not isinstance(dtype, pd.ArrowDtype):
        return False
    t = dtype.pyarrow_dtype
    return (pa.types.is_list(t) or pa.types.is_fixed_size_list(t) or pa.types.is_large_list(t)) and (
        pa.types.is_floating(t.value_type) or pa.types.is_integer(t.value_type))


def _arrow(values: pd.Series) -> pa.Array | None:
    """The column as one Arrow array (``None`` for an object column pyarrow cannot type)."""
    try:
        if isinstance(values.dtype, pd.ArrowDtype):
            arr = pa.array(values.array)
        else:
            arr = pa.array(values.to_numpy(dtype=object), from_pandas=True)
    except (pa.ArrowException, TypeError, ValueError):
        return None
    return arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr


def to_vectors(values: pd.Series, *, dtype: Any = np.float32) -> np.ndarray:
    """An ``(n, d)`` array of the embeddings in ``values`` (one row per value, NaN for a missing one)."""
    n = len(values)
    arr = _arrow(values)
    if arr is not None and (pa.types.is_list(arr.type) or pa.types.is_fixed_size_list(arr.type)
                            or pa.types.is_large_list(arr.type)):
        if not (pa.types.is_floating(arr.type.value_type) or pa.types.is_integer(arr.type.value_type)
                or pa.types.is_null(arr.type.value_type)):
            raise TypeError(f"column [{values.name}] holds lists of {arr.type.value_type}, not embeddings "
                            "(numbers); sparse embeddings (text_expansion) have no fixed dimension")
        lengths = pc.fill_null(pc.list_value_length(arr), -1).to_numpy(zero_copy_only=False)
        present = lengths >= 0
        dims = set(np.unique(lengths[present]).tolist())
        if len(dims) > 1:
            raise ValueError(f"column [{values.name}] holds vectors of different lengths {sorted(dims)}")
        d = dims.pop() if dims else 0
        out = np.full((n, d), np.nan, dtype=dtype)
        if d:
            flat = pc.list_flatten(arr).to_numpy(zero_copy_only=False)
            out[present] = flat.astype(dtype, copy=False).reshape(-1, d)
        return out
    if arr is not None and arr.null_count == len(arr):
        return np.full((n, 0), np.nan, dtype=dtype)
    rows: list[np.ndarray | None] = []
    for value in values.tolist():
        if value is None or (not hasattr(value, "__len__") and pd.isna(value)):
            rows.append(None)
            continue
        if isinstance(value, (str, bytes, dict)):
            raise TypeError(f"column [{values.name}] holds {type(value).__name__} values, not embeddings")
        rows.append(np.asarray(value, dtype=dtype).reshape(-1))
    sizes = {r.shape[0] for r in rows if r is not None}
    if len(sizes) > 1:
        raise ValueError(f"column [{values.name}] holds vectors of different lengths {sorted(sizes)}")
    d = sizes.pop() if sizes else 0
    out = np.full((n, d), np.nan, dtype=dtype)
    for i, r in enumerate(rows):
        if r is not None:
            out[i] = r
    return out


def _flat_structs(values: pd.Series, what: str) -> tuple[pa.StructArray, np.ndarray] | None:
    """The list-of-struct column flattened, and each element's row number (``None``: no values)."""
    arr = _arrow(values)
    if arr is None or not (pa.types.is_list(arr.type) or pa.types.is_large_list(arr.type)):
        if arr is not None and pa.types.is_null(arr.type):
            return None
        raise TypeError(f"column [{values.name}] is not a {what} column (a list of objects per row)")
    flat = pc.list_flatten(arr)
    if not pa.types.is_struct(flat.type):
        if pa.types.is_null(flat.type):
            return None
        raise TypeError(f"column [{values.name}] is not a {what} column (a list of objects per row)")
    return flat, _parents(arr, len(flat))


def _parents(arr: pa.Array, total: int) -> np.ndarray:
    """The row of each element of ``pc.list_flatten(arr)`` (which skips null rows' slots)."""
    lengths = pc.fill_null(pc.list_value_length(arr), 0).to_numpy(zero_copy_only=False)
    parents = np.repeat(np.arange(len(arr), dtype=np.int64), lengths)
    if len(parents) != total:  # pragma: no cover - pyarrow's flatten contract
        raise RuntimeError("list column flattened to an unexpected length")
    return parents


def _pivot(n: int, index: pd.Index, rows: np.ndarray, keys: list[Any], vals: np.ndarray,
           order: list[Any] | None) -> pd.DataFrame:
    """A frame of ``n`` rows: ``vals[i]`` at (``rows[i]``, ``keys[i]``), NaN elsewhere."""
    names = order if order is not None else list(dict.fromkeys(keys))
    where = {k: j for j, k in enumerate(names)}
    out = np.full((n, len(names)), np.nan)
    cols = np.fromiter((where[k] for k in keys), dtype=np.int64, count=len(keys))
    out[rows, cols] = vals
    frame = pd.DataFrame(out, index=index, columns=pd.Index(names, dtype=object))
    return frame


def proba_frame(values: pd.Series, *, score: str = "class_probability") -> pd.DataFrame:
    """One column per class (``top_classes``' ``class_name``), the ``score`` of each row's classes;
    NaN where a row has no result or did not list that class (``num_top_classes`` below the number
    of classes). Columns in sorted class order."""
    got = _flat_structs(values, "top_classes")
    if got is None:
        return pd.DataFrame(index=values.index)
    flat, parents = got
    names = [f.name for f in flat.type]
    if "class_name" not in names or score not in names:
        raise TypeError(f"column [{values.name}] has no class_name / {score} entries (found {names})")
    keys = flat.field("class_name").to_pylist()
    vals = pc.cast(flat.field(score), pa.float64()).to_numpy(zero_copy_only=False)
    order = sorted(dict.fromkeys(keys), key=lambda k: (str(type(k)), k))
    frame = _pivot(len(values), values.index, parents, keys, vals, order)
    frame.columns.name = "class_name"
    return frame


def importance_frame(values: pd.Series, *, predicted: pd.Series | None = None,
                     class_name: Any = None) -> pd.DataFrame:
    """Rows x features: each row's ``feature_importance`` values (NaN for a feature the row did not
    report, below ``num_top_feature_importance_values``, and for a row without a result).

    Regression: ``importance``. Classification (entries with ``classes``): the importance for
    ``class_name`` when given, else for each row's predicted class (``predicted``, the
    ``predicted_value`` column). Columns ordered by mean ``|importance|``, largest first."""
    got = _flat_structs(values, "feature_importance")
    if got is None:
        return pd.DataFrame(index=values.index)
    flat, parents = got
    fields = [f.name for f in flat.type]
    features = flat.field("feature_name").to_pylist()
    if "importance" in fields:
        vals = pc.cast(flat.field("importance"), pa.float64()).to_numpy(zero_copy_only=False)
        rows, keys = parents, features
    elif "classes" in fields:
        classes = flat.field("classes")
        inner = pc.list_flatten(classes)
        owner = _parents(classes, len(inner))  # the feature entry of each class entry
        names = [str(v) for v in inner.field("class_name").to_pylist()]
        imp = pc.cast(inner.field("importance"), pa.float64()).to_numpy(zero_copy_only=False)
        if class_name is not None:
            wanted = np.full(len(values), str(class_name), dtype=object)
        elif predicted is not None:
            wanted = np.array([None if _missing(v) else str(v) for v in predicted.tolist()], dtype=object)
        else:
            raise ValueError("classification feature importance: pass class_name= (or keep the predicted_value "
                             "column so that each row's predicted class is used)")
        row_of = parents[owner]
        keep = np.array([n == w for n, w in zip(names, wanted[row_of])], dtype=bool)
        if class_name is not None and len(names) and not keep.any():
            raise KeyError(f"class [{class_name}] is not in the feature importance; classes: "
                           f"{', '.join(sorted(set(names)))}")
        rows = row_of[keep]
        vals = imp[keep]
        keys = [features[i] for i in owner[keep]]
    else:
        raise TypeError(f"column [{values.name}] has no importance / classes entries (found {fields})")
    frame = _pivot(len(values), values.index, rows, keys, vals, None)
    if frame.shape[1]:
        order = np.argsort(-np.nan_to_num(np.abs(frame.to_numpy()), nan=0.0).mean(axis=0), kind="stable")
        frame = frame.iloc[:, order]
    frame.columns.name = "feature_name"
    return frame


def importance_classes(values: pd.Series) -> list[str]:
    """The classes a classification ``feature_importance`` column reports (sorted; ``[]`` for regression)."""
    got = _flat_structs(values, "feature_importance")
    if got is None:
        return []
    flat, _ = got
    if "classes" not in [f.name for f in flat.type]:
        return []
    inner = pc.list_flatten(flat.field("classes"))
    names = {str(v) for v in inner.field("class_name").to_pylist() if v is not None}
    return sorted(names)


def _missing(value: Any) -> bool:
    return value is None or (not isinstance(value, (list, dict, str)) and bool(pd.isna(value)))
