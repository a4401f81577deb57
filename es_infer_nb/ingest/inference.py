"""The Elasticsearch ``inference`` ingest processor (spec §3), target-field style for tree models.

One batched model call per processor per batch: the model input maps of every eligible document
(``_source`` + metadata + ``_ingest``) become columns, the runner evaluates them (stats move as
for ``_infer``), :meth:`TreeBatchResult.to_docs` renders one ES result object per document, and
each is written at ``target_field`` with ``"model_id"`` (the concrete model id), appended to an
existing value rather than overwriting it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..backends import resolve
from ..errors import ApiError
from ..models import inference_config as ic
from ..models.nlp.tasks import TASKS
from ..models.results import DEFAULT_TARGET_FIELD, document_failure, render_per_document
from ..models import runner
from ..models.tree.features import columns_from_docs
from .column_inference import inference_columns
from .column_paths import plain_path
from .column_steps import ColumnBatch
from .config import Conf
from .declared import SymbolicDocument
from .declared_models import inference_writes
from .document import Doc
from .endpoint_inference import run_inference_processor
from .nlp_inference import run_nlp_batch
from .pipeline import Processor, Run, as_api_error

#: the processor's inference types, in the order ES lists them ("Supported types [...]"): the two
#: tree types, then the NLP types by name
UPDATE_TYPES = ("classification", "regression") + tuple(
    sorted(t for t in ic.ALL_TYPES if t not in ("learning_to_rank", "classification", "regression")))
RESERVED_FIELDS = ("warning", "model_id")


def parse_update(raw: dict[str, Any]) -> dict[str, Any]:
    """Validate a processor's ``inference_config`` update (``Factory.inferenceConfigUpdateFromMap``):
    one type mapped to an object (``null`` is not an object), then that type's ``fromMap``."""
    if len(raw) != 1 or not isinstance(next(iter(raw.values())), dict):
        raise ApiError("status_exception",
                       "inference_config must be an object with one inference type mapped to an object.", 400)
    ((name, inner),) = raw.items()
    if name not in UPDATE_TYPES:
        raise ApiError("status_exception", f"unrecognized inference configuration type [{name}]. "
                       f"Supported types [{', '.join(UPDATE_TYPES)}]", 400)
    if name in ic.TREE_TYPES:
        _tree_update_fields(name, inner)
    elif name in TASKS:
        _nlp_update_fields(name, inner)
    names = [inner.get("results_field")]
    if name == "classification":
        names.append(inner.get("top_classes_results_field"))
    _check_field_uniqueness(names)
    if name in ic.TREE_TYPES:
        ic._fields(name, inner)  # the value types, as an ``_infer`` update reads them
    return {name: dict(inner)}


def _check_field_uniqueness(names: list[Any]) -> None:
    """``InferenceConfigUpdate.checkFieldUniqueness``: no name twice, nor a reserved one (a 400)."""
    seen = set(RESERVED_FIELDS)
    dups = []
    for n in names:
        if n is None:
            continue
        if n in seen:
            dups.append(n)
        seen.add(n)
    if dups:
        raise ApiError("status_exception",
                       f"Invalid inference config. More than one field is configured as [{', '.join(dups)}]", 400)


#: the keys ``ClassificationConfigUpdate.fromMap`` / ``RegressionConfigUpdate.fromMap`` take
_TREE_UPDATE_FIELDS = {
    "classification": ("num_top_classes", "results_field", "top_classes_results_field",
                       "num_top_feature_importance_values", "prediction_field_type"),
    "regression": ("results_field", "num_top_feature_importance_values"),
}


def _tree_update_fields(name: str, inner: dict[str, Any]) -> None:
    """``<Type>ConfigUpdate.fromMap``: unknown keys are a 400 status_exception (regression names the
    whole map, classification the unknown keys), then a negative feature importance count."""
    unknown = [k for k in inner if k not in _TREE_UPDATE_FIELDS[name]]
    if unknown:
        shown = list(inner) if name == "regression" else unknown
        raise ApiError("status_exception", f"Unrecognized fields [{', '.join(shown)}].", 400)
    top = inner.get("num_top_feature_importance_values")
    if isinstance(top, int) and not isinstance(top, bool) and top < 0:
        raise ApiError("illegal_argument_exception",
                       "[num_top_feature_importance_values] must be greater than or equal to 0", 400)


#: NLP updates whose ``fromMap`` names every key of the map when one is unknown (it removes none first)
_WHOLE_MAP_UPDATES = ("zero_shot_classification", "question_answering", "text_similarity")


def _nlp_update_fields(name: str, inner: dict[str, Any]) -> None:
    """``<Task>ConfigUpdate.fromMap`` at the processor's creation: the fields an update of the task takes,
    and the question / text an update must give."""
    task = TASKS[name]
    allowed = {"results_field", "tokenization", *task.UPDATES}
    unknown = [k for k in inner if k not in allowed]
    if unknown:
        shown = list(inner) if name in _WHOLE_MAP_UPDATES else unknown
        raise ApiError("status_exception", f"Unrecognized fields [{', '.join(shown)}].", 400)
    if task.REQUIRED_UPDATE is not None and inner.get(task.REQUIRED_UPDATE) is None:
        raise ApiError("illegal_argument_exception", f"[{task.REQUIRED_UPDATE}] must not be null.", 400)


def _read_input_output(c: Conf) -> list[dict[str, str]] | None:
    raw = c.raw("input_output")
    if raw is None:
        return None
    if isinstance(raw, dict):
        items = [raw]
    elif isinstance(raw, list):
        if not all(isinstance(x, dict) for x in raw):
            raise c.error("input_output", "property isn't a list of maps")
        items = raw
    else:
        raise c.error("input_output", "property isn't a map or list of maps")
    if not items:
        raise c.error("input_output", "property cannot be empty at least one is required")
    out = []
    seen: dict[str, set[str]] = {"input_field": set(), "output_field": set()}
    for item in items:  # other keys of an entry are kept by ES (InputConfig's extra map) and unused
        sub = Conf(c.type, c.tag, dict(item))
        entry = {"input_field": sub.string("input_field"), "output_field": sub.string("output_field")}
        for key, names in seen.items():
            if entry[key] in names:
                raise c.error(key, f"names must be unique but [{entry[key]}] is repeated")
            names.add(entry[key])
        out.append(entry)
    return out


def split_output_path(path: str) -> tuple[str | None, str]:
    """ES ``extractBasePathAndFinalElement``: ``foo.bar.result`` -> (``foo.bar``, ``result``);
    ``result`` -> (None, ``result``)."""
    base, dot, last = path.rpartition(".")
    return (base, last) if dot else (None, path)


def input_config(entry: dict[str, str]) -> dict[str, str | None]:
    """One ``input_output`` entry as ES's ``InputConfig``: input field, output base path, final element."""
    base, last = split_output_path(entry["output_field"])
    return {"input_field": entry["input_field"], "output_base_path": base, "output_field": last}


class InferenceProcessor(Processor):
    type = "inference"

    def run_columns(self, batch: ColumnBatch, rows: np.ndarray, k: int) -> None:
        inference_columns(self, batch, rows, k)

    def declare_columns(self, doc: SymbolicDocument, partial: bool) -> None:
        inference_writes(doc, self, partial)

    def columns_take(self) -> bool:
        """Tree models column-at-a-time (others are handed off row by row): ``target_field`` only."""
        return self.inputs is None and plain_path(self.target_field)

    def __init__(self, c: Conf) -> None:
        super().__init__()
        self.model_id = c.string("model_id")
        raw = c.mapping("inference_config")
        self.update = parse_update(raw) if raw is not None else None
        self.inputs = _read_input_output(c)
        # ignore_missing is read in the input_output style only: with target_field it is an unknown option
        self.ignore_missing = c.boolean("ignore_missing", False) if self.inputs is not None else False
        if self.inputs is not None:
            if c.string("target_field", None) is not None:
                raise c.error("target_field", "option is incompatible with [input_output]. Use the [output_field] "
                              "option to specify where to write the inference results to.")
            if self.update is not None and next(iter(self.update.values())).get("results_field") is not None:
                raise c.error(None, "The [inference_config.results_field] setting is incompatible with using "
                              "[input_output]. Prefer to use the [input_output.output_field] option to specify where "
                              "to write the inference results to.")
            self.target_field: str | None = None
            self.field_map: dict[str, str] | None = None
        else:
            default = DEFAULT_TARGET_FIELD if c.tag is None else f"{DEFAULT_TARGET_FIELD}.{c.tag}"
            self.target_field = c.string("target_field", default)
            field_map = c.mapping("field_map")
            if field_map is None:  # the deprecated name is read only when field_map is not given
                field_map = c.mapping("field_mappings")
            if any(not isinstance(dest, str) for dest in (field_map or {}).values()):
                raise c.error("field_map", "property isn't a map of strings")  # each value names a field
            self.field_map = dict(field_map or {})

    # -- what the model sees / what gets written --------------------------------------------------
    def model_input(self, doc: Doc) -> dict[str, Any]:
        """``InferenceProcessor.buildRequest`` (before the field map): source, metadata, ``_ingest``."""
        fields = dict(doc.data)
        if doc.ingest:
            fields["_ingest"] = doc.ingest
        return fields

    def write(self, doc: Doc, result: dict[str, Any], model_id: str) -> None:
        """``InferenceResults.writeResult``: the result map plus ``model_id`` at ``target_field``, set or
        appended to a value already there."""
        value = dict(result)
        value["model_id"] = model_id
        assert self.target_field is not None
        doc.set(self.target_field, value, append=doc.has(self.target_field))

    def write_outputs(self, doc: Doc, outputs: list[dict[str, Any]], model_id: str) -> None:
        """``InferenceResults.writeResultToField`` for each ``input_output`` entry in order: entry i's
        result map (``asMap(outputField)``, keyed by the output's last element) under the output's base
        path, or at the document root without one, each key set or appended; ``model_id`` goes with the
        first entry's keys only."""
        assert self.inputs is not None
        for i, (entry, result) in enumerate(zip(self.inputs, outputs)):
            values = dict(result)
            if i == 0:
                values["model_id"] = model_id
            base, _leaf = split_output_path(entry["output_field"])
            for key, value in values.items():
                path = f"{base}.{key}" if base else key
                doc.set(path, value, append=doc.has(path))

    # -- batch execution ----------------------------------------------------------------------------
    def run_batch(self, docs: list[Doc], run: Run, pipeline_id: str | None) -> list[BaseException | None]:
        engine = run.engine
        if engine is None:
            return [ApiError("illegal_state_exception", "no engine to run models", 500)] * len(docs)

        try:
            kind = resolve(engine, self.model_id).kind
            if kind == "endpoint":  # an _inference endpoint (remote service or local model)
                return run_inference_processor(self, docs, engine, device=run.device)
            if kind == "nlp":  # pytorch models: through their deployment
                return run_nlp_batch(self, docs, engine, device=run.device)
        except ApiError as err:
            return [err] * len(docs)
        except Exception as exc:  # noqa: BLE001 - a model error fails these documents, never the caller
            return [as_api_error(exc)] * len(docs)
        try:
            model_id = engine.models.require(self.model_id)
            stored = engine.models.config(model_id)
            if self.inputs is not None:
                kind = stored.get("model_type", "tree_ensemble")
                raise ApiError("status_exception",
                               f"[input_output] is only supported for NLP models, but model [{model_id}] is of type "
                               f"[{kind}]; use [target_field] and [field_map] instead", 400)
            needed = runner.needed_fields(stored) + list((self.field_map or {}).keys())
            maps = [self.model_input(doc) for doc in docs]
            cols = columns_from_docs(maps, needed)
            result = runner.run_tree(engine, model_id, cols, len(docs), update=self.update, field_map=self.field_map,
                              device=run.device)
        except ApiError as err:
            return [err] * len(docs)
        except Exception as exc:  # noqa: BLE001 - a model error fails these documents, never the caller
            return [as_api_error(exc)] * len(docs)
        out: list[BaseException | None] = []
        for doc, res in zip(docs, render_per_document(result)):
            failure = document_failure(res)
            if failure is not None:
                out.append(failure)
                continue
            assert not isinstance(res, ApiError)
            try:
                self.write(doc, res, model_id)
                out.append(None)
            except ApiError as err:
                out.append(err)
        return out
