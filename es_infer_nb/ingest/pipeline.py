"""Pipelines compiled to plans and run a batch of documents at a time.

``parse_pipeline(body, engine)`` validates a pipeline body the way ES's processor factories do and
returns a :class:`Pipeline` (a list of :class:`Processor` plans). ``run_pipeline`` pushes a batch
of :class:`Doc` through it processor by processor: each processor sees every document still
running (``if`` decides per document), an inference processor makes one model call for all of
them, and per-document ``ignore_failure`` / ``on_failure`` / pipeline ``on_failure`` / ``drop``
semantics are applied to the documents concerned only. Every document comes out, with its
result or its failure.
"""

from __future__ import annotations

import ipaddress
import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ..errors import ApiError
from ..models.tree.features import java_string, parse_java_double
from .column_paths import is_prefix, plain_path, template_fields
from .column_steps import (ColumnBatch, drop_columns, field_value_columns, remove_columns, rename_columns,
                           set_columns)
from .condition import Condition, parse_condition
from .config import Conf, config_error
from .declared import (SymbolicDocument, convert_writes, foreach_writes, remove_writes, rename_writes, set_writes,
                       templated, text_writes, unknown_writes)
from .document import Doc, all_fields, clone, java_type, render_template, should_keep

if TYPE_CHECKING:  # pragma: no cover
    from ..engine import Engine

SIMULATE_PIPELINE_ID = "_simulate_pipeline"


class Failure(Exception):
    """A processor failure of one document, with where it happened (``IngestProcessorException``)."""

    def __init__(self, error: ApiError, processor_type: str, tag: str | None, pipeline: str | None, *,
                 raw: bool = False) -> None:
        super().__init__(error.reason)
        self.error = error
        self.processor_type = processor_type
        self.tag = tag
        self.pipeline = pipeline
        self.recorded = False  # a verbose ``processor_results`` entry shows it already
        self.raw = raw  # the processor's own error, not yet wrapped by an ``on_failure`` / pipeline level

    def unrecorded(self) -> "Failure":
        """The same failure, for a processor that reports it again (its earlier entries rolled back)."""
        return Failure(self.error, self.processor_type, self.tag, self.pipeline, raw=self.raw)

    def root_message(self) -> str:
        inner = self.error
        while inner.caused_by is not None:
            inner = inner.caused_by
        return inner.reason


def as_api_error(exc: BaseException) -> ApiError:
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, Failure):
        return exc.error
    name = type(exc).__name__
    return ApiError("exception", f"{name}: {exc}" if str(exc) else name, 500)


@dataclass
class Run:
    """The state of one execution: the engine, verbose tracking, the pipelines being run, and the
    device its models run on where the engine's would apply (``None``: the engine's): a model loaded
    by this run, a deployment started on first use by it, the embedded model of an endpoint."""

    engine: "Engine | None"
    verbose: bool = False
    stack: list[str] = field(default_factory=list)
    counted: set[str] = field(default_factory=set)  # stored pipelines whose ingest stats move
    device: str | None = None


class Processor:
    """One ingest processor: built from its config, run per document (:meth:`execute`, or a whole
    batch in :meth:`run_batch`); registered once in :mod:`.registry`."""

    type = "processor"
    records_itself = False

    def run_columns(self, batch: ColumnBatch, rows: np.ndarray, k: int) -> None:
        """The column form: run this processor (number ``k`` of its pipeline) over the rows ``rows`` of
        ``batch`` column-at-a-time, handing to the per-document path the rows it cannot settle exactly
        (:mod:`.columnar`). A class without one runs per document only (:meth:`has_column_form`)."""
        raise NotImplementedError(f"[{self.type}] has no column form")

    @classmethod
    def has_column_form(cls) -> bool:
        return cls.run_columns is not Processor.run_columns

    #: ``True`` for a class whose documents get no new field (``fail``, ``drop``): it declares no columns
    writes_no_columns: ClassVar[bool] = False

    def declare_columns(self, doc: SymbolicDocument, partial: bool) -> None:
        """Write into ``doc`` what this processor writes, from its configuration only (:mod:`.declared`:
        the declared columns of ``ddf.infer.pipeline``); ``partial``: some rows keep what was there (a
        condition, ``ignore_failure``...). A class that does not model its writes: the field it names
        holds ``object``."""
        if not self.writes_no_columns:
            unknown_writes(doc, self, partial)

    @classmethod
    def declares_columns(cls) -> bool:
        """Whether the class declares its writes (or is marked as writing none)."""
        return cls.writes_no_columns or cls.declare_columns is not Processor.declare_columns

    def columns_take(self) -> bool:
        """Whether this processor's column form takes its configuration (plain field paths, values the
        columns hold); rows may still be handed to the per-document path. ``False`` without a column form."""
        return False

    def __init__(self) -> None:
        self.tag: str | None = None
        self.description: str | None = None
        self.condition: Condition | None = None
        self.ignore_failure = False
        self.on_failure: list[Processor] | None = None

    def run_batch(self, docs: list[Doc], run: Run, pipeline_id: str | None) -> list[BaseException | None]:
        out: list[BaseException | None] = []
        for doc in docs:
            try:
                self.execute(doc, run, pipeline_id)
                out.append(None)
            except (ApiError, Failure) as exc:
                out.append(exc)
            except Exception as exc:  # noqa: BLE001 - one bad document never stops the others
                out.append(exc)
        return out

    def execute(self, doc: Doc, run: Run, pipeline_id: str | None) -> None:  # pragma: no cover
        raise NotImplementedError


# -- generic processors ----------------------------------------------------------------------------

class SetProcessor(Processor):
    type = "set"

    def run_columns(self, batch: ColumnBatch, rows: np.ndarray, k: int) -> None:
        set_columns(self, batch, rows, k)

    def declare_columns(self, doc: SymbolicDocument, partial: bool) -> None:
        set_writes(doc, self, partial)

    def columns_take(self) -> bool:
        if not plain_path(self.field):
            return False
        if self.copy_from is not None:
            return plain_path(self.copy_from)
        v = self.value
        if isinstance(v, str):
            return template_fields(v) is not None
        return v is None or isinstance(v, (bool, int, float))

    def __init__(self, c: Conf) -> None:
        super().__init__()
        self.field = c.string("field")
        self.copy_from = c.string("copy_from", None)
        self.value = c.raw("value")  # SetProcessor.Factory: a null ``value`` counts as absent
        if self.copy_from is not None and self.value is not None:
            raise c.error("copy_from", "cannot set both `copy_from` and `value` in the same processor")
        if self.copy_from is None and self.value is None:
            raise c.error("value", "required property is missing")
        self.override = c.boolean("override", True)
        self.ignore_empty_value = c.boolean("ignore_empty_value", False)
        c.media_type()

    def execute(self, doc: Doc, run: Run, pipeline_id: str | None) -> None:
        path = render_template(self.field, doc)
        if not self.override and doc.has(path) and doc.get(path) is not None:
            return
        if self.copy_from is not None:
            if self.ignore_empty_value and not doc.has(self.copy_from):
                return  # getFieldValue(copyFrom, Object.class, ignoreEmptyValue): a missing field reads as null
            value = clone(doc.get(self.copy_from))
        else:
            value = _render_value(clone(self.value), doc)
        if self.ignore_empty_value and (value is None or value == ""):
            return
        doc.set(path, value)


def _render_value(value: Any, doc: Doc) -> Any:
    if isinstance(value, str):
        return render_template(value, doc)
    if isinstance(value, list):
        return [_render_value(v, doc) for v in value]
    if isinstance(value, dict):
        return {render_template(k, doc): _render_value(v, doc) for k, v in value.items()}
    return value


class RenameProcessor(Processor):
    type = "rename"

    def run_columns(self, batch: ColumnBatch, rows: np.ndarray, k: int) -> None:
        rename_columns(self, batch, rows, k)

    def declare_columns(self, doc: SymbolicDocument, partial: bool) -> None:
        rename_writes(doc, self, partial)

    def columns_take(self) -> bool:
        a, b = self.field, self.target_field
        return plain_path(a) and plain_path(b) and a != b and not is_prefix(a, b) and not is_prefix(b, a)

    def __init__(self, c: Conf) -> None:
        super().__init__()
        self.field = c.string("field")
        self.target_field = c.string("target_field")
        self.ignore_missing = c.boolean("ignore_missing", False)
        self.override = c.boolean("override", False)

    def execute(self, doc: Doc, run: Run, pipeline_id: str | None) -> None:
        path = render_template(self.field, doc)
        if not doc.has(path, fail_out_of_range=True):
            if self.ignore_missing:
                return
            raise ApiError("illegal_argument_exception", f"field [{path}] doesn't exist", 400)
        target = render_template(self.target_field, doc)
        if doc.has(target, fail_out_of_range=True) and not self.override:
            raise ApiError("illegal_argument_exception", f"field [{target}] already exists", 400)
        value = doc.get(path)
        doc.remove(path)
        try:
            doc.set(target, value)
        except ApiError:
            doc.set(path, value)
            raise


class RemoveProcessor(Processor):
    type = "remove"

    def run_columns(self, batch: ColumnBatch, rows: np.ndarray, k: int) -> None:
        remove_columns(self, batch, rows, k)

    def declare_columns(self, doc: SymbolicDocument, partial: bool) -> None:
        remove_writes(doc, self, partial)

    def columns_take(self) -> bool:
        if self.keep is not None:  # the column form keeps whole top-level fields
            return all(plain_path(k) and "." not in k for k in self.keep)
        fields = self.fields
        return all(plain_path(f) for f in fields) and not any(
            a == b or is_prefix(a, b) for i, a in enumerate(fields) for j, b in enumerate(fields) if i != j)

    def __init__(self, c: Conf) -> None:
        super().__init__()
        self.fields = c.string_or_list("field") if c.has("field") else []
        keep = c.string_or_list("keep") if c.has("keep") else []
        if not self.fields and not keep:
            raise c.error("keep", "or [field] must be specified")
        if self.fields and keep:
            raise c.error("keep", "and [field] cannot both be used in the same processor")
        self.keep = keep or None
        self.ignore_missing = c.boolean("ignore_missing", False)

    def execute(self, doc: Doc, run: Run, pipeline_id: str | None) -> None:
        if self.keep is not None:
            keep = [render_template(k, doc) for k in self.keep]
            for path in all_fields(doc.source()):
                if not should_keep(path, keep) and doc.has(path):
                    doc.remove(path)
            return
        for f in self.fields:
            path = render_template(f, doc)
            if self.ignore_missing and not doc.has(path):
                continue
            doc.remove(path)


class FieldValueProcessor(Processor):
    """field / target_field / ignore_missing processors applying a function to the value(s)."""

    def run_columns(self, batch: ColumnBatch, rows: np.ndarray, k: int) -> None:
        field_value_columns(self, batch, rows, k)

    def columns_take(self) -> bool:
        a, b = self.field, self.target_field
        return plain_path(a) and plain_path(b) and not is_prefix(a, b) and not is_prefix(b, a)

    def __init__(self, c: Conf) -> None:
        super().__init__()
        self.field = c.string("field")
        self.ignore_missing = c.boolean("ignore_missing", False)
        self.target_field = c.string("target_field", self.field)

    def convert(self, value: Any) -> Any:  # pragma: no cover
        raise NotImplementedError

    def execute(self, doc: Doc, run: Run, pipeline_id: str | None) -> None:
        if not doc.has(self.field) or doc.get(self.field) is None:
            if self.ignore_missing:
                return
            if not doc.has(self.field):
                doc.get(self.field)  # raises "field [x] not present as part of path [x]"
            raise ApiError("illegal_argument_exception",
                           f"field [{self.field}] is null, cannot process it.", 400)
        value = doc.get(self.field)
        new = [self.convert(v) for v in value] if isinstance(value, list) else self.convert(value)
        doc.set(self.target_field, new)


class _CaseProcessor(FieldValueProcessor):
    """``AbstractStringProcessor``: a string, or a list of strings, processed into ``target_field``."""

    upper = True

    def declare_columns(self, doc: SymbolicDocument, partial: bool) -> None:
        text_writes(doc, self, partial)

    def execute(self, doc: Doc, run: Run, pipeline_id: str | None) -> None:
        value = doc.get(self.field) if doc.has(self.field) else None
        if isinstance(value, list):
            for v in value:
                if not isinstance(v, str):
                    raise ApiError("illegal_argument_exception",
                                   f"value [{java_string(v)}] of type [{java_type(v)}] in list field [{self.field}] "
                                   "cannot be cast to [java.lang.String]", 400)
        super().execute(doc, run, pipeline_id)

    def convert(self, value: Any) -> Any:
        if not isinstance(value, str):
            raise ApiError("illegal_argument_exception",
                           f"field [{self.field}] of type [{java_type(value)}] cannot be cast to [java.lang.String]", 400)
        return value.upper() if self.upper else value.lower()


class UppercaseProcessor(_CaseProcessor):
    type = "uppercase"


class LowercaseProcessor(_CaseProcessor):
    type = "lowercase"
    upper = False


CONVERT_TYPES = ("integer", "long", "float", "double", "string", "boolean", "ip", "auto")


class ConvertProcessor(FieldValueProcessor):
    type = "convert"

    def declare_columns(self, doc: SymbolicDocument, partial: bool) -> None:
        convert_writes(doc, self, partial)

    def __init__(self, c: Conf) -> None:
        super().__init__(c)
        kind = c.string("type")
        if kind.lower() not in CONVERT_TYPES:
            raise c.error("type", f"type [{kind}] not supported, cannot convert field.")
        self.kind = kind.lower()

    def execute(self, doc: Doc, run: Run, pipeline_id: str | None) -> None:
        if doc.has(self.field) and doc.get(self.field) is None and not self.ignore_missing:
            raise ApiError("illegal_argument_exception",
                           f"Field [{self.field}] is null, cannot be converted to type [{self.kind}]", 400)
        super().execute(doc, run, pipeline_id)

    def convert(self, value: Any) -> Any:
        """ES's ``ConvertProcessor.Type.convert``: every type reads ``value.toString()`` (Java's text of
        the value: ``1.0`` for a double, so a double never converts to an integer)."""
        kind = self.kind
        text = java_string(value)
        if kind == "auto":
            return _auto(value)
        if kind == "string":
            return text
        if kind == "boolean":
            if text.lower() in ("true", "false"):
                return text.lower() == "true"
            raise ApiError("illegal_argument_exception",
                           f"[{text}] is not a boolean value, cannot convert to boolean", 400)
        if kind == "ip":

            try:
                ipaddress.ip_address(text)
            except ValueError:  # InetAddresses.forString's message
                raise ApiError("illegal_argument_exception", f"'{text}' is not an IP string literal.", 400) from None
            return text
        number = _parse_number(text, kind)
        if number is None:
            raise ApiError("illegal_argument_exception", f"unable to convert [{text}] to {kind}", 400)
        return number


_DECIMAL_DIGITS = re.compile(r"[+-]?\d+")
_HEX_DIGITS = re.compile(r"[0-9a-fA-F]+")


def parse_java_integer(text: str, bits: int) -> int | None:
    """ES's integer / long conversion: ``Integer.decode`` for ``0x`` / ``-0x`` text, ``Integer.parseInt``
    otherwise (no surrounding whitespace, no ``_``, no decimal point); ``None`` where Java throws."""
    if text.startswith(("0x", "-0x")):
        negative = text.startswith("-")
        digits = text[3:] if negative else text[2:]
        if not _HEX_DIGITS.fullmatch(digits):
            return None
        number = -int(digits, 16) if negative else int(digits, 16)
    elif _DECIMAL_DIGITS.fullmatch(text):
        number = int(text)
    else:
        return None
    low, high = -(2 ** (bits - 1)), 2 ** (bits - 1)
    return number if low <= number < high else None


def _parse_number(text: str, kind: str) -> int | float | None:
    """``Integer.decode`` / ``Long.decode`` / ``Float.parseFloat`` / ``Double.parseDouble``; ``None``
    where Java throws."""
    if kind in ("integer", "long"):
        return parse_java_integer(text, 32 if kind == "integer" else 64)
    number = parse_java_double(text)
    return java_float(number) if kind == "float" and number is not None else number


def java_float(number: float) -> float:
    """A double rounded to a Java ``float``, as the double whose text is the float's (``1.2345679``
    for ``1.23456789``): what the float's JSON reads as."""
    with np.errstate(over="ignore"):
        single = np.float32(number)
    return float(single) if not np.isfinite(single) else float(str(single))


def _auto(value: Any) -> Any:
    """``AUTO``: a string becomes a boolean, an integer, a long or a float (not a double: Float is
    tried first and takes any number text) where it parses as one."""
    if not isinstance(value, str):
        return value
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    for kind in ("integer", "long", "float"):
        number = _parse_number(value, kind)
        if number is not None:
            return number
    return value


class FailProcessor(Processor):
    type = "fail"
    writes_no_columns = True

    def __init__(self, c: Conf) -> None:
        super().__init__()
        self.message = c.string("message")

    def execute(self, doc: Doc, run: Run, pipeline_id: str | None) -> None:
        raise ApiError("fail_processor_exception", str(render_template(self.message, doc)), 500)


class DropProcessor(Processor):
    type = "drop"
    writes_no_columns = True

    def run_columns(self, batch: ColumnBatch, rows: np.ndarray, k: int) -> None:
        drop_columns(self, batch, rows, k)

    def columns_take(self) -> bool:
        return True

    def __init__(self, c: Conf) -> None:
        super().__init__()

    def execute(self, doc: Doc, run: Run, pipeline_id: str | None) -> None:
        doc.dropped = True


class PipelineProcessor(Processor):
    type = "pipeline"
    records_itself = True

    def declare_columns(self, doc: SymbolicDocument, partial: bool) -> None:
        """The stored pipeline it names, walked in place (not one whose name depends on the document, a
        missing one, or a cycle: those documents fail)."""
        name = self.name
        if templated(name) or name in doc.stack or name not in doc.engine.pipelines:
            return
        doc.stack.append(name)
        try:
            nested = parse_pipeline(doc.engine.pipelines.get(name), doc.engine, name)
            doc.processors(nested.processors, partial)
            if nested.on_failure:
                doc.processors(nested.on_failure, True)
        finally:
            doc.stack.pop()

    def __init__(self, c: Conf) -> None:
        super().__init__()
        self.name = c.string("name")
        self.ignore_missing_pipeline = c.boolean("ignore_missing_pipeline", False)

    def run_batch(self, docs: list[Doc], run: Run, pipeline_id: str | None) -> list[BaseException | None]:
        out: list[BaseException | None] = [None] * len(docs)
        groups: dict[str, list[int]] = {}
        for i, doc in enumerate(docs):
            groups.setdefault(str(render_template(self.name, doc)), []).append(i)
        for name, idx in groups.items():
            body = run.engine.pipelines.get(name) if run.engine is not None and name in run.engine.pipelines else None
            if body is None:
                for i in idx:
                    out[i] = self._missing(docs[i], name, run, pipeline_id)
                continue
            pipeline = parse_pipeline(body, run.engine)
            if not pipeline.processors:  # IngestDocument.executePipeline returns at once: no pipeline entered
                for i in idx:
                    _record(docs[i], run, self, "success", None)
                continue
            refused = _graph_error(name, run)
            if refused is not None:
                for i in idx:
                    out[i] = self._refused(docs[i], refused, run, pipeline_id)
                continue
            batch = [docs[i] for i in idx]
            checks = run.verbose and self._checks_cycles(run)
            saved = [_Snapshot.of(doc) if checks and doc.results is not None else None for doc in batch]
            for doc in batch:
                _record(doc, run, self, "success", None)
            failures = run_pipeline(pipeline, batch, run, name)
            for i, snapshot, failure in zip(idx, saved, failures):
                if snapshot is not None and failure is not None and failure.error.type == _GRAPH_ERROR:
                    snapshot.restore(docs[i])  # found by the check on a copy: only this processor's entry shows
                    failure = failure.unrecorded()
                out[i] = failure
        return out

    def _checks_cycles(self, run: Run) -> bool:
        """``TrackingResultProcessor.decorate``: a verbose run first executes the called pipeline on a copy
        of the document for a processor of the simulated pipeline, or one wrapped for its ``on_failure`` /
        ``ignore_failure``; a cycle (or too deep a nesting) found there is this processor's error alone."""
        return len(run.stack) <= 1 or self.on_failure is not None or self.ignore_failure

    def _missing(self, doc: Doc, name: str, run: Run, pipeline_id: str | None) -> Failure | ApiError | None:
        """A pipeline that does not exist: ``ignore_missing_pipeline`` goes on; a verbose run records the
        error itself (``ignored_error`` with the document where the pipeline may be missing, a plain
        ``error`` otherwise, whatever the processor's ``ignore_failure``)."""
        error = _missing_pipeline(name, run.verbose)
        if self.ignore_missing_pipeline:
            _record(doc, run, self, "error_ignored", error, with_doc=True)
            return None
        failure = Failure(error, self.type, self.tag, pipeline_id, raw=True)
        failure.recorded = _record(doc, run, self, "error", error)
        return failure

    def _refused(self, doc: Doc, error: ApiError, run: Run, pipeline_id: str | None) -> Failure | ApiError:
        """The pipeline cannot be entered (a cycle, too many nested): where no check on a copy ran first, a
        verbose run shows this processor as a success, the error escaping without an entry of its own."""
        if not run.verbose or self._checks_cycles(run):
            return error
        failure = Failure(error, self.type, self.tag, pipeline_id, raw=True)
        failure.recorded = _record(doc, run, self, "success", None)
        return failure


#: ``IngestDocument.MAX_PIPELINES``: the most pipelines one document can be inside at once
MAX_PIPELINES = 100
_GRAPH_ERROR = "graph_structure_exception"


def _graph_error(name: str, run: Run) -> ApiError | None:
    """``IngestDocument.executePipeline``'s refusals: too many nested pipelines, then a cycle."""
    if len(run.stack) >= MAX_PIPELINES:
        return ApiError(_GRAPH_ERROR, f"Too many nested pipelines. Cannot have more than {MAX_PIPELINES} nested "
                        "pipelines", 400)
    if name in run.stack:
        return ApiError(_GRAPH_ERROR, f"Cycle detected for pipeline: {name}", 400)
    return None


@dataclass
class _Snapshot:
    """A document as it was before a pipeline ran (in place: a ``foreach`` element shares its maps)."""

    data: dict[str, Any]
    ingest: dict[str, Any]
    results: int

    @classmethod
    def of(cls, doc: Doc) -> "_Snapshot":
        return cls(clone(doc.data), clone(doc.ingest), len(doc.results or []))

    def restore(self, doc: Doc) -> None:
        doc.data.clear()
        doc.data.update(self.data)
        doc.ingest.clear()
        doc.ingest.update(self.ingest)
        if doc.results is not None:
            del doc.results[self.results:]


def _missing_pipeline(name: str, verbose: bool) -> ApiError:
    """``PipelineProcessor``'s ``IllegalStateException``; a verbose simulation's
    ``TrackingResultProcessor`` throws an ``IllegalArgumentException`` with the same message."""
    reason = f"Pipeline processor configured for non-existent pipeline [{name}]"
    if verbose:
        return ApiError("illegal_argument_exception", reason, 400)
    return ApiError("illegal_state_exception", reason, 500)


class ForeachProcessor(Processor):
    """``foreach``: the inner processor over every element of a list field, as ``_ingest._value``.

    Batched like everything else: one shadow document per element (sharing the real document's
    source, with its own ``_ingest._value``), so an inner ``inference`` processor makes one model
    call for all elements of all documents. An element's failure fails its document only.
    """

    type = "foreach"

    def declare_columns(self, doc: SymbolicDocument, partial: bool) -> None:
        foreach_writes(doc, self, partial)

    def __init__(self, c: Conf, engine: "Engine | None" = None) -> None:
        super().__init__()
        self.field = c.string("field")
        self.ignore_missing = c.boolean("ignore_missing", False)
        inner = c.mapping("processor")
        if inner is None:
            raise c.error("processor", "required property is missing")
        if len(inner) != 1:
            raise c.error("processor", "Must specify exactly one processor type")
        self.inner = parse_processor(inner, engine)

    def _elements(self, doc: Doc) -> list[tuple[Any, Any]] | dict[Any, Any] | None:
        """The ``(index, value)`` pairs of the list, or the map, the processor loops over (``None``: a
        missing / null field with ``ignore_missing``)."""
        if not doc.has(self.field) or doc.get(self.field) is None:
            if self.ignore_missing:
                return None
            if not doc.has(self.field):
                doc.get(self.field)
            raise ApiError("illegal_argument_exception", f"field [{self.field}] is null, cannot loop over its "
                           "elements.", 400)
        values = doc.get(self.field)
        if isinstance(values, dict):
            return dict(values)
        if isinstance(values, list):
            return list(enumerate(values))
        raise ApiError("illegal_argument_exception", f"field [{self.field}] of type [{java_type(values)}] "
                       "cannot be cast to a list or map", 400)

    def run_batch(self, docs: list[Doc], run: Run, pipeline_id: str | None) -> list[BaseException | None]:
        out: list[BaseException | None] = [None] * len(docs)
        shadows: list[Doc] = []
        owners: list[int] = []
        loops: dict[int, bool] = {}  # document -> whether it loops over a map
        for d, doc in enumerate(docs):
            try:
                elements = self._elements(doc)
            except ApiError as err:
                out[d] = err
                continue
            if elements is None:
                continue
            loops[d] = isinstance(elements, dict)
            for key, value in (elements.items() if isinstance(elements, dict) else elements):
                ingest = dict(doc.ingest)
                ingest["_value"] = value
                if loops[d]:
                    ingest["_key"] = key
                shadows.append(Doc(doc.data, ingest))  # untracked: a verbose run shows the foreach only
                owners.append(d)
        failures = run_processors([self.inner], shadows, run, pipeline_id) if shadows else []
        done: dict[int, list[Doc]] = {d: [] for d in loops}
        for shadow, d, failure in zip(shadows, owners, failures):
            done[d].append(shadow)
            if out[d] is None and failure is not None:
                out[d] = failure.error if failure.raw else failure  # a raw error becomes the foreach's
        for d, is_map in loops.items():
            self._write_back(docs[d], done[d], is_map, out[d] is None)
        return out

    def _write_back(self, doc: Doc, shadows: list[Doc], is_map: bool, ok: bool) -> None:
        """``innerExecuteList`` / ``innerExecuteMap``: the new values (a map's under their new ``_key``,
        an entry whose key has no text dropped) set as a new list / map once every element succeeded;
        ``_ingest._value`` (and ``_key``) put back as they were, null when absent."""
        if shadows:
            doc.ingest.setdefault("_value", None)
            if is_map:
                doc.ingest.setdefault("_key", None)
        if not ok:
            return
        if is_map:
            new: Any = {}
            for shadow in shadows:
                key = shadow.ingest.get("_key")
                if isinstance(key, str) and key.strip():
                    new[key] = shadow.ingest.get("_value")
        else:
            new = [shadow.ingest.get("_value") for shadow in shadows]
        doc.set(self.field, new)
        if any(shadow.dropped for shadow in shadows):
            doc.dropped = True


# -- parsing -----------------------------------------------------------------------------------------

@dataclass
class Pipeline:
    processors: list[Processor]
    on_failure: list[Processor] | None
    description: str | None = None


def parse_processor(entry: Any, engine: "Engine | None" = None) -> Processor:
    if not isinstance(entry, dict) or len(entry) != 1:
        raise ApiError("parse_exception", "processor must be an object with exactly one key (the processor type)", 400)
    ((ptype, raw),) = entry.items()
    if raw is None:
        raw = {}
    if isinstance(raw, str) and ptype == "script":
        raw = {"source": raw}
    if not isinstance(raw, dict):
        raise config_error(ptype, None, None, f"processor [{ptype}] config must be an object, but was [{java_type(raw)}]")
    conf = dict(raw)
    tag = conf.pop("tag", None)
    tag = None if tag is None else str(tag)
    from .registry import PROCESSORS as factories  # the registry imports the processor classes of this module
    from .registry import unknown_type_reason
    if ptype not in factories:
        raise config_error(ptype, tag, None, unknown_type_reason(ptype))
    c = Conf(ptype, tag, conf)
    description = c.string("description", None)
    if_source = c.raw("if")
    ignore_failure = c.boolean("ignore_failure", False)
    on_failure_raw = c.raw("on_failure")
    on_failure = None
    if on_failure_raw is not None:
        if not isinstance(on_failure_raw, list):
            raise c.error("on_failure", f"property isn't a list, but of type [{java_type(on_failure_raw)}]")
        if not on_failure_raw:
            raise c.error("on_failure", "processors list cannot be empty")
        on_failure = [parse_processor(p, engine) for p in on_failure_raw]
    condition = None
    if if_source is not None:
        try:
            condition = parse_condition(if_source)
        except ApiError as err:
            err.metadata.setdefault("processor_type", ptype)
            if tag is not None:
                err.metadata.setdefault("processor_tag", tag)
            raise
    proc = factories[ptype](c, engine) if ptype == "foreach" else factories[ptype](c)
    c.finish()
    proc.tag = tag
    proc.description = description
    proc.condition = condition
    proc.ignore_failure = ignore_failure
    proc.on_failure = on_failure
    return proc


def parse_pipeline(body: Any, engine: "Engine | None" = None, pipeline_id: str | None = None) -> Pipeline:
    """Validate a pipeline body and compile it, in ES's ``Pipeline.create`` order (``parse_exception``
    errors as ES answers them)."""
    if not isinstance(body, dict):
        raise ApiError("parse_exception", "pipeline body must be an object", 400)
    c = Conf(None, None, dict(body))
    description = c.string("description", None)
    _pipeline_version(c)
    c.mapping("_meta")
    _optional_boolean(c, "deprecated")
    c.raw("field_access_pattern")
    processors = _processor_list(c, "processors", required=True)
    parsed = [parse_processor(p, engine) for p in processors]
    on_failure_raw = _processor_list(c, "on_failure", required=False)
    on_failure = [parse_processor(p, engine) for p in on_failure_raw or []]
    if c.config:
        raise ApiError("parse_exception", f"pipeline [{pipeline_id}] doesn't support one or more provided configuration "
                       f"parameters [{', '.join(c.config)}]", 400)
    if on_failure_raw is not None and not on_failure:
        raise ApiError("parse_exception", f"pipeline [{pipeline_id}] cannot have an empty on_failure option defined", 400)
    return Pipeline(parsed, on_failure or None, description)


def _pipeline_version(c: Conf) -> int | None:
    """``ConfigurationUtils.readIntProperty``: ``Integer.parseInt`` of the value's text."""
    value = c.raw("version")
    if value is None:
        return None
    text = java_string(value)
    number = int(text) if _DECIMAL_DIGITS.fullmatch(text) and -(2 ** 31) <= int(text) < 2 ** 31 else None
    if number is None:
        raise c.error("version", f"property cannot be converted to an int [{java_string(value)}]")
    return number


def _optional_boolean(c: Conf, key: str) -> bool | None:
    """``ConfigurationUtils.readOptionalBooleanProperty``: a JSON boolean only."""
    value = c.raw(key)
    if value is None or isinstance(value, bool):
        return value
    raise c.error(key, f"property isn't a boolean, but of type [{java_type(value)}]")


def _processor_list(c: Conf, key: str, required: bool) -> list[Any] | None:
    """``ConfigurationUtils.readList`` / ``readOptionalList``."""
    value = c.raw(key)
    if value is None:
        if required:
            raise c.error(key, "required property is missing")
        return None
    if not isinstance(value, list):
        raise c.error(key, f"property isn't a list, but of type [{java_type(value)}]")
    return value


# -- execution -----------------------------------------------------------------------------------------

def _record(doc: Doc, run: Run, p: Processor, status: str, error: ApiError | None, *,
            condition: bool | None = True, with_doc: bool = False) -> bool:
    """One ``processor_results`` entry (``SimulateProcessorResult``); ``condition``: what the processor's
    ``if`` gave (``None`` where evaluating it failed: ES's entry then has no ``if``). Whether it was
    recorded (a verbose run, a tracked document: not the element of a ``foreach``)."""
    if not run.verbose or doc.results is None:
        return False
    entry: dict[str, Any] = {"processor_type": p.type, "status": status}
    if p.description is not None:
        entry["description"] = p.description
    if p.tag is not None:
        entry["tag"] = p.tag
    if p.condition is not None and condition is not None:
        entry["if"] = {"condition": p.condition.source, "result": condition}
    if error is not None:
        if status == "error_ignored":
            entry["ignored_error"] = {"error": error.error_object()}
        else:
            entry["error"] = error.error_object()
    if with_doc:
        entry["doc"] = doc.render(with_pipeline=True)
    doc.results.append(entry)
    return True


def processor_stats_name(p: "Processor | dict[str, Any]") -> str:
    """The name ES keys processor stats by (``IngestService.getProcessorName``): ``type``, then
    ``:<pipeline name>`` for a ``pipeline`` processor, then ``:<tag>`` for a non-empty tag."""
    if isinstance(p, dict):
        ((ptype, conf),) = p.items()
        conf = conf if isinstance(conf, dict) else {}
        tag, target = conf.get("tag"), conf.get("name")
    else:
        ptype, tag, target = p.type, p.tag, getattr(p, "name", None)
    parts = [str(ptype)]
    if ptype == "pipeline" and target is not None:
        parts.append(re.sub(r"\{\{\{?[^}]*\}?\}\}", "", str(target)))  # the template with no parameters
    if tag:
        parts.append(str(tag))
    return ":".join(parts)


def _failure(exc: BaseException, p: Processor, pipeline_id: str | None) -> Failure:
    if isinstance(exc, Failure):
        return exc
    return Failure(as_api_error(exc), p.type, p.tag, pipeline_id, raw=True)


def _condition_failure(exc: BaseException, p: Processor, pipeline_id: str | None) -> Failure:
    """An ``if`` that fails to evaluate: ES wraps a processor with its ``ignore_failure`` / ``on_failure``
    first and the condition around that (``ConfigurationUtils.readProcessor``), so neither applies and the
    failure is the ``conditional`` processor's. (``_simulate?verbose`` moves the condition inside them:
    ``TrackingResultProcessor.decorate``.)"""
    return Failure(as_api_error(exc), "conditional", p.tag, pipeline_id, raw=True)


_FAILURE_KEYS = ("on_failure_message", "on_failure_processor_type", "on_failure_processor_tag", "on_failure_pipeline")


def _run_handlers(handlers: list[Processor], docs: list[Doc], failures: list[Failure], run: Run,
                  pipeline_id: str | None) -> list[Failure | None]:
    """``CompoundProcessor.executeOnFailure``: the failure metadata put in ``_ingest`` for the handlers,
    then removed (not restored: an outer handler running after an inner one no longer sees its own);
    a handler's failure escapes wrapped."""
    for doc, f in zip(docs, failures):
        doc.ingest["on_failure_message"] = f.root_message()
        doc.ingest["on_failure_processor_type"] = f.processor_type
        doc.ingest["on_failure_processor_tag"] = f.tag
        if f.pipeline is not None:
            doc.ingest["on_failure_pipeline"] = f.pipeline
        else:
            doc.ingest.pop("on_failure_pipeline", None)
    try:
        out = run_processors(handlers, docs, run, pipeline_id)
    finally:
        for doc in docs:
            for k in _FAILURE_KEYS:
                doc.ingest.pop(k, None)
    return _wrapped(out)


def _wrapped(failures: list[Failure | None]) -> list[Failure | None]:
    """Failures that escaped a ``CompoundProcessor`` (a pipeline, an ``on_failure`` list): no longer the
    raw error of the processor that threw it (``newCompoundProcessorException``)."""
    for f in failures:
        if f is not None:
            f.raw = False
    return failures


def _run_counted(p: Processor, batch: list[Doc], run: Run, pipeline_id: str | None,
                 top_level: bool = False) -> list[BaseException | None]:
    """``p.run_batch``; a top-level processor of a counted pipeline (any type: ES surfaces every one,
    not those of ``on_failure`` handlers or inside ``foreach``) moves its ingest stats (``current``
    holds the batch while it runs)."""
    if not top_level or pipeline_id not in run.counted or run.engine is None:
        return p.run_batch(batch, run, pipeline_id)
    stats, name, n = run.engine.stats, processor_stats_name(p), len(batch)
    stats.begin_ingest(pipeline_id, name, n)
    started = time.perf_counter_ns()
    outcomes: list[BaseException | None] | None = None
    try:
        outcomes = p.run_batch(batch, run, pipeline_id)
        return outcomes
    finally:
        failed = n if outcomes is None else sum(1 for o in outcomes if o is not None)
        stats.record_ingest(pipeline_id, name, count=n, nanos=time.perf_counter_ns() - started, failed=failed,
                            leaving=n)


def run_processors(processors: list[Processor], docs: list[Doc], run: Run,
                   pipeline_id: str | None, *, top_level: bool = False) -> list[Failure | None]:
    """Run a processor list over a batch; the failure that escapes it, per document. ``top_level``: the
    pipeline's own processors (whose ingest stats move)."""
    n = len(docs)
    failed: list[Failure | None] = [None] * n
    for p in processors:
        active = [i for i in range(n) if failed[i] is None and not docs[i].dropped]
        if not active:
            break
        errors: dict[int, BaseException] = {}
        condition_failed: set[int] = set()
        eligible: list[int] = []
        for i in active:
            if p.condition is not None:
                try:
                    ok = p.condition.evaluate(docs[i].ctx())
                except ApiError as err:
                    errors[i] = err
                    condition_failed.add(i)
                    continue
                if not ok:
                    _record(docs[i], run, p, "skipped", None, condition=False)
                    continue
            eligible.append(i)
        if eligible:
            outcomes = _run_counted(p, [docs[i] for i in eligible], run, pipeline_id, top_level)
            for i, exc in zip(eligible, outcomes):
                if exc is not None:
                    errors[i] = exc
                elif not p.records_itself:
                    if docs[i].dropped:
                        _record(docs[i], run, p, "dropped", None)
                    else:
                        _record(docs[i], run, p, "success", None, with_doc=True)
        handled: list[tuple[int, Failure]] = []
        for i in active:
            if i not in errors:
                continue
            if i in condition_failed and not run.verbose:
                failed[i] = _condition_failure(errors[i], p, pipeline_id)
                continue
            f = _failure(errors[i], p, pipeline_id)
            evaluated: bool | None = None if i in condition_failed else True
            if p.ignore_failure:
                if not f.recorded:
                    _record(docs[i], run, p, "error_ignored", f.error, condition=evaluated, with_doc=True)
                continue
            if not f.recorded:
                f.recorded = _record(docs[i], run, p, "error", f.error, condition=evaluated)
            if p.on_failure:
                handled.append((i, f))
            else:
                failed[i] = f
        if handled:
            outs = _run_handlers(p.on_failure or [], [docs[i] for i, _ in handled], [f for _, f in handled], run,
                                 pipeline_id)
            for (i, _), out in zip(handled, outs):
                failed[i] = out
    return failed


def is_counted(run: Run, pipeline_id: str) -> bool:
    """Whether running ``pipeline_id`` now moves its ingest stats (a stored pipeline not already counting)."""
    return (run.engine is not None and pipeline_id != SIMULATE_PIPELINE_ID and pipeline_id not in run.counted
            and pipeline_id in run.engine.pipelines)


def run_pipeline(pipeline: Pipeline, docs: list[Doc], run: Run, pipeline_id: str) -> list[Failure | None]:
    """Run a pipeline over a batch (``_ingest.pipeline`` set while it runs); failures per document."""
    previous = [doc.ingest.get("pipeline") for doc in docs]
    for doc in docs:
        doc.ingest["pipeline"] = pipeline_id
    run.stack.append(pipeline_id)
    counted = is_counted(run, pipeline_id)
    if counted:
        run.counted.add(pipeline_id)
        run.engine.stats.begin_ingest(pipeline_id, None, len(docs))  # type: ignore[union-attr]
    started = time.perf_counter_ns()
    failed: list[Failure | None] = [None] * len(docs)
    try:
        failed = run_processors(pipeline.processors, docs, run, pipeline_id, top_level=True)
        if pipeline.on_failure:
            idx = [i for i, f in enumerate(failed) if f is not None]
            if idx:
                outs = _run_handlers(pipeline.on_failure, [docs[i] for i in idx], [failed[i] for i in idx],  # type: ignore[misc]
                                     run, pipeline_id)
                for i, out in zip(idx, outs):
                    failed[i] = out
    finally:
        if counted:
            run.counted.discard(pipeline_id)
            run.engine.stats.record_ingest(  # type: ignore[union-attr]
                pipeline_id, None, count=len(docs), nanos=time.perf_counter_ns() - started,
                failed=sum(1 for f in failed if f is not None), leaving=len(docs))
        run.stack.pop()
        for doc, prev in zip(docs, previous):
            if prev is None:
                doc.ingest.pop("pipeline", None)
            else:
                doc.ingest["pipeline"] = prev
    return _wrapped(failed)
