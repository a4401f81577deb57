"""The columns and dtypes ``ddf.infer.pipeline`` declares, from the pipeline definition and the model configs.

The pipeline is compiled by the ingest parser (:func:`~es_infer_nb.ingest.pipeline.parse_pipeline`, the
one ``df.infer.pipeline`` runs) and its processors are walked in order over a *symbolic document*
(:class:`Walk`): for each field, the stand-in values that may land there. No model runs. Each processor
class declares what it writes itself (:meth:`~es_infer_nb.ingest.pipeline.Processor.declare_columns`, in
:mod:`es_infer_nb.ingest.declared` and :mod:`es_infer_nb.ingest.declared_models`: a model's writes come
from its config, rendered by the code the pipeline itself uses), as plain values; this module only walks
the processors of the one registry (:mod:`es_infer_nb.ingest.registry`) and types the values.

Each column's dtype is then what the pandas path's own typer
(:func:`es_infer_nb.frames.documents.list_column`) gives those values *when some rows lack the field*
(failed rows keep only their input values, conditional processors skip rows): ``float64`` for numbers
(integers included), ``object`` for booleans (``is_truncated``), ``str`` for text, ``pd.ArrowDtype`` for
lists and objects (embeddings are ``list<double>``). A partition in which every row has an integer or
boolean field (``int64`` / ``bool`` in pandas) is cast to it losslessly. Input columns nothing writes keep
their dtype; an input column a processor removes or renames stays declared (failed rows keep it; rows
without it are null). ``_ingest.dropped`` and the four ``_ingest.error.*`` columns are always declared.

What the configs cannot tell:

* a value whose type depends on the data (``convert`` to ``auto``, ``json``, a ``custom`` endpoint's
  response, an ``ml_inference`` output path the stand-in answer lacks): declared ``object``, the dtype
  the pandas path gives mixed Python values;
* field *names* that depend on the data (a mustache ``field``, a templated ``pipeline`` name,
  ``text_expansion`` / ``sparse_embedding`` tokens, ``json`` with ``add_to_root``, ``ml_inference``
  wildcard output paths): not declared; a partition that has them fails naming them, and
  ``meta={column: dtype}`` declares them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..ingest.declared import ANY_KEY, TEXT, UNKNOWN, VALUE
from .documents import DROPPED, ERROR_COLUMNS, list_column, plain
from .pipeline import resolve_pipeline

if TYPE_CHECKING:  # pragma: no cover
    from ..engine import Engine
    from ..ingest.pipeline import Pipeline, Processor


def _normal(path: str) -> str:
    return path[len("_source."):] if path.startswith("_source.") else path


def _under(name: str, path: str) -> bool:
    return name == path or name.startswith(path + ".")


@dataclass
class Fields:
    """The symbolic document: per column (dotted path, as the pandas path flattens it) its stand-in values."""

    inputs: dict[str, Any]  # input column -> dtype
    cols: dict[str, list[Any]] = field(default_factory=dict)  # written columns, in the order first written
    removed: set[str] = field(default_factory=set)  # input columns every row loses
    written: set[str] = field(default_factory=set)  # columns a processor wrote (inputs typed anew)
    original: dict[str, list[Any]] = field(default_factory=dict)  # input column -> its stand-in value

    @classmethod
    def of(cls, meta: pd.DataFrame) -> "Fields":
        from dask.dataframe.utils import meta_nonempty

        fields = cls({str(c): meta[c].dtype for c in meta.columns})
        sample = meta_nonempty(meta)
        for name, label in zip(fields.inputs, meta.columns):
            value = sample[label].tolist()[0] if len(sample) else None
            try:
                stand_in = plain(value)
            except ValueError:
                stand_in = UNKNOWN
            known = (isinstance(stand_in, (str, bool, int, list, dict))
                     or isinstance(stand_in, float) and stand_in == stand_in)
            fields.cols[name] = [stand_in if known else UNKNOWN]  # (an object column's stand-in is a bare object())
        fields.original = {name: list(values) for name, values in fields.cols.items()}
        return fields

    # -- reading ----------------------------------------------------------------------------
    def read(self, path: str) -> list[Any] | None:
        """The stand-in values at ``path`` (an object rebuilt from its fields), None when nothing is there."""
        path = _normal(path)
        if path in self.cols:
            return list(self.cols[path])
        subs = {name[len(path) + 1:]: values for name, values in self.cols.items() if name.startswith(path + ".")}
        if not subs:
            return None
        obj: dict[str, Any] = {}
        for sub, values in subs.items():
            node: Any = obj
            *parents, leaf = sub.split(".")
            for part in parents:
                node = node.setdefault(part, {}) if isinstance(node, dict) else None
            if isinstance(node, dict):
                node[leaf] = values[0]
        return [obj]

    # -- writing ----------------------------------------------------------------------------
    def write(self, path: str, values: list[Any], partial: bool, append: bool = False) -> None:
        """``values`` (alternatives) land at ``path``; ``partial``: some rows keep what was there."""
        path = _normal(path)
        if path.startswith("_ingest.") and not _under(path, VALUE) or not path:
            return
        if append:
            old = self.read(path)
            if old is not None:
                values = [(o if isinstance(o, list) else [o]) + [v] for o in old for v in values]
        flat: dict[str, list[Any]] = {}
        for value in values:
            _flatten(path, value, flat)
        if not partial:
            self.remove(path, False)
        for name, new in flat.items():
            old_values = self.cols.get(name, []) if partial else []
            if name in self.original:  # a row that fails anywhere keeps its input value
                old_values = _union(self.original[name], old_values)
            self.cols[name] = _union(old_values, new)
            self.written.add(name)
            self.removed.discard(name)

    def remove(self, path: str, partial: bool) -> None:
        path = _normal(path)
        if partial:
            return
        for name in [n for n in self.cols if _under(n, path)]:
            del self.cols[name]
            self.written.discard(name)
            if name in self.inputs:
                self.removed.add(name)

    # -- the declared columns ---------------------------------------------------------------
    def dtypes(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, dtype in self.inputs.items():
            if name in self.removed:
                out[name] = nullable(dtype)
            elif name in self.written:  # every row has a value if the input column cannot lack one
                out[name] = dtype_of(self.cols[name], missing=nullable(dtype) != dtype)
            else:
                out[name] = dtype
        for name, values in self.cols.items():
            if name not in out and not name.startswith("_ingest."):
                out[name] = dtype_of(values)
        return out


def _union(first: list[Any], then: list[Any]) -> list[Any]:
    """The stand-in values of both, each once (``1`` and ``True`` are two: they type a column differently)."""
    out = list(first)
    for v in then:
        if not any(v is o or type(v) is type(o) and v == o for o in out):
            out.append(v)
    return out


def _flatten(path: str, value: Any, out: dict[str, list[Any]]) -> None:
    """As the pandas path flattens a source: a non-empty object becomes one column per field; an object
    whose keys depend on the data (:data:`ANY_KEY`) declares none."""
    if isinstance(value, dict) and value:
        if ANY_KEY in value:
            return
        for key, v in value.items():
            _flatten(f"{path}.{key}", v, out)
        return
    out.setdefault(path, []).append(value)


def dtype_of(values: list[Any], missing: bool = True) -> Any:
    """The pandas path's dtype of a column holding ``values`` in some rows (and, if ``missing``, nothing in
    others)."""
    if not values or any(v is UNKNOWN for v in values):
        return np.dtype(object)
    return list_column(list(values) + ([None] if missing else [])).dtype


def nullable(dtype: Any) -> Any:
    """``dtype`` as the pandas path types the column when some rows lack it (itself if it holds nulls)."""
    if isinstance(dtype, np.dtype) and dtype.kind in "iu":
        return np.dtype(np.float64)
    if isinstance(dtype, np.dtype) and dtype.kind == "b":
        return np.dtype(object)
    return dtype


# -- the walk --------------------------------------------------------------------------------------------

@dataclass
class Walk:
    """The symbolic document the processors declare their writes into (the protocol
    :class:`es_infer_nb.ingest.declared.SymbolicDocument`); each processor's class says what it writes
    (:meth:`~es_infer_nb.ingest.pipeline.Processor.declare_columns`), this walk only orders them."""

    engine: "Engine"
    fields_: Fields
    stack: list[str] = field(default_factory=list)
    tagged: bool = False  # a processor with a tag: a failure's processor_tag may be text

    def read(self, path: str) -> list[Any] | None:
        return self.fields_.read(path)

    def write(self, path: str, values: list[Any], partial: bool, append: bool = False) -> None:
        self.fields_.write(path, values, partial, append)

    def remove(self, path: str, partial: bool) -> None:
        self.fields_.remove(path, partial)

    def fields(self) -> list[str]:
        return list(self.fields_.cols)

    def pipeline(self, compiled: "Pipeline", partial: bool) -> None:
        self.processors(compiled.processors, partial)
        if compiled.on_failure:
            self.processors(compiled.on_failure, True)

    def processors(self, processors: list["Processor"], partial: bool) -> None:
        for p in processors:
            self.tagged = self.tagged or p.tag is not None
            part = partial or p.condition is not None or p.ignore_failure or bool(p.on_failure)
            p.declare_columns(self, part)
            if p.on_failure:
                self.processors(p.on_failure, True)


def pipeline_columns(engine: "Engine", meta: pd.DataFrame, pipeline: Any) -> dict[str, Any]:
    """``{column: dtype}`` of ``df.infer.pipeline(pipeline)`` over a frame like ``meta``: the input columns,
    the fields the processors write, ``_ingest.dropped`` and ``_ingest.error.*``."""
    compiled, pipeline_id = resolve_pipeline(engine, pipeline)  # the pandas path's parser and its errors
    fields = Fields.of(meta)
    walk = Walk(engine, fields, [pipeline_id] if isinstance(pipeline, str) else [])
    walk.pipeline(compiled, False)
    out = fields.dtypes()
    out[DROPPED] = np.dtype(bool)
    text = dtype_of([TEXT])
    for name in ERROR_COLUMNS:  # text; the tag only where some processor has one (else null: object)
        out[name] = text if name != ERROR_COLUMNS[-1] or walk.tagged else np.dtype(object)
    return out
