"""Column-at-a-time execution of an ingest pipeline over a :class:`~.columnar_table.Table`.

Each processor runs once over the columns of the whole batch: ``set`` (a constant or a
``{{field}}`` template, ``copy_from``), ``rename``, ``remove`` (``field`` or ``keep``),
``convert`` / ``lowercase`` / ``uppercase`` / ``trim`` / ``gsub`` (the processor's own
``convert`` per value, numpy / Arrow kernels where they give the same values), ``drop``, and
the ``inference`` processor on a tree model (one model call for the batch, results written as
columns); ``if`` conditions become masks (:mod:`.columnar_condition`).

Only the happy path runs here. A row the columns cannot settle exactly — the processor would
fail for it (missing field, a value it cannot convert, a condition that errors), it reaches
into a value the columns do not split, or the processor is one this module does not run — is
*handed off* before the processor touches it: its document is rebuilt from the columns and
goes through the per-document executor (:func:`.pipeline.run_pipeline`) from that processor
on, with the pipeline's ``on_failure``. So ``ignore_failure``, ``on_failure``, ``_ingest.on_failure_*``
and the error of every failing document are exactly those of the per-document path. Rows a
tree model fails for keep the model's answer (the model is not asked twice) and continue per
document from the processor after it, with that failure.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .column_steps import ColumnBatch, mask
from .columnar_condition import evaluate
from .columnar_table import Table
from .document import Doc
from .pipeline import Failure, Pipeline, Processor, Run, is_counted, processor_stats_name, run_pipeline

#: per-document continuation batch size
HANDOFF_CHUNK = 50_000
@dataclass
class Result:
    """What a columnar run leaves: the table (rows finished by columns), the documents handed to the
    per-document path (by row) and every row's failure and ``dropped`` flag."""

    table: Table
    docs: dict[int, Doc]
    failures: list[Failure | None]
    dropped: np.ndarray


class _Decided(Processor):
    """Processor ``p`` whose outcome for each document is already known (a model already asked)."""

    def __init__(self, p: Processor, outcomes: dict[int, BaseException]) -> None:
        super().__init__()
        self.type = p.type  # type: ignore[misc]
        self.tag, self.description = p.tag, p.description
        self.ignore_failure, self.on_failure = p.ignore_failure, p.on_failure
        self.outcomes = outcomes

    def run_batch(self, docs: list[Doc], run: Run, pipeline_id: str | None) -> list[BaseException | None]:
        return [self.outcomes.get(id(d)) for d in docs]


# -- which processors run here ------------------------------------------------------------------

def supported(p: Processor) -> bool:
    """Whether the columns run processor ``p``: its class has a column form
    (:meth:`~.pipeline.Processor.run_columns`) and the form takes its configuration
    (:meth:`~.pipeline.Processor.columns_take`; rows may still be handed off)."""
    return p.has_column_form() and p.columns_take()


def worth_it(pipeline: Pipeline) -> bool:
    """Whether a pipeline starts with a processor the columns run (else the per-document path is as fast)."""
    return bool(pipeline.processors) and supported(pipeline.processors[0])


# -- the run ----------------------------------------------------------------------------------------

def run_columnar(pipeline: Pipeline, table: Table, run: Run, pipeline_id: str, *,
                 metadata: Callable[[np.ndarray], list[dict[str, Any]]], ingest: dict[str, Any],
                 chunk_size: int | None = None) -> Result:
    """Run ``pipeline`` over the rows of ``table`` (changed in place); see the module docstring.

    ``metadata(rows)``: each row's metadata fields (``_index``, ``_id``...); ``ingest``: the
    ``_ingest`` map every document starts with; ``chunk_size``: documents per batch of the
    per-document continuation."""
    n = table.n
    b = ColumnBatch(table, run, pipeline_id, metadata, ingest, np.ones(n, dtype=bool), np.zeros(n, dtype=bool))
    counted = is_counted(run, pipeline_id)
    if counted:
        run.counted.add(pipeline_id)
        run.engine.stats.begin_ingest(pipeline_id, None, n)  # type: ignore[union-attr]
    started = time.perf_counter_ns()
    failures: list[Failure | None] = [None] * n
    try:
        for k, p in enumerate(pipeline.processors):
            active = b.alive & ~b.dropped
            if not active.any():
                break
            if not supported(p):
                b.hand_off(k, active)
                break
            eligible = active
            if p.condition is not None:
                idx = np.flatnonzero(active)
                ok, trouble = evaluate(p.condition, table, idx, b.contexts)
                b.hand_off(k, mask(n, idx[trouble]))
                eligible = mask(n, idx[ok])
            if eligible.any():
                _run_columns_counted(p, b, eligible, k)
        failures = _finish(pipeline, b, failures, chunk_size or HANDOFF_CHUNK)
    finally:
        if counted:
            run.counted.discard(pipeline_id)
            run.engine.stats.record_ingest(  # type: ignore[union-attr]
                pipeline_id, None, count=n, nanos=time.perf_counter_ns() - started,
                failed=n - failures.count(None), leaving=n)
    return Result(table, b.docs, failures, b.dropped)


def _settled_elsewhere(b: ColumnBatch, k: int) -> int:
    """Rows of processor ``k`` handed off or decided so far (they finish, and are counted, per document)."""
    return len(b.handed.get(k, ())) + len(b.decided.get(k, {}))


def _run_columns_counted(p: Processor, b: ColumnBatch, rows: np.ndarray, k: int) -> None:
    """``p.run_columns``; in a counted pipeline the rows it settles in the columns move ``p``'s ingest
    stats (``IngestStats.ProcessorStat``, every processor type): the rows it hands off or decides are
    counted by the per-document path, where they finish."""
    run = b.run
    if run.engine is None or b.pipeline_id not in run.counted:
        p.run_columns(b, rows, k)
        return
    stats, name, n = run.engine.stats, processor_stats_name(p), int(rows.sum())
    before = _settled_elsewhere(b, k)
    stats.begin_ingest(b.pipeline_id, name, n)
    started = time.perf_counter_ns()
    try:
        p.run_columns(b, rows, k)
    finally:
        settled = n - (_settled_elsewhere(b, k) - before)
        stats.record_ingest(b.pipeline_id, name, count=settled, nanos=time.perf_counter_ns() - started, failed=0,
                            leaving=n)


def _finish(pipeline: Pipeline, b: ColumnBatch, failures: list[Failure | None], chunk: int) -> list[Failure | None]:
    """The handed-off documents, per document from where they left (pipeline ``on_failure`` included)."""
    procs = pipeline.processors
    groups: list[tuple[list[Processor], list[int]]] = [(procs[k:], rows) for k, rows in b.handed.items()]
    for k, outcomes in b.decided.items():
        by_doc = {id(b.docs[i]): exc for i, exc in outcomes.items()}
        groups.append(([_Decided(procs[k], by_doc), *procs[k + 1:]], sorted(outcomes)))
    for rest, rows in groups:
        sub = Pipeline(rest, pipeline.on_failure, pipeline.description)
        for start in range(0, len(rows), max(1, chunk)):
            part = rows[start:start + max(1, chunk)]
            outs = run_pipeline(sub, [b.docs[i] for i in part], b.run, b.pipeline_id)
            for i, out in zip(part, outs):
                failures[i] = out
    return failures
