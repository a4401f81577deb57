"""The custom service against upstream's response-parser, request-parameter and settings tests
(elastic/elasticsearch x-pack/plugin/inference .../services/custom/: response/*ResponseParserTests,
request/*ParametersTests, QueryParametersTests, CustomServiceSettingsTests, CustomRequestManagerTests)
and the main code they exercise (``BaseCustomResponseParser``, ``MapPathExtractor.Result``,
``ServiceUtils.extractOptionalListOfStringTuples``)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from es_infer_nb import Engine
from es_infer_nb.errors import ApiError
from es_infer_nb.services.base import InferenceContext
from es_infer_nb.services.custom import parse_custom_settings, render_request
from es_infer_nb.services.loopback import LoopbackServer
from es_infer_nb.services.parsers import parse_json_parser

EMBEDDINGS = {"text_embeddings": "$.data[*].embedding"}


def settings(task_type: str = "text_embedding", **overrides: Any) -> dict[str, Any]:
    parser = {
        "text_embedding": EMBEDDINGS,
        "completion": {"completion_result": "$.r"},
        "rerank": {"relevance_score": "$.s"},
    }[task_type]
    return {
        "url": "http://www.abc.com",
        "request": '{"input": ${input}}',
        "response": {"json_parser": parser},
        **overrides,
    }


def error(call: Any, *args: Any, **kwargs: Any) -> ApiError:
    with pytest.raises(ApiError) as info:
        call(*args, **kwargs)
    return info.value


def parse_response(task_type: str, json_parser: dict[str, Any], body: Any) -> dict[str, Any]:
    return parse_json_parser(task_type, json_parser).parse(body)


def render(task_type: str, service_settings: dict[str, Any], texts: list[str], **ctx: Any) -> dict[str, Any]:
    parsed = parse_custom_settings(task_type, service_settings)
    req = render_request(task_type, parsed, {}, {}, texts, InferenceContext(task_type, **ctx))
    return json.loads(req.body)


# -- response parsers -------------------------------------------------------------------------------------------


def test_rerank_path_errors_are_failures_to_parse_the_part():
    # RerankResponseParser.extractScores / extractIndices: the extraction itself runs inside the try
    err = error(parse_response, "rerank", {"relevance_score": "$.result.nope"}, {"result": {"scores": [1.0]}})
    assert (err.type, err.reason) == (
        "illegal_state_exception",
        "Failed to parse rerank scores, error: Unable to find field [nope] in map",
    )
    err = error(parse_response, "rerank", {"relevance_score": "$.s", "reranked_index": "$.nope"}, {"s": [1.0]})
    assert err.reason == "Failed to parse rerank indices, error: Unable to find field [nope] in map"


def test_rerank_documents_are_extracted_before_the_sizes_are_compared():
    # RerankResponseParser.transform: scores, indices and documents first, then the size checks
    body = {"result": {"indices": [1], "scores": [0.2, 0.3], "documents": [1, "b"]}}
    parser = {
        "relevance_score": "$.result.scores",
        "reranked_index": "$.result.indices",
        "document_text": "$.result.documents",
    }
    assert error(parse_response, "rerank", parser, body).reason == (
        "Failed to parse rerank documents, error: Failed to parse list entry [0], error: Unable to convert field "
        "[result.documents] of type [Integer] to [String]"
    )


def test_sparse_tokens_are_written_as_java_to_string():
    # SparseEmbeddingResponseParser.createEmbedding: ``token.toString()`` (testParse: 6 -> "6")
    body = {"r": [{"t": [6, 6.5, 7.0, True], "w": [0.1, 0.2, 0.3, 0.4]}]}
    got = parse_response("sparse_embedding", {"token_path": "$.r[*].t", "weight_path": "$.r[*].w"}, body)
    assert list(got["sparse_embedding"][0]["embedding"]) == ["6", "6.5", "7.0", "true"]


def test_entry_field_names_are_the_second_traversed_field():
    # getArrayFieldName(1): ``unknown`` when the path walked a single field
    err = error(
        parse_response, "sparse_embedding", {"token_path": "$.t", "weight_path": "$.w"}, {"t": [1, 2], "w": [1, 2]}
    )
    assert err.reason == (
        "Failed to parse sparse embedding entry [0], error: Extracted field [unknown] is an "
        "invalid type, expected a list but received [Integer]"
    )
    err = error(parse_response, "text_embedding", {"text_embeddings": "$.e"}, {"e": [1, 2]})
    assert (err.type, err.reason) == (
        "illegal_argument_exception",
        "Failed to parse text embedding entry [0], "
        "error: Extracted field [unknown] is an invalid type, expected a list but "
        "received [Integer]",
    )


def test_response_objects_are_hash_maps():
    # BaseCustomResponseParser.parse reads the body with XContentParser.map(): objects are HashMaps
    err = error(parse_response, "completion", {"completion_result": "$.result"}, {"result": {"a": 1}})
    assert err.reason == (
        "Extracted field [result] from path [$.result] is an invalid type, expected a list or a "
        "string but received [HashMap]"
    )
    err = error(parse_response, "completion", {"completion_result": "$.result[*].text"}, {"result": {"a": 1}})
    assert err.reason == (
        "Current path [[*].text] matched the array field pattern but the current object is not "
        "a list, found invalid type [HashMap] instead."
    )


# -- request parameters -----------------------------------------------------------------------------------------


def test_completion_input_is_the_first_text_or_empty():
    # CompletionParametersTests#testJsonParameters_RetrievesFirstEntryFromList / #testJsonParameters_EmptyList
    assert render("completion", settings("completion"), ["hello", "hi"]) == {"input": "hello"}
    assert render("completion", settings("completion"), []) == {"input": ""}


def test_input_type_is_an_embedding_parameter_only():
    # EmbeddingParametersTests#testTaskTypeParameters_UsesDefaultValue / #..._UsesMappedValue
    embed = settings(
        request='{"t": ${input_type}}', input_type={"translation": {"ingest": "ingest_value"}, "default": "default"}
    )
    assert render("text_embedding", embed, ["a"], input_type="ingest") == {"t": "ingest_value"}
    assert render("text_embedding", embed, ["a"], input_type="search") == {"t": "default"}
    # CompletionParameters / RerankParameters have no input_type
    err = error(render, "completion", settings("completion", request='{"t": ${input_type}}'), ["a"])
    assert err.reason == "Found placeholder [${input_type}] in field [request] after replacement call"


def test_rerank_top_n_is_only_there_when_given():
    # RerankParametersTests#testTaskTypeParameters_WithoutOptionalFields
    rerank = settings("rerank", request='{"q": ${query}, "n": ${top_n}}')
    assert render("rerank", rerank, ["a"], query="q", top_n=5) == {"q": "q", "n": 5}
    assert error(render, "rerank", rerank, ["a"], query="q").reason == (
        "Found placeholder [${top_n}] in field [request] after replacement call"
    )


def test_put_rejects_templates_the_task_types_parameters_do_not_fill():
    # CustomService.validateConfiguration: embeddings have no ${query}, completion no ${input_type}
    engine = Engine()
    for task_type, body in (
        ("text_embedding", settings(request='{"i": ${input}, "q": ${query}}')),
        ("completion", settings("completion", request='{"i": ${input}, "t": ${input_type}}')),
    ):
        resp = engine.request("PUT", f"_inference/{task_type}/x", {"service": "custom", "service_settings": body})
        assert resp.status == 400 and resp.body["error"]["type"] == "validation_exception"
        assert "Failed to validate model configuration: Found placeholder [${" in resp.body["error"]["reason"]


def test_a_request_that_cannot_be_built_is_a_status_exception():
    # CustomRequestManagerTests: ``Failed to construct the custom service request``, the cause kept
    engine = Engine()
    with LoopbackServer(lambda _req: (200, {"s": [1.0]})) as server:
        body = settings("rerank", url=server.url, request='{"q": ${query}, "d": ${input}, "n": ${top_n}}')
        assert (
            engine.request("PUT", "_inference/rerank/x", {"service": "custom", "service_settings": body}).status == 200
        )
        resp = engine.request("POST", "_inference/rerank/x", {"input": ["a"], "query": "q"})
        assert server.received == []
    assert resp.status == 400
    assert resp.body["error"]["type"] == "status_exception"
    assert resp.body["error"]["reason"] == "Failed to construct the custom service request"
    assert resp.body["error"]["caused_by"] == {
        "type": "illegal_state_exception",
        "reason": "Found placeholder [${top_n}] in field [request] after replacement call",
    }


# -- settings ---------------------------------------------------------------------------------------------------


def test_query_parameters_of_the_wrong_type():
    # QueryParametersTests#testFromMap_Throws_IfFieldIsInvalid
    assert error(parse_custom_settings, "text_embedding", settings(query_parameters="string")).reason == (
        "Validation Failed: 1: field [query_parameters] is not of the expected type. The value [string] cannot be "
        "converted to a [List];"
    )


@pytest.mark.parametrize(
    "entries, problem",
    [
        (["a"], "expected a list but the entry is [String]"),
        ([["a", "b", "c"]], "the tuple list size must be two, but was [3]"),
        ([["a", "b"], [1, "b"]], "the first element must be a string but was [Integer]"),
    ],
)
def test_query_parameter_tuples(entries, problem):
    # ServiceUtils.extractOptionalListOfStringTuples (QueryParameters.fromMap)
    index = len(entries) - 1
    assert error(parse_custom_settings, "text_embedding", settings(query_parameters=entries)).reason == (
        f"Validation Failed: 1: [service_settings] failed to parse tuple list entry [{index}] for setting "
        f"[query_parameters], {problem};"
    )


def test_query_parameters_end_the_parsing_with_the_errors_found_so_far():
    # CustomServiceSettings.fromMap: QueryParameters.fromMap throws once anything (the url) is wrong
    raw = {"response": {"json_parser": EMBEDDINGS}}
    assert error(parse_custom_settings, "text_embedding", raw).reason == (
        "Validation Failed: 1: [service_settings] does not contain the required setting [url];"
    )


def test_settings_of_the_wrong_type_use_removeAsType_wording():
    assert error(parse_custom_settings, "text_embedding", settings(headers="h")).reason == (
        "Validation Failed: 1: field [headers] is not of the expected type. The value [h] cannot be converted to a "
        "[Map];"
    )
    assert error(parse_custom_settings, "text_embedding", settings(request=5)).reason == (
        "Validation Failed: 1: field [request] is not of the expected type. The value [5] cannot be converted to a "
        "[String];"
    )


def test_text_embedding_settings():
    # CustomServiceSettings.TextEmbeddingSettings.fromMap: extractSimilarity, removeAsType(Integer)
    assert parse_custom_settings("text_embedding", settings(similarity="COSINE")).to_parsed()["similarity"] == "cosine"
    err = error(parse_custom_settings, "text_embedding", settings(similarity="bogus"))
    assert err.reason == (
        "Validation Failed: 1: [service_settings] Invalid value [bogus] received. [similarity] "
        "must be one of [cosine, dot_product, l2_norm];"
    )
    err = error(parse_custom_settings, "text_embedding", settings(dimensions="abc"))
    assert (err.type, err.reason) == (
        "status_exception",
        "field [dimensions] is not of the expected type. The value [abc] cannot be converted to a [Integer]",
    )
    # other task types do not read them: unknown settings
    err = error(parse_custom_settings, "rerank", settings("rerank", similarity="cosine"))
    assert err.reason == "Model configuration contains settings [similarity] unknown to the [custom] service"
