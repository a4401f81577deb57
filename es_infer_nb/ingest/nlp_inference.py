"""The ``inference`` processor on pytorch (NLP) models: both the target-field and the ``input_output``
styles (spec §3.2, §3.3), one batched deployment call per processor per batch.

Texts get the model's ``prefix_strings.ingest``. A document whose input is unusable or whose result
is an error fails alone (``on_failure`` / ``ignore_failure`` apply); the others are written.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import ApiError
from ..models.deployments import Deployment, deployments
from ..models.input_output import as_map, task_of
from ..models.nlp_backend import input_field
from ..models.nlp_frames import run_chunks
from ..models.tree.features import dig
from .document import Doc, map_fields

if TYPE_CHECKING:  # pragma: no cover
    from ..engine import Engine
    from .inference import InferenceProcessor


def _reported_id(engine: "Engine", given: str) -> str:
    """The id written as ``model_id``: an alias resolves to its model; other ids are kept as given."""
    if deployments(engine).get(given) is None and engine.models.aliases.get(given) is not None:
        return str(engine.models.resolve(given))
    return given


def run_nlp_batch(proc: "InferenceProcessor", docs: list[Doc], engine: "Engine", *,
                  device: str | None = None) -> list[BaseException | None]:
    """The processor over a batch through the deployment serving its model; ``device``: where a
    deployment started on first use here runs (``None``: the engine's device)."""
    try:
        dep = deployments(engine).for_inference(proc.model_id, device=device)
        assert dep is not None
        stored = engine.models.config(dep.model_id)
    except ApiError as err:
        return [err] * len(docs)
    if proc.inputs is not None:
        return _input_output(proc, docs, engine, dep, stored)
    return _target_field(proc, docs, engine, dep, stored)


def _prefixed(value: Any, prefix: str) -> Any:
    return prefix + value if prefix and isinstance(value, str) else value


def _call(dep: Deployment, texts: list[Any], update: Any, field: str) -> list[dict[str, Any]] | ApiError:
    requests = [{} if t is None else {field: t} for t in texts]
    try:
        result, _ = run_chunks(dep, requests, update, field, progress=False)
    except ApiError as err:
        return err
    return result.to_docs()


def _target_field(proc: "InferenceProcessor", docs: list[Doc], engine: "Engine", dep: Deployment,
                  stored: dict[str, Any]) -> list[BaseException | None]:

    field = input_field(stored)
    prefix = str((stored.get("prefix_strings") or {}).get("ingest") or "")
    texts = [_prefixed(dig(map_fields(proc.model_input(d), proc.field_map), field), prefix) for d in docs]
    answers = _call(dep, texts, proc.update, field)
    if isinstance(answers, ApiError):
        return [answers] * len(docs)
    reported = _reported_id(engine, proc.model_id)
    out: list[BaseException | None] = []
    for doc, answer in zip(docs, answers):
        if "error" in answer:
            out.append(ApiError("status_exception", str(answer["error"]), 400))
            continue
        try:
            proc.write(doc, answer, reported)
            out.append(None)
        except ApiError as err:
            out.append(err)
    return out


def _inputs_of(proc: "InferenceProcessor", doc: Doc) -> list[str] | None | ApiError:
    """The texts of one document, as ``InferenceProcessor.buildRequest`` reads them
    (``getFieldValue(input_field, String.class, ignore_missing)``): a missing field fails the document
    unless ``ignore_missing``; a missing or null input is sent as ``""``; None (skip the document,
    no error) when the *first* input is missing or null, as ES checks after each input."""
    assert proc.inputs is not None
    texts: list[str] = []
    for io in proc.inputs:
        name = io["input_field"]
        if doc.has(name):
            value = doc.get(name)
        elif proc.ignore_missing:
            value = None
        else:
            try:
                doc.get(name)  # ES's message: the first path element not present, or what it cannot resolve
            except ApiError as err:
                return err
            value = None  # pragma: no cover - has() and get() agree
        if value is not None and not isinstance(value, str):
            return ApiError("illegal_argument_exception",
                            f"input field [{name}] cannot be processed because it is not a text field", 400)
        if value is None and not texts:
            return None
        texts.append("" if value is None else value)
    return texts


def _input_output(proc: "InferenceProcessor", docs: list[Doc], engine: "Engine", dep: Deployment,
                  stored: dict[str, Any]) -> list[BaseException | None]:
    assert proc.inputs is not None
    field = input_field(stored)
    prefix = str((stored.get("prefix_strings") or {}).get("ingest") or "")
    task, results_field = task_of(stored)
    per_doc = [_inputs_of(proc, d) for d in docs]
    flat = [_prefixed(t, prefix) for texts in per_doc if isinstance(texts, list) for t in texts]
    answers = _call(dep, flat, proc.update, field) if flat else []
    if isinstance(answers, ApiError):
        return [answers] * len(docs)
    reported = _reported_id(engine, proc.model_id)
    out: list[BaseException | None] = []
    cursor = 0
    for doc, texts in zip(docs, per_doc):
        if isinstance(texts, ApiError) or texts is None:
            out.append(texts)
            continue
        mine = answers[cursor: cursor + len(texts)]
        cursor += len(texts)
        failed = next((a for a in mine if "error" in a), None)
        if failed is not None:
            out.append(ApiError("status_exception", str(failed["error"]), 400))
            continue
        try:
            proc.write_outputs(doc, [as_map(task, answer, io["output_field"], results_field)
                                     for io, answer in zip(proc.inputs, mine)], reported)
        except ApiError as err:  # an output path through a non-object: this document fails
            out.append(err)
            continue
        out.append(None)
    return out
