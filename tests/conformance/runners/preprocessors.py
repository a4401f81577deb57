"""preprocessors.json: ``es_infer_nb.models.tree.preprocessors``, one flat document at a time.

``parse_preprocessors([case["preprocessor"]])`` (or ``case["preprocessors"]`` for a chain), then
``apply_to_doc(ps, input)``:

* ``expected_fields``: each holds afterwards (tolerance); every other input field is untouched;
* ``expected_absent_fields``: not present afterwards;
* ``expected_unchanged``: the output equals the input;
* ``expected_input_fields`` == ``ps[0].input_fields()``; ``expected_output_fields_in_order`` ==
  ``ps[0].output_fields()``; ``expected_output_fields_any_order`` the same as sets;
* ``expected_output_field_types``: ``ps[0].output_field_type(name)`` for each listed output;
* ``expected_reverse_lookup_entries``: entries that ``ps[0].reverse_lookup()`` (processed feature ->
  original field) must hold (upstream ``hasEntry``); ``expected_reverse_lookup_error``: calling it
  raises that error (``{type, reason?}``, as ``expected_error``);
* ``expected_roundtrip_same_fields``: ``parse_preprocessors([ps[0].to_dict()])[0]`` has the same
  ``input_fields()`` and ``output_fields()``, in the same order.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from .compare import MISSING, Diff
from .support import check_exception, hook, tolerance

MODULE = "es_infer_nb.models.tree.preprocessors"
EXPECTATIONS = ("expected_fields", "expected_absent_fields", "expected_unchanged", "expected_input_fields",
                "expected_output_fields_in_order", "expected_output_fields_any_order", "expected_output_field_types",
                "expected_reverse_lookup_entries", "expected_reverse_lookup_error", "expected_roundtrip_same_fields")


def run(case: dict[str, Any], meta: dict[str, Any]) -> None:
    parse = hook(MODULE, "parse_preprocessors")
    apply = hook(MODULE, "apply_to_doc")
    if not any(k in case for k in EXPECTATIONS):
        pytest.fail("case has no expectation the harness knows", pytrace=False)
    tol = tolerance(case)
    diff = Diff()
    configs = [case["preprocessor"]] if "preprocessor" in case else case.get("preprocessors")
    pres = parse(copy.deepcopy(configs))
    doc = case.get("input")
    wants_doc = any(k in case for k in ("expected_fields", "expected_absent_fields", "expected_unchanged"))
    if wants_doc:
        if not isinstance(doc, dict):
            pytest.fail("case expects document fields but has no input document", pytrace=False)
        out = apply(pres, copy.deepcopy(doc))
        expected_fields = case.get("expected_fields") or {}
        for key, want in expected_fields.items():
            diff.check(out.get(key, MISSING), want, tol, key)
        for key, value in doc.items():  # "other fields untouched"
            if key not in expected_fields:
                diff.check(out.get(key, MISSING), value, 0.0, f"{key} (input field, must be untouched)")
        for key in case.get("expected_absent_fields") or []:
            if key in out:
                diff.add(f"{key}: expected absent, got {out[key]!r}")
        if case.get("expected_unchanged"):
            diff.check(out, doc, 0.0, "document (expected unchanged)", full=True)
    first = pres[0] if pres else None
    if "expected_input_fields" in case:
        diff.check(list(first.input_fields()), case["expected_input_fields"], 0.0, "input_fields()")
    if "expected_output_fields_in_order" in case:
        diff.check(list(first.output_fields()), case["expected_output_fields_in_order"], 0.0, "output_fields()")
    if "expected_output_fields_any_order" in case:
        got = list(first.output_fields())
        want = case["expected_output_fields_any_order"]
        if sorted(got) != sorted(want) or len(set(got)) != len(got):
            diff.add(f"output_fields() (any order): expected {sorted(want)}, got {sorted(got)}")
    for name, want in (case.get("expected_output_field_types") or {}).items():
        diff.check(first.output_field_type(name), want, 0.0, f"output_field_type({name!r})")
    if "expected_reverse_lookup_entries" in case:
        lookup = first.reverse_lookup()
        for name, want in case["expected_reverse_lookup_entries"].items():
            diff.check(lookup.get(name, MISSING), want, 0.0, f"reverse_lookup()[{name!r}]")
    if "expected_reverse_lookup_error" in case:
        raised: BaseException | None = None
        try:
            first.reverse_lookup()
        except Exception as exc:  # noqa: BLE001 - the error is what the case checks
            raised = exc
        check_exception(diff, raised, case["expected_reverse_lookup_error"], "reverse_lookup() error")
    if case.get("expected_roundtrip_same_fields"):
        again = parse([first.to_dict()])[0]
        diff.check(list(again.input_fields()), list(first.input_fields()), 0.0, "input_fields() after round trip")
        diff.check(list(again.output_fields()), list(first.output_fields()), 0.0, "output_fields() after round trip")
    diff.done()


KINDS = {"preprocess": run}


def default_kind(case: dict[str, Any]) -> str:
    return "preprocess"
