"""Declared columns of the processors that call a model (:mod:`.declared`): what the model writes comes
from its config, rendered by the code the pipeline itself uses:

* ``inference`` on a tree model: :func:`~es_infer_nb.models.results.render_per_document` of a
  stand-in result in which every class wins once (so the label type is the real one), and a warning row;
* ``inference`` on a pytorch (NLP) model: the task's stand-in result (:func:`es_infer_nb.backends.columns.nlp_result`,
  after the processor's ``inference_config``), under ``target_field`` with ``model_id`` and ``is_truncated``,
  or per ``input_output`` pair what :func:`~es_infer_nb.models.input_output.as_map` writes;
* ``inference`` on an ``_inference`` endpoint: :func:`~es_infer_nb.services.ingest_bridge.predicted_value`
  of a stand-in entry of the endpoint's task type;
* ``ml_inference``: the stand-in answers of :func:`stand_in_answers`, read by the processor itself
  (:meth:`es_infer_nb.ingest.ml_inference.MLInferenceProcessor.declare_columns`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from ..backends import resolve
from ..backends.columns import endpoint_entry, nlp_result, stored_config, tree_config
from ..errors import ApiError
from ..models.inference_config import ClassificationConfig
from ..models.input_output import as_map, beside, task_of
from ..models.results import TreeBatchResult, render_per_document
from ..services.base import TaskOutput
from ..services.ingest_bridge import predicted_value
from ..services.runner import rest_answer
from .declared import TEXT, UNKNOWN, SymbolicDocument

if TYPE_CHECKING:  # pragma: no cover
    from ..engine import Engine
    from .inference import InferenceProcessor

__all__ = ["inference_writes", "nlp_stand_ins", "stand_in_answers", "tree_docs"]


def inference_writes(doc: SymbolicDocument, p: "InferenceProcessor", partial: bool) -> None:
    try:
        kind = resolve(doc.engine, p.model_id).kind
        if kind == "endpoint":
            _endpoint_writes(doc, p, partial)
        elif kind == "nlp":
            _nlp_writes(doc, p, partial)
        elif kind == "tree" and p.target_field is not None:  # no input_output
            docs = tree_docs(doc.engine, p.model_id, p.update)
            doc.write(p.target_field, [{**d, "model_id": TEXT} for d in docs], partial, append=True)
    except ApiError:  # an unknown model, a wrong update: every document fails, nothing is written
        return


def nlp_stand_ins(engine: "Engine", model_id: str, update: Any) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(the stored config, a stand-in result, the same result of a truncated text)."""
    stored = stored_config(engine, model_id)[1]
    truncated, _ = nlp_result(stored, update)
    return stored, {k: v for k, v in truncated.items() if k != "is_truncated"}, truncated


def _nlp_writes(doc: SymbolicDocument, p: "InferenceProcessor", partial: bool) -> None:
    stored, result, truncated = nlp_stand_ins(doc.engine, p.model_id, p.update)
    if p.inputs is None:  # written as one object, ``model_id`` last; ``is_truncated`` only for truncated rows
        assert p.target_field is not None
        doc.write(p.target_field, [{**result, "model_id": TEXT}, {**result, "model_id": TEXT, **truncated}],
                  partial, append=True)
        return
    task, results_field = task_of(stored)
    for i, io in enumerate(p.inputs):
        maps = [as_map(task, answer, io["output_field"], results_field) for answer in (result, truncated)]
        keys = list(maps[0]) + (["model_id"] if i == 0 else []) + [k for k in maps[1] if k not in maps[0]]
        for key in keys:
            values = [TEXT] if key == "model_id" and i == 0 else [m[key] for m in maps if key in m]
            doc.write(beside(io["output_field"], key), values, partial or key not in maps[0], append=True)


def _endpoint_writes(doc: SymbolicDocument, p: "InferenceProcessor", partial: bool) -> None:
    entry = endpoint_entry(doc.engine, p.model_id)
    value = UNKNOWN if entry is None else predicted_value(entry)
    if p.inputs is None:
        assert p.target_field is not None
        doc.write(p.target_field, [{"predicted_value": value, "model_id": TEXT}], partial, append=True)
        return
    for i, io in enumerate(p.inputs):
        output = io["output_field"]
        doc.write(output, [value], partial, append=True)
        if i == 0:
            doc.write(beside(output, "model_id"), [TEXT], partial)


def stand_in_answers(engine: "Engine", model_id: str, *, endpoints: bool,
                     as_infer: Callable[[list[dict[str, Any]]], list[Any]]) -> list[Any]:
    """Stand-in answers of the model ``model_id`` names (none when unknown): an ``_inference`` endpoint's
    REST answer (when ``endpoints``), else the ``_infer`` result documents of a pytorch or tree model,
    passed through ``as_infer`` (how the caller wraps them)."""
    try:
        kind = resolve(engine, model_id, endpoints=endpoints).kind
        if kind == "endpoint":
            entry = endpoint_entry(engine, model_id)
            if entry is None:
                return []
            task = engine.inference_endpoints.get(model_id)["task_type"]
            return [rest_answer(TaskOutput(task, [entry], ranked=[entry]))]
        if kind == "nlp":
            _stored, plain, truncated = nlp_stand_ins(engine, model_id, None)
            return as_infer([plain, truncated])
        if kind == "tree":
            return as_infer(tree_docs(engine, model_id, None))
    except ApiError:
        pass
    return []


def tree_docs(engine: "Engine", model_id: str, update: Any) -> list[dict[str, Any]]:
    """The ES result documents a tree model may write: every class winning once (or one regression
    value), then the all-fields-missing warning; as :func:`render_per_document` renders them."""
    concrete, config, labels = tree_config(engine, model_id, update)
    classification = isinstance(config, ClassificationConfig)
    n_classes = len(labels) if labels else 2
    n = n_classes + 1 if classification else 2
    k = n_classes if classification else 1
    importance = bool(config.num_top_feature_importance_values)
    result = TreeBatchResult(
        model_id=concrete, config=config, values=np.arange(n) % n_classes if classification else np.zeros(n),
        probabilities=np.eye(n, n_classes) if classification else None,
        warning=np.arange(n) == n - 1, errors=[None] * n, labels=labels,
        importance=np.ones((n, 1, k)) if importance else None, importance_names=["f"] if importance else None)
    return [d for d in render_per_document(result) if not isinstance(d, ApiError)]
