"""Cases of features without a REST surface yet, driven through adapter functions.

Contract for the module that will own a feature: an adapter module (e.g.
``es_infer_nb.models.nlp.conformance``) defines one function per case kind, named like the kind
(``bert_tokenize``, ``custom_parse_response``, ...). The harness calls it with the case's input
keys as keyword arguments (every key except id/source/notes/tolerance/kind and the
``expected*``/``derived*`` ones; vocabulary names are resolved to their lists) and compares what
it returns with the case's expectations; an expected error must be raised (an ``ApiError``, or any
exception whose message is compared). A missing module or function fails the case.

The answer: a case's ``expected`` is compared with the whole answer; each other
``expected_<name>`` key with ``answer[<name>]`` (so ``expected_value`` with ``answer["value"]``);
``derived`` facts likewise.

Expected keys are read from the answer directly, or with these generic readings:
``X_count`` = len(answer[X]); ``X_class_names_at`` = {i: answer[X][i].class_name};
``X[i]`` = answer[X][i]; ``X_non_empty`` = answer[X] is non-empty; ``key_count`` = len(answer);
``tokens_from_vocab`` = the vocabulary entries of ``token_ids``; ``body_json`` = the JSON of
``answer["body"]``, ``body_whitespace_stripped`` = that JSON re-written compactly. When the answer is a list (the windows
of a tokenisation, say): ``count`` = its length and ``<n>`` (``expected_0``, ``expected_1``) = its entry
``n``, so a case can assert the number of entries and some of them only. A case with a
single ``expected_<name>`` key is compared with the whole answer when the answer has no
``<name>``.
"""

from __future__ import annotations

import json
import re
from typing import Any, Callable

import pytest

from .compare import MISSING, Diff
from .support import check_exception, hook, tolerance

NOT_INPUTS = {"id", "source", "upstream_commit", "kind", "notes", "tolerance", "source_note", "assert_strength",
              "derived", "derived_from_source", "disabled_upstream"}


def case_inputs(case: dict[str, Any], meta: dict[str, Any]) -> dict[str, Any]:
    inputs = {k: v for k, v in case.items()
              if k not in NOT_INPUTS and not k.startswith("expected") and not k.startswith("derived")}
    vocabularies = meta.get("vocabularies") or {}
    if isinstance(inputs.get("vocab"), str) and inputs["vocab"] in vocabularies:
        inputs["vocab"] = vocabularies[inputs["vocab"]]
    return inputs


_INDEXED = re.compile(r"^(?P<name>.+)\[(?P<index>-?\d+)\]$")


def resolve(answer: Any, key: str, context: dict[str, Any]) -> Any:
    """An expected key read from an answer object (see the module docstring)."""
    if isinstance(answer, list):
        if key == "count":
            return len(answer)
        if key.isdigit():
            return answer[int(key)] if int(key) < len(answer) else MISSING
        return MISSING
    if isinstance(answer, dict) and key in answer:
        return answer[key]
    if not isinstance(answer, dict):
        answer = getattr(answer, "__dict__", {}) or {}
        if key in answer:
            return answer[key]
    if key == "key_count":
        return len(answer)
    if key == "tokens_from_vocab" and isinstance(answer.get("token_ids"), list) and context.get("vocab"):
        vocab = context["vocab"]
        return [vocab[i] if isinstance(i, int) and 0 <= i < len(vocab) else MISSING for i in answer["token_ids"]]
    if key in ("body_json", "body_whitespace_stripped") and isinstance(answer.get("body"), (str, bytes)):
        try:
            parsed = json.loads(answer["body"])
        except ValueError:
            return MISSING
        return parsed if key == "body_json" else json.dumps(parsed, separators=(",", ":"), ensure_ascii=False)
    m = _INDEXED.match(key)
    if m and isinstance(answer.get(m["name"]), list):
        items = answer[m["name"]]
        i = int(m["index"])
        return items[i] if -len(items) <= i < len(items) else MISSING
    for suffix, read in (("_count", len), ("_non_empty", lambda v: len(v) > 0)):
        if key.endswith(suffix) and isinstance(answer.get(key[: -len(suffix)]), (list, dict)):
            return read(answer[key[: -len(suffix)]])
    if key.endswith("_class_names_at") and isinstance(answer.get(key[: -len("_class_names_at")]), list):
        items = answer[key[: -len("_class_names_at")]]
        return {str(i): (e.get("class_name", MISSING) if isinstance(e, dict) else MISSING) for i, e in enumerate(items)}
    return MISSING


def check_answer(diff: Diff, answer: Any, expected: Any, tol: float, where: str, context: dict[str, Any]) -> None:
    if isinstance(expected, dict):
        for key, want in expected.items():
            got = resolve(answer, key, context)
            if key.endswith("_class_names_at") and isinstance(got, dict) and isinstance(want, dict):
                for index, name in want.items():
                    diff.check(got.get(str(index), MISSING), name, tol, f"{where}.{key}[{index}]")
            elif key.endswith("_json"):
                diff.check(got, want, tol, f"{where}.{key}", full=True)
            elif isinstance(want, list) and want and all(isinstance(e, dict) for e in want):
                check_answer(diff, got, want, tol, f"{where}.{key}", context)  # generic readings in nested entries
            else:
                diff.check(got, want, tol, f"{where}.{key}")
    elif isinstance(expected, list) and expected and all(isinstance(e, dict) for e in expected):
        if not isinstance(answer, list) or len(answer) != len(expected):
            diff.add(f"{where}: expected {len(expected)} entries {expected}, got {answer!r}")
            return
        for i, (a, e) in enumerate(zip(answer, expected)):
            check_answer(diff, a, e, tol, f"{where}[{i}]", context)
    else:
        diff.check(answer, expected, tol, where)


def run_adapter(case: dict[str, Any], meta: dict[str, Any], *, module: str, function: str | None = None,
                inputs: dict[str, Any] | None = None, expected_key: str = "expected") -> None:
    """Call the kind's adapter function and compare every expectation of the case."""
    name = function or case.get("kind")
    if not name:
        pytest.fail("case has no kind", pytrace=False)
    fn = hook(module, name)
    _run_hook(case, meta, fn, inputs if inputs is not None else case_inputs(case, meta), expected_key)


def _run_hook(case: dict[str, Any], meta: dict[str, Any], hook: Callable[..., Any], inputs: dict[str, Any],
              expected_key: str) -> None:
    tol = tolerance(case)
    diff = Diff()
    context = {"vocab": inputs.get("vocab")}
    wants_error = "expected_error" in case
    try:
        answer = hook(**inputs)
    except Exception as exc:  # noqa: BLE001 - compared with the case's expected error
        if wants_error:
            check_exception(diff, exc, case["expected_error"])
            diff.done()
            return
        pytest.fail(f"{hook.__module__}.{hook.__name__} raised {type(exc).__name__}: {exc}", pytrace=False)
    if wants_error:
        diff.add(f"expected error {case['expected_error']}, got an answer {answer!r}"[:600])
        diff.done()
        return
    keys = [k for k in case if (k == expected_key or k.startswith("expected_"))
            and k not in ("expected_error", "expected_no_error")]
    compared = False
    for key in keys:
        compared = True
        if key == expected_key:
            target = answer
        else:
            target = resolve(answer, key[len("expected_"):], context)
            if target is MISSING and len(keys) == 1:
                target = answer  # the one thing the case expects: the whole answer
        check_answer(diff, target, case[key], tol, key, context)
    derived = case.get("derived")
    if isinstance(derived, dict):
        for key, want in derived.items():
            if key == "note":
                continue
            compared = True
            check_answer(diff, resolve(answer, key, context), want, tol, f"derived.{key}", context)
    if not compared and not case.get("expected_no_error"):
        diff.add("case has no expectation the harness knows")
    diff.done()
