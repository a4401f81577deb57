"""Documents and DataFrames as columns, and columns as the model's feature matrix.

A batch is :data:`Columns`: field name -> numpy array of length n. Missing values
are ``None`` in object arrays and NaN in float arrays; a field absent from the dict
is missing on every row. Feature values are coerced to doubles exactly as
Elasticsearch does (spec §2.1): numbers as they are, numeric strings parsed,
everything else (booleans, lists, objects, unparseable strings, null) missing.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import pandas as pd

from ...errors import ApiError

Columns = dict[str, np.ndarray]

_JAVA_FLOAT = re.compile(r"^\s*[+-]?(NaN|Infinity|((\d+\.?\d*|\.\d+)([eE][+-]?\d+)?)[fFdD]?)\s*$")


def java_double_string(value: float) -> str:
    """Java's ``Double.toString``."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "-0.0" if math.copysign(1.0, value) < 0 else "0.0"
    magnitude = abs(value)
    if 1e-3 <= magnitude < 1e7:
        text = repr(float(value))
        if "e" in text or "E" in text:  # repr may still use exponents for some values
            text = f"{value:.17f}".rstrip("0")
        return text if "." in text else text + ".0"
    digits = repr(float(value))  # shortest round-trip digits
    mantissa, _, exponent = digits.partition("e")
    if not exponent:  # repr gave plain digits: build the exponent form ourselves
        sign = "-" if value < 0 else ""
        exp = int(math.floor(math.log10(magnitude)))
        scaled = repr(magnitude / 10**exp)
        mantissa, exponent = sign + scaled, str(exp)
    if "." not in mantissa:
        mantissa += ".0"
    return f"{mantissa}E{int(exponent)}"


def java_string(value: Any) -> str:
    """``String.valueOf`` of a JSON value as Elasticsearch sees it (category matching)."""
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return java_double_string(float(value))
    if isinstance(value, str):
        return value
    if value is None:
        return "null"
    return str(value)


def to_double(value: Any) -> float | None:
    """One feature value as ES coerces it; ``None`` means missing."""
    if value is None or isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    if isinstance(value, str):
        if not _JAVA_FLOAT.match(value):
            return None
        text = value.strip().rstrip("fFdD")
        try:
            return float(text.replace("Infinity", "inf"))
        except ValueError:
            return None
    return None


def dig(doc: Any, path: str) -> Any:
    """ES "dig" lookup: the exact key first, then every split of the dotted path across objects."""
    if not isinstance(doc, dict):
        return None
    if path in doc:
        return doc[path]
    parts = path.split(".")
    for i in range(1, len(parts)):
        head = ".".join(parts[:i])
        if head in doc and isinstance(doc[head], dict):
            found = dig(doc[head], ".".join(parts[i:]))
            if found is not None:
                return found
    return None


def columns_from_docs(docs: list[Any], field_names: list[str]) -> Columns:
    for i, doc in enumerate(docs):
        if not isinstance(doc, dict):
            raise ApiError(
                "illegal_argument_exception",
                f"document [{i}] must be an object of field values but is [{type(doc).__name__}]",
                400,
            )
    cols: Columns = {}
    for name in dict.fromkeys(field_names):
        arr = np.empty(len(docs), dtype=object)
        arr[:] = [dig(d, name) for d in docs]
        cols[name] = arr
    return cols


def _series_column(s: pd.Series) -> np.ndarray:
    dtype = s.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        s = s.astype(object)
        dtype = s.dtype
    if pd.api.types.is_bool_dtype(dtype) and not isinstance(dtype, pd.ArrowDtype) and dtype != object:
        if s.isna().any():
            return _object_column(s)
        return s.to_numpy(dtype=bool)
    if pd.api.types.is_integer_dtype(dtype):
        if s.isna().any():
            return _object_column(s)
        return s.to_numpy(dtype=np.int64)
    if pd.api.types.is_float_dtype(dtype):
        return s.to_numpy(dtype=np.float64, na_value=np.nan)
    return _object_column(s)


def _object_column(s: pd.Series) -> np.ndarray:
    arr = s.to_numpy(dtype=object, na_value=None)
    out = np.empty(len(arr), dtype=object)
    out[:] = [None if (v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA) else _plain(v) for v in arr]
    return out


def _plain(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    return v


def columns_from_frame(df: pd.DataFrame, field_names: list[str]) -> Columns:
    """The frame's columns as arrays; a field that is not a column may resolve inside dict-valued columns."""
    cols: Columns = {}
    for name in dict.fromkeys(field_names):
        if name in df.columns:
            col = df[name]
            if isinstance(col, pd.DataFrame):
                raise ApiError(
                    "illegal_argument_exception",
                    f"column [{name}] appears more than once in the DataFrame; rename the duplicates",
                    400,
                )
            cols[name] = _series_column(col)
            continue
        head = name.split(".")[0]
        candidates = [c for c in df.columns if isinstance(c, str) and (c == head or name.startswith(c + "."))]
        if candidates:
            records = df[candidates].to_dict(orient="records")
            arr = np.empty(len(df), dtype=object)
            arr[:] = [dig(r, name) for r in records]
            cols[name] = arr
    return cols


def missing_mask(arr: np.ndarray) -> np.ndarray:
    if arr.dtype == object:
        return np.fromiter((v is None for v in arr), dtype=bool, count=len(arr))
    if arr.dtype.kind == "f":
        return np.isnan(arr)
    return np.zeros(len(arr), dtype=bool)


def any_present(cols: Columns, field_names: list[str], n: int) -> np.ndarray:
    present = np.zeros(n, dtype=bool)
    for name in field_names:
        if name in cols:
            present |= ~missing_mask(cols[name])
    return present


def to_double_column(arr: np.ndarray) -> np.ndarray:
    if arr.dtype.kind == "b":
        return np.full(len(arr), np.nan)
    if arr.dtype.kind in "iuf":
        return arr.astype(np.float64, copy=False)
    out = np.empty(len(arr), dtype=np.float64)
    for i, v in enumerate(arr):
        if isinstance(v, float) and not isinstance(v, bool):
            out[i] = v
        else:
            d = to_double(v)
            out[i] = np.nan if d is None else d
    return out


def feature_matrix(cols: Columns, feature_names: list[str], n: int) -> np.ndarray:
    x = np.full((n, len(feature_names)), np.nan)
    for j, name in enumerate(feature_names):
        if name in cols:
            x[:, j] = to_double_column(cols[name])
    return x
