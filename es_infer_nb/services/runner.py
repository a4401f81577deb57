"""Running an inference endpoint: per-input results for pipelines and frames, ES answers for REST."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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
    return {output.key: list(output.per_input)}


def infer_chunked(engine: "Engine", inference_id: str, inputs: list[str], *,
                  input_type: str | None = "ingest") -> list[list[dict[str, Any]] | ApiError]:
    """Per input, its chunks (the endpoint's ``chunking_settings``, as semantic_text chunks them) each
    with its result: ``[{"text", "start", "end", "embedding"}, ...]``; an ``ApiError`` for an input
    one of whose chunks failed. All chunks of all inputs go through one batched run."""
    endpoint = resolve(engine, inference_id)
    # an endpoint without settings of its own: EmbeddingRequestChunker's (word, 250 words, 100 overlapping)
    chunking = endpoint.chunking_settings or REQUEST_CHUNKER_DEFAULT
    if not inputs:
        return []
    spans = [chunking.chunks(text) for text in inputs]
    flat = [text[s:e] for text, sp in zip(inputs, spans) for s, e in sp]
    results = run(engine, endpoint, flat, input_type=input_type).per_input
    out: list[list[dict[str, Any]] | ApiError] = []
    cursor = 0
    for text, sp in zip(inputs, spans):
        mine = results[cursor: cursor + len(sp)]
        cursor += len(sp)
        failed = next((r for r in mine if isinstance(r, ApiError)), None)
        out.append(failed if failed is not None else [
            {"text": text[s:e], "start": s, "end": e, **r} for (s, e), r in zip(sp, mine)])  # type: ignore[dict-item]
    return out
