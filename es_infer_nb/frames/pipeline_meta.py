"""The columns and dtypes ``ddf.infer.pipeline`` declares, from the pipeline definition and the model configs.

The pipeline is compiled by the ingest parser (:func:`~es_infer_nb.ingest.pipeline.parse_pipeline`, the
one ``df.infer.pipeline`` runs) and its processors are walked in order over a *symbolic document*: for
each field, the stand-in values that may land there. No model runs; what a model writes comes from its
config, rendered by the code the pipeline itself uses:

* ``inference`` on a tree model: :func:`~es_infer_nb.models.results.render_per_document` of a
  stand-in result in which every class wins once (so the label type is the real one), and a warning row;
* ``inference`` on a pytorch (NLP) model: the task's stand-in result (:func:`.meta.nlp_result`, after
  the processor's ``inference_config``), under ``target_field`` with ``model_id`` and ``is_truncated``,
  or per ``input_output`` pair what :func:`~es_infer_nb.models.input_output.as_map` writes;
* ``inference`` on an ``_inference`` endpoint: :func:`~es_infer_nb.services.ingest_bridge.predicted_value`
  of a stand-in entry of the endpoint's task type;
* ``ml_inference``: the stand-in ``_infer`` result (or endpoint answer) wrapped as the processor's
  predictor wraps it, each ``output_map`` path read by the processor's own
  :func:`~es_infer_nb.ingest.ml_inference.get_model_output_value`;
* ``set`` / ``append`` / ``convert`` / ``rename`` / ``remove`` / string processors / ``split`` /
  ``join``: the value or type they write; a nested ``pipeline`` (a literal name) is walked in place,
  ``foreach`` over the elements, ``on_failure`` handlers as writes that some rows get.

Each column's dtype is then what the pandas path's own typer
(:func:`es_infer_nb.frames.pipeline._column`) gives those values *when some rows lack the field*
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

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..backends import resolve
from ..backends.columns import endpoint_entry, nlp_result, stored_config, tree_config

if TYPE_CHECKING:  # pragma: no cover
    from ..engine import Engine
    from ..ingest.inference import InferenceProcessor
    from ..ingest.ml_inference import MLInferenceProcessor
    from ..ingest.pipeline import (ConvertProcessor, FieldValueProcessor, ForeachProcessor, Pipeline, PipelineProcessor,
                                   Processor, RemoveProcessor, RenameProcessor, SetProcessor)
    from ..ingest.processors import AppendProcessor, JoinProcessor, JsonProcessor, SplitProcessor
    from ..ingest.script import ScriptProcessor

#: a stand-in value whose type the configs do not give (its column is ``object``)
UNKNOWN = object()
#: the key of an object whose keys depend on the data (its fields are not declared)
ANY_KEY = ""
#: the stand-in of a text the document gets from a mustache template or a string processor
TEXT = ""
_CONVERTED = {"integer": 0, "long": 0, "float": 0.0, "double": 0.0, "string": TEXT, "ip": TEXT, "boolean": True}
_VALUE = "_ingest._value"


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

        from .pipeline import _plain

        fields = cls({str(c): meta[c].dtype for c in meta.columns})
        sample = meta_nonempty(meta)
        for name, label in zip(fields.inputs, meta.columns):
            value = sample[label].tolist()[0] if len(sample) else None
            try:
                plain = _plain(value)
            except ValueError:
                plain = UNKNOWN
            known = isinstance(plain, (str, bool, int, list, dict)) or isinstance(plain, float) and plain == plain
            fields.cols[name] = [plain if known else UNKNOWN]  # (an object column's stand-in is a bare object())
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
        if path.startswith("_ingest.") and not _under(path, _VALUE) or not path:
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
    from .pipeline import _column

    if not values or any(v is UNKNOWN for v in values):
        return np.dtype(object)
    return _column(list(values) + ([None] if missing else [])).dtype


def nullable(dtype: Any) -> Any:
    """``dtype`` as the pandas path types the column when some rows lack it (itself if it holds nulls)."""
    if isinstance(dtype, np.dtype) and dtype.kind in "iu":
        return np.dtype(np.float64)
    if isinstance(dtype, np.dtype) and dtype.kind == "b":
        return np.dtype(object)
    return dtype


def _stand_in(value: Any) -> Any:
    """A ``set`` / ``append`` value as it renders: a mustache template is text; a templated key, any key."""
    if isinstance(value, str):
        return TEXT if "{{" in value else value
    if isinstance(value, list):
        return [_stand_in(v) for v in value]
    if isinstance(value, dict):
        if any("{{" in str(k) for k in value):
            return {ANY_KEY: UNKNOWN}
        return {str(k): _stand_in(v) for k, v in value.items()}
    return value


def _templated(*paths: Any) -> bool:
    return any(isinstance(p, str) and "{{" in p for p in paths)


# -- the walk --------------------------------------------------------------------------------------------

@dataclass
class Walk:
    engine: "Engine"
    fields: Fields
    stack: list[str] = field(default_factory=list)
    tagged: bool = False  # a processor with a tag: a failure's processor_tag may be text

    def pipeline(self, compiled: "Pipeline", partial: bool) -> None:
        self.processors(compiled.processors, partial)
        if compiled.on_failure:
            self.processors(compiled.on_failure, True)

    def processors(self, processors: list["Processor"], partial: bool) -> None:
        for p in processors:
            self.tagged = self.tagged or p.tag is not None
            part = partial or p.condition is not None or p.ignore_failure or bool(p.on_failure)
            handler = DECLARED_COLUMNS.get(p.type, _other)
            handler(self, p, part)
            if p.on_failure:
                self.processors(p.on_failure, True)


def _set(w: Walk, p: "SetProcessor", partial: bool) -> None:
    if _templated(p.field):
        return
    values = w.fields.read(p.copy_from) if p.copy_from is not None else [_stand_in(p.value)]
    w.fields.write(p.field, values or [UNKNOWN], partial or not p.override or p.ignore_empty_value)


def _rename(w: Walk, p: "RenameProcessor", partial: bool) -> None:
    if _templated(p.field, p.target_field):
        return
    values = w.fields.read(p.field)
    w.fields.remove(p.field, partial)
    w.fields.write(p.target_field, values or [UNKNOWN], partial or p.ignore_missing)


def _remove(w: Walk, p: "RemoveProcessor", partial: bool) -> None:
    if p.keep is not None:
        if partial or _templated(*p.keep):
            return
        keep = {k.split(".")[0] for k in p.keep}
        for name in list(w.fields.cols):
            if name.split(".")[0] not in keep and not name.startswith("_ingest."):
                w.fields.remove(name, False)
        return
    for f in p.fields:
        if not _templated(f):
            w.fields.remove(f, partial or p.ignore_missing)


def _per_value(w: Walk, p: "FieldValueProcessor", partial: bool, convert: Any) -> None:
    """field -> target_field processors mapping a value (or each value of a list)."""
    if _templated(p.field, p.target_field):
        return
    values = w.fields.read(p.field) or [UNKNOWN]
    out = [[convert(e) for e in v] if isinstance(v, list) else convert(v) for v in values]
    skips = getattr(p, "ignore_missing", False) and p.target_field != p.field  # rows skipped keep the target
    w.fields.write(p.target_field, out, partial or skips)


def _text(w: Walk, p: "FieldValueProcessor", partial: bool) -> None:
    _per_value(w, p, partial, lambda v: TEXT)


def _convert(w: Walk, p: "ConvertProcessor", partial: bool) -> None:
    def convert(v: Any) -> Any:
        if p.kind in _CONVERTED:
            return _CONVERTED[p.kind]
        return v if isinstance(v, (bool, int, float)) else UNKNOWN  # auto: a text's type depends on it

    _per_value(w, p, partial, convert)


def _split(w: Walk, p: "SplitProcessor", partial: bool) -> None:
    if not _templated(p.target_field):
        w.fields.write(p.target_field, [[TEXT]], partial or p.ignore_missing and p.target_field != p.field)


def _join(w: Walk, p: "JoinProcessor", partial: bool) -> None:
    if not _templated(p.target_field):
        w.fields.write(p.target_field, [TEXT], partial)


def _append(w: Walk, p: "AppendProcessor", partial: bool) -> None:
    if _templated(p.field):
        return
    value = _stand_in(p.value)
    added = value if isinstance(value, list) else [value]
    old = w.fields.read(p.field)
    values = [(o if isinstance(o, list) else [o]) + added for o in old] if old else [added]
    w.fields.write(p.field, values, partial)


def _json(w: Walk, p: "JsonProcessor", partial: bool) -> None:
    if not p.add_to_root and not _templated(p.target_field):
        w.fields.write(p.target_field, [UNKNOWN], partial)


def _script(w: Walk, p: "ScriptProcessor", partial: bool) -> None:
    for path in p.writes:  # what the script computes is known when it runs: an unknown value, on some rows
        w.fields.write(path, [UNKNOWN], True)


def _nested(w: Walk, p: "PipelineProcessor", partial: bool) -> None:
    from ..ingest.pipeline import parse_pipeline

    name = p.name
    if _templated(name) or name in w.stack or name not in w.engine.pipelines:
        return  # which pipeline runs depends on the document, or it fails
    w.stack.append(name)
    try:
        w.pipeline(parse_pipeline(w.engine.pipelines.get(name), w.engine, name), partial)
    finally:
        w.stack.pop()


def _foreach(w: Walk, p: "ForeachProcessor", partial: bool) -> None:
    if _templated(p.field):
        return
    lists = w.fields.read(p.field) or []
    elements = [e for v in lists if isinstance(v, list) for e in v] or [UNKNOWN]
    w.fields.write(_VALUE, elements, False)
    w.processors([p.inner], partial)  # on every element (a document without any gets nothing)
    after = w.fields.read(_VALUE) or [UNKNOWN]
    w.fields.remove(_VALUE, False)
    if after != elements:
        w.fields.write(p.field, [[e] for e in after], partial or p.ignore_missing)


def _other(w: Walk, p: "Processor", partial: bool) -> None:
    """A processor this walk does not model: the field it writes, if it names one, holds ``object``."""
    name = getattr(p, "target_field", None) or getattr(p, "field", None)
    if isinstance(name, str) and not _templated(name):
        w.fields.write(name, [UNKNOWN], True)


def _inference(w: Walk, p: "InferenceProcessor", partial: bool) -> None:
    from ..errors import ApiError

    try:
        kind = resolve(w.engine, p.model_id).kind
        if kind == "endpoint":
            _endpoint_writes(w, p, partial)
        elif kind == "nlp":
            _nlp_writes(w, p, partial)
        elif kind == "tree" and p.target_field is not None:  # no input_output
            docs = tree_docs(w.engine, p.model_id, p.update)
            w.fields.write(p.target_field, [{**d, "model_id": TEXT} for d in docs], partial, append=True)
    except ApiError:  # an unknown model, a wrong update: every document fails, nothing is written
        return


def _nlp_stand_ins(engine: "Engine", model_id: str, update: Any) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(the stored config, a stand-in result, the same result of a truncated text)."""

    stored = stored_config(engine, model_id)[1]
    truncated, _ = nlp_result(stored, update)
    return stored, {k: v for k, v in truncated.items() if k != "is_truncated"}, truncated


def _nlp_writes(w: Walk, p: "InferenceProcessor", partial: bool) -> None:
    from ..models.input_output import as_map, beside, task_of

    stored, result, truncated = _nlp_stand_ins(w.engine, p.model_id, p.update)
    if p.inputs is None:  # written as one object, ``model_id`` last; ``is_truncated`` only for truncated rows
        assert p.target_field is not None
        w.fields.write(p.target_field, [{**result, "model_id": TEXT}, {**result, "model_id": TEXT, **truncated}],
                       partial, append=True)
        return
    task, results_field = task_of(stored)
    for i, io in enumerate(p.inputs):
        maps = [as_map(task, answer, io["output_field"], results_field) for answer in (result, truncated)]
        keys = list(maps[0]) + (["model_id"] if i == 0 else []) + [k for k in maps[1] if k not in maps[0]]
        for key in keys:
            values = [TEXT] if key == "model_id" and i == 0 else [m[key] for m in maps if key in m]
            w.fields.write(beside(io["output_field"], key), values, partial or key not in maps[0], append=True)


def _endpoint_writes(w: Walk, p: "InferenceProcessor", partial: bool) -> None:
    from ..models.input_output import beside
    from ..services.ingest_bridge import predicted_value

    entry = endpoint_entry(w.engine, p.model_id)
    value = UNKNOWN if entry is None else predicted_value(entry)
    if p.inputs is None:
        assert p.target_field is not None
        w.fields.write(p.target_field, [{"predicted_value": value, "model_id": TEXT}], partial, append=True)
        return
    for i, io in enumerate(p.inputs):
        output = io["output_field"]
        w.fields.write(output, [value], partial, append=True)
        if i == 0:
            w.fields.write(beside(output, "model_id"), [TEXT], partial)


def _ml_inference(w: Walk, p: "MLInferenceProcessor", partial: bool) -> None:
    from ..ingest.ml_inference import (
        MISSING,
        DEFAULT_OUTPUT_FIELD_NAME,
        get_model_output_value,
    )

    outputs = _ml_outputs(w, p)
    partial = partial or p.ignore_missing or not p.override or p.own_ignore_failure

    def read(model_field: str | None) -> list[Any]:
        values = []
        for output in outputs:
            try:
                value = get_model_output_value(output, model_field, True, p.full_response_path)
            except Exception:  # noqa: BLE001 - the stand-in answer lacks the path: the type is unknown
                continue
            if value is not MISSING:
                values.append(value)
        return values or [UNKNOWN]

    for i in range(max(len(p.input_maps or []), 1)):
        if p.output_maps is None:
            w.fields.write(DEFAULT_OUTPUT_FIELD_NAME, read(None), partial)
            continue
        for new_field, model_field in (p.output_maps[i] if i < len(p.output_maps) else {}).items():
            if "*" in new_field or _templated(new_field):
                continue  # written into the document's arrays: the shape depends on the data
            w.fields.write(new_field, read(model_field), partial)


def _ml_outputs(w: Walk, p: "MLInferenceProcessor") -> list[dict[str, Any]]:
    """Stand-in model outputs as the processor's engine predictor returns them (none when unknown)."""
    from ..errors import ApiError
    from ..services.base import TaskOutput
    from ..services.runner import rest_answer

    engine = w.engine
    answers: list[Any]
    try:
        kind = resolve(engine, p.model_id, endpoints=p.function_name.lower() == "remote").kind
        if kind == "endpoint":
            entry = endpoint_entry(engine, p.model_id)
            if entry is None:
                return []
            task = engine.inference_endpoints.get(p.model_id)["task_type"]
            answers = [rest_answer(TaskOutput(task, [entry], ranked=[entry]))]
        elif kind == "nlp":
            _stored, plain, truncated = _nlp_stand_ins(engine, p.model_id, None)
            answers = _as_infer(w, p, [plain, truncated])
        elif kind == "tree":
            answers = _as_infer(w, p, tree_docs(engine, p.model_id, None))
        else:
            return []
    except ApiError:
        return []
    return [{"inference_results": [{"output": [{"name": "response", "dataAsMap": a}]}]} for a in answers]


def _as_infer(w: Walk, p: "MLInferenceProcessor", docs: list[dict[str, Any]]) -> list[Any]:
    """What ``_engine_predictor`` hands back for each stand-in result: the result itself for a request
    of one document, else ``{"response": [...]}`` (the number of documents from the rendered request)."""
    n = 1
    names = list(p.input_maps[0]) if p.input_maps else list(dict.fromkeys(c.split(".")[0] for c in w.fields.cols))
    try:
        request = p._render_request({**p.model_config, **{k: "0" for k in names}})
        if isinstance(request, dict) and isinstance(request.get("docs"), list):
            n = len(request["docs"])
    except Exception:  # noqa: BLE001 - a template the stand-in cannot fill: one document
        pass
    return [d if n == 1 else {"response": [d] * n} for d in docs]


def tree_docs(engine: "Engine", model_id: str, update: Any) -> list[dict[str, Any]]:
    """The ES result documents a tree model may write: every class winning once (or one regression
    value), then the all-fields-missing warning; as :func:`render_per_document` renders them."""
    from ..errors import ApiError
    from ..models.inference_config import ClassificationConfig
    from ..models.results import TreeBatchResult, render_per_document

    concrete, config, labels = tree_config(engine, model_id, update)
    classification = isinstance(config, ClassificationConfig)
    n_classes = len(labels) if labels else 2
    n = n_classes + 1 if classification else 2
    k = n_classes if classification else 1
    importance = bool(config.num_top_feature_importance_values)
    result = TreeBatchResult(
        model_id=concrete, config=config, values=np.arange(n) % n_classes if classification else np.zeros(n),
        probabilities=np.eye(n, n_classes) if classification else None,
        warning=np.arange(n) == n - 1, errors=[None] * n, labels=labels,
        importance=np.ones((n, 1, k)) if importance else None, importance_names=["f"] if importance else None)
    return [d for d in render_per_document(result) if not isinstance(d, ApiError)]


#: the declared-columns form of each registered processor type (:mod:`es_infer_nb.ingest.registry`)
DECLARED_COLUMNS: dict[str, Callable[[Walk, Any, bool], None]] = {
    "set": _set, "rename": _rename, "remove": _remove, "convert": _convert, "split": _split, "join": _join,
    "append": _append, "json": _json, "pipeline": _nested, "foreach": _foreach, "inference": _inference,
    "ml_inference": _ml_inference, "uppercase": _text, "lowercase": _text, "trim": _text, "gsub": _text,
    "fail": lambda w, p, partial: None, "drop": lambda w, p, partial: None, "script": _script,
}


def pipeline_columns(engine: "Engine", meta: pd.DataFrame, pipeline: Any) -> dict[str, Any]:
    """``{column: dtype}`` of ``df.infer.pipeline(pipeline)`` over a frame like ``meta``: the input columns,
    the fields the processors write, ``_ingest.dropped`` and ``_ingest.error.*``."""
    from .pipeline import DROPPED, ERROR_COLUMNS, resolve_pipeline

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
