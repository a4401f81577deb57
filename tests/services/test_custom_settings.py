"""The custom service's settings parsing and request rendering edge cases (ES's CustomServiceSettings,
InputTypeTranslator and CustomRequest messages)."""

from __future__ import annotations

import pytest

from es_infer_nb.errors import ApiError
from es_infer_nb.services.base import InferenceContext
from es_infer_nb.services.custom import parse_custom_settings, render_request
from es_infer_nb.services.uri import uri_syntax_error

BASE = {"url": "http://www.abc.com", "request": '{"input": ${input}}',
        "response": {"json_parser": {"text_embeddings": "$.data[*].embedding"}}}


def parse(**overrides):
    return parse_custom_settings("text_embedding", {**BASE, **overrides})


def test_header_values_must_be_strings_and_nulls_are_dropped():
    with pytest.raises(ApiError) as info:
        parse(headers={"key": 1})
    assert info.value.reason == ("Validation Failed: 1: Map field [headers] has an entry that is not valid, "
                                 "[key => 1]. Value type of [1] is not one of [String].;")
    assert parse(headers={"a": "b", "gone": None}).headers == {"a": "b"}


@pytest.mark.parametrize("where, settings", [
    ("json_parser", {"response": {"json_parser": {"text_embeddings": "$.x", "key": "value"}}}),
    ("response", {"response": {"json_parser": {"text_embeddings": "$.x"}, "key": "value"}}),
    ("request", {"request": {"content": "body", "key": "value"}}),
])
def test_unknown_nested_settings_are_refused(where, settings):
    with pytest.raises(ApiError) as info:
        parse(**settings)
    assert info.value.type == "status_exception"
    assert info.value.reason == (f"Configuration contains unknown settings [{{key=value}}] while parsing field "
                                 f"[{where}] for settings [custom_service_settings]")


def test_input_type_keys_any_case_and_invalid_keys():
    got = parse(input_type={"translation": {"Search": "query", "CLUSTERING": "c", "INGEST": "doc"}, "default": "x"}
                ).input_type
    assert got == {"translation": {"ingest": "doc", "search": "query", "clustering": "c"}, "default": "x"}
    assert list(got["translation"]) == ["ingest", "search", "clustering"]  # InputType's order, as ES writes them
    with pytest.raises(ApiError) as info:
        parse(input_type={"translation": {"internal_ingest": "doc"}})
    assert info.value.reason == ("Validation Failed: 1: Invalid input type translation for key: [internal_ingest], is "
                                 "not a valid value. Must be one of [ingest, search, classification, clustering];")
    with pytest.raises(ApiError) as info:
        parse(input_type={"translation": {"ingest": ""}})
    assert "Input type translation value for key [ingest] must be a String that is not null and not empty" in (
        info.value.reason)


def test_element_type_follows_the_embedding_type_and_defaults():
    parsed = parse(response={"json_parser": {"text_embeddings": "$.x", "embedding_type": "byte"}}).to_parsed()
    assert parsed["element_type"] == "byte" and parsed["similarity"] is None
    assert parsed["input_type"] == {"translation": {}, "default": ""}
    completion = parse_custom_settings("completion", {**BASE, "response": {"json_parser": {"completion_result": "$.r"}}})
    assert completion.to_parsed()["element_type"] is None
    assert "element_type" not in completion.to_public()


def test_invalid_url_is_reported_as_java_uri_does():
    settings = parse(url="${url}")
    with pytest.raises(ApiError) as info:
        render_request("text_embedding", settings, {"url": "^"}, {}, ["a"], InferenceContext("text_embedding"))
    assert info.value.reason == "Failed to build URI, error: Illegal character in path at index 0: ^"
    assert uri_syntax_error("http://a.com/a b") == "Illegal character in path at index 14: http://a.com/a b"
    assert uri_syntax_error("http://a.com/x?q=%zz") == "Malformed escape pair at index 17: http://a.com/x?q=%zz"
    assert uri_syntax_error("http://127.0.0.1:8080/v1/embed?x=1&y=%20") is None
