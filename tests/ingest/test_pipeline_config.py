"""Pipeline / processor config validation (PUT and _simulate share the parser) and conditions."""

from __future__ import annotations

import pytest

from es_infer_nb.errors import ApiError
from es_infer_nb.ingest.condition import parse_condition
from helpers import error_of


def put(engine, processors, **extra):
    return engine.request("PUT", "_ingest/pipeline/p", {"processors": processors, **extra})


def root(resp):
    assert resp.status == 400, resp.body
    return error_of(resp)["root_cause"][0]


@pytest.mark.parametrize("processor, reason, prop", [
    ({"inference": {"target_field": "x"}}, "[model_id] required property is missing", "model_id"),
    ({"set": {"value": 1}}, "[field] required property is missing", "field"),
    ({"set": {"field": "a"}}, "[value] required property is missing", "value"),
    ({"rename": {"field": "a"}}, "[target_field] required property is missing", "target_field"),
    ({"convert": {"field": "a", "type": "nope"}}, "[type] type [nope] not supported, cannot convert field.", "type"),
    ({"pipeline": {}}, "[name] required property is missing", "name"),
    ({"set": {"field": 3, "value": 1}}, "[field] property isn't a string, but of type [java.lang.Integer]", "field"),
    ({"inference": {"model_id": "m", "input_output": []}},
     "[input_output] property cannot be empty at least one is required", "input_output"),
    ({"inference": {"model_id": "m", "input_output": [{"input_field": "a", "output_field": "o"},
                                                       {"input_field": "a", "output_field": "p"}]}},
     "[input_field] names must be unique but [a] is repeated", "input_field"),
])
def test_config_errors_carry_processor_metadata(engine, processor, reason, prop):
    ((ptype, conf),) = processor.items()
    conf["tag"] = "t"
    rc = root(put(engine, [processor]))
    assert rc == {"type": "parse_exception", "reason": reason, "processor_tag": "t", "processor_type": ptype,
                  "property_name": prop}


@pytest.mark.parametrize("processor, reason", [
    ({"inference": {"model_id": "m", "field_map": {"v": []}}}, "[field_map] property isn't a map of strings"),
    ({"inference": {"model_id": "m", "field_map": {"v": 7}}}, "[field_map] property isn't a map of strings"),
    ({"ml_inference": {"model_id": "m", "input_map": [{"x": "x"}], "output_map": [{"p": 1.5}]}},
     "[output_map] property isn't a list of maps of strings"),
    ({"ml_inference": {"model_id": "m", "output_map": [{"p": {"d": 1}}]}},
     "[output_map] property isn't a list of maps of strings"),
])
def test_field_names_in_maps_must_be_strings(engine, processor, reason):
    # found by the request fuzzer: a field_map / output_map value that is not a string failed each document
    # with a Python exception ("TypeError: unhashable type: 'list'", "AttributeError: ... 'endswith'")
    assert root(put(engine, [processor]))["reason"] == reason
    simulated = engine.request("POST", "_ingest/pipeline/_simulate",
                               {"pipeline": {"processors": [processor]}, "docs": [{"_source": {"v": 1}}]})
    assert simulated.status == 400 and error_of(simulated)["reason"] == reason


def test_unknown_parameters_and_types(engine):
    rc = root(put(engine, [{"inference": {"model_id": "m", "foo": 1, "bar": 2}}]))
    assert rc["reason"] == "processor [inference] doesn't support one or more provided configuration parameters [foo, bar]"
    assert "property_name" not in rc
    rc = root(put(engine, [{"nope": {}}]))
    assert rc["reason"] == "No processor type exists with name [nope]" and rc["processor_type"] == "nope"
    rc = root(put(engine, [{"set": {"field": "a", "value": 1, "on_failure": []}}]))
    assert rc["reason"] == "[on_failure] processors list cannot be empty"
    rc = root(put(engine, [{"set": {"field": "a", "value": 1}}], on_failure=[{"set": {}}]))
    assert rc["reason"] == "[field] required property is missing"
    assert root(engine.request("PUT", "_ingest/pipeline/p", {}))["reason"] == "[processors] required property is missing"


def test_inference_config_validation(engine):
    r = put(engine, [{"inference": {"model_id": "m", "inference_config": {}}}])
    assert error_of(r)["type"] == "status_exception"
    assert error_of(r)["reason"] == "inference_config must be an object with one inference type mapped to an object."
    r = put(engine, [{"inference": {"model_id": "m", "inference_config": {"bogus": {}}}}])
    assert error_of(r)["reason"].startswith("unrecognized inference configuration type [bogus]")
    r = put(engine, [{"inference": {"model_id": "m", "inference_config": {"regression": {"results_field": "model_id"}}}}])
    assert error_of(r)["reason"] == "Invalid inference config. More than one field is configured as [model_id]"
    r = put(engine, [{"inference": {"model_id": "m", "target_field": "t",
                                    "input_output": {"input_field": "a", "output_field": "b"}}}])
    assert root(r)["property_name"] == "target_field"


def test_valid_pipeline_is_stored_and_model_need_not_exist(engine):
    body = {"description": "d", "processors": [{"inference": {"model_id": "later", "tag": "x", "if": "ctx.a?.b != null",
                                                              "field_map": {"a": "b"}}}]}
    assert engine.request("PUT", "_ingest/pipeline/p", body).status == 200
    assert engine.request("GET", "_ingest/pipeline/p").body == {"p": body}


def test_simulate_uses_the_same_validation(engine):
    r = engine.request("POST", "_ingest/pipeline/_simulate",
                       {"pipeline": {"processors": [{"set": {"tag": "fails", "value": "_value"}}]},
                        "docs": [{"_source": {}}]})
    assert root(r)["reason"] == "[field] required property is missing"
    r = engine.request("POST", "_ingest/pipeline/_simulate", {"pipeline": {"processors": []}})
    assert root(r)["reason"] == "[docs] required property is missing"
    r = engine.request("POST", "_ingest/pipeline/_simulate", {"pipeline": {"processors": []}, "docs": [{"a": 1}]})
    assert root(r)["reason"] == "[_source] required property is missing"


@pytest.mark.parametrize("source, ctx, expected", [
    ("ctx.a == 'x'", {"a": "x"}, True),
    ("ctx.a == \"x\"", {"a": "y"}, False),
    ("ctx.a?.b != null", {"a": {"b": 1}}, True),
    ("ctx.a?.b != null", {}, False),
    ("ctx.n > 3 && ctx.n <= 5", {"n": 4}, True),
    ("ctx.n > 3 && ctx.n <= 5", {"n": 6}, False),
    ("!(ctx.flag == true) || ctx.n == 1.0", {"flag": True, "n": 1}, True),
    ("ctx['a'] == 1", {"a": 1}, True),
    ("ctx.l[1] == 'b'", {"l": ["a", "b"]}, True),
    ("ctx.s == 1", {"s": "1"}, False),
    ("true", {}, True),
])
def test_conditions(source, ctx, expected):
    assert parse_condition(source).evaluate(ctx) is expected


@pytest.mark.parametrize("source", ["foo == 1", "ctx.a ==", ""])
def test_unsupported_conditions_are_compile_errors(source):
    with pytest.raises(ApiError) as exc:
        parse_condition(source)
    assert exc.value.type == "script_exception" and exc.value.reason == "compile error"


@pytest.mark.parametrize(("source", "cause", "reason"), [
    # Painless resolves a method of a ``def`` value (every ctx field) when it runs
    ("ctx.a.matches('x')", "illegal_argument_exception", "dynamic method [java.lang.String, matches/1] not found"),
    # ConditionalProcessorTests#testActsOnImmutableData
    ("ctx.a = 1", "unsupported_operation_exception", "Mutating ingest documents in conditionals is not supported"),
])
def test_valid_painless_conditions_fail_when_they_run(source, cause, reason):
    condition = parse_condition(source)
    with pytest.raises(ApiError) as exc:
        condition.evaluate({"a": "x"})
    assert exc.value.reason == "runtime error"
    assert (exc.value.caused_by.type, exc.value.caused_by.reason) == (cause, reason)


def test_null_dereference_is_a_runtime_error(engine):
    with pytest.raises(ApiError) as exc:
        parse_condition("ctx.a.b == 1").evaluate({})
    assert exc.value.reason == "runtime error"
    r = engine.request("POST", "_ingest/pipeline/_simulate", {
        "pipeline": {"processors": [{"set": {"field": "y", "value": 1, "if": "ctx.a.b == 1"}}]},
        "docs": [{"_source": {"a": {"b": 1}}}, {"_source": {}}]})
    assert r.body["docs"][0]["doc"]["_source"]["y"] == 1
    assert r.body["docs"][1]["error"]["type"] == "script_exception"
    # valid Painless (any method of a ctx field compiles): the null dereference fails when it runs
    r = engine.request("POST", "_ingest/pipeline/_simulate", {
        "pipeline": {"processors": [{"set": {"field": "y", "value": 1, "if": "ctx.x.size() > 0", "tag": "t"}}]},
        "docs": [{"_source": {"x": [1]}}, {"_source": {}}]})
    assert r.body["docs"][0]["doc"]["_source"]["y"] == 1
    assert r.body["docs"][1]["error"]["caused_by"]["type"] == "null_pointer_exception"


def test_generic_processors(engine):
    pipe = {"processors": [
        {"set": {"field": "a.b", "value": "{{name}}-x"}},
        {"set": {"field": "a.b", "value": "no", "override": False}},
        {"rename": {"field": "name", "target_field": "title"}},
        {"uppercase": {"field": "title"}},
        {"lowercase": {"field": "tags"}},
        {"convert": {"field": "n", "type": "integer"}},
        {"convert": {"field": "f", "type": "double", "target_field": "g"}},
        {"remove": {"field": ["junk", "gone"], "ignore_missing": True}},
    ]}
    r = engine.request("POST", "_ingest/pipeline/_simulate", {"pipeline": pipe, "docs": [
        {"_source": {"name": "bob", "tags": ["A", "B"], "n": "5", "f": "1.5", "junk": 1}}]})
    assert r.body["docs"][0]["doc"]["_source"] == {
        "tags": ["a", "b"], "n": 5, "f": "1.5", "a": {"b": "bob-x"}, "title": "BOB", "g": 1.5}


def test_max_inference_processors(engine):
    inference = {"inference": {"model_id": "m"}}
    assert engine.request("PUT", "_ingest/pipeline/big", {"processors": [inference] * 50}).status == 200
    r = engine.request("PUT", "_ingest/pipeline/more", {"processors": [inference]})
    assert r.status == 409
    assert error_of(r)["reason"].startswith("Max number of inference processors reached, total inference processors [50]")
    assert engine.request("PUT", "_ingest/pipeline/more", {"processors": [{"set": {"field": "a", "value": 1}}]}).status == 200


def test_input_output_entries_as_es_input_config():
    from es_infer_nb.ingest.inference import input_config, split_output_path

    assert split_output_path("foo.bar.result") == ("foo.bar", "result")
    assert split_output_path("result") == (None, "result")
    assert input_config({"input_field": "in", "output_field": "out.0"}) == {
        "input_field": "in", "output_base_path": "out", "output_field": "0"}


def test_unknown_inference_type_lists_es_order(engine):
    resp = put(engine, [{"inference": {"model_id": "m", "inference_config": {"unknown_type": {}}}}])
    assert error_of(resp)["reason"] == (
        "unrecognized inference configuration type [unknown_type]. Supported types [classification, regression, "
        "fill_mask, ner, pass_through, question_answering, text_classification, text_embedding, text_expansion, "
        "text_similarity, zero_shot_classification]")


def test_verbose_on_failure_step_shows_the_failure_metadata(engine):
    body = {"pipeline": {"processors": [{"rename": {"tag": "r", "field": "missing", "target_field": "x",
                                                     "on_failure": [{"set": {"field": "f", "value": 1}}]}}]},
            "docs": [{"_source": {}}]}
    results = engine.request("POST", "_ingest/pipeline/_simulate", body, params={"verbose": "true"}).body
    steps = results["docs"][0]["processor_results"]
    assert steps[1]["doc"]["_ingest"]["on_failure_processor_tag"] == "r"
    assert steps[1]["doc"]["_ingest"]["on_failure_processor_type"] == "rename"
    plain = engine.request("POST", "_ingest/pipeline/_simulate", body).body
    assert not any(k.startswith("on_failure") for k in plain["docs"][0]["doc"]["_ingest"])
