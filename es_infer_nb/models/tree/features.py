"""Documents and DataFrames as columns, and columns as the model's feature matrix.

A batch is :data:`Columns`: field name -> numpy array of length n. Missing values
are ``None`` in object arrays and NaN in float arrays (a float NaN found inside an
object array is treated as missing too); int and bool arrays have no missing
values, and a field absent from the dict is missing on every row.

Feature values are coerced to doubles exactly as Elasticsearch does (spec §2.1,
``InferenceHelpers.toDouble``): numbers as they are, strings parsed with Java's
``Double.valueOf`` (empty or unparseable -> missing), everything else (booleans,
lists, objects, null) missing. Category matching (preprocessors) uses Java's
``String.valueOf`` of the value, see :func:`java_string`.

Everything works a column at a time; object columns get one tight per-element pass
only where the element types are mixed (``pandas.api.types.infer_dtype`` decides).
"""

from __future__ import annotations

import math
import re
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from numbers import Number
from typing import Any, Iterable

import numpy as np
import pandas as pd
from pandas.api.types import infer_dtype

from ...errors import illegal_argument

Columns = dict[str, np.ndarray]

__all__ = [
    "Columns",
    "any_present",
    "columns_from_docs",
    "columns_from_frame",
    "dig",
    "feature_matrix",
    "java_double_string",
    "java_string",
    "missing_mask",
    "parse_java_double",
    "to_double",
    "to_double_column",
]


# -- Java formatting ---------------------------------------------------------------------------

def java_double_string(value: float) -> str:
    """Java's ``Double.toString`` (shortest round-trip digits, JDK 19+ algorithm).

    ``1e-3 <= |v| < 1e7`` is written as a plain decimal with at least one fractional
    digit (``3.0``, ``0.001``, ``1234567.5``); anything else in computerized scientific
    notation (``1.0E7``, ``1.0E-4``, ``-1.2345E20``).
    """
    value = float(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0.0:
        return "-0.0" if math.copysign(1.0, value) < 0 else "0.0"
    sign = "-" if value < 0 else ""
    magnitude = abs(value)
    # shortest digits that round-trip (Python's repr uses the same criterion as Java 19+)
    mantissa, _, exp_text = repr(magnitude).partition("e")
    whole, _, frac = mantissa.partition(".")
    if exp_text:  # repr's scientific form: one non-zero digit before the point
        sci = int(exp_text)
        digits = whole + frac
    elif whole != "0":
        sci = len(whole) - 1
        digits = whole + frac
    else:
        significant = frac.lstrip("0")
        sci = len(significant) - len(frac) - 1
        digits = significant
    digits = digits.rstrip("0") or "0"
    if len(digits) == 1 and magnitude < 1e-300:
        # Java (JDK 19+) picks, when one digit would do, the 2-digit decimal closest to the
        # exact value: Double.MIN_VALUE -> "4.9E-324" where Python says "5e-324". Only the
        # low-precision subnormals can tell the two apart.
        with localcontext() as ctx:
            ctx.prec = 800  # the exact binary value has at most 767 significant digits
            exact = Decimal(magnitude)
            sci = exact.adjusted()
            two = int(exact.scaleb(1 - sci).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
        if two >= 100:
            two, sci = 10, sci + 1
        digits = str(two).rstrip("0")
    if 1e-3 <= magnitude < 1e7:
        if sci >= 0:
            whole = digits[: sci + 1].ljust(sci + 1, "0")
            frac = digits[sci + 1 :] or "0"
            return f"{sign}{whole}.{frac}"
        return f"{sign}0.{'0' * (-sci - 1)}{digits}"
    return f"{sign}{digits[0]}.{digits[1:] or '0'}E{sci}"


def java_string(value: Any) -> str:
    """``String.valueOf`` of a JSON value as Elasticsearch sees it (category matching).

    int -> ``"3"``, float -> Java ``Double.toString`` (``"3.0"``, ``"1.0E10"``),
    bool -> ``"true"``/``"false"``, str unchanged, null -> ``"null"``, lists as Java's
    ``[a, b]`` and objects as ``{k=v, ...}``. numpy scalars are treated like the
    Python value they hold.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return java_double_string(float(value))
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{java_string(k)}={java_string(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple, np.ndarray)):
        return "[" + ", ".join(java_string(v) for v in value) + "]"
    return str(value)


# -- Java Double.valueOf ------------------------------------------------------------------------

# FloatingDecimal grammar: optional sign, NaN | Infinity | decimal | hex, optional f/F/d/D suffix
_JAVA_DECIMAL = re.compile(r"[+-]?(?:NaN|Infinity|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?[fFdD]?)", re.ASCII)
_JAVA_HEX = re.compile(r"([+-]?)0[xX]((?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)[pP][+-]?\d+)[fFdD]?", re.ASCII)
_JAVA_TRIM = "".join(chr(i) for i in range(33))  # String.trim() strips every char <= ' '
_PLAIN_NUMBER_CHARS = "0123456789.eE+-"


def parse_java_double(text: str) -> float | None:
    """``Double.valueOf(text)``; ``None`` where Java throws ``NumberFormatException``.

    Surrounding whitespace / control characters are ignored; accepts ``NaN``,
    ``Infinity``, an optional ``f``/``F``/``d``/``D`` suffix and hex floats (``0x1.8p1``).
    Rejects what only Python accepts (``inf``, ``1_000``, ``nan``).
    """
    if text and not text.strip(_PLAIN_NUMBER_CHARS):
        # only digits . e E + -: Python's float() accepts exactly what Java accepts here
        try:
            return float(text)
        except ValueError:
            return None
    s = text.strip(_JAVA_TRIM)
    if not s:
        return None
    if _JAVA_DECIMAL.fullmatch(s):
        if s.endswith("Infinity"):
            return -math.inf if s[0] == "-" else math.inf
        if s.endswith("NaN"):
            return math.nan
        if s[-1] in "fFdD":
            s = s[:-1]
        return float(s)
    hexed = _JAVA_HEX.fullmatch(s)
    if hexed:
        sign, body = hexed.groups()
        try:
            return float.fromhex(sign + "0x" + body)
        except OverflowError:
            return -math.inf if sign == "-" else math.inf
    return None


def _parse_java_double(text: str) -> float:
    value = parse_java_double(text)
    return math.nan if value is None else value


def _number_to_double(value: Any) -> float:
    try:
        return float(value)
    except OverflowError:  # BigInteger.doubleValue() saturates to +-Infinity
        return math.inf if value > 0 else -math.inf
    except (TypeError, ValueError):
        return math.nan


def _element_to_double(value: Any) -> float:
    kind = type(value)
    if kind is float:
        return value
    if kind is str:
        return _parse_java_double(value)
    if kind is int:
        return _number_to_double(value)
    if value is None or isinstance(value, (bool, np.bool_)):
        return math.nan
    if isinstance(value, str):
        return _parse_java_double(value)
    if isinstance(value, (Number, np.number)):
        return _number_to_double(value)
    return math.nan  # lists, dicts, anything else: not a number -> missing


def to_double(value: Any) -> float | None:
    """One raw feature value as ES coerces it before tree evaluation; ``None`` = missing.

    NaN (a NaN number or the string ``"NaN"``) is reported as missing too, which is how
    the trees treat it.
    """
    d = _element_to_double(value)
    return None if math.isnan(d) else d


def _strings_to_double(arr: np.ndarray) -> np.ndarray:
    """Parse an array of str / None (no other types) via its unique values."""
    codes, uniques = pd.factorize(arr)
    table = np.fromiter((_parse_java_double(u) for u in uniques), dtype=np.float64, count=len(uniques))
    table = np.append(table, np.nan)  # code -1 (missing) -> last slot
    return table[codes]


def to_double_column(arr: np.ndarray) -> np.ndarray:
    """A column as float64 with ES coercion (spec §2.1 step 5); NaN = missing.

    Numbers -> double; numeric strings parsed (Java ``Double.valueOf``: surrounding
    whitespace allowed, ``1e3``, ``5d``, hex floats); empty / unparseable strings,
    booleans, lists, objects and None -> NaN. A bool array is all NaN.
    """
    arr = np.asarray(arr)
    kind = arr.dtype.kind
    if kind == "f":
        return arr.astype(np.float64, copy=False)
    if kind in "iu":
        return arr.astype(np.float64)
    if kind == "b" or kind in "mM":
        return np.full(arr.shape[0], np.nan)
    if kind == "U":
        return _strings_to_double(arr.astype(object))
    if kind == "S":
        return _strings_to_double(arr.astype("U").astype(object))
    if kind != "O":
        return np.full(arr.shape[0], np.nan)
    inferred = infer_dtype(arr, skipna=True)
    if inferred in ("empty", "boolean"):
        return np.full(arr.shape[0], np.nan)
    if inferred == "string":
        return _strings_to_double(arr)
    if inferred in ("floating", "integer", "mixed-integer-float"):
        missing = pd.isna(arr)
        try:
            if not missing.any():
                return arr.astype(np.float64)
            out = np.full(arr.shape[0], np.nan)
            out[~missing] = arr[~missing].astype(np.float64)
            return out
        except (OverflowError, TypeError, ValueError):
            pass  # e.g. an int beyond the double range: per element below
    return np.fromiter(map(_element_to_double, arr), dtype=np.float64, count=arr.shape[0])


# -- dig ----------------------------------------------------------------------------------------

def dig(doc: Any, path: str) -> Any:
    """ES ``MapHelper.dig``: the exact key first, then every split of the dotted path.

    ``a.b.c`` matches ``{"a.b.c": 1}``, ``{"a": {"b.c": 1}}``, ``{"a.b": {"c": 1}}`` and
    ``{"a": {"b": {"c": 1}}}``. Depth-first, longer keys first, as upstream; ``None``
    when nothing non-null is found.
    """
    if not isinstance(doc, dict):
        return None
    found = doc.get(path)
    if found is not None:
        return found
    if "." not in path:
        return None
    fields = path.split(".")
    total = len(fields)
    stack: list[tuple[dict, int]] = [(doc, 0)]
    while stack:
        current, start = stack.pop()
        candidate = None
        for end in range(start + 1, total + 1):
            candidate = ".".join(fields[start:end])
            nxt = current.get(candidate)
            if end == total and nxt is not None:
                return nxt
            if isinstance(nxt, dict):
                stack.append((nxt, end))
        if candidate is not None:
            val = current.get(candidate)
            if val is not None:
                return val
    return None


# -- building columns ---------------------------------------------------------------------------

def _object_array(values: Iterable[Any], n: int) -> np.ndarray:
    arr = np.empty(n, dtype=object)
    arr[:] = values if isinstance(values, list) else list(values)
    return arr


def _nulls_to_none(arr: np.ndarray) -> np.ndarray:
    """NaN / pd.NA / NaT inside an object array -> None (in place on our own array)."""
    if arr.shape[0]:
        mask = pd.isna(arr)
        if mask.any():
            arr[mask] = None
    return arr


def columns_from_docs(docs: list[Any], field_names: list[str]) -> Columns:
    """Object columns of the values ``dig`` finds for each field (null / NaN -> None).

    Raises ``illegal_argument_exception`` (400) when a document is not an object.
    """
    for i, doc in enumerate(docs):
        if not isinstance(doc, dict):
            kind = "null" if doc is None else type(doc).__name__
            raise illegal_argument(
                f"document [{i}] must be an object (a map of field names to values) but was [{kind}]"
            )
    n = len(docs)
    cols: Columns = {}
    for name in dict.fromkeys(field_names):
        if "." in name:
            values = [dig(d, name) for d in docs]
        else:
            values = [d.get(name) for d in docs]
        cols[name] = _nulls_to_none(_object_array(values, n))
    return cols


def _series_column(s: pd.Series) -> np.ndarray:
    """One DataFrame column as a Columns array (typed where possible)."""
    dtype = s.dtype
    n = len(s)
    if isinstance(dtype, pd.CategoricalDtype):
        cat = s.array
        codes = np.asarray(cat.codes)
        cats = np.empty(len(cat.categories) + 1, dtype=object)
        cats[:-1] = _series_column(pd.Series(cat.categories)).tolist() if len(cat.categories) else []
        cats[-1] = None
        return cats[codes]  # code -1 -> the trailing None
    if isinstance(dtype, np.dtype):
        kind = dtype.kind
        if kind == "b":
            return s.to_numpy(dtype=bool)
        if kind in "iu":
            return s.to_numpy()
        if kind == "f":
            return s.to_numpy(dtype=np.float64)
        if kind == "O":
            return _nulls_to_none(s.to_numpy(dtype=object, copy=True))
    # extension dtypes: str, nullable Int/Float/boolean, Arrow-backed, datetimes...
    has_na = bool(s.isna().any()) if n else False
    if pd.api.types.is_bool_dtype(dtype):
        if not has_na:
            return s.to_numpy(dtype=bool)
        return s.to_numpy(dtype=object, na_value=None)
    if pd.api.types.is_integer_dtype(dtype):
        if not has_na:
            return s.to_numpy(dtype=np.int64 if pd.api.types.is_signed_integer_dtype(dtype) else np.uint64)
        # keep ints as ints (category matching: 3 -> "3", not "3.0"); missing -> None
        return s.to_numpy(dtype=object, na_value=None)
    if pd.api.types.is_float_dtype(dtype):
        return s.to_numpy(dtype=np.float64, na_value=np.nan)
    if pd.api.types.is_string_dtype(dtype):
        return s.to_numpy(dtype=object, na_value=None)
    arr = s.to_numpy(dtype=object)
    arr = arr.copy() if not arr.flags.writeable else arr
    return _nulls_to_none(arr)


def columns_from_frame(df: pd.DataFrame, field_names: list[str]) -> Columns:
    """The frame's columns as arrays, without going row by row.

    Numeric columns stay numeric (NaN = missing), bool columns stay bool, nullable
    Int/boolean columns with missing values become object arrays (ints stay ints,
    missing -> None), nullable Float -> float64 with NaN, str / object / categorical
    columns -> object arrays with None for missing. A field that is not a column may
    still resolve, with ES dig semantics, through dict-valued columns whose name is a
    dotted prefix of it (field ``a.b.c`` via column ``a`` or ``a.b`` holding dicts).
    """
    cols: Columns = {}
    n = len(df)
    names = [c for c in df.columns if isinstance(c, str)]
    for name in dict.fromkeys(field_names):
        if name in df.columns:
            col = df[name]
            if isinstance(col, pd.DataFrame):
                raise illegal_argument(
                    f"column [{name}] appears more than once in the DataFrame; rename the duplicates"
                )
            cols[name] = _series_column(col)
            continue
        if "." not in name:
            continue
        candidates = [c for c in names if name.startswith(c + ".")]
        if not candidates:
            continue
        arrays = []
        for c in candidates:
            col = df[c]
            if isinstance(col, pd.DataFrame):
                raise illegal_argument(
                    f"column [{c}] appears more than once in the DataFrame; rename the duplicates"
                )
            arrays.append(_series_column(col).tolist())
        values = [dig(dict(zip(candidates, row)), name) for row in zip(*arrays)]
        cols[name] = _nulls_to_none(_object_array(values, n))
    return cols


# -- missing values and the feature matrix ------------------------------------------------------

def missing_mask(arr: np.ndarray) -> np.ndarray:
    """True where the value is missing (None / NaN in object arrays, NaN in float arrays)."""
    kind = arr.dtype.kind
    if kind == "O":
        return pd.isna(arr) if arr.shape[0] else np.zeros(0, dtype=bool)
    if kind == "f":
        return np.isnan(arr)
    return np.zeros(arr.shape[0], dtype=bool)


def any_present(cols: Columns, field_names: Iterable[str], n: int) -> np.ndarray:
    """Rows where at least one of ``field_names`` has a value (others get the ES warning)."""
    present = np.zeros(n, dtype=bool)
    for name in dict.fromkeys(field_names):
        arr = cols.get(name)
        if arr is not None:
            present |= ~missing_mask(arr)
            if present.all():  # the usual case: the first field settles every row
                break
    return present


def feature_matrix(cols: Columns, feature_names: list[str], n: int) -> np.ndarray:
    """float64 ``[n, len(feature_names)]``; NaN = missing (absent column or not a number).

    Read-only where it can be: when the columns are equally spaced float64 views of one
    block (a DataFrame built from one 2-D array), the matrix is a strided view of that
    block, with no copy. Otherwise it is column-major (a transposed view of ``[features, n]``),
    filled in row chunks so that strided source columns are read from cache. The CPU tree
    kernel reads either layout as it is.
    """
    arrays = [None if cols.get(name) is None else to_double_column(cols[name]) for name in feature_names]
    view = _block_view(arrays, n)
    if view is not None:
        return view
    x = np.empty((len(feature_names), n))
    for j, arr in enumerate(arrays):
        if arr is None:
            x[j] = np.nan
    present = [(j, arr) for j, arr in enumerate(arrays) if arr is not None]
    for start in range(0, n, _FILL_CHUNK):
        stop = min(n, start + _FILL_CHUNK)
        for j, arr in present:
            x[j, start:stop] = arr[start:stop]
    return x.T


#: rows per chunk when copying columns into the feature matrix (a chunk of a strided block stays in L2)
_FILL_CHUNK = 4096


_byte_bounds = getattr(getattr(np.lib, "array_utils", None), "byte_bounds", None) or np.byte_bounds


def _root(arr: np.ndarray) -> np.ndarray:
    while isinstance(arr.base, np.ndarray):
        arr = arr.base
    return arr


def _block_view(arrays: list[np.ndarray | None], n: int) -> np.ndarray | None:
    """``[n, len(arrays)]`` view of the memory block the columns share, or ``None`` when they
    are not equally spaced float64 views of one array."""
    if len(arrays) < 2 or n < 2 or any(a is None or a.dtype != np.float64 or a.ndim != 1 for a in arrays):
        return None
    first = arrays[0]
    root = _root(first)  # type: ignore[arg-type]
    if root is first:
        return None
    row_stride = first.strides[0]  # type: ignore[union-attr]
    ptrs = [a.__array_interface__["data"][0] for a in arrays]  # type: ignore[union-attr]
    col_stride = ptrs[1] - ptrs[0]
    if row_stride <= 0 or col_stride <= 0 or col_stride % 8 or row_stride % 8:
        return None
    for j, a in enumerate(arrays):
        if a.strides[0] != row_stride or ptrs[j] != ptrs[0] + j * col_stride or _root(a) is not root:  # type: ignore[union-attr]
            return None
    lo, hi = _byte_bounds(root)
    last = ptrs[0] + (n - 1) * row_stride + (len(arrays) - 1) * col_stride
    if ptrs[0] < lo or last + 8 > hi:
        return None
    view = np.lib.stride_tricks.as_strided(first, shape=(n, len(arrays)), strides=(row_stride, col_stride),
                                           writeable=False)
    return view
