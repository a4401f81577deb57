"""The result columns a run over a frame writes, per backend kind, declared from the stored configs
(no model runs): Dask needs every partition's columns up front, and ``es-infer run`` every batch's.

The dtypes come from the pandas path's own renderers run on a stand-in result of the right shape:

* tree models: the inference config (after the call's update) names the result fields, the
  definition gives the class labels; :meth:`TreeBatchResult.to_columns` runs on zero rows;
* pytorch (NLP) models: the task (after the update) gives the keys of a result and their shapes
  (``text_embedding``: one vector of ``embedding_size``; ``text_classification``: the label,
  ``top_classes`` when asked, ``prediction_probability``; ...); :func:`docs_to_columns` renders one
  stand-in result, as ``df.infer.run`` renders the real ones. With ``input_output`` the keys are
  those :func:`~es_infer_nb.models.input_output.as_map` writes;
* ``_inference`` endpoints: the task type gives the value (a list or object for embeddings, text
  for completions), typed as pandas types the endpoint path's columns.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa

from ..errors import ApiError
from ..models.config import decompress_definition
from ..models.deployments import deployments
from ..models.doc_columns import column, docs_to_columns
from ..models.inference_config import ClassificationConfig, apply_update, parse_config
from ..models.input_output import as_map, beside, io_pairs, not_an_nlp_model, task_of
from ..models.nlp.tasks import parse_task
from ..models.results import TreeBatchResult, target_prefix
from ..models.tree.definition import parse_definition
from ..services.ingest_bridge import predicted_value

if TYPE_CHECKING:  # pragma: no cover
    from ..engine import Engine

STRING = pd.ArrowDtype(pa.string())


def _importance_type(classification: bool, label: pa.DataType) -> pa.DataType:
    if not classification:
        return pa.list_(pa.struct([("feature_name", pa.string()), ("importance", pa.float64())]))
    classes = pa.list_(pa.struct([("class_name", label), ("importance", pa.float64())]))
    return pa.list_(pa.struct([("feature_name", pa.string()), ("classes", classes)]))


def stored_config(engine: "Engine", model_id: str) -> tuple[str, dict[str, Any]]:
    """The model id (for a model id, alias or deployment id) and its stored config."""
    concrete = deployments(engine).require_model_id(model_id)
    return concrete, engine.models.config(concrete)


def tree_config(engine: "Engine", model_id: str, update: Any = None) -> tuple[str, Any, list[str] | None]:
    """A tree model's concrete id, inference config after ``update`` and class labels (from its definition)."""
    concrete, stored = stored_config(engine, model_id)
    if stored.get("model_type", "tree_ensemble") != "tree_ensemble":
        raise ApiError("illegal_argument_exception",
                       f"the result columns of [{stored.get('model_type')}] model [{model_id}] are not known before it "
                       "runs; pass meta={column: dtype} to ddf.infer.run", 400)
    config = apply_update(concrete, parse_config(stored["inference_config"]), update)
    raw = stored.get("definition")
    definition = parse_definition(raw if raw is not None else decompress_definition(stored["compressed_definition"]))
    return concrete, config, definition.classification_labels


def model_columns(engine: "Engine", model_id: str, inference_config: Any = None,
                  target_field: str | None = None) -> dict[str, Any]:
    """``{column: dtype}`` of a tree model's ``df.infer.run(model_id, ...)`` result columns, in the
    pandas path's order."""
    concrete, config, labels = tree_config(engine, model_id, inference_config)
    classification = isinstance(config, ClassificationConfig)
    n_classes = len(labels) if labels else 2
    result = TreeBatchResult(
        model_id=concrete, config=config, values=np.zeros(0),
        probabilities=np.zeros((0, n_classes)) if classification else None,
        warning=np.zeros(0, dtype=bool), errors=[], labels=labels,
        importance=np.zeros((0, 1, 1)) if config.num_top_feature_importance_values else None,
        importance_names=[] if config.num_top_feature_importance_values else None,
    )
    prefix = target_prefix(target_field)
    cols = result.to_columns(prefix, pd.RangeIndex(0))
    dot = f"{prefix}." if prefix else ""
    out: dict[str, Any] = {}
    for name, series in cols.items():
        if name == dot + "model_id":
            out[dot + "warning"] = STRING
            out[dot + "error"] = STRING
        out[name] = series.dtype
    if dot + "feature_importance" in out:
        label = cols[dot + config.results_field].dtype.pyarrow_dtype if classification else pa.string()
        out[dot + "feature_importance"] = pd.ArrowDtype(_importance_type(classification, label))
    return out


#: the stand-in of each class list entry (``top_classes``) of classification-like NLP results
_CLASS = {"class_name": "", "class_probability": 0.0, "class_score": 0.0}
#: the stand-in result of each NLP task, keyed as the task writes them; ``{rf}`` is the results field
_NLP_RESULTS: dict[str, Any] = {
    "pass_through": lambda rf, k: {rf: [[0.0]]},
    "text_expansion": lambda rf, k: {rf: {"": 0.0}},
    "text_classification": lambda rf, k: {rf: "", **({"top_classes": [_CLASS]} if k else {}),
                                          "prediction_probability": 0.0},
    "zero_shot_classification": lambda rf, k: {rf: "", "top_classes": [_CLASS], "prediction_probability": 0.0},
    "ner": lambda rf, k: {rf: "", "entities": [{"entity": "", "class_name": "", "class_probability": 0.0,
                                                 "start_pos": 0, "end_pos": 0}]},
    "fill_mask": lambda rf, k: {rf: "", **({"top_classes": [_CLASS]} if k else {}), "prediction_probability": 0.0,
                                f"{rf}_sequence": ""},
    "question_answering": lambda rf, k: {
        rf: "", "start_offset": 0, "end_offset": 0,
        **({"top_classes": [{"answer": "", "score": 0.0, "start_offset": 0, "end_offset": 0}]} if k > 0 else {}),
        "prediction_probability": 0.0},
    "text_similarity": lambda rf, k: {rf: 0.0},
}
#: an embedding whose size the config does not give: a variable-size list of the same floats
VECTOR = pd.ArrowDtype(pa.list_(pa.float32()))


def nlp_result(stored: dict[str, Any], update: Any) -> tuple[dict[str, Any], bool]:
    """A stand-in result of the model's task after the call's update (as the model would write one
    that was truncated), and whether its vector size is unknown."""
    task = parse_task(stored.get("inference_config") or {})
    if isinstance(update, dict) and len(update) == 1 and next(iter(update)) == task.NAME:
        task = task.updated(next(iter(update.values())) or {})  # a wrong update fails here as in the model
    rf = task.results_field
    if task.NAME == "text_embedding":
        size = task.options.get("embedding_size")
        result: dict[str, Any] = {rf: [0.0] * int(size or 1)}
    else:
        result = _NLP_RESULTS[task.NAME](rf, int(task.options.get("num_top_classes", 0) or 0))
    result["is_truncated"] = True
    return result, task.NAME == "text_embedding" and not task.options.get("embedding_size")


def _dtypes(columns: dict[str, pd.Series], vector_size_unknown: bool) -> dict[str, Any]:
    """The columns' dtypes; a fixed-size vector is :data:`VECTOR` when its size is not known."""
    out: dict[str, Any] = {}
    for name, series in columns.items():
        arrow = getattr(series.dtype, "pyarrow_dtype", None)
        unknown = vector_size_unknown and arrow is not None and pa.types.is_fixed_size_list(arrow)
        out[name] = VECTOR if unknown else series.dtype
    return out


def nlp_columns(engine: "Engine", model_id: str, inference_config: Any = None,
                target_field: str | None = None) -> dict[str, Any]:
    """``{column: dtype}`` of a pytorch model's ``df.infer.run`` result columns: the task's result keys,
    ``is_truncated``, ``error`` and ``model_id`` under the target field. A ``text_embedding`` vector is
    ``fixed_size_list<float32>[embedding_size]`` as the pandas path types it when the config gives
    ``embedding_size`` (the importer records it), else ``list<float32>`` (:data:`VECTOR`)."""
    concrete, stored = stored_config(engine, model_id)
    result, unknown = nlp_result(stored, inference_config)
    target = target_prefix(target_field)
    return _dtypes(docs_to_columns([{**result, "error": ""}], target, pd.RangeIndex(1), concrete), unknown)


def input_output_columns(engine: "Engine", model_id: str, input_output: Any,
                         inference_config: Any = None) -> dict[str, Any]:
    """``{column: dtype}`` of ``df.infer.run(model_id, input_output=...)`` on a pytorch model: per pair,
    what :func:`~es_infer_nb.models.input_output.as_map` writes under the output field's base path,
    ``<output_field>.error``, and ``model_id`` beside the first."""
    _, stored = stored_config(engine, model_id)
    if stored.get("model_type", "tree_ensemble") != "pytorch":
        raise not_an_nlp_model(model_id)
    result, unknown = nlp_result(stored, inference_config)
    task, results_field = task_of(stored)
    one = pd.RangeIndex(1)
    cols: dict[str, pd.Series] = {}
    for i, pair in enumerate(io_pairs(input_output)):
        for key, value in as_map(task, result, pair["output_field"], results_field).items():
            cols[beside(pair["output_field"], key)] = column([value], one)
        cols[f"{pair['output_field']}.error"] = column([""], one)
        if i == 0:
            cols[beside(pair["output_field"], "model_id")] = column([model_id], one)
    return _dtypes(cols, unknown)


def endpoint_columns(engine: "Engine", inference_id: str, input_output: Any = None,
                     target_field: str | None = None) -> dict[str, Any]:
    """``{column: dtype}`` of ``df.infer.run(<inference_id>)``: per output field its value (as pandas types
    the endpoint's results: ``object`` for embeddings, text for completions), ``.error``, and
    ``model_id`` beside the first. A ``custom`` endpoint's value is ``object``."""
    entry = endpoint_entry(engine, inference_id)  # a stand-in entry of the task type; None for ``custom``
    if input_output is not None:
        outputs = [pair["output_field"] for pair in io_pairs(input_output)]
    else:
        outputs = [f"{target_prefix(target_field)}.predicted_value"]
    value = None if entry is None else predicted_value(entry)
    typed = pd.DataFrame({"value": [value], "text": [inference_id]}).dtypes
    out: dict[str, Any] = {}
    for i, name in enumerate(outputs):
        out[name] = typed["value"] if value is not None else np.dtype(object)
        if i == 0:
            out[beside(name, "model_id")] = typed["text"]
        out[f"{name}.error"] = typed["text"]
    return out


#: a stand-in result entry of each ``_inference`` task type (``custom``: unknown)
ENDPOINT_ENTRIES: dict[str, dict[str, Any]] = {
    "text_embedding": {"embedding": [0.0]},
    "sparse_embedding": {"is_truncated": False, "embedding": {"": 0.0}},
    "completion": {"result": ""},
    "rerank": {"index": 0, "relevance_score": 0.0},
}


def endpoint_entry(engine: "Engine", inference_id: str) -> dict[str, Any] | None:
    task_type = (engine.inference_endpoints.get(inference_id) or {}).get("task_type")
    return ENDPOINT_ENTRIES.get(task_type)
