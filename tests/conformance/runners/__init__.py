"""File schema + case kind -> runner. Never a case id.

A file's schema is recognised from its ``schema`` text (the files of one schema share it), else
from its file name, else from the shape of its cases. Within a schema, the case's ``kind`` (or the
schema's default kind for cases without one) picks the function. A file of an unknown schema, or
a kind a known schema does not define, fails with the reason.
"""

from __future__ import annotations

from typing import Any, Callable

import pytest

from .compare import Mismatch
from . import inference_api, ml_inference, nlp, preprocessors, processor, rest, trees

Runner = Callable[[dict[str, Any], dict[str, Any]], None]

#: schema name -> (module with KINDS and default_kind(case), distinctive words of the schema text)
SCHEMAS: dict[str, tuple[Any, tuple[str, ...]]] = {
    "trees": (trees, ("full trained-model config", "kind=aggregator")),
    "preprocessors": (preprocessors, ("preprocessor = one ES preprocessor",)),
    "rest": (rest, ("YAML test section",)),
    "processor": (processor, ("kind=mutate_document",)),
    "ml_inference": (ml_inference, ("ml_inference processor", "ModelTensorOutput")),
    "inference_api": (inference_api, ("custom_render_request",)),
    "nlp": (nlp, ("bert_tokenize",)),
}


def _shape_schema(case: dict[str, Any]) -> str | None:
    """The schema one case's shape belongs to (used only when the file does not say)."""
    kind = case.get("kind")
    for name, (module, _) in SCHEMAS.items():
        if kind is not None and kind in module.KINDS:
            return name
    if kind is None:
        if "steps" in case:
            return "rest"
        if "preprocessor" in case or "preprocessors" in case:
            return "preprocessors"
        if isinstance(case.get("model"), dict):
            return "trees"
        if isinstance(case.get("processor"), dict) and "ml_inference" in case["processor"]:
            return "ml_inference"
    return None


def detect_schema(meta: dict[str, Any], cases: list[Any]) -> str | None:
    text = meta.get("schema")
    if isinstance(text, str):
        hits = [name for name, (_, words) in SCHEMAS.items() if any(w in text for w in words)]
        if len(hits) == 1:
            return hits[0]
    stem = meta.get("_stem")
    if stem in SCHEMAS:
        return stem
    shapes = {_shape_schema(c) if isinstance(c, dict) else None for c in cases}
    if len(shapes) == 1 and None not in shapes:
        return shapes.pop()
    return None


def run_case(case: Any, meta: dict[str, Any]) -> None:
    if "_load_error" in meta:
        pytest.fail(f"case file {meta.get('_file')} could not be used: {meta['_load_error']}", pytrace=False)
    if not isinstance(case, dict):
        pytest.fail(f"case is not an object: {case!r}", pytrace=False)
    schema = meta.get("_schema")
    if schema not in SCHEMAS:
        pytest.fail(f"unknown schema in {meta.get('_file')}: {str(meta.get('schema'))[:80]!r}", pytrace=False)
    module = SCHEMAS[schema][0]
    kind = case.get("kind") or module.default_kind(case)
    runner = module.KINDS.get(kind)
    if runner is None:
        pytest.fail(f"unknown case kind {kind!r} for schema {schema}", pytrace=False)
    try:
        runner(case, meta)
    except Mismatch as exc:  # the collected difference, without a harness traceback
        pytest.fail(str(exc), pytrace=False)
