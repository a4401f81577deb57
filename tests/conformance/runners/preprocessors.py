"""preprocessors.json: the preprocessor module, one document at a time."""

from __future__ import annotations

from typing import Any

from .compare import close


def run(case: dict[str, Any], meta: dict[str, Any]) -> None:
    from es_infer_nb.models.tree.preprocessors import apply_to_doc, parse_preprocessors

    tol = float(case.get("tolerance", 0.0))
    configs = [case["preprocessor"]] if "preprocessor" in case else case["preprocessors"]
    pres = parse_preprocessors(configs)
    if case.get("input") is not None:
        out = apply_to_doc(pres, case["input"])
        for key, want in (case.get("expected_fields") or {}).items():
            assert key in out, f"{key} not written; got {sorted(out)}"
            close(out[key], want, tol, key)
        for key in case.get("expected_absent_fields") or []:
            assert key not in out, f"{key} should be absent"
        if case.get("expected_unchanged"):
            assert out == case["input"], f"document changed: {out}"
    if "expected_input_fields" in case:
        assert pres[0].input_fields() == case["expected_input_fields"]
    if "expected_output_fields_in_order" in case:
        assert pres[0].output_fields() == case["expected_output_fields_in_order"]
    if "expected_output_fields_any_order" in case:
        assert sorted(pres[0].output_fields()) == sorted(case["expected_output_fields_any_order"])
