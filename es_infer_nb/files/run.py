"""``run_files``: a model or an ingest pipeline over Parquet / CSV / JSONL files of any size.

Rows are read ``batch_size`` at a time (pyarrow), go through the same code as ``df.infer.run`` /
``df.infer.pipeline`` and are written before the next batch is read, so memory stays bounded by a
few batches whatever the input's size. The result columns are declared from the model / pipeline
configs before the first batch (:mod:`es_infer_nb.frames.meta`), so every batch of the output has the
same columns. Ctrl-C closes the output with the finished batches in it (a valid file) and raises
:class:`FilesInterrupted`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import tqdm.auto

from ..backends import resolve
from ..engine import default_engine
from ..errors import ApiError, InferenceInterrupted
from ..frames.meta import conform, pipeline_meta, run_meta
from ..frames.pipeline import resolve_pipeline
from ..frames.run import text_field_map
from .readers import Source, expand, file_format
from .writers import open_writer

if TYPE_CHECKING:  # pragma: no cover
    from ..engine import Engine

DEFAULT_BATCH_SIZE = 100_000


class FilesInterrupted(InferenceInterrupted):
    """Ctrl-C during :func:`run_files`: ``output`` holds the ``rows_done`` rows of the finished batches."""

    def __init__(self, rows_done: int, rows_total: int | None, output: Path) -> None:
        super().__init__(rows_done, rows_total if rows_total is not None else -1, None)
        self.output = output
        self.args = (f"interrupted after {rows_done} rows; [{output}] holds them (run again to redo the file)",)


@dataclass
class RunSummary:
    """What :func:`run_files` did."""

    output: Path
    rows: int
    batches: int
    seconds: float

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else float("nan")


def run_files(
    inputs: str | Path | Sequence[str | Path],
    output: str | Path,
    *,
    model: str | None = None,
    pipeline: str | dict[str, Any] | None = None,
    engine: "Engine | None" = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: bool | None = None,
    device: str | None = None,
    **run_options: Any,
) -> RunSummary:
    """Run ``model`` (``df.infer.run``) or ``pipeline`` (``df.infer.pipeline``) over the rows of
    ``inputs`` (a file, a folder of files or a list; ``.parquet`` / ``.csv`` / ``.jsonl``) and write the
    results to ``output`` (its suffix picks the format) batch by batch.

    ``run_options`` are ``df.infer.run``'s (``inference_config``, ``field_map``, ``target_field``...).
    Rows keep their order; the pipeline's ``_id`` of a row is its number in the whole input.
    Raises :class:`es_infer_nb.ApiError` for an unknown model / bad pipeline before any file is written,
    and :class:`FilesInterrupted` on Ctrl-C (the finished batches stay written).
    """

    if (model is None) == (pipeline is None):
        raise ValueError("give exactly one of model= (a trained model id) or pipeline= (a pipeline id or body)")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, found {batch_size!r}")
    if pipeline is not None and run_options:
        raise ValueError(f"options {sorted(run_options)} apply to model= runs only")
    eng = engine if engine is not None else default_engine()
    files = expand(inputs)
    out_path = Path(output).expanduser()
    file_format(out_path)
    if out_path.resolve() in {f.resolve() for f in files}:
        raise ValueError(f"[{out_path}] is also an input; write the results to another file")
    if model is not None:
        _check_model(eng, model)
    else:
        resolve_pipeline(eng, pipeline)  # a bad pipeline fails now, before any output exists
    source = Source(files, batch_size)
    total = source.total_rows()
    show = progress if progress is not None else True
    bar = None
    if show:
        bar = tqdm.auto.tqdm(total=total, unit="rows", desc=f"es-infer {model or 'pipeline'}", leave=False)
    writer = None  # opened once the first batch has decided the text column (a ValueError writes no file)
    done = batches = 0
    meta: pd.DataFrame | None = None
    started = time.perf_counter()
    try:
        for frame in source.batches():
            frame.index = pd.RangeIndex(done, done + len(frame))
            if writer is None:
                if model is not None and run_options.get("input_output") is None:
                    run_options = _with_text_column(eng, model, frame, run_options)
                meta = _declared(eng, frame, model, pipeline, run_options)
                writer = open_writer(out_path)
            result = _apply(eng, frame, model, pipeline, run_options, device)
            writer.write(_shape(result, meta))
            done += len(frame)
            batches += 1
            if bar is not None:
                bar.update(len(frame))
    except KeyboardInterrupt:
        if writer is None:
            writer = open_writer(out_path)
        writer.close()
        raise FilesInterrupted(done, total, out_path) from None
    except BaseException:
        if writer is not None:
            writer.close()
        raise
    finally:
        if bar is not None:
            bar.close()
    if writer is None:
        writer = open_writer(out_path)
    writer.close()
    eng.stats.flush()
    return RunSummary(out_path, done, batches, time.perf_counter() - started)


def _check_model(engine: "Engine", model_id: str) -> None:
    """An unknown model id fails before any output exists (deployment and endpoint ids are fine)."""
    if resolve(engine, model_id).kind == "tree":  # the tree runner answers unknown ids: ask it now
        engine.models.require(model_id)


def _with_text_column(engine: "Engine", model_id: str, first: pd.DataFrame, options: dict[str, Any]) -> dict[str, Any]:
    """``options`` with the ``field_map`` of ``df.infer.run``'s one-text-column rule, decided once from the
    first batch so that every batch reads the same column (several text columns: a ValueError naming them)."""
    chosen = text_field_map(engine, model_id, first, options.get("field_map"))
    return options if chosen is None else {**options, "field_map": chosen}


def _apply(engine: "Engine", frame: pd.DataFrame, model: str | None, pipeline: Any, options: dict[str, Any],
           device: str | None) -> pd.DataFrame:
    if model is not None:
        out = frame.infer.run(model, engine=engine, device=device, progress=False, **options)
        assert out is not None
        return out
    return frame.infer.pipeline(pipeline, engine=engine, device=device)


def _declared(engine: "Engine", frame: pd.DataFrame, model: str | None, pipeline: Any,
              options: dict[str, Any]) -> pd.DataFrame | None:
    """The output's columns from the configs; ``None`` where they are only known from a first batch."""
    try:
        if model is not None:
            return run_meta(engine, frame.iloc[:0], model, options)
        return pipeline_meta(engine, frame.iloc[:0], pipeline)
    except ApiError:
        return None


def _shape(result: pd.DataFrame, meta: pd.DataFrame | None) -> pd.DataFrame:
    return result if meta is None else conform(result, meta)
