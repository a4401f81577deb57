"""Hooks the conformance harness calls for processor.json and ml_inference.json cases.

``mutate_document`` and ``result_serialization`` cases hand over a finished upstream result object
(``model_result``, the fields of ``ClassificationInferenceResults`` & co.), not a model: it is built
as the product's own result object (:mod:`es_infer_nb.models.results`) and rendered by the same
``as_map`` that renders every ``_infer`` answer. Nothing here computes a result itself.
"""

from __future__ import annotations

import copy
from typing import Any

from es_infer_nb.models import inference_config as ic
from es_infer_nb.models.results import ClassificationResult, RegressionResult, error_result, warning_result
from es_infer_nb.ingest.document import Doc, map_fields
from es_infer_nb.ingest.inference import InferenceProcessor, input_config
from es_infer_nb.ingest.pipeline import parse_processor


def _inference(processor: dict[str, Any]) -> InferenceProcessor:
    proc = parse_processor(copy.deepcopy(processor))
    if not isinstance(proc, InferenceProcessor):
        raise TypeError(f"expected an inference processor, got [{proc.type}]")
    return proc


def processor_config(processor: dict[str, Any]) -> dict[str, Any]:
    proc = _inference(processor)
    return {
        "configured_with_input_fields": proc.inputs is not None,
        "model_id": proc.model_id,
        "target_field": proc.target_field,
        "inputs": proc.inputs,
        "field_map": proc.field_map,
        "input_configs": None if proc.inputs is None else [input_config(e) for e in proc.inputs],
    }


def build_request(processor: dict[str, Any], input_doc: dict[str, Any], ingest_metadata: dict[str, Any]) -> dict[str, Any]:
    proc = _inference(processor)
    doc = Doc(copy.deepcopy(input_doc), copy.deepcopy(ingest_metadata or {}))
    return map_fields(proc.model_input(doc), proc.field_map)


def field_map_apply(field_map: dict[str, str], input_fields: dict[str, Any]) -> dict[str, Any]:
    return map_fields(dict(input_fields), field_map)


def result_map(model_result: dict[str, Any], processor_update: dict[str, Any] | None) -> dict[str, Any]:
    """The upstream result object (its fields as the case gives them) built as the product's result
    object and rendered by the product's renderer, the one ``_infer`` and the processors use."""
    kind = model_result.get("type")
    if kind == "warning":
        return warning_result(model_result.get("warning"))
    if kind == "error":
        return error_result(model_result.get("error"))
    config = ic.apply_update("conformance", ic.parse_config({kind: model_result.get("config") or {}}),
                             (processor_update or {}) if kind in (processor_update or {}) else None)
    if kind == "regression":
        return RegressionResult.create(model_result["value"], config,
                                       model_result.get("feature_importance")).as_map()
    return ClassificationResult.create(
        model_result["value"], model_result.get("classification_label"), config,
        top_classes=model_result.get("top_classes"), prediction_probability=model_result.get("prediction_probability"),
        prediction_score=model_result.get("prediction_score"),
        feature_importance=model_result.get("feature_importance"),
    ).as_map()


def output_map(model_result: dict[str, Any], processor_update: dict[str, Any] | None, output_field: str) -> dict[str, Any]:
    """``asMap(outputField)``: the result map with its value (the first key) under the output's last
    path element; a warning or error keeps its map."""
    rendered = result_map(model_result, processor_update)
    if model_result.get("type") in ("warning", "error"):
        return rendered
    first = next(iter(rendered))
    leaf = output_field.rpartition(".")[2]
    return {leaf if key == first else key: value for key, value in rendered.items()}


def mutate_document(processor: dict[str, Any], model_result: dict[str, Any] | list[dict[str, Any]],
                    input_doc: dict[str, Any], resolved_model_id: str | None = None) -> dict[str, Any]:
    """``mutateDocument``; for an ``input_output`` processor ``model_result`` is one result per entry
    (a list) or the first entry's result."""
    proc = _inference(processor)
    doc = Doc(copy.deepcopy(input_doc))
    model_id = resolved_model_id or proc.model_id
    if proc.inputs is not None:
        results = model_result if isinstance(model_result, list) else [model_result]
        proc.write_outputs(doc, [output_map(r, proc.update, io["output_field"])
                                 for io, r in zip(proc.inputs, results)], model_id)
    else:
        assert isinstance(model_result, dict)
        proc.write(doc, result_map(model_result, proc.update), model_id)
    return doc.source()


def result_serialization(model_result: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    return result_map(model_result, config)


# -- OpenSearch ml_inference ------------------------------------------------------------------------

def ml_inference_process(processor: dict[str, Any], input_doc: dict[str, Any] | None, predict: Any) -> dict[str, Any]:
    from es_infer_nb.ingest.ml_inference import create

    proc = create(processor)
    doc = Doc(data=copy.deepcopy(input_doc or {}))
    proc.process(doc, predict)
    return doc.source()


def ml_inference_process_ingest(processor: dict[str, Any], input_doc: dict[str, Any] | None,
                                ingest_metadata: dict[str, Any] | None, predict: Any) -> dict[str, Any]:
    """As ``ml_inference_process`` on a document with ingest metadata (``_ingest``, e.g. ``_value`` in a
    foreach): ``{"source", "ingest"}`` afterwards."""
    from es_infer_nb.ingest.ml_inference import create

    proc = create(processor)
    doc = Doc(data=copy.deepcopy(input_doc or {}), ingest=copy.deepcopy(ingest_metadata or {}))
    proc.process(doc, predict)
    return {"source": doc.source(), "ingest": doc.ingest}


def jsonpath_read(input_doc: Any, path_expr: str) -> Any:
    from es_infer_nb.ingest.ml_inference import json_path_read

    return json_path_read(input_doc, path_expr)


def parse_tensor_data(tensor: dict[str, Any]) -> Any:
    from es_infer_nb.ingest.ml_inference import parse_tensor_data as parse

    return parse(tensor)


def write_new_dot_path(input_doc: dict[str, Any], path: str) -> list[str]:
    from es_infer_nb.ingest.ml_inference import write_new_dot_path as expand

    return expand(input_doc or {}, path)


def ml_inference_factory(processor: dict[str, Any]) -> str:
    from es_infer_nb.ingest.ml_inference import create

    return create(processor).type
