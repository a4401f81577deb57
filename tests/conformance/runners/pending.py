"""Runners for behaviour that lands with later issues: they xfail with the reason until the module exists.

Each checks for the capability at run time (an importable module or a REST route that
answers), so the cases start running as soon as the feature lands.
"""

from __future__ import annotations

import importlib
from typing import Any

import pytest

NLP_KINDS = {
    "bert_tokenize", "ner_postprocess", "ner_config_validation", "ner_iob_map", "ner_group_tagged_tokens",
    "ner_annotated_text", "fill_mask_postprocess", "fill_mask_validate_input", "text_expansion_postprocess",
    "text_expansion_sanitize_vocab", "text_expansion_chunked", "text_classification_postprocess", "softmax",
    "top_k", "question_answering", "question_answering_top_scores", "nlp_build_request", "zero_shot_postprocess",
}


def _module(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def _conformance_entry(module_name: str, what: str, issue: int) -> Any:
    """The module's ``run_conformance_case(case)`` entry point, or an xfail naming what is missing."""
    module = _module(module_name)
    entry = getattr(module, "run_conformance_case", None) if module is not None else None
    if entry is None:
        pytest.xfail(f"not implemented yet: {what} (issue {issue})")
    return entry


def processor(case: dict[str, Any], meta: dict[str, Any]) -> None:
    _conformance_entry("es_infer_nb.ingest.conformance", "ES inference ingest processor", 5)(case)


def ml_inference(case: dict[str, Any], meta: dict[str, Any]) -> None:
    _conformance_entry("es_infer_nb.ingest.conformance", "OpenSearch ml_inference processor", 5)(case)


def inference_api(case: dict[str, Any], meta: dict[str, Any]) -> None:
    _conformance_entry("es_infer_nb.services.conformance", "_inference API custom service", 7)(case)


def nlp(case: dict[str, Any], meta: dict[str, Any]) -> None:
    _conformance_entry("es_infer_nb.models.nlp.conformance", "NLP tokenization and post-processing", 6)(case)
