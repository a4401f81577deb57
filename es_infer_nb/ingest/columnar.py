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
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from ..backends import resolve
from ..errors import ApiError
from ..models.results import document_failure, render_per_document, warning_message
from .column_paths import plain_path as _plain_path
from .column_paths import template_fields as _template_fields
from .columnar_condition import evaluate
from .columnar_table import Table, typed_array
from .document import _MUSTACHE, Doc, template_field, template_text
from .pipeline import (ConvertProcessor, DropProcessor, Failure, FieldValueProcessor, Pipeline, Processor,
                       RemoveProcessor, RenameProcessor, Run, SetProcessor, as_api_error, is_counted,
                       processor_stats_name, run_pipeline)

if TYPE_CHECKING:  # pragma: no cover
    from .inference import InferenceProcessor

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


@dataclass
class _Batch:
    table: Table
    run: Run
    pipeline_id: str
    metadata: Callable[[np.ndarray], list[dict[str, Any]]]
    ingest: dict[str, Any]
    alive: np.ndarray
    dropped: np.ndarray
    handed: dict[int, list[int]] = field(default_factory=dict)
    decided: dict[int, dict[int, BaseException]] = field(default_factory=dict)
    docs: dict[int, Doc] = field(default_factory=dict)

    def rows(self, mask: np.ndarray) -> np.ndarray:
        return np.flatnonzero(mask & self.alive)

    def _take(self, idx: np.ndarray) -> None:
        """Rebuild the documents of rows ``idx`` and take them out of the columns."""
        for i, src, meta in zip(idx.tolist(), self.table.sources(idx), self.metadata(idx)):
            src.update(meta)
            self.docs[i] = Doc(src, dict(self.ingest), dropped=bool(self.dropped[i]))
        self.alive[idx] = False
        for col in self.table.cols.values():
            col.present[idx] = False

    def hand_off(self, k: int, mask: np.ndarray) -> None:
        """Rows that run processor ``k`` onwards per document (nothing of ``k`` done yet)."""
        idx = self.rows(mask)
        if idx.size:
            self._take(idx)
            self.handed.setdefault(k, []).extend(idx.tolist())

    def decide(self, k: int, outcomes: dict[int, BaseException]) -> None:
        """Rows whose processor ``k`` ended with the given failure (continuing per document)."""
        idx = np.asarray(sorted(outcomes), dtype=np.int64)
        if idx.size:
            self._take(idx)
            self.decided.setdefault(k, {}).update(outcomes)

    def contexts(self, idx: np.ndarray) -> list[dict[str, Any]]:
        """The painless ``ctx`` of rows ``idx`` (conditions the columns do not evaluate)."""
        ingest = dict(self.ingest)
        ingest["pipeline"] = self.pipeline_id
        out = []
        for src, meta in zip(self.table.sources(idx), self.metadata(idx)):
            src.update(meta)
            src["_ingest"] = ingest
            out.append(src)
        return out


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
    """Whether the columns run processor ``p``: its class has a column form (:mod:`.registry`) and the
    form takes its configuration (:meth:`~.pipeline.Processor.columns_take`; rows may still be handed off)."""
    return p.column_form is not None and p.columns_take()


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
    b = _Batch(table, run, pipeline_id, metadata, ingest, np.ones(n, dtype=bool), np.zeros(n, dtype=bool))
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
                b.hand_off(k, _mask(n, idx[trouble]))
                eligible = _mask(n, idx[ok])
            if eligible.any():
                COLUMN_STEPS[p.column_form](p, b, eligible, k)  # type: ignore[index]
        failures = _finish(pipeline, b, failures, chunk_size or HANDOFF_CHUNK)
    finally:
        if counted:
            run.counted.discard(pipeline_id)
            run.engine.stats.record_ingest(  # type: ignore[union-attr]
                pipeline_id, None, count=n, nanos=time.perf_counter_ns() - started,
                failed=n - failures.count(None), leaving=n)
    return Result(table, b.docs, failures, b.dropped)


def _mask(n: int, idx: np.ndarray) -> np.ndarray:
    out = np.zeros(n, dtype=bool)
    out[idx] = True
    return out


def _finish(pipeline: Pipeline, b: _Batch, failures: list[Failure | None], chunk: int) -> list[Failure | None]:
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


# -- steps --------------------------------------------------------------------------------------------

def _set(p: SetProcessor, b: _Batch, rows: np.ndarray, k: int) -> None:
    t = b.table
    path = p.field
    trouble = t.prefix_present(path)
    skip = np.zeros(t.n, dtype=bool)
    if not p.override:
        skip = t.sub_present(path)
        col = t.cols.get(path)
        if col is not None:
            skip |= col.present & ~t.none_values(path)
    todo = rows & ~skip
    if p.copy_from is not None:
        src = p.copy_from
        trouble |= todo & (t.prefix_present(src) | t.sub_present(src) | ~t.exists(src) | t.object_values(src))
    elif isinstance(p.value, str) and "{{" in p.value:
        for name in _template_fields(p.value) or []:
            trouble |= todo & (t.prefix_present(name) | t.sub_present(name))
    b.hand_off(k, trouble & rows)
    todo &= b.alive
    idx = np.flatnonzero(todo)
    if not idx.size:
        return
    if p.copy_from is not None:
        values: Any = t.cols[p.copy_from].values[idx]
        if values.dtype == object:
            values = values.copy()
    elif isinstance(p.value, str) and "{{" in p.value:
        values = _render(p.value, t, idx, {**b.ingest, "pipeline": b.pipeline_id})
    else:
        values = p.value
    if p.ignore_empty_value:
        if isinstance(values, np.ndarray):
            empty = np.fromiter((v is None or v == "" for v in values.tolist()), dtype=bool, count=idx.size) \
                if values.dtype == object else np.zeros(idx.size, dtype=bool)
            idx, values = idx[~empty], values[~empty]
        elif values is None or values == "":
            return
    t.write(path, _mask(t.n, idx), values)


def _render(template: str, t: Table, idx: np.ndarray, ingest: dict[str, Any]) -> np.ndarray:
    """``render_template`` for rows ``idx`` (no trouble among them); ``ingest``: the batch's ``_ingest``."""
    pieces: list[list[str] | str] = []
    pos = 0
    for m in _MUSTACHE.finditer(template):
        pieces.append(template[pos:m.start()])
        name = template_field(m)
        col = t.cols.get(name)
        if name.startswith("_ingest."):
            pieces.append(template_text(ingest.get(name[len("_ingest."):])))
        elif col is None:
            pieces.append("")
        else:
            here = col.present[idx]
            vals = col.values[idx].tolist()
            pieces.append([template_text(v) if h else "" for v, h in zip(vals, here.tolist())])
        pos = m.end()
    pieces.append(template[pos:])
    cols = [[piece] * idx.size if isinstance(piece, str) else piece for piece in pieces]
    out = np.empty(idx.size, dtype=object)
    out[:] = ["".join(parts) for parts in zip(*cols)]
    return out


def _rename(p: RenameProcessor, b: _Batch, rows: np.ndarray, k: int) -> None:
    t = b.table
    src, dst = p.field, p.target_field
    found = t.exists(src)
    trouble = t.prefix_present(src) | t.sub_present(src) | t.prefix_present(dst) | _dicts(t, src)
    if not p.ignore_missing:
        trouble |= ~found
    if not p.override:
        trouble |= found & t.exists(dst)
    b.hand_off(k, trouble & rows)
    todo = rows & b.alive & found
    idx = np.flatnonzero(todo)
    if not idx.size:
        return
    t.move(src, dst, todo)


def _dicts(t: Table, path: str) -> np.ndarray:
    """Rows where the leaf holds a (non-empty) dict: it may not move, the output keeps only input
    columns' dicts whole."""
    col = t.cols.get(path)
    out = np.zeros(t.n, dtype=bool)
    if col is None or col.kind != "O":
        return out
    idx = np.flatnonzero(col.present)
    out[idx] = [isinstance(v, dict) and bool(v) for v in col.values[idx].tolist()]
    return out


def _remove(p: RemoveProcessor, b: _Batch, rows: np.ndarray, k: int) -> None:
    t = b.table
    if p.keep is not None:
        keep = {name.split(".")[0] for name in p.keep}
        for top in dict.fromkeys(name.split(".")[0] for name in t.cols):
            if top not in keep:
                t.remove(top, rows)
        return
    trouble = np.zeros(t.n, dtype=bool)
    for f in p.fields:
        trouble |= t.prefix_present(f)
        if not p.ignore_missing:
            trouble |= ~t.exists(f)
    b.hand_off(k, trouble & rows)
    todo = rows & b.alive
    for f in p.fields:
        t.remove(f, todo & t.exists(f))


def _drop(p: DropProcessor, b: _Batch, rows: np.ndarray, k: int) -> None:
    b.dropped |= rows & b.alive


def _field_value(p: FieldValueProcessor, b: _Batch, rows: np.ndarray, k: int) -> None:
    t = b.table
    f = p.field
    missing = ~t.exists(f) | t.none_values(f)
    trouble = t.prefix_present(f) | t.sub_present(f) | t.object_values(f)
    if p.target_field != f:
        trouble |= t.prefix_present(p.target_field)
    if not p.ignore_missing:
        trouble |= missing
    trouble &= rows
    todo = rows & ~trouble & ~missing
    idx = np.flatnonzero(todo)
    bad = np.zeros(0, dtype=bool)
    values: Any = None
    if idx.size:
        col = t.cols[f]
        fast = None
        if idx.size == t.n and col.arrow is not None and isinstance(p, ConvertProcessor) \
                and p.kind in ("integer", "long", "double", "float"):
            fast = _parse_strings(None, p.kind, col.arrow)  # the frame's Arrow strings, no Python strings
        values, bad = fast if fast is not None else convert_values(p, col.values[idx])
        trouble[idx[bad]] = True
    b.hand_off(k, trouble)
    if idx.size:
        t.write(p.target_field, _mask(t.n, idx[~bad]), values)


# -- value conversion -----------------------------------------------------------------------------------

_INT_TEXT = r"^-?[0-9]{1,18}$"
_FLOAT_TEXT = r"^[+-]?([0-9]{1,20}\.?[0-9]{0,20}|\.[0-9]{1,20})([eE][+-]?[0-9]{1,2})?$"


def convert_values(p: FieldValueProcessor, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``p.convert`` of each value: (the converted values of the rows that converted, a mask of
    those that raised). Kernels only where they give ``p.convert``'s values exactly."""
    kind = values.dtype.kind
    m = values.shape[0]
    none_bad = np.zeros(m, dtype=bool)
    if isinstance(p, ConvertProcessor):
        to = p.kind
        if to in ("double", "float") and kind in "fi":
            return values.astype(np.float64), none_bad
        if to in ("integer", "long"):
            if kind == "i" and (to == "long" or bool(np.all((values >= -(2**31)) & (values < 2**31)))):
                return values.copy(), none_bad
            if kind == "f":  # a double's text ("1.0") never parses as an integer: every row fails, as in ES
                return np.zeros(0, dtype=np.int64), np.ones(m, dtype=bool)
        if to == "string" and kind == "i":
            return values.astype(str).astype(object), none_bad
        if kind == "O" and to in ("integer", "long", "double", "float"):
            fast = _parse_strings(values, to, None)
            if fast is not None:
                return fast
    return _each(p.convert, values)


def _each(fn: Callable[[Any], Any], values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    out: list[Any] = []
    bad = np.zeros(values.shape[0], dtype=bool)
    for k, v in enumerate(values.tolist()):
        try:
            out.append(fn(v))
        except Exception:  # noqa: BLE001 - the per-document path raises it again, exactly
            bad[k] = True
    return typed_array(out), bad


def _parse_strings(values: np.ndarray | None, to: str, arrow: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """Plain decimal strings parsed by Arrow (same numbers as Python's ``int`` / ``float``). ``None``
    when some value is not such a string: the caller then converts one by one, exactly."""
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        arr = arrow if arrow is not None else pa.array(values, type=pa.string())
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None
    if arr.null_count:
        return None
    integer = to in ("integer", "long")
    parsed = None
    if integer and not pc.any(pc.match_substring(arr, "x", ignore_case=True)).as_py():
        # Arrow's integer parser takes only ``-?digits`` (and hex, ruled out above): Python's int()
        # reads every string it takes to the same number; one pass, no regex
        try:
            parsed = pc.cast(arr, pa.int64())
            simple = np.ones(len(arr), dtype=bool)
        except pa.ArrowInvalid:
            parsed = None
    if parsed is None:
        simple = pc.match_substring_regex(arr, _INT_TEXT if integer else _FLOAT_TEXT).to_numpy(zero_copy_only=False)
        parsed = pc.cast(arr.filter(pa.array(simple)), pa.int64() if integer else pa.float64())
    parsed = np.asarray(parsed.to_numpy() if hasattr(parsed, "to_numpy") else parsed)
    if to == "integer":
        inside = (parsed >= -(2**31)) & (parsed < 2**31)
        ok = simple.copy()
        ok[np.flatnonzero(simple)[~inside]] = False
        parsed = parsed[inside]
        simple = ok
    if simple.all():
        return parsed, np.zeros(len(arr), dtype=bool)
    return None  # a few odd strings: the caller's one-by-one path is exact and simple


# -- the inference processor -------------------------------------------------------------------------

def _inference(p: "InferenceProcessor", b: _Batch, rows: np.ndarray, k: int) -> None:
    from ..models.runner import needed_fields, run_tree

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
    needed = list(dict.fromkeys(needed_fields(stored) + list((p.field_map or {}).keys())))
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
    counted = b.pipeline_id in run.counted
    name = processor_stats_name(p)
    if counted:
        engine.stats.begin_ingest(b.pipeline_id, name, idx.size)
    started = time.perf_counter_ns()
    failed: dict[int, BaseException] = {}
    try:
        try:
            result = run_tree(engine, model_id, cols, idx.size, update=p.update, field_map=p.field_map,
                              device=run.device)
        except Exception as exc:  # noqa: BLE001 - a model error fails these documents, never the caller
            err = as_api_error(exc)
            failed = {i: err for i in idx.tolist()}
        else:
            failed = _write_results(result, t, idx, target, model_id)
    finally:
        if counted:
            engine.stats.record_ingest(b.pipeline_id, name, count=idx.size - len(failed),
                                       nanos=time.perf_counter_ns() - started, failed=0, leaving=idx.size)
    b.decide(k, failed)


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
        import pandas as pd

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
            t.write(f"{target}.{results_field}", _mask(n, ok), predicted)
        if warn.any():
            t.write(f"{target}.warning", _mask(n, idx[warn]), warning_message(model_id))
        t.write(f"{target}.model_id", _mask(n, idx), model_id)
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
        t.write(path, _mask(n, np.asarray(rows_, dtype=np.int64)), typed_array(vals))
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


#: the column forms, by the name a processor class gives in ``column_form`` (:mod:`.registry`); each
#: takes the processor class that names it (``Any`` here: a step's parameter is its own class)
COLUMN_STEPS: dict[str, Callable[[Any, _Batch, np.ndarray, int], None]] = {
    "set": _set, "rename": _rename, "remove": _remove, "drop": _drop, "inference": _inference,
    "field_value": _field_value,
}

