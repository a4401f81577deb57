"""Response parsers of the ``custom`` service (ES's ``*ResponseParser`` classes) and its error parser.

Each parser is configured from ``response.json_parser`` (task specific paths into the remote answer)
and turns a decoded JSON response into the ``_inference`` result entries of its task type, with the
messages Elasticsearch uses when the response does not have the configured shape.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ..errors import ApiError
from ..models.tree.features import java_string
from .json_path import extract, illegal_argument, illegal_state, java_type, response_type
from .settings import Validation

_NUMBER_TYPES = {int, float}
EMBEDDING_TYPES = {
    "float": "text_embedding",
    "byte": "text_embedding_bytes",
    "bit": "text_embedding_bits",
    "binary": "text_embedding_bits",
}


def _list_of(value: Any, field: str) -> list[Any]:
    if not isinstance(value, list):
        raise illegal_argument(
            f"Extracted field [{field}] is an invalid type, expected a list but received [{response_type(value)}]"
        )
    return value


def _convert_list(
    values: list[Any], convert: Callable[[Any, str], Any], field: str, item: str = "list entry [{i}],"
) -> list[Any]:
    """Each value through ``convert``; a failure is ES's ``Failed to parse <item> error: ...`` (``{i}``: the index)."""
    out = []
    for i, v in enumerate(values):
        try:
            out.append(convert(v, field))
        except ApiError as err:
            raise illegal_state(f"Failed to parse {item.format(i=i)} error: {err.reason}") from None
    return out


def to_number(value: Any, field: str) -> float | int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise illegal_state(f"Unable to convert field [{field}] of type [{response_type(value)}] to Number")
    return value


def to_string(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise illegal_state(f"Unable to convert field [{field}] of type [{response_type(value)}] to [String]")
    return value


def _float32(x: float) -> float:
    return float(np.float32(x))


@dataclass
class ResponseParser:
    """Base: the settings as written back (``json_parser`` object) and ``parse``."""

    task_type: str

    def to_settings(self) -> dict[str, Any]:  # pragma: no cover - overridden
        raise NotImplementedError

    def parse(self, body: Any) -> dict[str, list[dict[str, Any]]]:  # pragma: no cover - overridden
        raise NotImplementedError

    @property
    def result_key(self) -> str:
        return self.task_type


@dataclass
class TextEmbeddingParser(ResponseParser):
    text_embeddings: str
    embedding_type: str = "float"

    def to_settings(self) -> dict[str, Any]:
        return {"text_embeddings": self.text_embeddings, "embedding_type": self.embedding_type}

    @property
    def result_key(self) -> str:
        return EMBEDDING_TYPES[self.embedding_type]

    def _fast_float(self, entries: list[Any]) -> list[list[float]] | None:
        """All entries numeric lists of one length: one float32 conversion for the whole batch."""
        if self.embedding_type != "float" or not entries or not all(type(e) is list for e in entries):
            return None
        width = len(entries[0])
        if any(len(e) != width for e in entries) or not all(set(map(type, e)) <= _NUMBER_TYPES for e in entries):
            return None
        return np.asarray(entries, dtype=np.float32).tolist()

    def parse(self, body: Any) -> dict[str, list[dict[str, Any]]]:
        found = extract(body, self.text_embeddings)
        # ES names the outer list by the first field walked, each entry by the second (``unknown`` if none)
        entries = _list_of(found.value, found.field_name(0))
        inner = found.field_name(1)
        fast = self._fast_float(entries)
        if fast is not None:
            return {self.result_key: [{"embedding": v} for v in fast]}
        out = []
        for i, entry in enumerate(entries):
            try:
                vector = _list_of(entry, inner)
                if not set(map(type, vector)) <= _NUMBER_TYPES:  # bool, str, ...: ES's message
                    _convert_list(vector, to_number, inner)
                if self.embedding_type == "float":
                    values: list[Any] = np.asarray(vector, dtype=np.float32).tolist()
                else:
                    values = [int(v) for v in vector]
            except ApiError as err:
                raise illegal_argument(f"Failed to parse text embedding entry [{i}], error: {err.reason}") from None
            out.append({"embedding": values})
        return {self.result_key: out}


@dataclass
class SparseEmbeddingParser(ResponseParser):
    token_path: str
    weight_path: str

    def to_settings(self) -> dict[str, Any]:
        return {"token_path": self.token_path, "weight_path": self.weight_path}

    def parse(self, body: Any) -> dict[str, list[dict[str, Any]]]:
        tokens = extract(body, self.token_path)
        weights = extract(body, self.weight_path)
        token_lists = _list_of(tokens.value, tokens.field_name(0))
        weight_lists = _list_of(weights.value, weights.field_name(0))
        _same_size(len(token_lists), len(weight_lists))
        token_field, weight_field = tokens.field_name(1), weights.field_name(1)
        out = []
        for i, (toks, wts) in enumerate(zip(token_lists, weight_lists)):
            try:
                toks = _list_of(toks, token_field)
                wts = _list_of(wts, weight_field)
                _same_size(len(toks), len(wts))
                names = [java_string(t) for t in toks]  # ES: ``token.toString()`` (6 -> "6", 6.0 -> "6.0")
                values = [_float32(w) for w in _weights(wts, weight_field)]
            except ApiError as err:
                raise illegal_state(f"Failed to parse sparse embedding entry [{i}], error: {err.reason}") from None
            out.append({"is_truncated": False, "embedding": dict(zip(names, values))})
        return {"sparse_embedding": out}


@dataclass
class SparseResultParser(ResponseParser):
    """Alibaba's ``sparse_result``: ``path`` finds one entry per input, ``value.sparse_token`` and
    ``value.sparse_weight`` (paths from that entry) its tokens and their weights."""

    path: str
    sparse_token: str
    sparse_weight: str

    def to_settings(self) -> dict[str, Any]:
        return {
            "sparse_result": {
                "path": self.path,
                "value": {"sparse_token": self.sparse_token, "sparse_weight": self.sparse_weight},
            }
        }

    def parse(self, body: Any) -> dict[str, list[dict[str, Any]]]:
        found = extract(body, self.path)
        entries = [found.value] if isinstance(found.value, dict) else _list_of(found.value, found.field_name(-1))
        out = []
        for i, entry in enumerate(entries):
            try:
                tokens = extract(entry, self.sparse_token)
                weights = extract(entry, self.sparse_weight)
                toks = _list_of(tokens.value, tokens.field_name(-1))
                wts = _list_of(weights.value, weights.field_name(-1))
                _same_size(len(toks), len(wts))
                names = [_token_name(t, tokens.field_name(-1)) for t in toks]
                values = [_float32(w) for w in _weights(wts, weights.field_name(-1))]
            except ApiError as err:
                raise illegal_state(f"Failed to parse sparse embedding entry [{i}], error: {err.reason}") from None
            out.append({"is_truncated": False, "embedding": dict(zip(names, values))})
        return {"sparse_embedding": out}


def _token_name(token: Any, field: str) -> str:
    """A token as the key of a sparse embedding: a string as it is, an integer id (``6``, ``6.0``) as ``"6"``."""
    if isinstance(token, str):
        return token
    if isinstance(token, bool) or not isinstance(token, (int, float)):
        raise illegal_state(f"Unable to convert field [{field}] of type [{java_type(token)}] to [String]")
    return str(int(token)) if isinstance(token, float) and token.is_integer() else str(token)


def _weights(values: list[Any], field: str) -> list[float | int]:
    """Each weight a number (ES: ``Failed to parse weight item: [i] of array, error: ...``)."""
    return _convert_list(values, to_number, field, "weight item: [{i}] of array,")


def _same_size(tokens: int, weights: int) -> None:
    if tokens != weights:
        raise illegal_state(
            f"The extracted tokens list is size [{tokens}] but the weights list is size [{weights}]. "
            "The list sizes must be equal."
        )


@dataclass
class RerankParser(ResponseParser):
    relevance_score: str
    reranked_index: str | None = None
    document_text: str | None = None

    def to_settings(self) -> dict[str, Any]:
        out = {"relevance_score": self.relevance_score}
        if self.reranked_index is not None:
            out["reranked_index"] = self.reranked_index
        if self.document_text is not None:
            out["document_text"] = self.document_text
        return out

    @staticmethod
    def _flat(body: Any, path: str, convert: Callable[[Any, str], Any], what: str) -> list[Any]:
        """ES's ``extractScores`` / ``extractIndices`` / ``extractDocuments``: any failure, the path's
        included, is ``Failed to parse rerank <what>, error: ...``."""
        try:
            found = extract(body, path)
            return _convert_list(_list_of(found.value, found.field_name(0)), convert, found.field_name(0))
        except ApiError as err:
            raise illegal_state(f"Failed to parse rerank {what}, error: {err.reason}") from None

    def parse(self, body: Any) -> dict[str, list[dict[str, Any]]]:
        # all three are extracted before the sizes are compared, as ES does
        scores = self._flat(body, self.relevance_score, to_number, "scores")
        indices = self._flat(body, self.reranked_index, to_number, "indices") if self.reranked_index else None
        texts = self._flat(body, self.document_text, to_string, "documents") if self.document_text else None
        if indices is not None and len(indices) != len(scores):
            raise illegal_state(
                f"The number of index fields [{len(indices)}] was not the same as the number of scores [{len(scores)}]"
            )
        if texts is not None and len(texts) != len(scores):
            raise illegal_state(
                f"The number of document fields [{len(texts)}] was not the same as the number of scores [{len(scores)}]"
            )
        out = []
        for i, score in enumerate(scores):
            entry: dict[str, Any] = {
                "index": int(indices[i]) if indices is not None else i,
                "relevance_score": _float32(score),
            }
            if texts is not None:
                entry["text"] = texts[i]
            out.append(entry)
        return {"rerank": out}


@dataclass
class CompletionParser(ResponseParser):
    completion_result: str

    def to_settings(self) -> dict[str, Any]:
        return {"completion_result": self.completion_result}

    def parse(self, body: Any) -> dict[str, list[dict[str, Any]]]:
        found = extract(body, self.completion_result)
        value = found.value
        if isinstance(value, str):
            results = [value]
        elif isinstance(value, list):
            results = _convert_list(value, to_string, self.completion_result)
        else:
            raise illegal_argument(
                f"Extracted field [{found.field_name(0)}] from path [{self.completion_result}] is an invalid type, "
                f"expected a list or a string but received [{response_type(value)}]"
            )
        return {"completion": [{"result": r} for r in results]}


@dataclass
class CustomParser(ResponseParser):
    """Task type ``custom``: the whole remote response is the result."""

    def to_settings(self) -> dict[str, Any]:
        return {}

    def parse(self, body: Any) -> dict[str, Any]:
        return {"custom": body}


#: the settings each task type's ``json_parser`` reads (anything else is unknown)
PARSER_KEYS: dict[str, tuple[str, ...]] = {
    "text_embedding": ("text_embeddings", "embedding_type"),
    "sparse_embedding": ("token_path", "weight_path"),
    "rerank": ("relevance_score", "reranked_index", "document_text"),
    "completion": ("completion_result",),
    "custom": (),
}


def parse_json_parser(task_type: str, raw: Any, scope: str | None = None) -> ResponseParser:
    """The ``json_parser`` settings of ``task_type`` (ES's ``fromMap`` of each parser)."""
    v = Validation()
    where = f"{scope}.json_parser" if scope else "json_parser"
    source = dict(raw) if isinstance(raw, dict) else {}
    parser: ResponseParser | None = None
    if task_type == "text_embedding":
        path = v.required_string(source, "text_embeddings", where)
        etype = v.optional_string(source, "embedding_type", where) or "float"
        if etype.lower() not in EMBEDDING_TYPES:
            v.add(
                f"[{where}] Invalid value [{etype}] received. [embedding_type] must be one of "
                f"[{', '.join(EMBEDDING_TYPES)}]"
            )
        v.raise_if_any()
        parser = TextEmbeddingParser(task_type, path, etype.lower())  # type: ignore[arg-type]
    elif task_type == "sparse_embedding":
        tokens = v.required_string(source, "token_path", "json_parser")
        weights = v.required_string(source, "weight_path", "json_parser")
        v.raise_if_any()
        parser = SparseEmbeddingParser(task_type, tokens, weights)  # type: ignore[arg-type]
    elif task_type == "rerank":
        score = v.required_string(source, "relevance_score", where)
        index = v.optional_string(source, "reranked_index", where)
        text = v.optional_string(source, "document_text", where)
        v.raise_if_any()
        parser = RerankParser(task_type, score, index, text)  # type: ignore[arg-type]
    elif task_type == "completion":
        result = v.required_string(source, "completion_result", where)
        v.raise_if_any()
        parser = CompletionParser(task_type, result)  # type: ignore[arg-type]
    elif task_type == "custom":
        parser = CustomParser(task_type)
    else:
        raise illegal_argument(f"Invalid task type received [{task_type}] while constructing response parser")
    return parser


@dataclass
class ErrorParser:
    """``response.error_parser.path``: where the service puts its error message."""

    path: str

    def to_settings(self) -> dict[str, Any]:
        return {"path": self.path}

    @classmethod
    def from_settings(cls, raw: Any, scope: str | None = None) -> "ErrorParser":
        v = Validation()
        source = dict(raw) if isinstance(raw, dict) else {}
        path = v.required_string(source, "path", f"{scope}.error_parser" if scope else "error_parser")
        v.raise_if_any()
        return cls(path)  # type: ignore[arg-type]

    def message(self, raw: bytes | str) -> dict[str, Any]:
        text = raw.decode("utf-8", "replace") if isinstance(raw, (bytes, bytearray)) else str(raw)
        return {"error_message": error_message(text, self.path), "error_structure_found": True}


def error_message(text: str, path: str) -> str:
    """The service's error message at ``path`` of a raw error body (ES's fallback when not found)."""
    try:
        found = extract(json.loads(text), path).value
        if isinstance(found, str):
            return found
    except (ValueError, ApiError):
        pass
    return f"Unable to parse the error, response body: [{text.strip()}]"
