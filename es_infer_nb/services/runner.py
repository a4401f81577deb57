"""Running an inference endpoint: per-input results for pipelines and frames, ES answers for REST."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ApiError
from .base import Endpoint, InferenceContext, TaskOutput, merged_task_settings
from .chunking import REQUEST_CHUNKER_DEFAULT
from .registry import endpoints

if TYPE_CHECKING:  # pragma: no cover
    from ..engine import Engine


def is_endpoint(engine: "Engine", inference_id: str) -> bool:
    """Whether ``inference_id`` names an inference endpoint of ``engine``."""
    store = getattr(engine, "inference_endpoints", None)  # stand-in engines of tests have none
    return store is not None and isinstance(inference_id, str) and inference_id in store


def resolve(engine: "Engine", inference_id: str, task_type: str | None = None) -> Endpoint:
    endpoint = endpoints(engine).get(inference_id)
    if task_type is not None and task_type != endpoint.task_type:
        raise ApiError("status_exception", f"Incompatible task_type, the requested type [{task_type}] does not "
                       f"match the model type [{endpoint.task_type}]", 400)
    return endpoint


def call_concurrency(engine: "Engine", inference_id: str) -> int:
    """How many calls of an endpoint may be in flight at once: its ``max_concurrent_requests`` for a
    service that calls out, 1 for a local one (or an id that is not an endpoint)."""
    try:
        endpoint = endpoints(engine).get(inference_id)
    except ApiError:
        return 1
    settings = endpoint.service.transport_settings(endpoint)
    return 1 if settings is None else max(1, settings.max_concurrent_requests)


def run(engine: "Engine", endpoint: Endpoint, inputs: list[str], *, query: str | None = None,
        task_settings: dict[str, Any] | None = None, input_type: str | None = None, top_n: int | None = None,
        return_documents: bool | None = None, timeout_s: float | None = None, device: str | None = None) -> TaskOutput:
    if endpoint.task_type == "rerank" and query is None:
        raise ApiError("action_request_validation_exception",
                       "Validation Failed: 1: Field [query] cannot be null for task type [rerank];", 400)
    ctx = InferenceContext(endpoint.task_type, merged_task_settings(endpoint.task_settings, task_settings),
                           input_type, query, top_n, return_documents, timeout_s, engine, device)
    transport = endpoints(engine).transport(endpoint)
    return endpoint.service.infer(endpoint, list(inputs), ctx, transport)


def infer_endpoint(engine: "Engine", inference_id: str, inputs: list[str], *, task_type: str | None = None,
                   query: str | None = None, task_settings: dict[str, Any] | None = None,
                   input_type: str | None = "ingest", device: str | None = None) -> list[dict[str, Any] | ApiError]:
    """One result entry per input (``{"embedding": ...}``, ``{"result": ...}``, ``{"index", "relevance_score"}``
    ...), an ``ApiError`` in place of an input whose upstream call failed. ``device``: where the engine's
    own models behind the endpoint run when the engine's device would apply."""
    endpoint = resolve(engine, inference_id, task_type)
    return run(engine, endpoint, inputs, query=query, task_settings=task_settings, input_type=input_type,
               device=device).per_input


def rest_answer(output: TaskOutput, *, top_n: int | None = None, return_documents: bool | None = None,
                inputs: list[str] | None = None) -> dict[str, Any]:
    """ES's ``POST _inference`` answer; the first failed input's error fails the request."""
    for entry in output.per_input:
        if isinstance(entry, ApiError):
            raise entry
    if output.key == "custom":
        return {"custom": output.whole}
    if output.key == "rerank":
        ranked = [dict(e) for e in (output.ranked or [])]
        for e in ranked:
            if return_documents and "text" not in e and inputs is not None and 0 <= e["index"] < len(inputs):
                e["text"] = inputs[e["index"]]
            if return_documents is False:
                e.pop("text", None)
        return {"rerank": ranked[:top_n] if top_n is not None else ranked}
    if output.key == "completion" and output.completions is not None:
        return {"completion": list(output.completions)}
    return {output.key: list(output.per_input)}


def infer_chunked(engine: "Engine", inference_id: str, inputs: list[str], *,
                  input_type: str | None = "ingest") -> list[list[dict[str, Any]] | ApiError]:
    """Per input, its chunks (the endpoint's ``chunking_settings``, as semantic_text chunks them) each
    with its result: ``[{"text", "start", "end", "embedding"}, ...]``; an ``ApiError`` for an input
    one of whose chunks failed. All chunks of all inputs go through one batched run (ES's
    ``EmbeddingRequestChunker``: the batches of the service's batch size take the chunks in order, across
    inputs; a text that does not chunk, ``""`` say, is one chunk; past ``MAX_CHUNKS`` chunks of one
    input, neighbouring chunks are merged)."""
    endpoint = resolve(engine, inference_id)
    # an endpoint without settings of its own: EmbeddingRequestChunker's (word, 250 words, 100 overlapping)
    chunking = endpoint.chunking_settings or REQUEST_CHUNKER_DEFAULT
    if not inputs:
        return []
    spans = [chunking.chunks(text) or [(0, len(text))] for text in inputs]
    flat = [text[s:e] for text, sp in zip(inputs, spans) for s, e in sp]
    output = run(engine, endpoint, flat, input_type=input_type)
    out: list[list[dict[str, Any]] | ApiError] = []
    cursor = 0
    for text, sp in zip(inputs, spans):
        mine = output.per_input[cursor: cursor + len(sp)]
        cursor += len(sp)
        failed = next((r for r in mine if isinstance(r, ApiError)), None)
        out.append(failed if failed is not None else _chunk_entries(text, sp, mine, output.key))  # type: ignore[arg-type]
    return out


#: ``EmbeddingRequestChunker.MAX_CHUNKS``: the most chunks kept for one input; more are each embedded,
#: then merged into this many
MAX_CHUNKS = 512


def _chunk_groups(count: int) -> list[list[int]]:
    """The chunks (indices) each kept chunk is made of: chunk ``i`` of ``count`` goes into ``i * MAX / count``."""
    groups: list[list[int]] = []
    for i in range(count):
        target = i if count <= MAX_CHUNKS else i * MAX_CHUNKS // count
        if target == len(groups):
            groups.append([])
        groups[target].append(i)
    return groups


def _chunk_entries(text: str, spans: list[tuple[int, int]], results: list[dict[str, Any]],
                   key: str) -> list[dict[str, Any]]:
    """An input's chunks with their results; a merged chunk runs from its first chunk's start to its last one's end."""
    out = []
    for group in _chunk_groups(len(spans)):
        start, end = spans[group[0]][0], spans[group[-1]][1]
        result = merge_embeddings(key, [results[i] for i in group])
        out.append({"text": text[start:end], "start": start, "end": end, **result})
    return out


def merge_embeddings(key: str, entries: list[dict[str, Any]]) -> dict[str, Any]:
    """One result for several chunks, in chunk order, as ES's ``Embedding.merge`` folds them: floats averaged
    (in float32), bytes / bits averaged over their integer sum and rounded half up, sparse tokens by their
    highest weight (``is_truncated`` if any was)."""
    if len(entries) == 1:
        return entries[0]
    vectors = [e["embedding"] for e in entries]
    if isinstance(vectors[0], dict):
        return {"is_truncated": any(e.get("is_truncated") for e in entries), "embedding": _merge_sparse(vectors)}
    if key in ("text_embedding_bytes", "text_embedding_bits"):
        return {"embedding": _merge_bytes(vectors)}
    return {"embedding": _merge_floats(vectors)}


def _merge_floats(vectors: list[list[float]]) -> list[float]:
    """``DenseEmbeddingFloatResults.Embedding.merge``: ``(n * mean + v) / (n + 1)``, one vector at a time."""
    mean = np.asarray(vectors[0], dtype=np.float32)
    for n, vector in enumerate(vectors[1:], start=1):
        mean = (np.float32(n) * mean + np.asarray(vector, dtype=np.float32)) / np.float32(n + 1)
    return mean.tolist()


def _merge_bytes(vectors: list[list[int]]) -> list[int]:
    """``DenseEmbeddingByteResults.Embedding.merge``: ``(byte) ((sum + n / 2) / n)`` in Java's integer arithmetic."""
    n = len(vectors)
    sums = np.asarray(vectors, dtype=np.int64).sum(axis=0) + n // 2
    quotients = np.sign(sums) * (np.abs(sums) // n)  # Java's division truncates towards zero
    return quotients.astype(np.int8).tolist()  # the (byte) cast wraps


def _merge_sparse(embeddings: list[dict[str, float]]) -> dict[str, float]:
    """``SparseEmbeddingResults.Embedding.merge`` folded left: the two token lists merged by weight (on a tie
    the later embedding's token first), each token kept at its first (highest) weight."""
    merged = list(embeddings[0].items())
    for embedding in embeddings[1:]:
        merged = _merge_token_lists(merged, list(embedding.items()))
    return dict(merged)


def _merge_token_lists(mine: list[tuple[str, float]], theirs: list[tuple[str, float]]) -> list[tuple[str, float]]:
    out: list[tuple[str, float]] = []
    seen: set[str] = set()
    i = j = 0
    while i < len(mine) or j < len(theirs):
        if j == len(theirs) or (i < len(mine) and mine[i][1] > theirs[j][1]):
            token = mine[i]
            i += 1
        else:
            token = theirs[j]
            j += 1
        if token[0] not in seen:
            seen.add(token[0])
            out.append(token)
    return out
