"""pytorch (NLP) models over many documents or a DataFrame, through their deployment.

Documents go to the deployment in chunks of :data:`FRAME_CHUNK` (at most its ``queue_capacity``, so
a large frame or pipeline batch is never rejected), each counted on the call's progress bar
(:mod:`.run_control`); interrupting keeps the finished chunks
(:class:`~es_infer_nb.errors.InferenceInterrupted` with exactly their rows): the deployment's queue
drops the call's waiting documents and stops the batch in the model before the interrupt returns.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Callable

import pandas as pd

from ..errors import InferenceInterrupted
from .deployments import deployments
from .doc_columns import RunResults, column
from .input_output import as_map, beside, io_pairs, not_an_nlp_model, split_output, task_of
from .nlp_backend import input_field
from .results import target_prefix
from .run_control import current_progress, progress_for

if TYPE_CHECKING:  # pragma: no cover
    from ..engine import Engine
    from .deployments import Deployment

PROGRESS_MIN_ROWS = 10_000
#: documents per queued call of a frame run: what an interrupt may lose, and a progress step
FRAME_CHUNK = 1024
NOT_INFERRED = "not inferred: the run was interrupted"


def run_chunks(deployment: "Deployment", docs: list[dict[str, Any]], update: Any, field: str, *,
               device: str | None = None, progress: bool | None = None, batch_size: int | None = None,
               precision: str | None = None, transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
               ) -> tuple[RunResults, int | None]:
    """All ``docs`` through the deployment, at most ``queue_capacity`` (and ``batch_size``) per call;
    returns the results (each answer through ``transform`` first, as its chunk comes) and, if
    interrupted, the rows done."""
    n = len(docs)
    out = RunResults(deployment.model_id)  # each chunk's vectors kept as float32 rows as it comes
    with progress_for(n, f"infer {deployment.deployment_id}", progress, min_rows=PROGRESS_MIN_ROWS) as bar:
        try:
            for part in deployment.infer_chunks(docs, update, field, step=batch_size or FRAME_CHUNK, device=device,
                                                precision=precision):
                out.extend(part if transform is None else [transform(answer) for answer in part])
                bar.advance(len(part))
        except KeyboardInterrupt:
            done = len(out)
            out.extend([{"error": NOT_INFERRED} for _ in range(n - done)])
            return out, done
    return out, None


def _missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


def frame_docs(df: pd.DataFrame, field: str, field_map: dict[str, str] | None) -> list[dict[str, Any]]:
    """One document per row holding the model's input field (from ``field`` or a ``field_map`` source)."""
    sources = [field] + [src for src, dest in (field_map or {}).items() if dest == field]
    columns = [df[name].tolist() for name in sources if name in df.columns]
    docs: list[dict[str, Any]] = []
    for i in range(len(df)):
        value = next((col[i] for col in columns if not _missing(col[i])), None)
        docs.append({} if value is None else {field: value})
    return docs


def infer_frame_nlp(
    engine: "Engine",
    deployment: "Deployment",
    df: pd.DataFrame,
    *,
    inference_config: Any = None,
    field_map: dict[str, str] | None = None,
    target_field: str | None = None,
    batch_size: int | None = None,
    device: str | None = None,
    progress: bool | None = None,
    precision: str | None = None,
) -> pd.DataFrame:
    """The result columns (``<target_field>.<key>``, default ``ml.inference``), indexed like ``df``."""
    field = input_field(engine.models.config(deployment.model_id))
    docs = frame_docs(df, field, field_map)
    result, interrupted_at = run_chunks(deployment, docs, inference_config, field, device=device, progress=progress,
                                        batch_size=batch_size, precision=precision)
    target = target_prefix(target_field)
    frame = pd.DataFrame(result.to_columns(target, df.index), index=df.index)
    if interrupted_at is not None:
        raise InferenceInterrupted(interrupted_at, len(df), frame)
    return frame


def infer_frame_input_output(
    engine: "Engine",
    model_id: str,
    df: pd.DataFrame,
    input_output: dict[str, str] | list[dict[str, str]],
    *,
    inference_config: Any = None,
    device: str | None = None,
    progress: bool | None = None,
    precision: str | None = None,
) -> pd.DataFrame:
    """``df.infer.run(model, input_output=...)``: each input column through an NLP model, written as ES's
    ``input_output`` style writes it (:mod:`es_infer_nb.models.input_output`)."""

    pairs = io_pairs(input_output)
    for pair in pairs:
        if pair["input_field"] not in df.columns:
            raise KeyError(f"input_field [{pair['input_field']}] is not a column of the frame")
    dep = deployments(engine).for_inference(model_id)
    if dep is None:
        raise not_an_nlp_model(model_id)
    stored = engine.models.config(dep.model_id)
    field = input_field(stored)
    task, results_field = task_of(stored)
    cols: dict[str, pd.Series] = {}
    bar = current_progress()
    if bar is not None and progress is not False and len(pairs) > 1:
        bar.set_total(len(df) * len(pairs))  # one pass over the rows per pair
    for i, pair in enumerate(pairs):
        output = pair["output_field"]

        def mapped(answer: dict[str, Any], output: str = output) -> dict[str, Any]:
            return {"error": answer["error"]} if "error" in answer else as_map(task, answer, output, results_field)

        docs = frame_docs(df.rename(columns={pair["input_field"]: field})[[field]], field, None)
        result, interrupted_at = run_chunks(dep, docs, inference_config, field, device=device, progress=progress,
                                            precision=precision, transform=mapped)
        # the mapped answers' columns beside the output field (vectors packed as the chunks came)
        found = result.to_columns(split_output(output)[0] or "", df.index)
        found.pop(beside(output, "model_id"))
        error = found.pop(beside(output, "error"), None)
        cols.update(found)
        if error is not None:
            cols[f"{output}.error"] = error
        if i == 0:
            cols[beside(output, "model_id")] = column([model_id] * len(df), df.index)
        if interrupted_at is not None:
            raise InferenceInterrupted(interrupted_at, len(df), pd.DataFrame(cols, index=df.index))
    return pd.DataFrame(cols, index=df.index)
