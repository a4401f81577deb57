"""``df.infer.run(<inference_id>)``: an inference endpoint over a DataFrame's rows.

The text of a row is its ``text_field`` column (after ``field_map``), or each ``input_field`` of
``input_output``; results are written as the ``inference`` processor writes them
(``<target>.predicted_value`` / ``<output_field>``, with ``model_id``); a row whose upstream call
failed gets the service's message in an ``.error`` column and keeps its place.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

from ..errors import ApiError
from ..models.input_output import beside
from ..models.results import target_prefix
from ..models.run_control import progress_for
from .ingest_bridge import DEFAULT_INPUT_FIELD, predicted_value
from .runner import infer_endpoint

if TYPE_CHECKING:  # pragma: no cover
    from ..engine import Engine

CHUNK = 2048


def _infer_column(engine: "Engine", inference_id: str, values: pd.Series, progress: bool | None) -> tuple[list, list]:
    texts = [v if isinstance(v, str) else None for v in values]
    todo = [i for i, t in enumerate(texts) if t is not None]
    results: list[Any] = [None] * len(texts)
    errors: list[Any] = [None if t is not None else "input is not a text" for t in texts]
    with progress_for(len(todo), inference_id, progress, min_rows=10 * CHUNK + 1) as bar:
        for start in range(0, len(todo), CHUNK):
            rows = todo[start: start + CHUNK]
            for row, answer in zip(rows, infer_endpoint(engine, inference_id, [texts[i] for i in rows])):
                if isinstance(answer, ApiError):
                    errors[row] = answer.reason
                else:
                    results[row] = predicted_value(answer)
            bar.advance(len(rows))
    return results, errors


def infer_frame_endpoint(engine: "Engine", inference_id: str, df: pd.DataFrame, *,
                         input_output: dict[str, str] | list[dict[str, str]] | None = None,
                         field_map: dict[str, str] | None = None, target_field: str | None = None,
                         progress: bool | None = None) -> pd.DataFrame:
    """The result columns for every row of ``df`` (same index, same order)."""
    if input_output is not None:
        pairs = [input_output] if isinstance(input_output, dict) else list(input_output)
    else:
        source = next((col for col, dest in (field_map or {}).items() if dest == DEFAULT_INPUT_FIELD),
                      DEFAULT_INPUT_FIELD)
        prefix = target_prefix(target_field)
        pairs = [{"input_field": source, "output_field": f"{prefix}.predicted_value"}]
    columns: dict[str, Any] = {}
    for i, io in enumerate(pairs):
        name = io["input_field"]
        if name not in df.columns:
            raise ApiError("status_exception", f"Input field [{name}] does not exist in the frame", 400)
        values, errors = _infer_column(engine, inference_id, df[name], progress)
        out = io["output_field"]
        columns[out] = values
        if i == 0:
            columns[beside(out, "model_id")] = [
                inference_id if e is None else None for e in errors]
        if any(e is not None for e in errors):
            columns[f"{out}.error"] = errors
    return pd.DataFrame(columns, index=df.index)
