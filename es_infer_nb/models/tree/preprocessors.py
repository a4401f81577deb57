"""Elasticsearch preprocessors, run column-at-a-time over a batch (spec §2.2).

Each preprocessor reads input columns and writes output columns in place. A row
whose input is missing gets nothing written (its outputs stay missing), exactly
as ES leaves the document untouched. Category matching uses Java's
``String.valueOf`` of the value (``1.0`` matches ``"1.0"``, ``True`` matches ``"true"``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from ...errors import ApiError
from .. import parsing as p
from .features import Columns, java_string, missing_mask


class Preprocessor(Protocol):
    custom: bool

    def input_fields(self) -> list[str]: ...

    def output_fields(self) -> list[str]: ...

    def process(self, cols: Columns, n: int) -> None: ...

    def reverse_map(self) -> dict[str, str]: ...

    def to_dict(self) -> dict[str, Any]: ...


def _strings(arr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(Java string of every present value as an object array, present mask)."""
    present = ~missing_mask(arr)
    out = np.empty(len(arr), dtype=object)
    if arr.dtype == object:
        cache: dict[Any, str] = {}
        for i in np.nonzero(present)[0]:
            v = arr[i]
            key = (type(v), v) if isinstance(v, (int, float, bool, str)) else None
            if key is None:
                out[i] = java_string(v)
            else:
                s = cache.get(key)
                if s is None:
                    s = cache[key] = java_string(v)
                out[i] = s
        return out, present
    values, inverse = np.unique(arr[present], return_inverse=True)
    texts = np.array([java_string(v) for v in values.tolist()], dtype=object)
    out[present] = texts[inverse] if len(values) else []
    return out, present


def _lookup(strings: np.ndarray, present: np.ndarray, table: dict[str, float], default: float) -> np.ndarray:
    out = np.full(len(strings), np.nan)
    idx = np.nonzero(present)[0]
    out[idx] = [table.get(s, default) for s in strings[idx]]
    return out


@dataclass
class OneHotEncoding:
    field: str
    hot_map: dict[str, str]
    custom: bool = False
    name = "one_hot_encoding"

    def input_fields(self) -> list[str]:
        return [self.field]

    def output_fields(self) -> list[str]:
        return list(self.hot_map.values())

    def process(self, cols: Columns, n: int) -> None:
        if self.field not in cols:
            return
        strings, present = _strings(cols[self.field])
        if not present.any():
            return
        for value, out_name in self.hot_map.items():
            col = np.full(n, np.nan)
            col[present] = (strings[present] == value).astype(np.float64)
            cols[out_name] = _merge(cols.get(out_name), col, present)

    def reverse_map(self) -> dict[str, str]:
        return {out: self.field for out in self.hot_map.values()}

    def to_dict(self) -> dict[str, Any]:
        return {self.name: {"field": self.field, "hot_map": dict(self.hot_map), "custom": self.custom}}


def _merge(old: np.ndarray | None, new: np.ndarray, written: np.ndarray) -> np.ndarray:
    """Rows not written keep what the column held before (ES only writes present rows)."""
    if old is None or written.all():
        return new
    if old.dtype == object or new.dtype == object:
        merged = old.astype(object)
        merged[written] = new[written]
        return merged
    merged = old.astype(np.float64)
    merged[written] = new[written]
    return merged


@dataclass
class TargetMeanEncoding:
    field: str
    feature_name: str
    target_map: dict[str, float]
    default_value: float
    custom: bool = False
    name = "target_mean_encoding"

    def input_fields(self) -> list[str]:
        return [self.field]

    def output_fields(self) -> list[str]:
        return [self.feature_name]

    def process(self, cols: Columns, n: int) -> None:
        if self.field not in cols:
            return
        strings, present = _strings(cols[self.field])
        if present.any():
            cols[self.feature_name] = _merge(
                cols.get(self.feature_name), _lookup(strings, present, self.target_map, self.default_value), present
            )

    def reverse_map(self) -> dict[str, str]:
        return {self.feature_name: self.field}

    def to_dict(self) -> dict[str, Any]:
        return {self.name: {"field": self.field, "feature_name": self.feature_name, "target_map": dict(self.target_map),
                            "default_value": self.default_value, "custom": self.custom}}


@dataclass
class FrequencyEncoding:
    field: str
    feature_name: str
    frequency_map: dict[str, float]
    custom: bool = False
    name = "frequency_encoding"

    def input_fields(self) -> list[str]:
        return [self.field]

    def output_fields(self) -> list[str]:
        return [self.feature_name]

    def process(self, cols: Columns, n: int) -> None:
        if self.field not in cols:
            return
        strings, present = _strings(cols[self.field])
        if present.any():
            cols[self.feature_name] = _merge(
                cols.get(self.feature_name), _lookup(strings, present, self.frequency_map, 0.0), present
            )

    def reverse_map(self) -> dict[str, str]:
        return {self.feature_name: self.field}

    def to_dict(self) -> dict[str, Any]:
        return {self.name: {"field": self.field, "feature_name": self.feature_name,
                            "frequency_map": dict(self.frequency_map), "custom": self.custom}}


@dataclass
class NGramEncoding:
    field: str
    n_grams: list[int]
    start: int = 0
    length: int = 50
    feature_prefix: str | None = None
    custom: bool = False
    name = "n_gram_encoding"

    @property
    def prefix(self) -> str:
        return self.feature_prefix if self.feature_prefix is not None else f"ngram_{self.start}_{self.length}"

    def input_fields(self) -> list[str]:
        return [self.field]

    def output_fields(self) -> list[str]:
        return [f"{self.prefix}.{g}{i}" for g in self.n_grams for i in range(self.length - g + 1)]

    def process(self, cols: Columns, n: int) -> None:
        if self.field not in cols:
            return
        strings, present = _strings(cols[self.field])
        outputs: dict[str, np.ndarray] = {}
        written: dict[str, np.ndarray] = {}
        for row in np.nonzero(present)[0]:
            s = strings[row]
            size = len(s)
            if self.start > size or size + self.start < 0:
                continue
            begin = size + self.start if self.start < 0 else self.start
            end = min(begin + self.length, size)
            for g in self.n_grams:
                i = 0
                while begin + i + g <= end:
                    key = f"{self.prefix}.{g}{i}"
                    if key not in outputs:
                        outputs[key] = np.empty(n, dtype=object)
                        written[key] = np.zeros(n, dtype=bool)
                    outputs[key][row] = s[begin + i : begin + i + g]
                    written[key][row] = True
                    i += 1
        for key, col in outputs.items():
            cols[key] = _merge(cols.get(key), col, written[key])

    def reverse_map(self) -> dict[str, str]:
        return {out: self.field for out in self.output_fields()}

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"field": self.field, "n_grams": list(self.n_grams), "start": self.start,
                                "length": self.length, "custom": self.custom}
        if self.feature_prefix is not None:
            body["feature_prefix"] = self.feature_prefix
        return {self.name: body}


@dataclass
class MultiEncoding:
    processors: list[Any] = field(default_factory=list)
    custom: bool = False
    name = "multi_encoding"

    def input_fields(self) -> list[str]:
        produced: set[str] = set()
        inputs: list[str] = []
        for proc in self.processors:
            for f in proc.input_fields():
                if f not in produced and f not in inputs:
                    inputs.append(f)
            produced.update(proc.output_fields())
        return inputs

    def output_fields(self) -> list[str]:
        consumed = {f for proc in self.processors for f in proc.input_fields()}
        out: list[str] = []
        for proc in self.processors:
            out.extend(f for f in proc.output_fields() if f not in consumed and f not in out)
        return out

    def process(self, cols: Columns, n: int) -> None:
        for proc in self.processors:
            proc.process(cols, n)

    def reverse_map(self) -> dict[str, str]:
        inputs = self.input_fields()
        if len(inputs) != 1:
            return {}
        return {out: inputs[0] for out in self.output_fields()}

    def to_dict(self) -> dict[str, Any]:
        return {self.name: {"processors": [proc.to_dict() for proc in self.processors], "custom": self.custom}}


# -- parsing ----------------------------------------------------------------------------------

_FIELDS = {
    "one_hot_encoding": {"field", "hot_map", "custom"},
    "target_mean_encoding": {"field", "feature_name", "target_map", "default_value", "custom"},
    "frequency_encoding": {"field", "feature_name", "frequency_map", "custom"},
    "n_gram_encoding": {"field", "feature_prefix", "n_grams", "start", "length", "custom"},
    "multi_encoding": {"processors", "custom"},
}


def _map(value: Any, obj: str, name: str, item) -> dict[str, Any]:
    body = p.as_object(value, obj, name)
    return {str(k): item(v, obj, name) for k, v in body.items()}


def parse_preprocessor(name: str, body: Any) -> Preprocessor:
    if name == "custom_word_embedding":
        raise p.bad_request(
            "[custom_word_embedding] (the lang_ident CLD3 embedding) is not supported by es_infer_nb"
        )
    if name not in _FIELDS:
        raise ApiError(
            "x_content_parse_exception",
            f"[preprocessors] unknown preprocessor [{name}]; expected one of {sorted(_FIELDS)}",
            400,
        )
    body = p.as_object(body, name)
    p.reject_unknown(body, name, _FIELDS[name])
    custom = p.to_bool(body.get("custom", False), name, "custom")
    if name == "one_hot_encoding":
        return OneHotEncoding(
            p.to_str(p.require(body, name, "field"), name, "field"),
            _map(p.require(body, name, "hot_map"), name, "hot_map", p.to_str),
            custom,
        )
    if name == "target_mean_encoding":
        return TargetMeanEncoding(
            p.to_str(p.require(body, name, "field"), name, "field"),
            p.to_str(p.require(body, name, "feature_name"), name, "feature_name"),
            _map(p.require(body, name, "target_map"), name, "target_map", p.to_float),
            p.to_float(p.require(body, name, "default_value"), name, "default_value"),
            custom,
        )
    if name == "frequency_encoding":
        return FrequencyEncoding(
            p.to_str(p.require(body, name, "field"), name, "field"),
            p.to_str(p.require(body, name, "feature_name"), name, "feature_name"),
            _map(p.require(body, name, "frequency_map"), name, "frequency_map", p.to_float),
            custom,
        )
    if name == "n_gram_encoding":
        return _ngram(body, custom)
    return _multi(body, custom)


def _ngram(body: dict[str, Any], custom: bool) -> NGramEncoding:
    name = "n_gram_encoding"
    grams = p.to_list(p.require(body, name, "n_grams"), name, "n_grams", p.to_int)
    grams = list(dict.fromkeys(grams))
    start = p.to_int(body.get("start", 0), name, "start")
    length = p.to_int(body.get("length", 50), name, "length")
    prefix = body.get("feature_prefix")
    if not grams:
        raise p.bad_request("[n_grams] must not be empty")
    bad = [g for g in grams if g < 1 or g > 5]
    if bad:
        raise p.bad_request(f"[n_grams] is invalid [{bad}]; minimum supported value is [1]; maximum supported value is [5]")
    if length < 1 or length > 100:
        raise p.bad_request(f"[length] must be a positive integer greater than 0 and less than or equal to [100]; provided [{length}]")
    if any(g > length for g in grams):
        raise p.bad_request(f"[n_grams] and [length] both contain values larger than [length] [{length}]")
    if start < 0 and start + length > 0:
        raise p.bad_request(
            f"if [start] is negative, [length] + [start] must be less than or equal to 0; [start] [{start}] [length] [{length}]"
        )
    return NGramEncoding(
        p.to_str(p.require(body, name, "field"), name, "field"), grams, start, length,
        None if prefix is None else p.to_str(prefix, name, "feature_prefix"), custom,
    )


def _multi(body: dict[str, Any], custom: bool) -> MultiEncoding:
    named = p.named_object_array(p.require(body, "multi_encoding", "processors"), "multi_encoding", "processors")
    procs = [parse_preprocessor(n, b) for n, b in named]
    if len(procs) < 2:
        raise p.bad_request("[processors] must contain more than one processor for [multi_encoding]")
    multi = MultiEncoding(procs, custom)
    if len(multi.input_fields()) > 1 and not custom:
        raise p.bad_request(
            "[custom] must be [true] for [multi_encoding] when more than one input field is used; "
            "feature importance cannot be mapped back to several fields"
        )
    return multi


def parse_preprocessors(objs: Any) -> list[Preprocessor]:
    if objs is None:
        return []
    named = p.named_object_array(objs, "trained_model_definition", "preprocessors")
    return [parse_preprocessor(n, b) for n, b in named]


def apply_to_doc(preprocessors: list[Preprocessor], doc: dict[str, Any]) -> dict[str, Any]:
    """Process one flat document: outputs added, nothing written for missing inputs."""
    cols: Columns = {}
    for k, v in doc.items():
        arr = np.empty(1, dtype=object)
        arr[0] = v
        cols[k] = arr
    for pre in preprocessors:
        pre.process(cols, 1)
    out: dict[str, Any] = {}
    for k, arr in cols.items():
        v = arr[0]
        if v is None or (isinstance(v, float) and np.isnan(v)):
            if k in doc:
                out[k] = doc[k]
            continue
        if isinstance(v, np.generic):
            v = v.item()
        out[k] = v if k in doc and doc[k] is v else v
    for k, v in doc.items():
        out.setdefault(k, v)
    return {k: out[k] for k in list(doc) + [c for c in out if c not in doc]}
