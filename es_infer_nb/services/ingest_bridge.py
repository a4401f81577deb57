"""Inference endpoints where a model id is expected (the ``inference`` and ``ml_inference`` processors).

ES hands an endpoint's results to the ``inference`` processor in the ML results format
(:func:`predicted_value`): text_embedding -> the vector, sparse_embedding -> ``{token: weight}``,
completion -> the text, rerank -> the relevance score (the processor side is
:mod:`es_infer_nb.ingest.endpoint_inference`). OpenSearch's ``ml_inference`` gets the ``_inference``
answer as a Predict API answer (:func:`endpoint_prediction`).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ..errors import ApiError
from .runner import resolve, rest_answer, run

if TYPE_CHECKING:  # pragma: no cover
    from ..engine import Engine

DEFAULT_INPUT_FIELD = "text_field"


def predicted_value(entry: dict[str, Any]) -> Any:
    for key in ("embedding", "result", "relevance_score"):
        if key in entry:
            return entry[key]
    return entry.get("response", entry)


INPUT_KEYS = ("input", "inputs", "texts", "text", "text_docs")


def endpoint_prediction(engine: "Engine", inference_id: str, request: Any, *,
                        device: str | None = None) -> dict[str, Any]:
    """OpenSearch ``ml_inference`` with ``function_name: remote`` on an endpoint: the request's
    parameters give the input (``input``/``inputs``/``texts``/``text``, a string or a JSON list) and,
    for rerank, ``query``; the ``_inference`` answer comes back as the ``response`` tensor's
    ``dataAsMap`` (e.g. output path ``text_embedding[0].embedding``). ``device``: where the engine's own
    models behind the endpoint run when the engine's device would apply."""
    params = request.get("parameters", request) if isinstance(request, dict) else None
    if not isinstance(params, dict):
        raise ApiError("illegal_argument_exception", f"Invalid payload for inference endpoint [{inference_id}]", 400)
    key = next((k for k in INPUT_KEYS if k in params), None)
    if key is None:
        raise ApiError("illegal_argument_exception", f"The request to inference endpoint [{inference_id}] has no "
                       f"input: give one of the parameters {list(INPUT_KEYS)}", 400)
    raw = params[key]
    if isinstance(raw, str) and raw.startswith("["):
        try:
            raw = json.loads(raw)
        except ValueError:
            pass
    texts = [raw] if isinstance(raw, str) else [t if isinstance(t, str) else json.dumps(t) for t in raw]
    endpoint = resolve(engine, inference_id)
    output = run(engine, endpoint, texts, query=params.get("query"), input_type="ingest", device=device)
    answer = rest_answer(output, inputs=texts)
    return {"inference_results": [{"output": [{"name": "response", "dataAsMap": answer}]}]}
