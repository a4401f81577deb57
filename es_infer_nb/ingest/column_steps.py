"""The column forms of the generic processors, and the batch a columnar run hands them.

Each processor class of :mod:`.pipeline` names its column form in :meth:`~.pipeline.Processor.run_columns`
(one of the functions here); :mod:`.columnar` runs them. This module takes the processor classes as types
only, so :mod:`.pipeline` imports it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .column_paths import template_fields as _template_fields
from .columnar_table import Table, typed_array
from .document import _MUSTACHE, Doc, template_field, template_text

if TYPE_CHECKING:  # pragma: no cover
    from .pipeline import DropProcessor, FieldValueProcessor, RemoveProcessor, RenameProcessor, Run, SetProcessor

__all__ = ["ColumnBatch", "convert_values", "drop_columns", "field_value_columns", "mask", "remove_columns",
           "rename_columns", "set_columns"]


@dataclass
class ColumnBatch:
    """One columnar run's batch: the table, the run, and the rows handed to the per-document path
    (by the processor they continue from) or decided there (a model already asked)."""


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


def mask(n: int, idx: np.ndarray) -> np.ndarray:
    """A row mask of length ``n``, true at ``idx``."""
    out = np.zeros(n, dtype=bool)
    out[idx] = True
    return out


# -- the column forms of the processors of :mod:`.pipeline` --------------------------------------------------------------------------------------------

def set_columns(p: SetProcessor, b: ColumnBatch, rows: np.ndarray, k: int) -> None:
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
    t.write(path, mask(t.n, idx), values)


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


def rename_columns(p: RenameProcessor, b: ColumnBatch, rows: np.ndarray, k: int) -> None:
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


def remove_columns(p: RemoveProcessor, b: ColumnBatch, rows: np.ndarray, k: int) -> None:
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


def drop_columns(p: DropProcessor, b: ColumnBatch, rows: np.ndarray, k: int) -> None:
    b.dropped |= rows & b.alive


def field_value_columns(p: FieldValueProcessor, b: ColumnBatch, rows: np.ndarray, k: int) -> None:
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
        if idx.size == t.n and col.arrow is not None and p.type == "convert" \
                and getattr(p, "kind", None) in ("integer", "long", "double"):
            fast = _parse_strings(None, p.kind, col.arrow)  # the frame's Arrow strings, no Python strings
        values, bad = fast if fast is not None else convert_values(p, col.values[idx])
        trouble[idx[bad]] = True
    b.hand_off(k, trouble)
    if idx.size:
        t.write(p.target_field, mask(t.n, idx[~bad]), values)


# -- value conversion -----------------------------------------------------------------------------------

_INT_TEXT = r"^-?[0-9]{1,18}$"
_FLOAT_TEXT = r"^[+-]?([0-9]{1,20}\.?[0-9]{0,20}|\.[0-9]{1,20})([eE][+-]?[0-9]{1,2})?$"


def convert_values(p: FieldValueProcessor, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``p.convert`` of each value: (the converted values of the rows that converted, a mask of
    those that raised). Kernels only where they give ``p.convert``'s values exactly."""
    kind = values.dtype.kind
    m = values.shape[0]
    none_bad = np.zeros(m, dtype=bool)
    if p.type == "convert":
        to = getattr(p, "kind", None)
        if to == "double" and kind in "fi":  # (a float is rounded to 32 bits by p.convert)
            return values.astype(np.float64), none_bad
        if to in ("integer", "long"):
            if kind == "i" and (to == "long" or bool(np.all((values >= -(2**31)) & (values < 2**31)))):
                return values.copy(), none_bad
            if kind == "f":  # a double's text ("1.0") never parses as an integer: every row fails, as in ES
                return np.zeros(0, dtype=np.int64), np.ones(m, dtype=bool)
        if to == "string" and kind == "i":
            return values.astype(str).astype(object), none_bad
        if kind == "O" and to in ("integer", "long", "double"):
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
