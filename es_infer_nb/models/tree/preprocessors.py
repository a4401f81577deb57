"""Elasticsearch preprocessors, run column-at-a-time over a batch (spec §2.2).

Each preprocessor reads input columns and writes output columns of
:data:`~.features.Columns` in place (arrays are replaced, never written into). A row
whose input is missing gets nothing written, exactly as ES leaves the document
untouched: its outputs stay missing (NaN / None), or keep what the column held
before when an output overwrites an existing column.

Category matching uses Java's ``String.valueOf`` of the value (``1.0`` matches
``"1.0"``, ``1`` matches ``"1"``, ``True`` matches ``"true"``). Every ``process`` call
factorizes its input column once (unique values -> Java strings) and maps codes
through lookup tables, so the per-row work is numpy only.

Parsing follows the upstream strict parsers (``OneHotEncoding``, ``TargetMeanEncoding``,
``FrequencyEncoding``, ``NGram``, ``Multi`` and ``TrainedModelDefinition`` in
``x-pack/plugin/core/.../ml/inference``): the same validation rules, messages and
exception types, with the wrapping chain ES reports (``[trained_model_definition]
failed to parse field [preprocessors]`` -> ... -> the root cause), minus the
``[line:col]`` locations a JSON parser would add.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any, ClassVar, Iterable

import numpy as np
import pandas as pd
from pandas.api.types import infer_dtype

from ...errors import ApiError
from .features import Columns, dig, java_double_string, java_string, parse_java_double

__all__ = [
    "FrequencyEncoding",
    "MultiEncoding",
    "NGramEncoding",
    "OneHotEncoding",
    "Preprocessor",
    "TargetMeanEncoding",
    "apply_to_doc",
    "java_categories",
    "parse_preprocessor",
    "parse_preprocessors",
]


# -- column helpers ---------------------------------------------------------------------------


def _utf16_key(s: str) -> bytes:
    """Sort key equal to Java's ``String.compareTo`` (UTF-16 code unit order)."""
    return s.encode("utf-16-be", "surrogatepass")


def _float_categories(values: np.ndarray) -> tuple[np.ndarray, list[str]]:
    codes, uniques = pd.factorize(values)  # NaN -> -1
    strings = [java_double_string(u) for u in uniques.tolist()]
    zero = np.nonzero(uniques == 0.0)[0]
    if zero.size:  # factorize merges 0.0 and -0.0; Java prints them differently
        strings[zero[0]] = "0.0"
        negative = (values == 0.0) & np.signbit(values)
        if negative.any():
            codes = codes.copy()
            codes[negative] = len(strings)
            strings.append("-0.0")
    return codes, strings


def _element_string(v: Any, fcache: dict[float, str]) -> str | None:
    kind = type(v)
    if kind is str:
        return v
    if v is None:
        return None
    if kind is float:
        if v != v:
            return None  # NaN inside an object column = missing
        if v == 0.0:
            return java_double_string(v)
        s = fcache.get(v)
        if s is None:
            s = fcache[v] = java_double_string(v)
        return s
    if kind is int:
        return str(v)
    if v is pd.NA or v is pd.NaT:
        return None
    return java_string(v)


def java_categories(arr: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Factorize a column by Java ``String.valueOf``: ``(codes, strings)``.

    ``codes[i]`` indexes ``strings`` (-1 = missing); the strings are distinct. Only the
    distinct values are converted to strings, so the per-row work is numpy.
    """
    codes, strings = _categories(np.asarray(arr))
    if len(set(strings)) != len(strings):  # defensive: one code per distinct string
        first: dict[str, int] = {}
        remap = np.array([first.setdefault(t, len(first)) for t in strings] + [-1], dtype=np.intp)
        codes = remap[codes]
        strings = list(first)
    return codes, strings


def _categories(arr: np.ndarray) -> tuple[np.ndarray, list[str]]:
    n = arr.shape[0]
    kind = arr.dtype.kind
    if kind == "b":
        return arr.astype(np.intp), ["false", "true"]
    if kind in "iu":
        codes, uniques = pd.factorize(arr)
        return codes, [str(int(u)) for u in uniques.tolist()]
    if kind == "f":
        return _float_categories(arr.astype(np.float64, copy=False))
    if kind == "S":
        arr = arr.astype("U")
        kind = "U"
    if kind == "U":
        arr = arr.astype(object)
        kind = "O"
    if kind != "O":
        arr = np.array([java_string(v) for v in arr.tolist()], dtype=object)
    inferred = infer_dtype(arr, skipna=True) if n else "empty"
    if inferred in ("string", "empty"):
        codes, uniques = pd.factorize(arr)
        return codes, list(uniques.tolist())
    if inferred == "integer":
        missing = pd.isna(arr)
        if not missing.any():
            codes, uniques = pd.factorize(arr)
            return codes, [str(int(u)) for u in uniques.tolist()]
    if inferred == "floating":
        missing = pd.isna(arr)
        values = np.full(n, np.nan)
        values[~missing] = arr[~missing].astype(np.float64)
        return _float_categories(values)
    fcache: dict[float, str] = {}
    strings = np.empty(n, dtype=object)
    strings[:] = [_element_string(v, fcache) for v in arr]
    codes, uniques = pd.factorize(strings)
    return codes, list(uniques.tolist())


def _code_table(strings: list[str], mapping: dict[str, float], default: float) -> np.ndarray:
    """float64 ``table[code]`` = mapping[string] (or default); a trailing NaN slot for code -1."""
    table = np.empty(len(strings) + 1, dtype=np.float64)
    table[:-1] = [mapping.get(t, default) for t in strings]
    table[-1] = np.nan
    return table


def _field_categories(cols: Columns, field: str) -> tuple[np.ndarray, list[str], np.ndarray] | None:
    """``field``'s category codes, their strings and where it has a value (``codes >= 0``); ``None``
    when the field is absent or has no value in any row."""
    arr = cols.get(field)
    if arr is None:
        return None
    codes, strings = java_categories(arr)
    present = codes >= 0
    return (codes, strings, present) if present.any() else None


def _merge(old: np.ndarray | None, new: np.ndarray, written: np.ndarray) -> np.ndarray:
    """``new`` where written, else whatever the column held before (ES only writes those rows)."""
    if old is None or written.all():
        return new
    if not written.any():
        return old
    if old.dtype.kind in "iu" and new.dtype.kind in "iu":
        return np.where(written, new, old).astype(np.int64)
    if old.dtype.kind in "iuf" and new.dtype.kind in "iuf":
        return np.where(written, new.astype(np.float64), old.astype(np.float64))
    merged = old.astype(object)
    if old.dtype.kind == "f":
        merged[np.isnan(old)] = None
    merged[written] = new[written].astype(object)
    return merged


# -- the preprocessors -------------------------------------------------------------------------


class Preprocessor(ABC):
    """One ES preprocessor. ``process`` adds / overwrites output columns in place."""

    name: ClassVar[str]
    custom: bool

    @abstractmethod
    def input_fields(self) -> list[str]:
        """Fields read, as ES lists them (``inputFields()``)."""

    @abstractmethod
    def output_fields(self) -> list[str]:
        """Every field this preprocessor may write, in ES's order (``outputFields()``)."""

    @abstractmethod
    def output_field_type(self, field: str) -> str | None:
        """ES mapping type of an output (``integer`` / ``double`` / ``text``)."""

    @abstractmethod
    def process(self, cols: Columns, n: int) -> None:
        """Run over a batch of ``n`` rows."""

    @abstractmethod
    def reverse_lookup(self) -> dict[str, str]:
        """ES ``reverseLookup()``: processed feature -> original field (ignores ``custom``)."""

    @abstractmethod
    def _body(self) -> dict[str, Any]: ...

    def reverse_map(self) -> dict[str, str]:
        """Feature-importance decoder entries (spec §2.7): empty for ``custom`` preprocessors."""
        return {} if self.custom else self.reverse_lookup()

    def to_dict(self) -> dict[str, Any]:
        """The ES JSON (as ``GET ..?include=definition`` renders it); parses back to an equal object."""
        return {self.name: self._body()}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Preprocessor) and self.to_dict() == other.to_dict()

    __hash__ = object.__hash__  # equality is by value, hashing stays by identity

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._body()!r})"


class OneHotEncoding(Preprocessor):
    """``one_hot_encoding``: every ``hot_map`` column gets 1 if ``String(value)`` is its key, else 0."""

    name = "one_hot_encoding"

    def __init__(self, field: str, hot_map: dict[str, str], custom: bool = False) -> None:
        self.field = field
        # ES keeps the map in a TreeMap: outputs are listed (and written) in key order
        self.hot_map = dict(sorted(hot_map.items(), key=lambda kv: _utf16_key(kv[0])))
        self.custom = bool(custom)

    def input_fields(self) -> list[str]:
        return [self.field]

    def output_fields(self) -> list[str]:
        return list(self.hot_map.values())

    def output_field_type(self, field: str) -> str | None:
        return "integer"

    def process(self, cols: Columns, n: int) -> None:
        found = _field_categories(cols, self.field)
        if found is None:
            return
        codes, strings, present = found
        everywhere = bool(present.all())
        position = {s: i for i, s in enumerate(strings)}
        for value, column in self.hot_map.items():
            code = position.get(value)
            hits = np.zeros(n, dtype=np.int8) if code is None else (codes == code).astype(np.int8)
            if everywhere:
                new: np.ndarray = hits
            else:
                new = hits.astype(np.float64)
                new[~present] = np.nan
            cols[column] = _merge(cols.get(column), new, present)

    def reverse_lookup(self) -> dict[str, str]:
        return {column: self.field for column in self.hot_map.values()}

    def _body(self) -> dict[str, Any]:
        return {"field": self.field, "hot_map": dict(self.hot_map), "custom": self.custom}


class _MapEncoding(Preprocessor):
    """Shared code of target-mean and frequency encoding: one double per category."""

    field: str
    feature_name: str

    def input_fields(self) -> list[str]:
        return [self.field]

    def output_fields(self) -> list[str]:
        return [self.feature_name]

    def output_field_type(self, field: str) -> str | None:
        return "double"

    def _encode(self, cols: Columns, mapping: dict[str, float], default: float) -> None:
        found = _field_categories(cols, self.field)
        if found is None:
            return
        codes, strings, present = found
        new = _code_table(strings, mapping, default)[codes]
        cols[self.feature_name] = _merge(cols.get(self.feature_name), new, present)

    def reverse_lookup(self) -> dict[str, str]:
        return {self.feature_name: self.field}


class TargetMeanEncoding(_MapEncoding):
    """``target_mean_encoding``: ``target_map[String(value)]``, unseen -> ``default_value``."""

    name = "target_mean_encoding"

    def __init__(
        self, field: str, feature_name: str, target_map: dict[str, float], default_value: float, custom: bool = False
    ) -> None:
        self.field = field
        self.feature_name = feature_name
        self.target_map = {str(k): float(v) for k, v in target_map.items()}
        self.default_value = float(default_value)
        self.custom = bool(custom)

    def process(self, cols: Columns, n: int) -> None:
        self._encode(cols, self.target_map, self.default_value)

    def _body(self) -> dict[str, Any]:
        return {
            "field": self.field,
            "feature_name": self.feature_name,
            "target_map": dict(self.target_map),
            "default_value": self.default_value,
            "custom": self.custom,
        }


class FrequencyEncoding(_MapEncoding):
    """``frequency_encoding``: ``frequency_map[String(value)]``, unseen -> 0.0."""

    name = "frequency_encoding"

    def __init__(self, field: str, feature_name: str, frequency_map: dict[str, float], custom: bool = False) -> None:
        self.field = field
        self.feature_name = feature_name
        self.frequency_map = {str(k): float(v) for k, v in frequency_map.items()}
        self.custom = bool(custom)

    def process(self, cols: Columns, n: int) -> None:
        self._encode(cols, self.frequency_map, 0.0)

    def _body(self) -> dict[str, Any]:
        return {
            "field": self.field,
            "feature_name": self.feature_name,
            "frequency_map": dict(self.frequency_map),
            "custom": self.custom,
        }


def _java_int_hashset_order(values: list[int]) -> list[int]:
    """Iteration order of ``new HashSet<Integer>(values)`` (ES de-duplicates ``n_grams`` so)."""
    distinct = list(dict.fromkeys(values))
    cap = 1
    while cap < max(int(len(values) / 0.75) + 1, 16):
        cap <<= 1

    def bucket(v: int) -> int:
        h = v & 0xFFFFFFFF
        return (h ^ (h >> 16)) & (cap - 1)

    return [v for _, _, v in sorted((bucket(v), i, v) for i, v in enumerate(distinct))]


def _status(reason: str) -> ApiError:
    return ApiError("status_exception", reason, 400)


class NGramEncoding(Preprocessor):
    """``n_gram_encoding``: substrings of ``String(value)`` as ``<prefix>.<n><pos>`` text features."""

    name = "n_gram_encoding"
    DEFAULT_START = 0
    DEFAULT_LENGTH = 50
    MAX_LENGTH = 100
    MIN_GRAM = 1
    MAX_GRAM = 5

    def __init__(
        self,
        field: str,
        n_grams: Iterable[int],
        start: int | None = None,
        length: int | None = None,
        feature_prefix: str | None = None,
        custom: bool = False,
    ) -> None:
        """Validates like the upstream constructor (``status_exception``, 400)."""
        start_v = self.DEFAULT_START if start is None else int(start)
        length_v = self.DEFAULT_LENGTH if length is None else int(length)
        grams = _java_int_hashset_order([int(g) for g in n_grams])
        if not grams:
            raise _status("[n_grams] must not be empty")
        if any(g < self.MIN_GRAM or g > self.MAX_GRAM for g in grams):
            raise _status(
                f"[n_grams] is invalid [{', '.join(map(str, grams))}]; minimum supported value is "
                f"[{self.MIN_GRAM}]; maximum supported value is [{self.MAX_GRAM}]"
            )
        if start_v < 0 and length_v + start_v > 0:
            raise _status("if [start] is negative, [length] + [start] must be less than 0")
        if length_v <= 0:
            raise _status("[length] must be a positive integer")
        if length_v > self.MAX_LENGTH:
            raise _status(f"[length] must be not be greater than [{self.MAX_LENGTH}]")
        if any(g > length_v for g in grams):
            raise _status(
                f"[n_grams] and [length] are invalid; all ngrams must be shorter than or equal to length [{length_v}]"
            )
        self.field = field
        self.n_grams = grams
        self.start = start_v
        self.length = length_v
        self.feature_prefix = feature_prefix if feature_prefix is not None else f"ngram_{start_v}_{length_v}"
        self.custom = bool(custom)

    def _feature(self, gram: int, pos: int) -> str:
        return f"{self.feature_prefix}.{gram}{pos}"

    def input_fields(self) -> list[str]:
        return [self.field]

    def output_fields(self) -> list[str]:
        return [self._feature(g, i) for g in self.n_grams for i in range(self.length - g + 1)]

    def output_field_type(self, field: str) -> str | None:
        return "text"

    def grams_of(self, text: str) -> dict[str, str]:
        """The n-grams ES writes for one string value (Java UTF-16 indexing)."""
        utf16 = text.encode("utf-16-le", "surrogatepass")
        size = len(utf16) // 2
        if size == len(text):

            def cut(a: int, b: int) -> str:
                return text[a:b]
        else:  # characters outside the BMP count as two Java chars

            def cut(a: int, b: int) -> str:
                return utf16[2 * a : 2 * b].decode("utf-16-le", "surrogatepass")

        if self.start > size or size + self.start < 0:
            return {}
        begin = size + self.start if self.start < 0 else self.start
        end = min(begin + self.length, size)
        out: dict[str, str] = {}
        for g in self.n_grams:
            i = 0
            while begin + i + g <= end:
                out[self._feature(g, i)] = cut(begin + i, begin + i + g)
                i += 1
        return out

    def process(self, cols: Columns, n: int) -> None:
        found = _field_categories(cols, self.field)
        if found is None:
            return
        codes, strings, _ = found
        per_feature: dict[str, dict[int, str]] = {}
        for code, text in enumerate(strings):
            for feature, gram in self.grams_of(text).items():
                per_feature.setdefault(feature, {})[code] = gram
        if not per_feature:
            return
        slots = len(strings) + 1
        for feature in self.output_fields():
            values = per_feature.get(feature)
            if not values:
                continue
            table = np.empty(slots, dtype=object)
            table[:] = None
            has = np.zeros(slots, dtype=bool)
            for code, gram in values.items():
                table[code] = gram
                has[code] = True
            cols[feature] = _merge(cols.get(feature), table[codes], has[codes])

    def reverse_lookup(self) -> dict[str, str]:
        return {feature: self.field for feature in self.output_fields()}

    def _body(self) -> dict[str, Any]:
        return {
            "field": self.field,
            "feature_prefix": self.feature_prefix,
            "n_grams": list(self.n_grams),
            "start": self.start,
            "length": self.length,
            "custom": self.custom,
        }


class MultiEncoding(Preprocessor):
    """``multi_encoding``: a chain; later processors may consume earlier outputs."""

    name = "multi_encoding"

    def __init__(self, processors: list[Preprocessor], custom: bool = False) -> None:
        """Validates like the upstream constructor (``illegal_argument_exception``, 400)."""
        if len(processors) < 2:
            raise ApiError(
                "illegal_argument_exception", "processors must be an array of objects with at least length 2", 400
            )
        self.processors = list(processors)
        self.custom = bool(custom)
        consumed: set[str] = set()
        inputs = list(processors[0].input_fields())
        originating: dict[str, str | None] = {
            f: processors[0].output_field_type(f) for f in processors[0].output_fields()
        }
        for proc in processors[1:]:
            for f in proc.input_fields():
                if f not in originating:
                    inputs.append(f)
                else:
                    consumed.add(f)
            for f in proc.output_fields():
                originating[f] = proc.output_field_type(f)
        self._outputs = {f: t for f, t in originating.items() if f not in consumed}
        self._inputs = inputs
        if not self.custom and len(inputs) > 1:
            raise ApiError(
                "illegal_argument_exception",
                f"[custom] cannot be false as [{self.name}] is unable to accurately determine field reverse "
                f"encoding for input fields [{','.join(inputs)}] and output fields [{', '.join(self._outputs)}]",
                400,
            )

    def input_fields(self) -> list[str]:
        return list(self._inputs)

    def output_fields(self) -> list[str]:
        return list(self._outputs)

    def output_field_type(self, field: str) -> str | None:
        return self._outputs.get(field)

    def process(self, cols: Columns, n: int) -> None:
        for proc in self.processors:
            proc.process(cols, n)

    def reverse_lookup(self) -> dict[str, str]:
        """Each final output -> the one original input field; with several inputs ES throws."""
        if len(self._inputs) > 1:
            raise ApiError(
                "illegal_argument_exception",
                f"[{self.name}] is unable to accurately determine field reverse encoding for input fields "
                f"[{','.join(self._inputs)}] and output fields [{', '.join(self._outputs)}]",
                400,
            )
        return {f: self._inputs[0] for f in self._outputs}

    def reverse_map(self) -> dict[str, str]:
        # custom chains are never decoded, and a non-custom chain has one input (checked at parse time)
        return {} if self.custom or len(self._inputs) != 1 else self.reverse_lookup()

    def _body(self) -> dict[str, Any]:
        return {"processors": [p.to_dict() for p in self.processors], "custom": self.custom}


# -- parsing -----------------------------------------------------------------------------------


def _token(value: Any) -> str:
    if value is None:
        return "VALUE_NULL"
    if isinstance(value, (bool, np.bool_)):
        return "VALUE_BOOLEAN"
    if isinstance(value, (int, float, np.number)):
        return "VALUE_NUMBER"
    if isinstance(value, str):
        return "VALUE_STRING"
    if isinstance(value, (list, tuple)):
        return "START_ARRAY"
    if isinstance(value, dict):
        return "START_OBJECT"
    return "VALUE_EMBEDDED_OBJECT"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.number)) and not isinstance(value, (bool, np.bool_))


def _xcp(reason: str, cause: ApiError | None = None) -> ApiError:
    return ApiError("x_content_parse_exception", reason, 400, caused_by=cause)


def _failed(obj: str, field: str, cause: ApiError) -> ApiError:
    """``ObjectParser``'s wrapper around anything a field's parser threw."""
    return _xcp(f"[{obj}] failed to parse field [{field}]", cause)


def _unsupported_type(obj: str, field: str, value: Any) -> ApiError:
    return _xcp(f"[{obj}] {field} doesn't support values of type: {_token(value)}")


def _not_numeric(value: Any) -> ApiError:
    """Jackson's complaint (its token names: ``VALUE_TRUE`` rather than ``VALUE_BOOLEAN``)."""
    token = _token(value)
    if token == "VALUE_BOOLEAN":
        token = "VALUE_TRUE" if value else "VALUE_FALSE"
    return _xcp(f"Current token ({token}) not numeric, can not use numeric value accessors")


def _number_format(text: str) -> ApiError:
    reason = "empty String" if not text.strip() else f'For input string: "{text}"'
    return ApiError("number_format_exception", reason, 400)


def _java_parse_double(text: str) -> float:
    value = parse_java_double(text)
    if value is None:
        raise _number_format(text)
    return value


def _str_value(obj: str, field: str, value: Any) -> str:
    if isinstance(value, str):
        return value
    raise _unsupported_type(obj, field, value)


def _bool_value(obj: str, field: str, value: Any) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, str):
        if value in ("true", "false"):
            return value == "true"
        raise _failed(
            obj,
            field,
            ApiError(
                "illegal_argument_exception",
                f"Failed to parse value [{value}] as only [true] or [false] are allowed.",
                400,
            ),
        )
    raise _unsupported_type(obj, field, value)


def _to_int(value: Any) -> int:
    """``XContentParser.intValue()`` with number coercion (the inner error on failure)."""
    if _is_number(value):
        if isinstance(value, (float, np.floating)):
            if not math.isfinite(value) or not (-(2**31) <= value < 2**31):
                raise _xcp(f"Numeric value ({java_string(value)}) out of range of int (-2147483648 - 2147483647)")
            return int(value)  # truncation, as the coercing parser does
        if not (-(2**31) <= int(value) < 2**31):
            raise _xcp(f"Numeric value ({int(value)}) out of range of int (-2147483648 - 2147483647)")
        return int(value)
    if isinstance(value, str):
        number = _java_parse_double(value)
        if math.isnan(number) or not (-(2**31) <= number <= 2**31 - 1):
            if math.isnan(number):
                raise _number_format(value)
            raise ApiError("illegal_argument_exception", f"Value [{value}] is out of range for an integer", 400)
        return int(number)
    raise _not_numeric(value)


def _to_double(value: Any) -> float:
    """``XContentParser.doubleValue()`` with number coercion."""
    if _is_number(value):
        return float(value)
    if isinstance(value, str):
        return _java_parse_double(value)
    raise _not_numeric(value)


def _int_value(obj: str, field: str, value: Any) -> int:
    if not (_is_number(value) or isinstance(value, str)):
        raise _unsupported_type(obj, field, value)
    try:
        return _to_int(value)
    except ApiError as e:
        raise _failed(obj, field, e) from None


def _double_value(obj: str, field: str, value: Any) -> float:
    if not (_is_number(value) or isinstance(value, str)):
        raise _unsupported_type(obj, field, value)
    try:
        return _to_double(value)
    except ApiError as e:
        raise _failed(obj, field, e) from None


def _int_array(obj: str, field: str, value: Any) -> list[int]:
    if not (isinstance(value, (list, tuple)) or _is_number(value) or isinstance(value, str)):
        raise _unsupported_type(obj, field, value)
    items = list(value) if isinstance(value, (list, tuple)) else [value]
    try:
        return [_to_int(v) for v in items]
    except ApiError as e:
        raise _failed(obj, field, e) from None


def _object_value(obj: str, field: str, value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    raise _unsupported_type(obj, field, value)


def _double_map(obj: str, field: str, value: Any) -> dict[str, float]:
    body = _object_value(obj, field, value)
    try:
        return {str(k): _to_double(v) for k, v in body.items()}
    except ApiError as e:
        raise _failed(obj, field, e) from None


def _string_map(obj: str, field: str, value: Any) -> dict[str, str]:
    """``XContentParser.mapStrings()``: values read with ``text()`` (scalars only)."""
    body = _object_value(obj, field, value)
    out: dict[str, str] = {}
    for k, v in body.items():
        if isinstance(v, str):
            out[str(k)] = v
        elif isinstance(v, (bool, np.bool_)):
            out[str(k)] = "true" if v else "false"
        elif _is_number(v):
            out[str(k)] = repr(v) if isinstance(v, float) else str(v)
        else:
            raise _failed(obj, field, ApiError("illegal_state_exception", f"Can't get text on a {_token(v)}", 400))
    return out


# field -> (reader, required), in upstream declaration order
_Spec = dict[str, tuple[Any, bool]]
_SPECS: dict[str, _Spec] = {
    "one_hot_encoding": {
        "field": (_str_value, True),
        "hot_map": (_string_map, True),
        "custom": (_bool_value, False),
    },
    "target_mean_encoding": {
        "field": (_str_value, True),
        "feature_name": (_str_value, True),
        "target_map": (_double_map, True),
        "default_value": (_double_value, True),
        "custom": (_bool_value, False),
    },
    "frequency_encoding": {
        "field": (_str_value, True),
        "feature_name": (_str_value, True),
        "frequency_map": (_double_map, True),
        "custom": (_bool_value, False),
    },
    "n_gram_encoding": {
        "field": (_str_value, True),
        "n_grams": (_int_array, True),
        "start": (_int_value, False),
        "length": (_int_value, False),
        "custom": (_bool_value, False),
        "feature_prefix": (_str_value, False),
    },
}
_KNOWN = (*_SPECS, "multi_encoding")

CUSTOM_WORD_EMBEDDING = "custom_word_embedding"


class _NotSupported(ApiError):
    """Our own refusal (not an ES parse failure): reported as is, never wrapped."""


def _read_fields(name: str, body: dict[str, Any], spec: _Spec) -> dict[str, Any]:
    """Strict field-by-field read of a constructing-parser object; checks required fields last."""
    values: dict[str, Any] = {}
    for key, raw in body.items():
        if key not in spec:
            raise _xcp(f"[{name}] unknown field [{key}]")
        reader, _ = spec[key]
        values[key] = reader(name, key, raw)
    missing = [f for f, (_, required) in spec.items() if required and f not in values]
    if missing:
        raise ApiError("illegal_argument_exception", f"Required [{', '.join(missing)}]", 400)
    return values


def _construct(name: str, body: dict[str, Any], spec: _Spec, build: Any) -> Preprocessor:
    """Run the constructor the way ``ConstructingObjectParser.buildTarget`` reports failures."""
    values = _read_fields(name, body, spec)
    try:
        return build(values)
    except ApiError as e:
        error = _xcp(f"Failed to build [{name}] after last required field arrived", e)
        if len(values) == len(spec):
            # every constructor argument arrived: ES builds while parsing the last one
            error = _failed(name, list(body)[-1], error)
        raise error from None


def _parse_multi(body: dict[str, Any]) -> MultiEncoding:
    name = "multi_encoding"
    processors: list[Preprocessor] | None = None
    ordered = False
    custom = False
    for key, raw in body.items():
        if key == "processors":
            processors, ordered = _parse_named_objects(raw, name, "processors")
        elif key == "custom":
            custom = _bool_value(name, key, raw)
        else:
            raise _xcp(f"[{name}] unknown field [{key}]")
    if not ordered:
        raise ApiError("illegal_argument_exception", "processors must be an array of objects", 400)
    assert processors is not None
    return MultiEncoding(processors, custom)


def parse_preprocessor(name: str, body: Any) -> Preprocessor:
    """One named preprocessor object ``{name: body}``; errors are the inner (unwrapped) ones."""
    if name == CUSTOM_WORD_EMBEDDING:
        raise _NotSupported(
            "status_exception",
            "[custom_word_embedding] preprocessors are not supported by es_infer_nb "
            "(only the built-in lang_ident_model_1 uses them; it is always available)",
            400,
        )
    if name not in _KNOWN:
        return _raise_unknown(name)
    if not isinstance(body, dict):
        raise _xcp(f"[{name}] Expected START_OBJECT but was: {_token(body)}")
    if name == "multi_encoding":
        return _parse_multi(body)
    spec = _SPECS[name]
    if name == "one_hot_encoding":
        return _construct(name, body, spec, lambda v: OneHotEncoding(v["field"], v["hot_map"], v.get("custom", False)))
    if name == "target_mean_encoding":
        return _construct(
            name,
            body,
            spec,
            lambda v: TargetMeanEncoding(
                v["field"], v["feature_name"], v["target_map"], v["default_value"], v.get("custom", False)
            ),
        )
    if name == "frequency_encoding":
        return _construct(
            name,
            body,
            spec,
            lambda v: FrequencyEncoding(v["field"], v["feature_name"], v["frequency_map"], v.get("custom", False)),
        )
    return _construct(
        name,
        body,
        spec,
        lambda v: NGramEncoding(
            v["field"], v["n_grams"], v.get("start"), v.get("length"), v.get("feature_prefix"), v.get("custom", False)
        ),
    )


def _raise_unknown(name: str) -> Preprocessor:
    raise ApiError("named_object_not_found_exception", f"unknown field [{name}]", 400)


def _parse_named_objects(value: Any, obj: str, field: str) -> tuple[list[Preprocessor], bool]:
    """``ObjectParser.declareNamedObjects``: an array of single-key objects (ordered) or one
    object with any number of keys (unordered). Returns the parsed list and whether ordered."""
    if isinstance(value, dict):
        entries, ordered = list(value.items()), False
    elif isinstance(value, (list, tuple)):
        entries, ordered = [], True
        for item in value:
            if not isinstance(item, dict) or len(item) != 1:
                raise _failed(
                    obj,
                    field,
                    _xcp(
                        f"[{field}] can be a single object with any number of fields or an array where each "
                        "entry is an object with a single field"
                    ),
                )
            entries.append(next(iter(item.items())))
    else:
        raise _unsupported_type(obj, field, value)
    parsed: list[Preprocessor] = []
    for name, body in entries:
        try:
            parsed.append(parse_preprocessor(str(name), body))
        except _NotSupported:
            raise
        except ApiError as e:
            raise _failed(obj, field, e) from None
    return parsed, ordered


def parse_preprocessors(objs: Any) -> list[Preprocessor]:
    """The definition's ``preprocessors`` value, validated like ES (``None`` -> ``[]``).

    Must be an array of single-key objects (a single-key object is accepted as a
    one-element list, a multi-key object is rejected: ``preprocessors must be an array
    of preprocessor objects``). Parse failures are ``x_content_parse_exception`` (400)
    ``[trained_model_definition] failed to parse field [preprocessors]`` with the
    upstream root cause in ``caused_by``, e.g. ``Required [hot_map]``, ``unknown field
    [foo]`` (``named_object_not_found_exception``), ``[n_grams] must not be empty``
    (``status_exception``) or the multi_encoding ``illegal_argument_exception`` messages.
    """
    if objs is None:
        return []
    parsed, ordered = _parse_named_objects(objs, "trained_model_definition", "preprocessors")
    if len(parsed) > 1 and not ordered:
        raise ApiError("illegal_argument_exception", "preprocessors must be an array of preprocessor objects", 400)
    return parsed


# -- one document ------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def apply_to_doc(preprocessors: list[Preprocessor], doc: dict[str, Any]) -> dict[str, Any]:
    """Process one flat document: the original fields kept, outputs added (or overwritten),
    nothing written for a preprocessor whose input is missing. One-hot outputs are ints,
    target-mean / frequency outputs floats, n-grams strings."""
    cols: Columns = {}
    for key, value in doc.items():
        arr = np.empty(1, dtype=object)
        arr[0] = value
        cols[key] = arr
    for pre in preprocessors:  # a dotted input read from nested objects (ES MapHelper.dig)
        for field in pre.input_fields():
            if field not in cols and "." in field and (value := dig(doc, field)) is not None:
                arr = np.empty(1, dtype=object)
                arr[0] = value
                cols[field] = arr
    originals = dict(cols)
    for pre in preprocessors:
        pre.process(cols, 1)
    out = dict(doc)
    for key, arr in cols.items():
        if arr is originals.get(key):
            continue  # untouched input
        value = _plain(arr[0])
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue  # not written for this row
        out[key] = value
    return out
