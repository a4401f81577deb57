"""Bad input through pipelines (issue 5, item 9): ES-shaped errors per document, never a crash or a
traceback, every input row accounted for — through ``_simulate`` (verbose and not), ``df.infer.pipeline``
and the ``ml_inference`` processor's ``model_input`` templates."""

from __future__ import annotations

import builtins
import json
import math
import os
import random
import re
from typing import Any

import pandas as pd
import pytest

import es_infer_nb  # noqa: F401
from helpers import many_processors, stump_regression

BOOLEAN_ERROR = "Cannot transform numbers other than 0.0 or 1.0 to boolean. Provided number [2.0]"


@pytest.fixture
def eng(engine):
    assert engine.request("PUT", "_ml/trained_models/reg", stump_regression()).status == 200
    return engine


def simulate(engine, processors, docs, verbose=False):
    r = engine.request("POST", "_ingest/pipeline/_simulate",
                       {"pipeline": {"processors": processors}, "docs": [{"_source": d} for d in docs]},
                       params={"verbose": "true"} if verbose else None)
    assert r.status == 200, r.body
    assert len(r.body["docs"]) == len(docs)  # every input document accounted for
    return r.body["docs"]


def es_error(entry):
    """The ES error object of a failed document (simulate plain or verbose), checked for its shape."""
    if "processor_results" in entry:
        failed = [p for p in entry["processor_results"] if p["status"] == "error"]
        assert failed, entry
        err = failed[-1]["error"]
    else:
        err = entry["error"]
    assert set(err) >= {"root_cause", "type", "reason"}, err
    assert err["root_cause"][0]["type"] == err["type"]
    assert isinstance(err["reason"], str) and "Traceback" not in err["reason"]
    return err


# -- a label that cannot become a boolean fails its own document only -------------------------------

def three_class_boolean_model():
    """x <= 0.2 -> class 0 (false), 0.2 < x <= 0.5 -> class 1 (true), x > 0.5 -> class 2 (no boolean: its
    label is neither a number nor true/false, so the class index decides)."""
    return {"input": {"field_names": ["x"]},
            "inference_config": {"classification": {"prediction_field_type": "boolean", "num_top_classes": 2}},
            "definition": {"trained_model": {"tree": {
                "feature_names": ["x"], "target_type": "classification", "classification_labels": ["no", "yes", "maybe"],
                "tree_structure": [
                    {"node_index": 0, "split_feature": 0, "threshold": 0.5, "decision_type": "lte",
                     "left_child": 1, "right_child": 2},
                    {"node_index": 1, "split_feature": 0, "threshold": 0.2, "decision_type": "lte",
                     "left_child": 3, "right_child": 4},
                    {"node_index": 2, "leaf_value": [0.0, 0.0, 1.0]},
                    {"node_index": 3, "leaf_value": [1.0, 0.0, 0.0]},
                    {"node_index": 4, "leaf_value": [0.0, 1.0, 0.0]}]}}}}


@pytest.fixture
def tri(eng):
    assert eng.request("PUT", "_ml/trained_models/tri", three_class_boolean_model()).status == 200
    return eng


def test_boolean_label_error_fails_only_its_document_in_simulate(tri):
    pipe = [{"inference": {"model_id": "tri"}}]
    docs = simulate(tri, pipe, [{"x": 0.1}, {"x": 0.9}, {"x": 0.3}])
    assert docs[0]["doc"]["_source"]["ml"]["inference"]["predicted_value"] is False
    assert docs[2]["doc"]["_source"]["ml"]["inference"]["predicted_value"] is True
    assert [c["class_name"] for c in docs[2]["doc"]["_source"]["ml"]["inference"]["top_classes"]] == [True, False]
    err = es_error(docs[1])
    assert (err["type"], err["reason"]) == ("illegal_argument_exception", BOOLEAN_ERROR)
    verbose = simulate(tri, pipe, [{"x": 0.1}, {"x": 0.9}], verbose=True)
    assert verbose[0]["processor_results"][0]["status"] == "success"
    assert es_error(verbose[1])["reason"] == BOOLEAN_ERROR
    # _infer still fails the whole request, as ES's TypedChainTaskExecutor does
    r = tri.request("POST", "_ml/trained_models/tri/_infer", {"docs": [{"x": 0.1}, {"x": 0.9}]})
    assert r.status == 400 and r.body["error"]["reason"] == BOOLEAN_ERROR


def test_boolean_label_error_on_failure_and_frame(tri):
    pipe = {"processors": [{"inference": {"model_id": "tri", "on_failure": [
        {"set": {"field": "why", "value": "{{_ingest.on_failure_message}}"}}]}}]}
    docs = simulate(tri, pipe["processors"], [{"x": 0.9}, {"x": 0.1}])
    assert docs[0]["doc"]["_source"] == {"x": 0.9, "why": BOOLEAN_ERROR}
    assert docs[1]["doc"]["_source"]["ml"]["inference"]["predicted_value"] is False
    frame = pd.DataFrame({"x": [0.1, 0.9, 0.3, 0.95]})
    out = frame.infer.pipeline({"processors": [{"inference": {"model_id": "tri"}}]}, engine=tri)
    assert list(out.index) == list(frame.index)
    reasons = [None if pd.isna(r) else r for r in out["_ingest.error.reason"]]
    assert reasons == [None, BOOLEAN_ERROR, None, BOOLEAN_ERROR]
    assert out["_ingest.error.type"][1] == "illegal_argument_exception"
    assert [out["ml.inference.predicted_value"][i] for i in (0, 2)] == [False, True]
    assert pd.isna(out["ml.inference.predicted_value"][1])


# -- ml_inference model_input templates: a value never changes the request's JSON structure ---------

INJECTION = 'a", "x": 0.9, "note": "b'
TEMPLATE = '{"docs": [{"x": ${input_map.x}, "note": "${input_map.note}"}]}'


def ml_pipeline(**extra):
    return [{"ml_inference": {"model_id": "reg", "function_name": "text_embedding", "model_input": TEMPLATE,
                              "input_map": [{"x": "x", "note": "note"}],
                              "output_map": [{"score": "$.inference_results[0].output[0].dataAsMap.predicted_value"}],
                              **extra}}]


@pytest.fixture
def requests_seen(eng, monkeypatch):
    """Every request the ml_inference processors send to the engine's model."""
    from es_infer_nb.ingest import ml_inference

    seen: list[dict] = []
    real = ml_inference._engine_predictor

    def recording(engine, model_id, function_name, device=None):
        predict = real(engine, model_id, function_name, device)

        def wrapped(request):
            seen.append(json.loads(json.dumps(request)))
            return predict(request)
        return wrapped

    monkeypatch.setattr(ml_inference, "_engine_predictor", recording)
    return seen


NOTES = ["plain", 'he said "hi"', INJECTION, "{braces} [and] {{mustache}}", "${input_map.x} ${model_config.k}",
         "back\\slash", "tab\tcontrol", "a\ud800b lone surrogate", "ok \\n escaped"]


@pytest.mark.parametrize("verbose", [False, True])
def test_values_with_quotes_and_braces_never_change_the_request(eng, requests_seen, verbose):
    docs = simulate(eng, ml_pipeline(), [{"x": 0.1, "note": n} for n in NOTES], verbose=verbose)
    # every request that went out has exactly the template's shape, and x is the document's own value
    for request in requests_seen:
        assert list(request) == ["docs"] and len(request["docs"]) == 1
        assert set(request["docs"][0]) == {"x", "note"} and request["docs"][0]["x"] == 0.1
    sent = [r["docs"][0]["note"] for r in requests_seen]
    ok = {"plain", "{braces} [and] {{mustache}}", "${input_map.x} ${model_config.k}", "a\ud800b lone surrogate",
          "ok \\n escaped"}
    for note, entry in zip(NOTES, docs):
        if note in ok:
            src = entry["processor_results"][-1]["doc"]["_source"] if verbose else entry["doc"]["_source"]
            assert src["score"] == 1.0, note
        else:  # ml-commons inserts values raw: a quote, a backslash or a control character breaks the JSON
            err = es_error(entry)
            assert err["type"] == "illegal_argument_exception"
            assert err["reason"].startswith("Invalid payload: {\"docs\"")
    # placeholders inside values are not filled again (one pass), JSON escapes are read as JSON
    assert sent == ["plain", "{braces} [and] {{mustache}}", "${input_map.x} ${model_config.k}",
                    "a\ud800b lone surrogate", "ok \n escaped"]


def test_value_outside_quotes_must_be_one_json_value(eng, requests_seen):
    pipe = [{"ml_inference": {"model_id": "reg", "function_name": "text_embedding",
                              "model_input": '{"docs": [{"x": ${input_map.x}}]}', "input_map": [{"x": "x"}],
                              "output_map": [{"score": "$.inference_results[0].output[0].dataAsMap.predicted_value"}]}}]
    docs = simulate(eng, pipe, [{"x": 0.9}, {"x": "0.1}, {\"x\": 0.9"}, {"x": "word"}, {"x": [0.1]}, {"x": 0.1}])
    assert docs[0]["doc"]["_source"]["score"] == 2.0 and docs[4]["doc"]["_source"]["score"] == 1.0
    for entry in docs[1:3]:
        assert es_error(entry)["reason"].startswith("Invalid payload")
    assert all(len(r["docs"]) == 1 for r in requests_seen)
    assert len(requests_seen) == 3  # the list [0.1] is one JSON value: the model sees it (as a missing feature)


def test_huge_value_error_reason_is_bounded(eng, requests_seen):
    big = "x" * (10 * 1024 * 1024)
    docs = simulate(eng, ml_pipeline(), [{"x": 0.1, "note": big + '"'}, {"x": 0.9, "note": big}])
    reason = es_error(docs[0])["reason"]
    assert reason.startswith("Invalid payload") and len(reason) < 3000 and "more characters" in reason
    assert docs[1]["doc"]["_source"]["score"] == 2.0
    assert len(requests_seen[0]["docs"][0]["note"]) == len(big)


def test_ml_inference_bad_values_through_a_frame(eng, requests_seen):
    frame = pd.DataFrame({"x": [0.1, 0.9, 0.2], "note": ["fine", INJECTION, None]}, index=["a", "b", "c"])
    out = frame.infer.pipeline({"processors": ml_pipeline(ignore_missing=True)}, engine=eng)
    assert list(out.index) == ["a", "b", "c"]
    assert out.loc["a", "score"] == 1.0 and pd.isna(out.loc["b", "score"])
    assert out.loc["b", "_ingest.error.reason"].startswith("Invalid payload")
    assert out.loc["b", "_ingest.error.processor_type"] == "ml_inference"
    assert out.loc["b", "note"] == INJECTION  # a failed row keeps its input
    # a missing input left its placeholder as it is: inside quotes that is still valid JSON
    assert out.loc["c", "score"] == 1.0 and requests_seen[-1]["docs"][0]["note"] == "${input_map.note}"


# -- configuration errors: the whole request, ES's parse_exception (no document runs) -----------------

def test_unknown_processor_type_is_a_request_error(eng):
    body = {"pipeline": {"processors": [{"set": {"field": "a", "value": 1}}, {"nope": {"tag": "t"}}]},
            "docs": [{"_source": {}}]}
    r = eng.request("POST", "_ingest/pipeline/_simulate", body)
    assert r.status == 400
    assert r.body["error"]["type"] == "parse_exception"
    assert r.body["error"]["reason"] == "No processor type exists with name [nope]"
    assert r.body["error"]["processor_type"] == "nope" and r.body["error"]["processor_tag"] == "t"
    assert eng.request("PUT", "_ingest/pipeline/p", body["pipeline"]).status == 400
    from es_infer_nb.errors import ApiError

    with pytest.raises(ApiError, match=r"No processor type exists with name \[nope\]"):
        pd.DataFrame({"a": [1]}).infer.pipeline(body["pipeline"], engine=eng)


# -- field paths ------------------------------------------------------------------------------------

PATHS = [
    ("", "illegal_argument_exception", "path cannot be null nor empty"),
    (".", "illegal_argument_exception", "path [.] is not valid"),
    ("_ingest.", "illegal_argument_exception", "path [_ingest.] is not valid"),
    ("s.x", "illegal_argument_exception", "cannot set [x] with parent object of type [java.lang.String] as part of "
                                          "path [s.x]"),
    ("l.x", "illegal_argument_exception", "[x] is not an integer, cannot be used as an index as part of path [l.x]"),
    ("l.5", "illegal_argument_exception", "[5] is out of bounds for array with length [2] as part of path [l.5]"),
]


@pytest.mark.parametrize("verbose", [False, True])
@pytest.mark.parametrize("path,etype,reason", PATHS)
def test_bad_set_paths_fail_each_document(eng, path, etype, reason, verbose):
    docs = simulate(eng, [{"set": {"field": path, "value": 1}}], [{"s": "str", "l": [1, 2]}] * 2, verbose)
    for entry in docs:
        err = es_error(entry)
        assert (err["type"], err["reason"]) == (etype, reason)


def test_java_split_paths(eng):
    """``a.`` is ``a`` (Java's split drops trailing empty strings); ``a..b`` has an empty-named object."""
    docs = simulate(eng, [{"set": {"field": "a.", "value": 1}}, {"set": {"field": "b..c", "value": 2}},
                          {"rename": {"field": "s.x", "target_field": "y", "ignore_missing": True}},
                          {"remove": {"field": "b..c"}}], [{"s": "str"}])
    assert docs[0]["doc"]["_source"] == {"s": "str", "a": 1, "b": {"": {}}}


def test_bad_paths_in_reads(eng):
    docs = simulate(eng, [{"rename": {"field": "s.x", "target_field": "y"}}], [{"s": "str"}])
    assert es_error(docs[0])["reason"] == "field [s.x] doesn't exist"
    docs = simulate(eng, [{"uppercase": {"field": "s.x"}}], [{"s": "str"}])
    assert es_error(docs[0])["reason"] == "cannot resolve [x] from object of type [java.lang.String] as part of path [s.x]"
    docs = simulate(eng, [{"remove": {"field": "a..b"}}], [{"a": 1}])
    assert es_error(docs[0])["reason"] == "cannot resolve [] from object of type [java.lang.Integer] as part of path [a..b]"


# -- mustache templates --------------------------------------------------------------------------------

def test_templates_naming_missing_keys_render_empty(eng):
    docs = simulate(eng, [{"set": {"field": "out", "value": "[{{missing}}|{{s.x}}|{{ctx.s}}|{{{s}}}|{{l}}]"}},
                          {"set": {"field": "{{missing}}x", "value": 1}},
                          {"set": {"field": "{{missing}}", "value": 1, "ignore_failure": True}}],
                    [{"s": "str", "l": [1, "a"]}])
    assert docs[0]["doc"]["_source"]["out"] == '[||str|str|[1,"a"]]'
    assert docs[0]["doc"]["_source"]["x"] == 1
    docs = simulate(eng, [{"set": {"field": "{{missing}}", "value": 1}}], [{}])
    assert es_error(docs[0])["reason"] == "path cannot be null nor empty"


def test_values_with_quotes_braces_and_template_markers_are_data(eng):
    tricky = 'he said "hi" {x} {{s}} ${input_map.z} \\ end'
    docs = simulate(eng, [{"set": {"field": "copy", "value": "{{q}}"}}, {"uppercase": {"field": "q"}},
                          {"json": {"field": "q", "target_field": "j", "ignore_failure": True}}],
                    [{"q": tricky, "s": "S"}])
    src = docs[0]["doc"]["_source"]
    assert src["copy"] == tricky  # a value's own {{...}} is never rendered again
    assert src["q"] == tricky.upper() and "j" not in src


# -- odd values -----------------------------------------------------------------------------------------

def test_lone_surrogates_and_control_characters(eng):
    docs = simulate(eng, [{"lowercase": {"field": "t"}}, {"gsub": {"field": "t", "pattern": "a", "replacement": "b"}},
                          {"split": {"field": "t", "separator": "\\t", "target_field": "parts"}},
                          {"json": {"field": "t", "target_field": "j", "ignore_failure": True}},
                          {"inference": {"model_id": "reg", "field_map": {"t": "x"}}}],
                    [{"t": "A\ud800\tZ\x00"}, {"t": "\udfff"}])
    assert docs[0]["doc"]["_source"]["t"] == "b\ud800\tz\x00"
    assert docs[0]["doc"]["_source"]["parts"] == ["b\ud800", "z\x00"]
    for entry in docs:  # a string is not a number: the model sees a missing value (not a missing field)
        assert entry["doc"]["_source"]["ml"]["inference"] == {"predicted_value": 2.0, "model_id": "reg"}
    json.dumps([d["doc"] for d in docs])  # the answer serializes (as \\ud800 escapes)


def test_nan_and_infinity(eng):
    docs = simulate(eng, [{"convert": {"field": "v", "type": "long", "ignore_failure": True}},
                          {"convert": {"field": "v", "type": "string", "target_field": "s"}},
                          {"inference": {"model_id": "reg", "field_map": {"v": "x"}}}],
                    [{"v": math.nan}, {"v": math.inf}, {"v": -math.inf}, {"v": 0.9}])
    # every conversion reads Java's text of the value: NaN / Infinity, and "0.9" is no long (the
    # failure is ignored, the value stays)
    assert [d["doc"]["_source"].get("s") for d in docs] == ["NaN", "Infinity", "-Infinity", "0.9"]
    r = docs[3]["doc"]["_source"]
    assert r["v"] == 0.9 and r["ml"]["inference"]["predicted_value"] == 2.0
    assert docs[1]["doc"]["_source"]["ml"]["inference"]["predicted_value"] == 2.0
    err = es_error(simulate(eng, [{"convert": {"field": "v", "type": "integer"}}], [{"v": math.inf}])[0])
    assert (err["type"], err["reason"]) == ("illegal_argument_exception", "unable to convert [Infinity] to integer")
    err = es_error(simulate(eng, [{"convert": {"field": "v", "type": "long"}}], [{"v": math.nan}], True)[0])
    assert err["reason"] == "unable to convert [NaN] to long"


def test_ten_megabyte_fields(eng):
    big = "ab" * (5 * 1024 * 1024)
    pipe = [{"uppercase": {"field": "t", "target_field": "u"}}, {"gsub": {"field": "t", "pattern": "b", "replacement": ""}},
            {"set": {"field": "copy", "value": "{{t}}"}}, {"inference": {"model_id": "reg", "field_map": {"n": "x"}}},
            {"fail": {"message": "too long: {{t}}", "if": "ctx.n > 0.5"}}]
    docs = simulate(eng, pipe, [{"t": big, "n": 0.1}, {"t": big, "n": 0.9}])
    src = docs[0]["doc"]["_source"]
    assert len(src["u"]) == len(big) and src["t"] == "a" * (len(big) // 2)
    assert src["copy"] == src["t"] and src["ml"]["inference"]["predicted_value"] == 1.0
    err = es_error(docs[1])
    assert err["type"] == "fail_processor_exception" and len(err["reason"]) == len("too long: ") + len(big) // 2
    frame = pd.DataFrame({"t": [big, "x"], "n": [0.9, 0.1]})
    out = frame.infer.pipeline({"processors": pipe}, engine=eng)
    assert len(out) == 2 and out["_ingest.error.type"].tolist()[0] == "fail_processor_exception"
    assert out["copy"].tolist()[1] == "x"


def deep(levels):
    value = {"leaf": 0.9}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


@pytest.mark.parametrize("verbose", [False, True])
def test_deeply_nested_documents_fail_alone(eng, verbose):
    from es_infer_nb.ingest.document import MAX_NESTING_DEPTH

    pipe = [{"set": {"field": "s", "value": "{{x}}"}}, {"inference": {"model_id": "reg"}},
            {"set": {"field": "c", "copy_from": "deep", "ignore_failure": True}}]
    docs = simulate(eng, pipe, [{"x": 0.9, "deep": deep(MAX_NESTING_DEPTH - 1)}, {"x": 0.1, "deep": deep(900)},
                                {"x": 0.1}], verbose)
    ok = docs[0]["processor_results"][-1]["doc"] if verbose else docs[0]["doc"]
    assert ok["_source"]["ml"]["inference"]["predicted_value"] == 2.0 and ok["_source"]["c"] == ok["_source"]["deep"]
    err = es_error(docs[1])
    assert err["type"] == "x_content_parse_exception"
    assert err["reason"] == f"Document nesting depth ({MAX_NESTING_DEPTH + 1}) exceeds the maximum allowed " \
                            f"({MAX_NESTING_DEPTH})"
    last = docs[2]["processor_results"][-1] if verbose else docs[2]
    assert last["doc"]["_source"]["ml"]["inference"]["predicted_value"] == 1.0
    # past the request parser's own limit (1000, Jackson's) the whole request is ES's 400
    whole = eng.request("POST", "_ingest/pipeline/_simulate", {"pipeline": {"processors": pipe},
                        "docs": [{"_source": {"x": 0.1}}, {"_source": {"deep": deep(5000)}}]})
    assert whole.status == 400 and whole.body["error"]["type"] == "x_content_parse_exception"
    assert whole.body["error"]["reason"].startswith("Document nesting depth (1001) exceeds the maximum allowed (1000")


def test_json_processor_on_deeply_nested_text(eng):
    docs = simulate(eng, [{"json": {"field": "j", "target_field": "t"}}],
                    [{"j": "[" * 5000 + "]" * 5000}, {"j": "[" * 400 + "]" * 400}, {"j": "[[1]]"}])
    for entry in docs[:2]:
        err = es_error(entry)
        assert err["type"] == "illegal_argument_exception"
        assert err["reason"].startswith("com.fasterxml.jackson.core.exc.StreamConstraintsException: Document nesting "
                                        "depth")
    assert docs[2]["doc"]["_source"]["t"] == [[1]]


def test_huge_arrays(eng):
    values = list(range(50_000))
    pipe = [{"join": {"field": "l", "separator": ",", "target_field": "joined"}},
            {"foreach": {"field": "l", "processor": {"convert": {"field": "_ingest._value", "type": "string"}}}},
            {"inference": {"model_id": "reg", "field_map": {"l": "x"}}}]
    docs = simulate(eng, pipe, [{"l": values}, {"l": [0.9]}])
    src = docs[0]["doc"]["_source"]
    assert src["l"][:3] == ["0", "1", "2"] and len(src["l"]) == len(values)
    assert src["joined"].startswith("0,1,2,") and src["ml"]["inference"]["model_id"] == "reg"
    assert docs[1]["doc"]["_source"]["ml"]["inference"]["predicted_value"] == 2.0


# -- the same through df.infer.pipeline: one output row per input row, failures per row -----------------

SWEEP_PIPELINE = {"processors": [
    {"set": {"field": "copy", "value": "{{t}}|{{missing}}"}},
    {"uppercase": {"field": "t", "ignore_missing": True}},
    {"convert": {"field": "x", "type": "long", "target_field": "xl", "ignore_failure": True}},
    {"inference": {"model_id": "reg"}},
    {"set": {"field": "o.deep", "value": 1, "ignore_failure": True}},
    {"ml_inference": {"model_id": "reg", "function_name": "text_embedding", "ignore_missing": True,
                      "model_input": '{"docs": [{"x": ${input_map.x}, "n": "${input_map.t}"}]}',
                      "input_map": [{"x": "x", "t": "t"}],
                      "output_map": [{"mli": "$.inference_results[0].output[0].dataAsMap.predicted_value"}]}},
]}


def sweep_frame(text_two: str) -> pd.DataFrame:
    texts = pd.Series(['say "hi" {x} {{t}} ${input_map.t}', text_two, None, "plain", "x" * (10 * 1024 * 1024), "k"],
                      dtype=object, index=list("uvwxyz"))
    return pd.DataFrame({"t": texts, "x": [0.1, math.nan, math.inf, -math.inf, 0.9, 0.3],
                         "o": [{"a": 1}, [1, 2], b"\xff\xfe", None, "s", {"a": {"b": [1, {"c": 2}]}}]},
                        index=list("uvwxyz"))


def check_sweep(out: pd.DataFrame, frame: pd.DataFrame) -> None:
    assert list(out.index) == list(frame.index) and not out["_ingest.dropped"].any()
    reasons = {k: out.loc[k, "_ingest.error.reason"] for k in out.index}
    # u: a quote in a string placeholder; v: x is NaN (missing) so ${input_map.x} stays, outside quotes
    for k in "uv":
        assert reasons[k].startswith("Invalid payload: {\"docs\"")
        assert out.loc[k, "_ingest.error.processor_type"] == "ml_inference"
        assert out.loc[k, "t"] == frame.loc[k, "t"]  # a failed row keeps its input values
    for k in "wxyz":
        assert pd.isna(reasons[k])
    assert out.loc["w", "copy"] == "|" and out.loc["x", "copy"] == "plain|" and out.loc["z", "copy"] == "k|"
    assert len(out.loc["y", "copy"]) == 10 * 1024 * 1024 + 1
    assert [out.loc[k, "ml.inference.predicted_value"] for k in "wxyz"] == [2.0, 2.0, 2.0, 1.0]
    assert [out.loc[k, "mli"] for k in "wxyz"] == [2.0, 2.0, 2.0, 1.0]
    assert "xl" not in out.columns  # a double's text ("0.9", "Infinity") is never a long: no row converts
    assert out.loc["w", "o"] == b"\xff\xfe"  # an opaque value stays as it was; set below it failed (ignored)
    assert out.loc["z", "o"] == {"a": {"b": [1, {"c": 2}]}, "deep": 1}


def test_frame_sweep(eng):
    frame = sweep_frame("tab\there")
    check_sweep(frame.infer.pipeline(SWEEP_PIPELINE, engine=eng), frame)


@pytest.mark.parametrize("columnar", [True, False])
def test_frame_sweep_lone_surrogates(eng, columnar):
    """Lone surrogates cannot be Arrow (pandas' ``str``) strings: those output columns stay Python objects."""
    from es_infer_nb.frames.pipeline import run_frame_pipeline

    frame = sweep_frame("a\ud800b")
    out = run_frame_pipeline(eng, frame, SWEEP_PIPELINE, columnar=columnar)
    check_sweep(out, frame)
    assert out.loc["v", "t"] == "a\ud800b"
    upper = pd.DataFrame({"t": pd.Series(["a\ud800b", "c"], dtype=object), "x": [0.1, 0.9]})
    out = run_frame_pipeline(eng, upper, {"processors": [{"uppercase": {"field": "t", "target_field": "u"}},
                                                         {"inference": {"model_id": "reg"}}]}, columnar=columnar)
    assert out["u"].tolist() == ["A\ud800B", "C"] and out["ml.inference.predicted_value"].tolist() == [1.0, 2.0]


@pytest.mark.parametrize("columnar", [True, False])
def test_frame_output_column_named_with_a_lone_surrogate(eng, columnar):
    # found by the document fuzzer: a cell's key holding a lone surrogate (Python API) became an output column
    # name pandas' Arrow strings cannot hold: UnicodeEncodeError from df.infer.pipeline
    from es_infer_nb.frames.pipeline import run_frame_pipeline

    frame = pd.DataFrame({"x": [0.1, 0.9], "old": pd.Series([{"\ud800": 1}, 1], dtype=object)})
    pipe = {"processors": [{"rename": {"field": "old", "target_field": "renamed"}}, {"inference": {"model_id": "reg"}}]}
    out = run_frame_pipeline(eng, frame, pipe, columnar=columnar)
    assert out["renamed.\ud800"].tolist()[0] == 1 and out["renamed"].tolist()[1] == 1
    assert out["ml.inference.predicted_value"].tolist() == [1.0, 2.0]


def test_frame_cell_nested_too_deeply_is_a_clear_error(eng):
    frame = pd.DataFrame({"x": [0.1, 0.9], "o": [{"a": 1}, deep(5000)]}, index=["ok", "deep"])
    pipe = {"processors": [{"inference": {"model_id": "reg"}}]}
    for columnar in (True, False):
        from es_infer_nb.frames.pipeline import run_frame_pipeline

        with pytest.raises(ValueError, match=r"nested deeper than 299 levels cannot be a document field"):
            run_frame_pipeline(eng, frame, pipe, columnar=columnar)
    out = pd.DataFrame({"x": [0.9], "o": [deep(250)]}).infer.pipeline(pipe, engine=eng)
    assert out["ml.inference.predicted_value"].tolist() == [2.0]


def test_http_simulate_with_a_lone_surrogate_escape(eng):
    """``"\\ud800"`` in a JSON body is a lone surrogate once parsed: the answer escapes it again."""
    import httpx

    from es_infer_nb.server import serve

    handle = serve(eng, port=0, quiet=True)
    try:
        body = ('{"pipeline": {"processors": [{"uppercase": {"field": "t"}}, {"set": {"field": "c", "value": "{{t}}"}}]},'
                ' "docs": [{"_source": {"t": "a\\ud800b"}}, {"_source": {"t": 5}}]}')
        for params in ({}, {"pretty": "true"}, {"verbose": "true"}):
            r = httpx.post(f"{handle.url}/_ingest/pipeline/_simulate", content=body, params=params,
                           headers={"content-type": "application/json"}, timeout=30)
            assert r.status_code == 200, r.text
            docs = r.json()["docs"]
            assert len(docs) == 2
            if "verbose" not in params:
                assert docs[0]["doc"]["_source"] == {"t": "A\ud800B", "c": "A\ud800B"}
                assert docs[1]["error"]["type"] == "illegal_argument_exception"
    finally:
        handle.stop()


def test_bytes_values_from_python(eng):
    """Only the Python API can hand in bytes (JSON cannot): opaque values, ES's byte[] type in messages."""
    docs = simulate(eng, [{"uppercase": {"field": "b", "ignore_failure": True}},
                          {"set": {"field": "b.x", "value": 1, "ignore_failure": True}},
                          {"inference": {"model_id": "reg", "field_map": {"b": "x"}}},
                          {"lowercase": {"field": "b"}}], [{"b": b"\xff\xfe"}])
    err = es_error(docs[0])
    assert err["reason"] == "field [b] of type [[B] cannot be cast to [java.lang.String]"
    verbose = simulate(eng, [{"uppercase": {"field": "b", "ignore_failure": True}},
                             {"inference": {"model_id": "reg", "field_map": {"b": "x"}}}], [{"b": b"\xff"}], True)
    results = verbose[0]["processor_results"]
    assert [r["status"] for r in results] == ["error_ignored", "success"]
    assert results[1]["doc"]["_source"]["b"] == b"\xff"


@pytest.mark.parametrize("verbose", [False, True])
def test_ml_inference_with_keys_only_python_can_give(eng, verbose):
    # found by the document fuzzer: a map key that is not a string (Python API only) in a document sent through
    # ml_inference failed that document with "AttributeError: 'int' object has no attribute 'encode'"; the key
    # is ordered as the JSON text names it
    from es_infer_nb.models.java_hash import hashmap_order

    by_text = {"1": 1, "null": None, "1.5": 1.5, "k": "k"}
    assert hashmap_order(list(by_text.values())) == [by_text[k] for k in hashmap_order(list(by_text))]
    pipe = [{"ml_inference": {"model_id": "reg", "input_map": [{"x": "x"}], "output_map": [{"pred": "predicted_value"}]}}]
    docs = simulate(eng, pipe, [{"x": 0.9, "o": {1: "a", None: {1.5: True}}}, {"x": 0.1}], verbose)
    last = [d["processor_results"][-1] if verbose else d for d in docs]
    assert [d["doc"]["_source"]["pred"] for d in last] == [2.0, 1.0]
    assert last[0]["doc"]["_source"]["o"] == {1: "a", None: {1.5: True}}


def test_convert_reads_the_values_java_text(eng):
    """``ConvertProcessor``: ``Integer.parseInt`` / ``Integer.decode`` of ``value.toString()``."""
    docs = simulate(eng, [{"convert": {"field": "v", "type": "integer", "on_failure": [
        {"set": {"field": "err", "value": "{{_ingest.on_failure_message}}"}}]}}],
        [{"v": "1.5"}, {"v": 1.5}, {"v": 3.0}, {"v": " 7"}, {"v": "1_000"}, {"v": "+7"}, {"v": "-0x1F"},
         {"v": "2147483648"}, {"v": 12}])
    got = [d["doc"]["_source"].get("err", d["doc"]["_source"]["v"]) for d in docs]
    assert got == ["unable to convert [1.5] to integer", "unable to convert [1.5] to integer",
                   "unable to convert [3.0] to integer", "unable to convert [ 7] to integer",
                   "unable to convert [1_000] to integer", 7, -31,
                   "unable to convert [2147483648] to integer", 12]
    docs = simulate(eng, [{"convert": {"field": "v", "type": "boolean", "ignore_failure": False}}], [{"v": "yes"}])
    err = es_error(docs[0])
    assert err["reason"] == "[yes] is not a boolean value, cannot convert to boolean"
    docs = simulate(eng, [{"convert": {"field": "v", "type": "auto"}}],
                    [{"v": "TRUE"}, {"v": "12"}, {"v": "9999999999"}, {"v": "1.5"}, {"v": " 7"}, {"v": "inf"}])
    assert [d["doc"]["_source"]["v"] for d in docs] == [True, 12, 9999999999, 1.5, 7.0, "inf"]


# -- a document fuzzer: random odd documents among plain ones, through _simulate and df.infer.pipeline -----

FUZZ_PIPELINE = {"processors": [
    *many_processors("ctx.js instanceof String"),
    {"set": {"field": "o.p.q", "value": "{{t}}"}},
    {"script": {"source": "ctx.z = ctx.containsKey('n') ? 1 : 0"}},
    {"inference": {"model_id": "reg", "field_map": {"v": "x"}}},
    {"ml_inference": {"model_id": "reg", "input_map": [{"x": "x"}], "output_map": [{"pred": "predicted_value"}]}},
]}
FUZZ_BASE = {"x": 0.3, "t": "AAb", "n": "5", "csv": "a,b", "js": '{"k": [1]}', "list": ["p", "q"], "old": 1,
             "junk": 2, "o": {"p": {}}}
#: odd values a document may hold (keys that are not strings only reach us through the Python API)
FUZZ_VALUES = [math.nan, math.inf, -math.inf, "\ud800", "a\udfffb", "x" * (1024 * 1024), 10**30, -0.0, None, [], {},
               [1, [2, [3]]], [{"a": 1}, "b"], {1: "int key"}, {None: "none key", "k": 1}, {1.5: {True: 2}},
               b"\xff\xfe", "{{t}}", '{"unterminated": ', "\x00\t\n", "ü" * 1000, ["\ud800"], {"\ud800": 1}]
FUZZ_FIELDS = ["x", "t", "n", "csv", "js", "list", "old", "o", "o.p", "s", "tags", "new", "ml", "_ingest"]
#: the exception types a Python-named error would carry: never an answer
PYTHON_TYPES = ("type_error", "key_error", "attribute_error", "value_error", "index_error", "recursion_error",
                "unicode", "assertion_error", "runtime_error", "zero_division", "overflow_error", "not_implemented")
#: a Python exception's name in a reason ("AttributeError: ...")
PYTHON_NAMED = re.compile(r"(?<![\w.])(?:%s)\b" % "|".join(
    n for n, v in vars(builtins).items() if isinstance(v, type) and issubclass(v, BaseException)))


def fuzz_nested(depth: int, rng) -> Any:
    value: Any = rng.choice([0.9, "leaf", [1], None])
    for _ in range(depth):
        value = {"a": value} if rng.random() < 0.7 else [value]
    return value


def fuzz_doc(rng) -> dict[str, Any]:
    doc = json.loads(json.dumps(FUZZ_BASE))
    for _ in range(rng.randint(1, 4)):
        field = rng.choice(FUZZ_FIELDS)
        value = fuzz_nested(rng.choice([5, 60, 250, 600]), rng) if rng.random() < 0.15 else rng.choice(FUZZ_VALUES)
        target = doc
        *parents, last = field.split(".")
        for part in parents:
            target = target.setdefault(part, {}) if isinstance(target.get(part), dict) else target
        target[last] = value
    return doc


def python_named(err: Any) -> bool:
    text = json.dumps(err, default=str)
    return any(f'"{name}' in text for name in PYTHON_TYPES) or "Traceback" in text or bool(PYTHON_NAMED.search(text))


_DOC_SEEDS = os.environ.get("ES_INFER_NB_DOC_FUZZ_SEEDS", "1-6").split("-")


@pytest.mark.parametrize("seed", range(int(_DOC_SEEDS[0]), int(_DOC_SEEDS[-1]) + 1))
def test_document_fuzzer_simulate_and_frames(eng, seed):
    """Random odd documents between plain ones: each gets its own result or its own ES error, never a
    Python-named one, and the plain documents' results are those of a run without the odd ones."""
    rng = random.Random(seed)
    plain = simulate(eng, FUZZ_PIPELINE["processors"], [FUZZ_BASE])[0]
    docs = [fuzz_doc(rng) if n % 2 else json.loads(json.dumps(FUZZ_BASE)) for n in range(12)]
    for verbose in (False, True):
        r = eng.request("POST", "_ingest/pipeline/_simulate",
                        {"pipeline": FUZZ_PIPELINE, "docs": [{"_source": d} for d in docs]},
                        params={"verbose": "true"} if verbose else None)
        assert r.status < 500 and not python_named(r.body), r.body
        if r.status != 200:
            continue
        assert len(r.body["docs"]) == len(docs)
        for n, entry in enumerate(r.body["docs"]):
            assert not python_named(entry), (n, docs[n], entry)
            if "error" in entry or any(p.get("status") == "error" for p in entry.get("processor_results", [])):
                es_error(entry)
            if n % 2 == 0 and not verbose:
                assert entry["doc"]["_source"] == plain["doc"]["_source"], n
    names = list(dict.fromkeys(k for d in docs for k in d))
    frame = pd.DataFrame({"row": range(len(docs)),  # object columns: Arrow strings cannot hold a lone surrogate
                          **{k: pd.Series([d.get(k) for d in docs], dtype=object) for k in names}})
    try:
        out = frame.infer.pipeline(FUZZ_PIPELINE, engine=eng)
    except ValueError as exc:  # a cell no document can hold: a clear error for the whole frame
        assert "cannot be a document field" in str(exc), exc
        return
    assert list(out.index) == list(frame.index) and out["row"].tolist() == frame["row"].tolist()
    errors = out["_ingest.error.type"] if "_ingest.error.type" in out else pd.Series([None] * len(out))
    for n in range(len(out)):
        assert not python_named(str(errors.iloc[n])), (n, docs[n], out.iloc[n].to_dict())
        if n % 2 == 0:
            assert pd.isna(errors.iloc[n]) and out["pred"].iloc[n] == plain["doc"]["_source"]["pred"]
            assert out["s"].iloc[n] == plain["doc"]["_source"]["s"]
