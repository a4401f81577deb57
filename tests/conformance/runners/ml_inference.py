"""ml_inference.json: the OpenSearch ``ml_inference`` ingest processor (issue 5).

Adapter functions in ``es_infer_nb.ingest.conformance`` (see ``adapters.py``):

* cases without ``kind``: ``ml_inference_process(processor, input_doc, predict) -> document``.
  ``predict(parameters)`` stands for the model: it records the parameter map the processor sends
  and returns the case's ``mocked_model_output`` (the ModelTensorOutput JSON), or raises
  ``RuntimeError(mocked_model_failure)``. Compared: ``expected_doc`` (the whole ``_source``),
  ``expected_model_parameters`` / ``expected_model_parameters_json`` (the map sent), and
  ``expected_error.message`` (raised) / ``expected_no_error``. A case with ``input_ingest_metadata``
  runs ``ml_inference_process_ingest(processor, input_doc, ingest_metadata, predict) -> {"source",
  "ingest"}`` instead, and may also expect ``expected_ingest_metadata`` (the whole ``_ingest`` map).
* ``jsonpath_read(input_doc, path_expr) -> value``; ``parse_tensor_data(tensor) -> list``
  (``expected_value_type: float32`` = values rounded to float32); ``write_new_dot_path(input_doc,
  path) -> list of concrete paths`` per run; ``ml_inference_factory(processor) -> processor type``
  (an invalid config raises).
* ``pipeline_with_remote_model`` / ``pipeline_with_local_model`` (the REST ITs): the whole flow through
  ``Engine.request`` on a fresh engine, nothing mocked inside the product. A remote case starts a
  loopback service on 127.0.0.1 that answers every call with ``mocked_service_response`` (the raw
  JSON of the third-party service, e.g. OpenAI's ``/v1/embeddings``), creates ``connector`` (every
  ``${loopback}`` in it is the service's URL), registers and deploys a ``remote`` model on it; a
  local case registers ``register_model`` (a pretrained name es_infer_nb carries) and deploys it.
  Then ``PUT _ingest/pipeline/<pipeline_id>`` with ``pipeline`` (every ``${model_id}`` is the model's
  id) and ``POST .../_simulate`` with ``docs``. Compared: ``expected_sources`` (each answered doc's
  whole ``_source``), ``expected_lengths`` ({dotted path into the list of answered ``_source``s:
  length}), ``expected_service_requests`` (the JSON bodies the service received, in order; or
  ``expected_service_requests_any_order``: the same bodies in whatever order they arrived, for calls
  that es_infer_nb makes side by side, e.g. a ``foreach`` over a remote model),
  ``expected_reference_embeddings`` ([{path, text}]: the value at ``path`` equals the
  ``sentence_embedding`` that a plain (symmetric) registration of the same pretrained model
  answers through the Predict API for ``text``; float32 tolerance).
"""

from __future__ import annotations

import copy
import json
import struct
from typing import Any

import pytest

from .compare import MISSING, Diff, path_get
from .support import check_exception, engine, hook, tolerance

HOOKS = f"{__package__}.hooks_ingest"


def _hook(name: str) -> Any:
    return hook(HOOKS, name)


def _error_expectation(case: dict[str, Any]) -> dict[str, Any]:
    expected = dict(case["expected_error"])
    if "message" in expected and "reason" not in expected:
        expected["reason"] = expected.pop("message")
    expected.pop("handler_doc_is_null", None)
    return expected


def run_process(case: dict[str, Any], meta: dict[str, Any]) -> None:
    with_ingest = "input_ingest_metadata" in case or "expected_ingest_metadata" in case
    hook = _hook("ml_inference_process_ingest" if with_ingest else "ml_inference_process")
    tol = tolerance(case)
    diff = Diff()
    sent: list[Any] = []

    def predict(parameters: Any) -> Any:
        sent.append(copy.deepcopy(parameters))
        if case.get("mocked_model_failure"):
            raise RuntimeError(case["mocked_model_failure"])
        return copy.deepcopy(case.get("mocked_model_output"))

    extra = {"ingest_metadata": copy.deepcopy(case.get("input_ingest_metadata"))} if with_ingest else {}
    try:
        doc = hook(processor=copy.deepcopy(case["processor"]), input_doc=copy.deepcopy(case.get("input_doc")),
                   predict=predict, **extra)
    except Exception as exc:  # noqa: BLE001 - compared with the case's expected error
        if "expected_error" not in case:
            pytest.fail(f"ml_inference_process raised {type(exc).__name__}: {exc}", pytrace=False)
        check_exception(diff, exc, _error_expectation(case))
        diff.done()
        return
    if "expected_error" in case:
        diff.add(f"expected error {case['expected_error']}, got document {doc!r}"[:600])
    ingest = None
    if with_ingest:
        doc, ingest = doc["source"], doc["ingest"]
    if "expected_doc" in case:
        diff.check(doc, case["expected_doc"], tol, "doc", full=True)
    if "expected_ingest_metadata" in case:
        diff.check(ingest, case["expected_ingest_metadata"], tol, "ingest metadata", full=True)
    for key in ("expected_model_parameters", "expected_model_parameters_json"):
        if key in case:
            want = json.loads(case[key]) if key.endswith("_json") else case[key]
            if not sent:
                diff.add(f"{key}: the model was never called")
            else:
                diff.check(sent[0], want, tol, key, full=True)
    if not any(k in case for k in ("expected_doc", "expected_ingest_metadata", "expected_error", "expected_no_error",
                                   "expected_model_parameters",
                                   "expected_model_parameters_json")):
        diff.add("case has no expectation the harness knows")
    diff.done()


def run_jsonpath_read(case: dict[str, Any], meta: dict[str, Any]) -> None:
    hook = _hook("jsonpath_read")
    diff = Diff()
    diff.check(hook(input_doc=copy.deepcopy(case.get("input_doc")), path_expr=case["path_expr"]),
               case["expected_value"], tolerance(case), "value")
    diff.done()


def _float32(value: Any) -> Any:
    if isinstance(value, list):
        return [_float32(v) for v in value]
    return struct.unpack("f", struct.pack("f", value))[0] if isinstance(value, float) else value


def run_parse_tensor_data(case: dict[str, Any], meta: dict[str, Any]) -> None:
    hook = _hook("parse_tensor_data")
    diff = Diff()
    want = case["expected_value"]
    if case.get("expected_value_type") == "float32":
        want = _float32(want)
    diff.check(hook(tensor=copy.deepcopy(case["tensor"])), want, tolerance(case), "value")
    diff.done()


def run_write_new_dot_path(case: dict[str, Any], meta: dict[str, Any]) -> None:
    hook = _hook("write_new_dot_path")
    diff = Diff()
    for i, run in enumerate(case.get("runs") or []):
        got = hook(input_doc=copy.deepcopy(case.get("input_doc")), path=run["path"])
        diff.check(got, run["expected"], 0.0, f"runs[{i}] {run['path']}")
    diff.done()


def run_factory(case: dict[str, Any], meta: dict[str, Any]) -> None:
    hook = _hook("ml_inference_factory")
    diff = Diff()
    try:
        made = hook(processor=copy.deepcopy(case["processor"]))
    except Exception as exc:  # noqa: BLE001 - compared with the case's expected error
        if "expected_error" not in case:
            pytest.fail(f"ml_inference_factory raised {type(exc).__name__}: {exc}", pytrace=False)
        check_exception(diff, exc, _error_expectation(case))
        diff.done()
        return
    if "expected_error" in case:
        diff.add(f"expected error {case['expected_error']}, the processor was created: {made!r}")
    if "expected_type" in case:
        diff.check(made, case["expected_type"], 0.0, "processor type")
    diff.done()


ML = "_plugins/_ml"


def _substitute(value: Any, name: str, text: str) -> Any:
    if isinstance(value, str):
        return value.replace("${" + name + "}", text)
    if isinstance(value, list):
        return [_substitute(v, name, text) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, name, text) for k, v in value.items()}
    return value


def _ok(eng: Any, method: str, path: str, body: Any = None) -> Any:
    resp = eng.request(method, path, body)
    if resp.status != 200:
        pytest.fail(f"{method} {path} answered {resp.status}: {json.dumps(resp.body)[:600]}", pytrace=False)
    return resp.body


def _local_model(eng: Any, body: dict[str, Any]) -> str:
    task = _ok(eng, "POST", f"{ML}/models/_register", body)["task_id"]
    model_id = _ok(eng, "GET", f"{ML}/tasks/{task}")["model_id"]
    _ok(eng, "POST", f"{ML}/models/{model_id}/_deploy")
    return model_id


def _run_pipeline(case: dict[str, Any], eng: Any, model_id: str) -> None:
    diff = Diff()
    tol = tolerance(case)
    pipeline_id = case.get("pipeline_id", "conformance_pipeline")
    _ok(eng, "PUT", f"_ingest/pipeline/{pipeline_id}", _substitute(copy.deepcopy(case["pipeline"]), "model_id", model_id))
    answer = _ok(eng, "POST", f"_ingest/pipeline/{pipeline_id}/_simulate", {"docs": copy.deepcopy(case["docs"])})
    answered = answer.get("docs") or []
    sources = [(d.get("doc") or {}).get("_source") if "doc" in d else d for d in answered]
    if "expected_sources" in case:
        diff.check(sources, case["expected_sources"], tol, "_simulate sources", full=True)
    for path, length in (case.get("expected_lengths") or {}).items():
        got = path_get(sources, path)
        if got is MISSING or not isinstance(got, list) or len(got) != length:
            diff.add(f"length of {path}: expected {length}, got {'missing' if got is MISSING else got!r}"[:400])
    refs = case.get("expected_reference_embeddings") or []
    if refs:
        plain = _local_model(eng, {k: v for k, v in case["register_model"].items() if k != "model_config"})
        for ref in refs:
            want = _ok(eng, "POST", f"{ML}/_predict/text_embedding/{plain}", {"text_docs": [ref["text"]]})
            vector = want["inference_results"][0]["output"][0]["data"]
            diff.check(path_get(sources, ref["path"]), vector, max(tol, 1e-5), f"reference embedding {ref['path']}")
    if not any(k in case for k in ("expected_sources", "expected_lengths", "expected_reference_embeddings")):
        diff.add("case has no expectation the harness knows")
    diff.done()


def run_pipeline_with_remote_model(case: dict[str, Any], meta: dict[str, Any]) -> None:
    from es_infer_nb.services.loopback import LoopbackServer

    canned = case["mocked_service_response"]
    server = LoopbackServer(lambda req: (200, copy.deepcopy(canned))).start()
    try:
        eng = engine()
        connector = _substitute(copy.deepcopy(case["connector"]), "loopback", server.url)
        connector_id = _ok(eng, "POST", f"{ML}/connectors/_create", connector)["connector_id"]
        model_id = _ok(eng, "POST", f"{ML}/models/_register", {"name": case.get("model_name", "remote model"),
                                                                  "function_name": "remote",
                                                                  "connector_id": connector_id})["model_id"]
        _ok(eng, "POST", f"{ML}/models/{model_id}/_deploy")
        _run_pipeline(case, eng, model_id)
        received = [r.json() for r in server.received]
    finally:
        server.stop()
    if "expected_service_requests" in case or "expected_service_requests_any_order" in case:
        diff = Diff()
        if "expected_service_requests" in case:
            diff.check(received, case["expected_service_requests"], 0.0, "service requests", full=True)
        else:
            def canonical(bodies: list[Any]) -> list[Any]:
                return sorted(bodies, key=lambda body: json.dumps(body, sort_keys=True))

            diff.check(canonical(received), canonical(case["expected_service_requests_any_order"]), 0.0,
                       "service requests (any order)", full=True)
        diff.done()


def run_pipeline_with_local_model(case: dict[str, Any], meta: dict[str, Any]) -> None:
    eng = engine()
    _run_pipeline(case, eng, _local_model(eng, copy.deepcopy(case["register_model"])))


KINDS = {
    "process": run_process,
    "jsonpath_read": run_jsonpath_read,
    "parse_tensor_data": run_parse_tensor_data,
    "write_new_dot_path": run_write_new_dot_path,
    "factory": run_factory,
    "pipeline_with_remote_model": run_pipeline_with_remote_model,
    "pipeline_with_local_model": run_pipeline_with_local_model,
}


def default_kind(case: dict[str, Any]) -> str:
    return "process"
