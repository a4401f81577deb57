"""processor.json: the Elasticsearch ``inference`` ingest processor.

* ``simulate`` (REST): the case's ``models`` are PUT, then ``POST _ingest/pipeline/_simulate``
  with its pipeline and docs. ``expected_response_contains`` are substrings of the compact JSON
  answer (doubles written as Java does), ``expected_fields`` / ``derived_expected_fields`` dotted
  paths in the answer.
* ``processor_config`` (REST): an expected error is checked on ``PUT _ingest/pipeline/<id>`` with
  the processor; ``expected_ok`` needs the PUT to succeed and the parsed options from the adapter.
  Optional set-up first: ``cluster_settings`` (a ``PUT _cluster/settings`` body) and
  ``existing_pipelines`` (``{id: pipeline body}``, each PUT and required to succeed).
* ``mutate_document``, ``build_request``, ``field_map_apply``, ``result_serialization``,
  ``processor_config`` (parsed options): adapter functions of the same names in
  ``hooks_ingest`` (next to this module) (see ``adapters.py`` for the contract):

  - ``mutate_document(processor, model_result, input_doc, resolved_model_id) -> document``
    (``_source`` afterwards; ``resolved_model_id``: the model id the inference response names, for
    a processor configured with an alias; None = the processor's own ``model_id``)
  - ``build_request(processor, input_doc, ingest_metadata) -> map sent to the model``
  - ``field_map_apply(field_map, input_fields) -> fields afterwards``
  - ``result_serialization(model_result, config) -> compact JSON text (or the object)``
  - ``processor_config(processor) -> {configured_with_input_fields, model_id, target_field,
    inputs, field_map, input_configs}`` (``input_configs``: the ``input_output`` entries as ES's
    ``InputConfig``: ``input_field``, ``output_base_path``, ``output_field`` = last path element)
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from .adapters import check_answer
from .compare import MISSING, Diff, java_json, path_get
from .support import check_error, engine, hook, route_missing, tolerance

HOOKS = f"{__package__}.hooks_ingest"
SIMULATE = "_ingest/pipeline/_simulate"


def _hook(name: str) -> Any:
    return hook(HOOKS, name)


def run_simulate(case: dict[str, Any], meta: dict[str, Any]) -> None:
    tol = tolerance(case)
    diff = Diff()
    eng = engine()
    models = case.get("models") or {}
    if isinstance(models, list):
        models = {m.get("model_id"): m for m in models}
    for model_id, config in models.items():
        body = {k: v for k, v in copy.deepcopy(config).items() if k != "model_id"}
        resp = eng.request("PUT", f"_ml/trained_models/{model_id}", body)
        if resp.status != 200:
            diff.add(f"PUT model {model_id}: HTTP {resp.status}: {resp.body}")
    resp = eng.request("POST", SIMULATE, {"pipeline": case.get("pipeline"), "docs": case.get("docs")})
    if route_missing(resp):
        pytest.fail(f"the engine has no route POST {SIMULATE}: {resp.body}", pytrace=False)
    text = java_json(resp.body)
    contains = case.get("expected_response_contains") or []
    if resp.status != 200:
        diff.add(f"_simulate: HTTP {resp.status}: {text[:500]}")
    else:
        for piece in contains:
            if piece not in text:
                diff.add(f"response does not contain {piece}")
        for key in ("expected_fields", "derived_expected_fields"):
            for path, want in (case.get(key) or {}).items():
                diff.check(path_get(resp.body, path), want, tol, f"{key}: {path}")
        if diff:
            diff.note(f"response: {text[:800]}")
    diff.done()


def run_processor_config(case: dict[str, Any], meta: dict[str, Any]) -> None:
    diff = Diff()
    eng = engine()
    processor = case.get("processor")
    if "cluster_settings" in case:
        resp = eng.request("PUT", "_cluster/settings", copy.deepcopy(case["cluster_settings"]))
        if resp.status != 200:
            pytest.fail(f"set-up PUT _cluster/settings: HTTP {resp.status}: {resp.body}", pytrace=False)
    for pid, body in (case.get("existing_pipelines") or {}).items():
        resp = eng.request("PUT", f"_ingest/pipeline/{pid}", copy.deepcopy(body))
        if resp.status != 200:
            pytest.fail(f"set-up PUT pipeline {pid}: HTTP {resp.status}: {resp.body}", pytrace=False)
    resp = eng.request("PUT", "_ingest/pipeline/conformance-processor-config", {"processors": [processor]})
    if "expected_error" in case:
        check_error(diff, resp, case["expected_error"], "PUT pipeline error")
        diff.done()
        return
    if "expected_ok" not in case:
        pytest.fail("processor_config case with neither expected_error nor expected_ok", pytrace=False)
    if resp.status != 200:
        diff.add(f"PUT pipeline: expected 200, got {resp.status}: {resp.body}")
    check_answer(diff, _hook("processor_config")(processor=copy.deepcopy(processor)), case["expected_ok"], 0.0, "expected_ok", {})
    diff.done()


def run_mutate_document(case: dict[str, Any], meta: dict[str, Any]) -> None:
    hook = _hook("mutate_document")
    tol = tolerance(case)
    diff = Diff()
    doc = hook(processor=copy.deepcopy(case.get("processor")), model_result=copy.deepcopy(case.get("model_result")),
               input_doc=copy.deepcopy(case.get("input_doc") or {}), resolved_model_id=case.get("resolved_model_id"))
    for path, want in (case.get("expected_fields") or {}).items():
        diff.check(path_get(doc, path), want, tol, path)
    for path in case.get("expected_absent_fields") or []:
        if path_get(doc, path) is not MISSING:
            diff.add(f"{path}: expected absent, got {path_get(doc, path)!r}")
    for path, length in (case.get("expected_list_lengths") or {}).items():
        value = path_get(doc, path)
        if not isinstance(value, list) or len(value) != length:
            diff.add(f"{path}: expected a list of {length}, got {value if value is not MISSING else '<missing>'!r}")
    diff.done()


def run_build_request(case: dict[str, Any], meta: dict[str, Any]) -> None:
    hook = _hook("build_request")
    diff = Diff()
    sent = hook(processor=copy.deepcopy(case.get("processor")), input_doc=copy.deepcopy(case.get("input_doc") or {}),
                ingest_metadata=copy.deepcopy(case.get("ingest_metadata") or {}))
    diff.check(sent, case["expected_object_to_infer"], tolerance(case), "object_to_infer", full=True)
    diff.done()


def run_field_map_apply(case: dict[str, Any], meta: dict[str, Any]) -> None:
    hook = _hook("field_map_apply")
    diff = Diff()
    fields = hook(field_map=copy.deepcopy(case.get("field_map")), input_fields=copy.deepcopy(case.get("input_fields")))
    diff.check(fields, case["expected_fields"], tolerance(case), "fields", full=True)
    diff.done()


def run_result_serialization(case: dict[str, Any], meta: dict[str, Any]) -> None:
    hook = _hook("result_serialization")
    diff = Diff()
    out = hook(model_result=copy.deepcopy(case.get("model_result")), config=copy.deepcopy(case.get("config")))
    text = out if isinstance(out, str) else java_json(out)
    diff.check(text, case["expected_json"], 0.0, "json")
    diff.done()


KINDS = {
    "simulate": run_simulate,
    "processor_config": run_processor_config,
    "mutate_document": run_mutate_document,
    "build_request": run_build_request,
    "field_map_apply": run_field_map_apply,
    "result_serialization": run_result_serialization,
}


def default_kind(case: dict[str, Any]) -> str | None:
    return None
