"""The ingest-common processors (and ``IngestDocument`` paths) against Elasticsearch's own unit tests.

Each test names the upstream test method (``modules/ingest-common/src/test/java/org/elasticsearch/ingest/
common/*Tests.java``, ``server/src/test/java/org/elasticsearch/ingest/{IngestDocument,ConfigurationUtils}Tests``)
whose input and assertion it reproduces through ``POST _ingest/pipeline/_simulate`` / ``PUT _ingest/pipeline``.
"""

from __future__ import annotations

from typing import Any

import pytest

from helpers import error_of

SOURCE: dict[str, Any] = {
    "foo": "bar",
    "int": 123,
    "fizz": {"buzz": "hello world", "foo_null": None, "1": "bar"},
    "list": [{"field": "value"}, None],
    "list2": ["foo", "bar", "baz"],
}


def simulate(engine, processors, source, *, verbose=False, pipelines=None):
    for pid, body in (pipelines or {}).items():
        assert engine.request("PUT", f"_ingest/pipeline/{pid}", body).status == 200
    r = engine.request(
        "POST",
        "_ingest/pipeline/_simulate",
        {"pipeline": {"processors": processors}, "docs": [{"_source": source}]},
        params={"verbose": "true"} if verbose else None,
    )
    assert r.status == 200, r.body
    return r.body["docs"][0]


def source_of(engine, processors, source):
    doc = simulate(engine, processors, source)
    assert "doc" in doc, doc
    return doc["doc"]["_source"]


def doc_error(engine, processors, source):
    doc = simulate(engine, processors, source)
    assert "error" in doc, doc
    return doc["error"]["type"], doc["error"]["reason"]


def reason(engine, processors, source):
    return doc_error(engine, processors, source)[1]


def config_error(engine, processor):
    r = engine.request("PUT", "_ingest/pipeline/p", {"processors": [processor]})
    assert r.status == 400, r.body
    return error_of(r)["reason"]


def fresh() -> dict[str, Any]:
    import copy

    return copy.deepcopy(SOURCE)


# -- set ------------------------------------------------------------------------------------------


def test_set_null_value_is_missing(engine):
    # SetProcessorFactoryTests#testCreateNullValue
    assert config_error(engine, {"set": {"field": "field1", "value": None}}) == "[value] required property is missing"


def test_set_copy_from_with_null_value_is_allowed(engine):
    # SetProcessor.Factory: config.remove("value") != null is the conflict (testCreateWithCopyFrom)
    r = engine.request(
        "PUT", "_ingest/pipeline/p", {"processors": [{"set": {"field": "a", "copy_from": "b", "value": None}}]}
    )
    assert r.status == 200, r.body
    assert config_error(engine, {"set": {"field": "a", "copy_from": "b", "value": "v"}}) == (
        "[copy_from] cannot set both `copy_from` and `value` in the same processor"
    )


def test_set_media_type_is_checked(engine):
    # SetProcessorFactoryTests#testMediaType
    assert config_error(engine, {"set": {"field": "f", "value": "v", "media_type": "foo/bar"}}) == (
        "[media_type] property does not contain a supported media type [foo/bar]"
    )


def test_set_copy_from_missing_with_ignore_empty_value(engine):
    # SetProcessor.execute: getFieldValue(copyFrom, Object.class, ignoreEmptyValue) reads a missing field as null
    assert source_of(engine, [{"set": {"field": "t", "copy_from": "nope", "ignore_empty_value": True}}], {"a": 1}) == {
        "a": 1
    }


def test_set_on_null_and_scalar_parents(engine):
    # IngestDocumentTests#testSetFieldValueOnExistingNullParent / #testSetFieldValueOnExistingParentTypeMismatch
    assert reason(engine, [{"set": {"field": "fizz.foo_null.test", "value": "bar"}}], fresh()) == (
        "cannot set [test] with null parent as part of path [fizz.foo_null.test]"
    )
    assert reason(engine, [{"set": {"field": "fizz.buzz.new", "value": "bar"}}], fresh()) == (
        "cannot set [new] with parent object of type [java.lang.String] as part of path [fizz.buzz.new]"
    )
    # IngestDocument.setFieldValue: a scalar or null on the way is resolved like a get
    assert reason(engine, [{"set": {"field": "foo.a.b", "value": 1}}], fresh()) == (
        "cannot resolve [a] from object of type [java.lang.String] as part of path [foo.a.b]"
    )
    assert reason(engine, [{"set": {"field": "fizz.foo_null.a.b", "value": 1}}], fresh()) == (
        "cannot resolve [a] from null as part of path [fizz.foo_null.a.b]"
    )


def test_list_index_is_parsed_as_java_int(engine):
    # IngestDocumentTests#testListSetFieldValueIndexNotNumeric (Integer.parseInt takes no "_")
    assert reason(engine, [{"set": {"field": "list.1_0", "value": "v"}}], fresh()) == (
        "[1_0] is not an integer, cannot be used as an index as part of path [list.1_0]"
    )


# -- rename / remove ----------------------------------------------------------------------------------


def test_rename_array_element_out_of_bounds(engine):
    # RenameProcessorTests#testRenameArrayElement
    procs = [
        {"rename": {"field": "list.0", "target_field": "item"}},
        {"rename": {"field": "list.0", "target_field": "list.3"}},
    ]
    assert reason(engine, procs, {"list": ["item1", "item2", "item3"]}) == (
        "[3] is out of bounds for array with length [2] as part of path [list.3]"
    )


def test_remove_keep_nested_fields(engine):
    # RemoveProcessorTests#testKeepFields
    src = {"name": "eric clapton", "age": 55, "address": {"street": "Ipiranga Street", "number": 123}}
    assert source_of(engine, [{"remove": {"keep": ["name", "address.street"]}}], src) == {
        "name": "eric clapton",
        "address": {"street": "Ipiranga Street"},
    }


def test_remove_factory_errors(engine):
    # RemoveProcessorFactoryTests#testCreateMissingField / #testCreateTooManyFields
    assert config_error(engine, {"remove": {}}) == "[keep] or [field] must be specified"
    assert config_error(engine, {"remove": {"field": "field1", "keep": "field2"}}) == (
        "[keep] and [field] cannot both be used in the same processor"
    )


def test_remove_from_null_parent(engine):
    # IngestDocumentTests#testRemoveFieldValueNotFoundNullParent
    assert reason(engine, [{"remove": {"field": "fizz.foo_null.not_there"}}], fresh()) == (
        "cannot remove [not_there] from null as part of path [fizz.foo_null.not_there]"
    )


# -- append ---------------------------------------------------------------------------------------


def test_append_null_value_is_missing(engine):
    # AppendProcessorFactoryTests#testCreateNullValue
    assert (
        config_error(engine, {"append": {"field": "field1", "value": None}}) == "[value] required property is missing"
    )


def test_append_without_duplicates_uses_java_equality(engine):
    # AppendProcessorTests#testAppendingToListWithDuplicatesDisallowed: List.contains, so 1, 1.0 and true differ
    procs = [{"append": {"field": "a", "value": [True, 1.0, 1, 2], "allow_duplicates": False}}]
    assert source_of(engine, procs, {"a": [1]}) == {"a": [1, True, 1.0, 2]}


# -- convert --------------------------------------------------------------------------------------


def test_convert_null_field(engine):
    # ConvertProcessorTests#testConvertNullField
    assert reason(engine, [{"convert": {"field": "field", "type": "integer"}}], {"field": None}) == (
        "Field [field] is null, cannot be converted to type [integer]"
    )


def test_convert_invalid_ip(engine):
    # ConvertProcessorTests#testConvertIpV4 / #testConvertIpV6
    assert reason(engine, [{"convert": {"field": "f", "type": "ip"}}], {"f": "192.168.1.256"}) == (
        "'192.168.1.256' is not an IP string literal."
    )


def test_convert_float_and_auto_give_java_floats(engine):
    # ConvertProcessorTests#testConvertFloat / #testAutoConvertDoubleNotMatched: Float.parseFloat
    for kind in ("float", "auto"):
        src = source_of(engine, [{"convert": {"field": "f", "type": kind}}], {"f": "1.23456789"})
        assert src["f"] == 1.2345679
    assert source_of(engine, [{"convert": {"field": "f", "type": "double"}}], {"f": "1.23456789"})["f"] == 1.23456789


# -- string processors -----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["lowercase", "uppercase", "trim"])
def test_string_processors_name_a_non_string_list_element(engine, kind):
    # AbstractStringProcessorTestCase#testNonStringValueInList (AbstractStringProcessor.execute)
    assert reason(engine, [{kind: {"field": "f"}}], {"f": ["x", 1]}) == (
        "value [1] of type [java.lang.Integer] in list field [f] cannot be cast to [java.lang.String]"
    )


def test_join_uses_java_to_string(engine):
    # JoinProcessor: list.stream().map(Object::toString)
    assert source_of(engine, [{"join": {"field": "f", "separator": "-"}}], {"f": [1e10, True, "x"]}) == {
        "f": "1.0E10-true-x"
    }


def test_gsub_invalid_pattern_message(engine):
    # GsubProcessorFactoryTests#testCreateInvalidPattern
    assert config_error(engine, {"gsub": {"field": "f", "pattern": "[", "replacement": "-"}}).startswith(
        "[pattern] Invalid regex pattern. Unclosed character class"
    )


# -- json -----------------------------------------------------------------------------------------


def test_json_unrecognized_token(engine):
    # JsonProcessorTests#testInvalidValue
    assert (
        "Unrecognized token 'blah': was expecting (JSON String, Number, Array, Object or token 'null', 'true' or "
        "'false')"
    ) in reason(engine, [{"json": {"field": "field", "target_field": "t"}}], {"field": "blah blah"})


def test_json_strict_parsing(engine):
    # JsonProcessorTests#testApplyWithInvalidJson
    assert reason(engine, [{"json": {"field": "f", "target_field": "t"}}], {"f": "123 foo"}) == (
        "The input 123 foo is not valid JSON and the strict_json_parsing parameter is true"
    )
    lenient = {"json": {"field": "f", "target_field": "t", "strict_json_parsing": False}}
    assert source_of(engine, [lenient], {"f": "[360113.865822] wbrdg-0afe001ce"})["t"] == [360113.865822]
    assert "Unrecognized token 'foo'" in reason(engine, [lenient], {"f": "foo [360113.865822] wbrdg"})


def test_json_conflict_strategy_checked_first(engine):
    # JsonProcessor.Factory: the strategy is parsed before the add_to_root checks
    assert config_error(engine, {"json": {"field": "a", "add_to_root_conflict_strategy": "foo"}}) == (
        "[add_to_root_conflict_strategy] conflict strategy [foo] not supported, cannot convert field."
    )


# -- foreach --------------------------------------------------------------------------------------


def test_foreach_over_a_map(engine):
    # ForEachProcessorTests#testMapIteration: _ingest._key and _ingest._value
    procs = [{"foreach": {"field": "m", "processor": {"set": {"field": "_ingest._key", "value": "K{{_ingest._key}}"}}}}]
    assert source_of(engine, procs, {"m": {"a": "x"}}) == {"m": {"Ka": "x"}}
    upper = [{"foreach": {"field": "m", "processor": {"uppercase": {"field": "_ingest._value"}}}}]
    assert source_of(engine, upper, {"m": {"a": "x", "b": "y"}}) == {"m": {"a": "X", "b": "Y"}}


def test_foreach_failure_leaves_the_list(engine):
    # ForEachProcessorTests#testExecuteWithFailure: the new list is set only once every element succeeded
    procs = [
        {"foreach": {"field": "v", "ignore_failure": True, "processor": {"uppercase": {"field": "_ingest._value"}}}}
    ]
    assert source_of(engine, procs, {"v": ["a", 1]}) == {"v": ["a", 1]}


def test_foreach_errors(engine):
    # ForEachProcessor: "cannot be cast to a list or map"; Factory: "Must specify exactly one processor type"
    procs = [{"foreach": {"field": "v", "processor": {"uppercase": {"field": "_ingest._value"}}}}]
    assert reason(engine, procs, {"v": "s"}) == "field [v] of type [java.lang.String] cannot be cast to a list or map"
    assert config_error(engine, {"foreach": {"field": "v", "processor": {}}}) == (
        "[processor] Must specify exactly one processor type"
    )


# -- pipeline -------------------------------------------------------------------------------------


def test_pipeline_cycle_names_the_pipeline(engine):
    # PipelineProcessorTests#testThrowsOnRecursivePipelineInvocations
    pipelines = {
        "inner": {"processors": [{"pipeline": {"name": "outer"}}]},
        "outer": {"processors": [{"pipeline": {"name": "inner"}}]},
    }
    doc = simulate(engine, [{"pipeline": {"name": "inner"}}], {}, pipelines=pipelines)
    assert doc["error"]["reason"] == "Cycle detected for pipeline: inner"


def test_missing_pipeline_is_an_illegal_state(engine):
    # PipelineProcessorTests#testThrowsOnMissingPipeline (IllegalStateException; verbose: IllegalArgumentException)
    procs = [{"pipeline": {"name": "missingPipelineId"}}]
    assert doc_error(engine, procs, {}) == (
        "illegal_state_exception",
        "Pipeline processor configured for non-existent pipeline [missingPipelineId]",
    )
    verbose = simulate(engine, procs, {}, verbose=True)
    assert verbose["processor_results"][0]["error"]["root_cause"][0]["type"] == "illegal_argument_exception"


# -- ConfigurationUtils ---------------------------------------------------------------------------


def test_boolean_option_must_be_a_boolean(engine):
    # ConfigurationUtilsTests#testReadBooleanPropertyInvalidType
    assert config_error(engine, {"set": {"field": "a", "value": 1, "override": "true"}}) == (
        "[override] property isn't a boolean, but of type [java.lang.String]"
    )


def test_split_separator_is_compiled_when_it_runs(engine):
    # SplitProcessor.Factory reads the separator as a string; String.split throws PatternSyntaxException per document
    r = engine.request("PUT", "_ingest/pipeline/p", {"processors": [{"split": {"field": "a", "separator": "("}}]})
    assert r.status == 200, r.body
    assert doc_error(engine, [{"split": {"field": "a", "separator": "("}}], {"a": "x(y"}) == (
        "pattern_syntax_exception",
        "Unclosed group near index 1\n(",
    )
