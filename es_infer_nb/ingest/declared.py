"""Declared columns: what each processor writes, from its configuration only (no document runs).

A processor class declares its writes in :meth:`~.pipeline.Processor.declare_columns`, over a
:class:`SymbolicDocument`: for each field (a dotted path, as the pandas path flattens a source) the
stand-in values that may land there, plain data (``0``, ``0.0``, ``True``, :data:`TEXT`, lists and
objects of them; :data:`UNKNOWN` where the configs do not give the type). The document itself, and the
dtypes it turns those values into, belong to :mod:`es_infer_nb.frames.pipeline_meta` (``ddf.infer.pipeline``
and the files runner declare their columns with it). The functions here are the declarations of the
generic processors; :mod:`.declared_models` has those that ask a model's config.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Protocol

from .document import should_keep

if TYPE_CHECKING:  # pragma: no cover
    from ..engine import Engine
    from .pipeline import (ConvertProcessor, FieldValueProcessor, ForeachProcessor, Processor, RemoveProcessor,
                           RenameProcessor, SetProcessor)
    from .processors import AppendProcessor, JoinProcessor, JsonProcessor, SplitProcessor

__all__ = ["ANY_KEY", "TEXT", "UNKNOWN", "VALUE", "SymbolicDocument", "append_writes", "convert_writes",
           "foreach_writes", "join_writes", "json_writes", "remove_writes", "rename_writes", "set_writes",
           "split_writes", "stand_in", "templated", "text_writes", "unknown_writes"]

#: a stand-in value whose type the configs do not give (its column is ``object``)
UNKNOWN = object()
#: the key of an object whose keys depend on the data (its fields are not declared)
ANY_KEY = ""
#: the stand-in of a text the document gets from a mustache template or a string processor
TEXT = ""
#: where ``foreach`` puts the element its inner processor sees
VALUE = "_ingest._value"
_CONVERTED = {"integer": 0, "long": 0, "float": 0.0, "double": 0.0, "string": TEXT, "ip": TEXT, "boolean": True}


class SymbolicDocument(Protocol):
    """The document a declaration writes into: per field the stand-in values that may be there."""

    engine: "Engine"
    #: the stored pipelines being walked (a nested ``pipeline`` processor naming one of them is a cycle)
    stack: list[str]

    def read(self, path: str) -> list[Any] | None:
        """The stand-in values at ``path`` (an object rebuilt from its fields), None when nothing is there."""
        ...

    def write(self, path: str, values: list[Any], partial: bool, append: bool = False) -> None:
        """``values`` (alternatives) land at ``path``; ``partial``: some rows keep what was there."""
        ...

    def remove(self, path: str, partial: bool) -> None:
        ...

    def fields(self) -> list[str]:
        """The fields (dotted paths) the document has now."""
        ...

    def processors(self, processors: "list[Processor]", partial: bool) -> None:
        """Declare the writes of ``processors`` in order (a nested pipeline, ``foreach``'s inner processor)."""
        ...


def stand_in(value: Any) -> Any:
    """A ``set`` / ``append`` value as it renders: a mustache template is text; a templated key, any key."""
    if isinstance(value, str):
        return TEXT if "{{" in value else value
    if isinstance(value, list):
        return [stand_in(v) for v in value]
    if isinstance(value, dict):
        if any("{{" in str(k) for k in value):
            return {ANY_KEY: UNKNOWN}
        return {str(k): stand_in(v) for k, v in value.items()}
    return value


def templated(*paths: Any) -> bool:
    """Whether a field name depends on the document (a mustache template): such a field is not declared."""
    return any(isinstance(p, str) and "{{" in p for p in paths)


def set_writes(doc: SymbolicDocument, p: "SetProcessor", partial: bool) -> None:
    if templated(p.field):
        return
    values = doc.read(p.copy_from) if p.copy_from is not None else [stand_in(p.value)]
    doc.write(p.field, values or [UNKNOWN], partial or not p.override or p.ignore_empty_value)


def rename_writes(doc: SymbolicDocument, p: "RenameProcessor", partial: bool) -> None:
    if templated(p.field, p.target_field):
        return
    values = doc.read(p.field)
    doc.remove(p.field, partial)
    doc.write(p.target_field, values or [UNKNOWN], partial or p.ignore_missing)


def remove_writes(doc: SymbolicDocument, p: "RemoveProcessor", partial: bool) -> None:
    if p.keep is not None:
        if partial or templated(*p.keep):
            return
        for name in doc.fields():
            if not should_keep(name, p.keep) and not name.startswith("_ingest."):
                doc.remove(name, False)
        return
    for f in p.fields:
        if not templated(f):
            doc.remove(f, partial or p.ignore_missing)


def _per_value(doc: SymbolicDocument, p: "FieldValueProcessor", partial: bool, convert: Callable[[Any], Any]) -> None:
    """field -> target_field processors mapping a value (or each value of a list)."""
    if templated(p.field, p.target_field):
        return
    values = doc.read(p.field) or [UNKNOWN]
    out = [[convert(e) for e in v] if isinstance(v, list) else convert(v) for v in values]
    skips = getattr(p, "ignore_missing", False) and p.target_field != p.field  # rows skipped keep the target
    doc.write(p.target_field, out, partial or skips)


def text_writes(doc: SymbolicDocument, p: "FieldValueProcessor", partial: bool) -> None:
    _per_value(doc, p, partial, lambda v: TEXT)


def convert_writes(doc: SymbolicDocument, p: "ConvertProcessor", partial: bool) -> None:
    def convert(v: Any) -> Any:
        if p.kind in _CONVERTED:
            return _CONVERTED[p.kind]
        return v if isinstance(v, (bool, int, float)) else UNKNOWN  # auto: a text's type depends on it

    _per_value(doc, p, partial, convert)


def split_writes(doc: SymbolicDocument, p: "SplitProcessor", partial: bool) -> None:
    if not templated(p.target_field):
        doc.write(p.target_field, [[TEXT]], partial or p.ignore_missing and p.target_field != p.field)


def join_writes(doc: SymbolicDocument, p: "JoinProcessor", partial: bool) -> None:
    if not templated(p.target_field):
        doc.write(p.target_field, [TEXT], partial)


def append_writes(doc: SymbolicDocument, p: "AppendProcessor", partial: bool) -> None:
    if templated(p.field):
        return
    value = stand_in(p.value)
    added = value if isinstance(value, list) else [value]
    old = doc.read(p.field)
    values = [(o if isinstance(o, list) else [o]) + added for o in old] if old else [added]
    doc.write(p.field, values, partial)


def json_writes(doc: SymbolicDocument, p: "JsonProcessor", partial: bool) -> None:
    if not p.add_to_root and not templated(p.target_field):
        doc.write(p.target_field, [UNKNOWN], partial)


def foreach_writes(doc: SymbolicDocument, p: "ForeachProcessor", partial: bool) -> None:
    if templated(p.field):
        return
    lists = doc.read(p.field) or []
    elements = [e for v in lists if isinstance(v, list) for e in v] or [UNKNOWN]
    doc.write(VALUE, elements, False)
    doc.processors([p.inner], partial)  # on every element (a document without any gets nothing)
    after = doc.read(VALUE) or [UNKNOWN]
    doc.remove(VALUE, False)
    if after != elements:
        doc.write(p.field, [[e] for e in after], partial or p.ignore_missing)
    if any(isinstance(v, dict) for v in lists):  # a map looped over: its keys can change with the data
        doc.write(p.field, [UNKNOWN], True)


def unknown_writes(doc: SymbolicDocument, p: "Processor", partial: bool) -> None:
    """A processor that does not model its writes: the field it writes, if it names one, holds ``object``."""
    name = getattr(p, "target_field", None) or getattr(p, "field", None)
    if isinstance(name, str) and not templated(name):
        doc.write(name, [UNKNOWN], True)
