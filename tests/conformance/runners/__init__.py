"""Case kind -> runner. Each runner drives the project's public surface and compares every expectation."""

from __future__ import annotations

from typing import Any, Callable

import pytest

from . import pending, preprocessors, rest, trees

TREE_KINDS = {"aggregator", "aggregator_compatibility", "to_double"}
PROCESSOR_KINDS = {"mutate_document", "build_request", "processor_config", "simulate", "field_map_apply",
                   "result_serialization"}
ML_INFERENCE_KINDS = {"jsonpath_read", "parse_tensor_data", "write_new_dot_path", "factory"}


def runner_for(case: dict[str, Any], meta: dict[str, Any]) -> Callable[[dict[str, Any], dict[str, Any]], None] | None:
    kind = case.get("kind")
    if "steps" in case:
        return rest.run
    if kind in TREE_KINDS or (kind is None and isinstance(case.get("model"), dict)):
        return trees.run
    if kind is None and ("preprocessor" in case or "preprocessors" in case):
        return preprocessors.run
    if kind in PROCESSOR_KINDS:
        return pending.processor
    if kind in ML_INFERENCE_KINDS or "mocked_model_output" in case or (
        kind is None and isinstance(case.get("processor"), dict) and "input_doc" in case
    ):
        return pending.ml_inference
    if isinstance(kind, str) and (kind.startswith("custom_") or kind == "json_path_extract"):
        return pending.inference_api
    if isinstance(kind, str) and kind in pending.NLP_KINDS or (isinstance(kind, str) and kind.split("_")[0] in
                                                                 {"ner", "fill", "text", "question", "zero"}):
        return pending.nlp
    return None


def run_case(case: dict[str, Any], meta: dict[str, Any]) -> None:
    runner = runner_for(case, meta)
    if runner is None:
        pytest.xfail(f"unknown case shape (kind={case.get('kind')!r}) in {meta.get('_stem')}: no runner maps it")
    runner(case, meta)
