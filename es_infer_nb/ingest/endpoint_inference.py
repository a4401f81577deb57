"""An ``_inference`` endpoint where the ``inference`` processor expects a model id.

ES hands an endpoint's results to the processor in the ML results format (``predicted_value``):
text_embedding -> the vector, sparse_embedding -> ``{token: weight}``, completion -> the text,
rerank -> the relevance score. ``model_id`` is the endpoint id. A document whose upstream call
failed gets that call's error; the others are written.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import ApiError
from ..models.input_output import split_output
from ..models.tree.features import dig
from ..services.ingest_bridge import DEFAULT_INPUT_FIELD, predicted_value
from ..services.runner import infer_endpoint
from .document import map_fields
from .nlp_inference import _inputs_of

if TYPE_CHECKING:  # pragma: no cover
    from ..engine import Engine
    from .document import Doc
    from .inference import InferenceProcessor


def run_inference_processor(proc: "InferenceProcessor", docs: list["Doc"], engine: "Engine", *,
                            device: str | None = None) -> list[BaseException | None]:
    """The processor over a batch through an ``_inference`` endpoint; ``device``: where the engine's
    own models behind the endpoint run when the engine's device would apply."""
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
        answers = infer_endpoint(engine, proc.model_id, flat, device=device) if flat else []
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
                proc.write_outputs(doc, [{split_output(io["output_field"])[1]: predicted_value(answer)}
                                         for io, answer in zip(proc.inputs, mine)], proc.model_id)
            out.append(None)
        except ApiError as err:
            out.append(err)
    return out
