"""A local ml-commons model's text docs input and its result filter, as ``TextDocsMLInput`` reads them and
``ModelTensors.filter`` applies them.

``text_docs`` is an array (``null`` entries kept); the filter is the ``result_filter`` object (how
ml-commons' own clients send it) or the same fields at the top of the body: ``return_number`` (keep a
tensor's ``data``, default true), ``return_bytes`` (keep its ``byte_buffer``: the float32 values, little
endian, base64), ``target_response`` (tensor names) and ``target_response_positions`` (tensor indexes). A
result without tensors is ``{}``: ``ModelTensors`` leaves ``output`` out.
"""

from __future__ import annotations

import base64
import math
import re
from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np

from ..errors import ApiError
from ..models.parsing import json_token
from .ml_process import gson_json, iae

__all__ = ["EmbeddingParams", "ResultFilter", "embedding_params", "embedding_results", "present_docs", "result_filter",
           "text_docs"]

#: the Java enums a text docs input's ``parameters`` name (``AsymmetricTextEmbeddingParameters``)
_PARAMS_PACKAGE = "org.opensearch.ml.common.input.parameter.textembedding"
CONTENT_TYPES = ("QUERY", "PASSAGE")
SPARSE_FORMATS = ("WORD", "TOKEN_ID")
#: the decimal text ``Double.parseDouble`` reads (its optional float / double suffix left out of the group)
_JAVA_DOUBLE = re.compile(r"([+-]?(?:NaN|Infinity|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?))[fFdD]?")


@dataclass(frozen=True)
class ResultFilter:
    return_bytes: bool = False
    return_number: bool = True
    target_response: tuple[str, ...] = ()
    target_positions: tuple[int, ...] = ()


def _parse_error(expected: str, value: Any) -> ApiError:
    return ApiError("parsing_exception", f"Failed to parse object: expecting token of type [{expected}] but found "
                    f"[{json_token(value)}]", 400)


@dataclass(frozen=True)
class EmbeddingParams:
    """``AsymmetricTextEmbeddingParameters``: a text docs input's ``parameters`` object."""

    content_type: str | None = None
    sparse_format: str = "WORD"


def _enum(value: Any, allowed: tuple[str, ...], enum: str) -> str:
    """``Enum.valueOf(text.toUpperCase())``: the constant, else Java's ``No enum constant`` message."""
    name = _text(value).upper()
    if name not in allowed:
        raise iae(f"No enum constant {_PARAMS_PACKAGE}.{enum}.{name}")
    return name


def embedding_params(body: dict[str, Any]) -> EmbeddingParams | None:
    """The body's ``parameters`` as a text embedding / sparse model reads them (None when absent):
    ``content_type`` (QUERY / PASSAGE) and ``sparse_embedding_format`` (WORD / TOKEN_ID)."""
    if "parameters" not in body:
        return None
    raw = body["parameters"]
    if not isinstance(raw, dict):
        raise _parse_error("START_OBJECT", raw)
    content_type = None
    if "content_type" in raw:
        content_type = _enum(raw["content_type"], CONTENT_TYPES, "AsymmetricTextEmbeddingParameters.EmbeddingContentType")
    sparse_format = "WORD"
    if "sparse_embedding_format" in raw:
        sparse_format = _enum(raw["sparse_embedding_format"], SPARSE_FORMATS, "SparseEmbeddingFormat")
    return EmbeddingParams(content_type, sparse_format)


def _boolean(value: Any, field: str) -> bool:
    """XContent's ``booleanValue``: a boolean, or the strings ``true`` / ``false``."""
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return value == "true"
    if isinstance(value, str):
        raise iae(f"Failed to parse value [{value}] as only [true] or [false] are allowed.")
    raise ApiError("x_content_parse_exception", f"[{field}] expected a boolean, found [{json_token(value)}]", 400)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else gson_json(value)


def result_filter(body: dict[str, Any]) -> ResultFilter:
    """The body's ``result_filter`` object, else its top-level filter fields."""
    source = body.get("result_filter") if "result_filter" in body else body
    if not isinstance(source, dict):
        raise _parse_error("START_OBJECT", source)
    targets, positions = source.get("target_response", []), source.get("target_response_positions", [])
    if not isinstance(targets, list):
        raise _parse_error("START_ARRAY", targets)
    if not isinstance(positions, list):
        raise _parse_error("START_ARRAY", positions)
    return ResultFilter(_boolean(source.get("return_bytes", False), "return_bytes"),
                        _boolean(source.get("return_number", True), "return_number"),
                        tuple(_text(t) for t in targets), tuple(_position(p) for p in positions))


def _position(value: Any) -> int:
    """XContent's coercing ``intValue``: an integer, a number truncated, or a number's text."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise iae("[target_response_positions] must be integers")
    if isinstance(value, str):
        match = _JAVA_DOUBLE.fullmatch(value.strip())
        if match is None:
            raise ApiError("number_format_exception", f'For input string: "{value}"', 400)
        number = float(match.group(1).replace("Infinity", "inf"))
        if number < -2**31 or number > 2**31 - 1:
            raise iae(f"Value [{value}] is out of range for an integer")
        return 0 if math.isnan(number) else int(number)
    return int(value)


def text_docs(body: dict[str, Any]) -> list[str | None]:
    """``text_docs``: an array (a ``null`` kept as None), not empty."""
    docs = body.get("text_docs")
    if docs is not None and not isinstance(docs, list):
        raise _parse_error("START_ARRAY", docs)
    if not docs:
        raise iae("Empty text docs")
    return [None if d is None else _text(d) for d in docs]


def present_docs(body: dict[str, Any]) -> list[str]:
    """``text_docs`` a local model embeds: a null among them cannot be run."""
    docs = text_docs(body)
    if any(d is None for d in docs):
        raise iae("[text_docs] holds a null: a local model embeds text only")
    return [d for d in docs if d is not None]


def filtered(tensors: list[dict[str, Any]], keep: ResultFilter) -> list[dict[str, Any]]:
    """``ModelTensors.filter``: the tensors named or placed in the filter (all when it names none), each
    without ``data`` unless ``return_number``, without ``byte_buffer`` unless ``return_bytes``."""
    chosen = tensors
    if keep.target_response or keep.target_positions:
        chosen = [t for i, t in enumerate(tensors) if t.get("name") in keep.target_response or i in keep.target_positions]
    out = []
    for tensor in chosen:
        tensor = dict(tensor)
        if not keep.return_number:
            tensor.pop("data", None)
        if not keep.return_bytes:
            tensor.pop("byte_buffer", None)
        out.append(tensor)
    return out


def embedding_results(vectors: Iterable[np.ndarray], keep: ResultFilter) -> dict[str, Any]:
    """One ``sentence_embedding`` tensor per vector, filtered: the Predict answer of a text embedding model."""
    results = []
    for vector in vectors:
        values = np.asarray(vector, dtype=np.float32).reshape(-1)
        tensor = {"name": "sentence_embedding", "data_type": "FLOAT32", "shape": [int(values.shape[0])],
                  "data": [float(x) for x in values],
                  "byte_buffer": {"array": base64.b64encode(values.astype("<f4").tobytes()).decode("ascii"),
                                  "order": "LITTLE_ENDIAN"}}
        tensors = filtered([tensor], keep)
        results.append({"output": tensors} if tensors else {})
    return {"inference_results": results}
