"""The column form of the ``inference`` processor on a tree model: one model call for the batch, the
results written as columns (:meth:`es_infer_nb.ingest.inference.InferenceProcessor.run_columns`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..backends import resolve
from ..errors import ApiError
from ..models.results import document_failure, render_per_document, warning_message
from ..models import runner
from .column_paths import plain_path as _plain_path
from .column_steps import ColumnBatch, mask
from .columnar_table import Table, typed_array
from .pipeline import as_api_error

if TYPE_CHECKING:  # pragma: no cover
    from .inference import InferenceProcessor

__all__ = ["inference_columns"]


# -- the inference processor's column form -------------------------------------------------------------------------

def inference_columns(p: "InferenceProcessor", b: ColumnBatch, rows: np.ndarray, k: int) -> None:
    t, run = b.table, b.run
    engine = run.engine
    try:
        if engine is None or resolve(engine, p.model_id).kind != "tree":
            raise LookupError
        model_id = engine.models.require(p.model_id)
        stored = engine.models.config(model_id)
    except (ApiError, LookupError):
        b.hand_off(k, rows)  # the per-document path answers (or fails) exactly
        return
    needed = list(dict.fromkeys(runner.needed_fields(stored) + list((p.field_map or {}).keys())))
    if any(not _plain_path(name) for name in needed):
        b.hand_off(k, rows)
        return
    target = p.target_field
    assert target is not None  # supported(): no input_output, so a target field
    trouble = t.exists(target) | t.prefix_present(target)
    for name in needed:
        trouble |= t.prefix_present(name) | t.sub_present(name)
    b.hand_off(k, trouble & rows)
    todo = rows & b.alive
    idx = np.flatnonzero(todo)
    if not idx.size:
        return
    cols = {name: _feature(t, name, idx) for name in needed if name in t.cols}
    failed: dict[int, BaseException] = {}
    try:
        result = runner.run_tree(engine, model_id, cols, idx.size, update=p.update, field_map=p.field_map,
                                 device=run.device)
    except Exception as exc:  # noqa: BLE001 - a model error fails these documents, never the caller
        err = as_api_error(exc)
        failed = {i: err for i in idx.tolist()}
    else:
        failed = _write_results(result, t, idx, target, model_id)
    b.decide(k, failed)  # ingest stats: counted around the column form (columnar._run_columns_counted)


def _feature(t: Table, name: str, idx: np.ndarray) -> np.ndarray:
    """The model input column of rows ``idx``: float64 with NaN for missing, else Python objects
    with None (as ``columns_from_docs`` builds them)."""
    col = t.cols[name]
    if idx.size == t.n and col.kind == "f" and col.present.all():
        return col.values  # every row: the column itself (a DataFrame block stays one block)
    here = col.present[idx]
    vals = col.values[idx]
    if col.kind == "f":
        return np.where(here, vals, np.nan)
    out = vals.astype(object)
    out[~here] = None
    if col.kind == "O":
        out[pd.isna(out)] = None
    return out


def _write_results(result: Any, t: Table, idx: np.ndarray, target: str, model_id: str) -> dict[int, BaseException]:
    """Write each row's result object under ``target`` (``model_id`` last); the rows that failed."""
    n = t.n
    plain = (not result.is_classification and result.importance is None
             and result.errors.count(None) == len(result.errors))
    if plain:
        results_field = result.config.results_field
        warn = np.asarray(result.warning, dtype=bool)
        predicted = np.array(result.values, dtype=np.float64)  # our own copy: it becomes the column
        if warn.any():
            ok, predicted = idx[~warn], predicted[~warn]
        else:
            ok = idx
        if ok.size:
            t.write(f"{target}.{results_field}", mask(n, ok), predicted)
        if warn.any():
            t.write(f"{target}.warning", mask(n, idx[warn]), warning_message(model_id))
        t.write(f"{target}.model_id", mask(n, idx), model_id)
        return {}
    failed: dict[int, BaseException] = {}
    leaves: dict[str, tuple[list[int], list[Any]]] = {}
    for i, res in zip(idx.tolist(), render_per_document(result)):
        failure = document_failure(res)
        if failure is not None:
            failed[i] = failure
            continue
        assert not isinstance(res, ApiError)
        value = dict(res)
        value["model_id"] = model_id
        for path, leaf in _leaves(value, target):
            rows_, vals = leaves.setdefault(path, ([], []))
            rows_.append(i)
            vals.append(leaf)
    for path, (rows_, vals) in leaves.items():
        t.write(path, mask(n, np.asarray(rows_, dtype=np.int64)), typed_array(vals))
    return failed


def _leaves(value: dict[str, Any], prefix: str) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for key, v in value.items():
        path = f"{prefix}.{key}"
        if isinstance(v, dict) and v and "." not in key:
            out.extend(_leaves(v, path))
        else:
            out.append((path, v))
    return out
