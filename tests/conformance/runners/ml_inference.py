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
"""

from __future__ import annotations

import copy
import json
import struct
from typing import Any

import pytest

from .compare import Diff
from .support import check_exception, hook, tolerance

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


KINDS = {
    "process": run_process,
    "jsonpath_read": run_jsonpath_read,
    "parse_tensor_data": run_parse_tensor_data,
    "write_new_dot_path": run_write_new_dot_path,
    "factory": run_factory,
}


def default_kind(case: dict[str, Any]) -> str:
    return "process"
