"""Adapters the conformance harness calls for processor.json cases (see tests/conformance/runners/processor.py).

``mutate_document`` and ``result_serialization`` cases hand over a finished upstream result object
(``model_result``, the fields of ``ClassificationInferenceResults`` & co.), not a model; turning that
into the ES result map (``asMap``) is done here, for these cases only. Results of real models are
rendered by :meth:`es_infer_nb.models.results.TreeBatchResult.to_docs`.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

from ..models import inference_config as ic
from ..models.results import transform_label
from .document import Doc
from .inference import InferenceProcessor, map_fields
from .pipeline import parse_processor


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
    }


def build_request(processor: dict[str, Any], input_doc: dict[str, Any], ingest_metadata: dict[str, Any]) -> dict[str, Any]:
    proc = _inference(processor)
    doc = Doc(copy.deepcopy(input_doc), copy.deepcopy(ingest_metadata or {}))
    return map_fields(proc.model_input(doc), proc.field_map)


def field_map_apply(field_map: dict[str, str], input_fields: dict[str, Any]) -> dict[str, Any]:
    return map_fields(dict(input_fields), field_map)


def _config(update: dict[str, Any] | None, kind: str, extra: dict[str, Any] | None) -> Any:
    base: Any = ic.ClassificationConfig() if kind == "classification" else ic.RegressionConfig()
    for source in (extra, (update or {}).get(kind)):
        if source:
            fields = ic._fields(kind, {k: v for k, v in source.items() if v is not None})
            base = replace(base, **fields)
    return base


def _total_importance(entry: dict[str, Any]) -> float:
    if "classes" in entry:
        classes = entry.get("classes") or []
        if len(classes) == 2:
            return abs(classes[0]["importance"])
        return sum(abs(c["importance"]) for c in classes)
    return abs(entry.get("importance", 0.0))


def _top_importance(items: list[dict[str, Any]] | None, n: int) -> list[dict[str, Any]]:
    if not items or n <= 0:
        return []
    order = sorted(range(len(items)), key=lambda i: -_total_importance(items[i]))
    return [items[i] for i in order[:n]]


def result_map(model_result: dict[str, Any], update: dict[str, Any] | None) -> dict[str, Any]:
    """``InferenceResults.asMap`` of an upstream result object under the processor's config."""
    kind = model_result.get("type")
    if kind == "warning":
        return {"warning": model_result.get("warning")}
    if kind == "error":
        return {"error": model_result.get("error")}
    cfg = _config(update, kind, model_result.get("config"))
    if kind == "regression":
        out: dict[str, Any] = {cfg.results_field: float(model_result["value"])}
        fi = _top_importance(model_result.get("feature_importance"), cfg.num_top_feature_importance_values)
        if fi:
            out["feature_importance"] = fi
        return out
    out = {cfg.results_field: transform_label(model_result.get("classification_label"), float(model_result["value"]),
                                               cfg.prediction_field_type)}
    top = model_result.get("top_classes") or []
    if top:
        out[cfg.top_classes_results_field] = top
    out["prediction_probability"] = model_result.get("prediction_probability")
    out["prediction_score"] = model_result.get("prediction_score")
    fi = _top_importance(model_result.get("feature_importance"), cfg.num_top_feature_importance_values)
    if fi:
        out["feature_importance"] = fi
    return out


def mutate_document(processor: dict[str, Any], model_result: dict[str, Any], input_doc: dict[str, Any]) -> dict[str, Any]:
    proc = _inference(processor)
    doc = Doc(copy.deepcopy(input_doc))
    proc.write(doc, result_map(model_result, proc.update), proc.model_id)
    return doc.source()


def result_serialization(model_result: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    return result_map(model_result, config)


# -- OpenSearch ml_inference ------------------------------------------------------------------------

def ml_inference_process(processor: dict[str, Any], input_doc: dict[str, Any] | None, predict: Any) -> dict[str, Any]:
    from .ml_inference import create

    proc = create(processor)
    doc = Doc(data=copy.deepcopy(input_doc or {}))
    proc.process(doc, predict)
    return doc.source()


def jsonpath_read(input_doc: Any, path_expr: str) -> Any:
    from .ml_inference import json_path_read

    return json_path_read(input_doc, path_expr)


def parse_tensor_data(tensor: dict[str, Any]) -> Any:
    from .ml_inference import parse_tensor_data as parse

    return parse(tensor)


def write_new_dot_path(input_doc: dict[str, Any], path: str) -> list[str]:
    from .ml_inference import write_new_dot_path as expand

    return expand(input_doc or {}, path)


def ml_inference_factory(processor: dict[str, Any]) -> str:
    from .ml_inference import create

    return create(processor).type
