"""Inference endpoints where a model id is expected: the ``inference`` ingest processor.

ES hands an endpoint's results to the processor in the ML results format (``predicted_value``):
text_embedding -> the vector, sparse_embedding -> ``{token: weight}``, completion -> the text,
rerank -> the relevance score. ``model_id`` is the endpoint id. A document whose upstream call
failed gets that call's error; the others are written.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import ApiError
from ..models.input_output import beside
from .runner import infer_endpoint

if TYPE_CHECKING:  # pragma: no cover
    from ..engine import Engine
    from ..ingest.document import Doc
    from ..ingest.inference import InferenceProcessor

DEFAULT_INPUT_FIELD = "text_field"


def predicted_value(entry: dict[str, Any]) -> Any:
    for key in ("embedding", "result", "relevance_score"):
        if key in entry:
            return entry[key]
    return entry.get("response", entry)


def run_inference_processor(proc: "InferenceProcessor", docs: list["Doc"], engine: "Engine") -> list[BaseException | None]:
    from ..ingest.inference import map_fields
    from ..ingest.nlp_inference import _inputs_of
    from ..models.tree.features import dig

    if proc.inputs is not None:
        per_doc: list[Any] = [_inputs_of(proc, d) for d in docs]
    else:
        per_doc = []
        for d in docs:
            text = dig(map_fields(proc.model_input(d), proc.field_map), DEFAULT_INPUT_FIELD)
            per_doc.append([text] if isinstance(text, str) else ApiError(
                "status_exception", f"Input field [{DEFAULT_INPUT_FIELD}] does not exist in the source document", 400))
    flat = [t for texts in per_doc if isinstance(texts, list) for t in texts]
    try:
        answers = infer_endpoint(engine, proc.model_id, flat) if flat else []
    except ApiError as err:
        return [err] * len(docs)
    out: list[BaseException | None] = []
    cursor = 0
    for doc, texts in zip(docs, per_doc):
        if not isinstance(texts, list):
            out.append(texts)
            continue
        mine = answers[cursor: cursor + len(texts)]
        cursor += len(texts)
        failed = next((a for a in mine if isinstance(a, ApiError)), None)
        if failed is not None:
            out.append(failed)
            continue
        try:
            if proc.inputs is None:
                proc.write(doc, {"predicted_value": predicted_value(mine[0])}, proc.model_id)
            else:
                for i, (io, answer) in enumerate(zip(proc.inputs, mine)):
                    output = io["output_field"]
                    doc.set(output, predicted_value(answer), append=doc.has(output))
                    if i == 0:
                        doc.set(beside(output, "model_id"), proc.model_id)
            out.append(None)
        except ApiError as err:
            out.append(err)
    return out


INPUT_KEYS = ("input", "inputs", "texts", "text", "text_docs")


def endpoint_prediction(engine: "Engine", inference_id: str, request: Any) -> dict[str, Any]:
    """OpenSearch ``ml_inference`` with ``function_name: remote`` on an endpoint: the request's
    parameters give the input (``input``/``inputs``/``texts``/``text``, a string or a JSON list) and,
    for rerank, ``query``; the ``_inference`` answer comes back as the ``response`` tensor's
    ``dataAsMap`` (e.g. output path ``text_embedding[0].embedding``)."""
    import json

    from .runner import resolve, rest_answer, run

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
    output = run(engine, endpoint, texts, query=params.get("query"), input_type="ingest")
    answer = rest_answer(output, inputs=texts)
    return {"inference_results": [{"output": [{"name": "response", "dataAsMap": answer}]}]}
