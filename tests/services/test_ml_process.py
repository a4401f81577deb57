"""ml-commons' built-in connector process functions, one by one, with the inputs and messages of their
upstream tests (common/src/test/.../connector/functions/{pre,post}process/*Test.java), and Jayway's
reading of a path (the misses ml-commons turns into MLExceptions)."""

from __future__ import annotations

from typing import Any

import pytest

from es_infer_nb.errors import ApiError
from es_infer_nb.services import jayway
from es_infer_nb.services.ml_process import (POST_PROCESS, PRE_PROCESS, RemoteParams, TextDocs, TextSimilarity,
                                             data_type_of, gson_json, parse_tensors, pre_process)


def post(name: str, found: Any, data_type: str | None = None) -> list[dict[str, Any]]:
    return POST_PROCESS[name](found, data_type)


@pytest.mark.parametrize("name, found, reason", [
    ("connector.post_process.openai.embedding", "abc", "Post process function input is not a List."),
    ("connector.post_process.openai.embedding", ["abc"],
     "The embedding should be a non-empty List containing List of Float values."),
    ("connector.post_process.openai.embedding", [["abc"]], "The embedding should be a non-empty List containing Float values."),
    ("connector.post_process.bedrock.embedding", "abc", "Post process function input is not a List."),
    ("connector.post_process.bedrock.embedding", ["abc"], "The embedding should be a non-empty List containing Float values."),
    ("connector.post_process.cohere.rerank", "abc", "Post process function input is not a List."),
    ("connector.post_process.cohere.rerank", ["abc"], "Post process function input is not a List of Map."),
    ("connector.post_process.cohere.rerank", [{"test1": "value1"}],
     "The rerank result should contain index and relevance_score."),
    ("connector.post_process.bedrock.rerank", "abc", "Post process function input is not a List."),
    ("connector.post_process.bedrock.rerank", [], "Post process function input is empty."),
    ("connector.post_process.bedrock.rerank", ["abc"], "Rerank result is not a Map."),
    ("connector.post_process.bedrock.rerank", [{}], "Rerank result is empty."),
    ("connector.post_process.bedrock.rerank", [{"index": 0}], "Rerank result should have both index and relevanceScore."),
    ("connector.post_process.bedrock.rerank", [{"index": 0, "relevanceScore": "x"}],
     "relevanceScore is not BigDecimal or Double."),
    ("connector.post_process.bedrock.batch_job_arn", "abc", "Post process function input is not a Map."),
    ("connector.post_process.bedrock.batch_job_arn", {"a": 1}, "job arn is missing."),
    ("connector.post_process.mlcommons.passthrough", "abc", "Post process function input must be a Map or List"),
    ("connector.post_process.default.embedding", None, "Can't run post process function as model output is null"),
])
def test_post_process_checks(name, found, reason):
    with pytest.raises(ApiError) as err:
        post(name, found)
    assert (err.value.type, err.value.status, err.value.reason) == ("illegal_argument_exception", 400, reason)


def test_post_process_outputs():
    assert post("connector.post_process.openai.embedding", [[1.1, 1.2, 1.3], [2.1, 2.2, 2.3]]) == [
        {"name": "sentence_embedding", "data_type": "FLOAT32", "shape": [3], "data": v}
        for v in ([1.1, 1.2, 1.3], [2.1, 2.2, 2.3])]
    assert post("connector.post_process.default.embedding", []) == []
    assert post("connector.post_process.bedrock.embedding", []) == [
        {"name": "sentence_embedding", "data_type": "FLOAT32", "shape": [0], "data": []}]
    assert post("connector.post_process.cohere_v2.embedding.uint8", [[1, 2]], "UINT8")[0]["data_type"] == "UINT8"
    scores = post("connector.post_process.cohere.rerank", [{"index": 2, "relevance_score": 0.5},
                                                            {"index": 1, "relevance_score": 0.4},
                                                            {"index": 0, "relevance_score": 0.3}])
    assert [t["data"] for t in scores] == [[0.3], [0.4], [0.5]]
    assert all(t["name"] == "similarity" and t["shape"] == [1] and t["data_type"] == "FLOAT32" for t in scores)
    with pytest.raises(ApiError) as err:  # an integer score: (Double) cast in ml-commons
        post("connector.post_process.cohere.rerank", [{"index": 0, "relevance_score": 1}])
    assert (err.value.type, err.value.status) == ("class_cast_exception", 500)
    passed = post("connector.post_process.mlcommons.passthrough", {"inference_results": [{"output": [
        {"data_type": "NOPE", "shape": [2], "data": [1, "x"], "result": "r"}]}]})
    assert passed == [{"name": "output", "shape": [2], "data": [1, None], "result": "r"}]
    assert post("connector.post_process.mlcommons.passthrough", {"a": 1}) == [{"name": "response", "dataAsMap": {"a": 1}}]


def test_data_type_from_the_path():
    assert [data_type_of(p) for p in ("$.embeddings.int8", "$.e.uint8", "$.e.binary", "$.e.ubinary", "$.e.float",
                                      "$.data[*].embedding.FLOAT32", "$.x")] == [
        "INT8", "UINT8", "BINARY", "UBINARY", None, "FLOAT32", None]


def test_pre_process_parameters():
    docs = TextDocs(("hello", "world"))
    assert pre_process("connector.pre_process.openai.embedding", docs, {}, {}).parameters == {"input": '["hello","world"]'}
    assert pre_process(None, docs, {}, {}).parameters == {"input": '["hello","world"]'}  # the default one
    assert pre_process("connector.pre_process.cohere.embedding", docs, {}, {}).parameters == {"texts": '["hello","world"]'}
    assert pre_process("connector.pre_process.bedrock.embedding", docs, {}, {}).parameters == {"inputText": "hello"}
    assert pre_process("connector.pre_process.cohere.rerank", TextSimilarity("test", ("hello",)), {}, {}).parameters == {
        "query": "test", "documents": '["hello"]', "top_n": "1"}
    given = RemoteParams({"input": "x"})
    assert all(PRE_PROCESS[name](given) is given for name in PRE_PROCESS)  # parameters pass every built-in
    assert pre_process(None, given, {}, {}) is given
    with pytest.raises(ApiError) as err:
        pre_process(None, TextSimilarity("q", ("d",)), {}, {})
    assert err.value.reason == "pre_process_function not defined in connector"
    for name, reason in (("connector.pre_process.bedrock.multimodal_embedding", "No input text or image provided"),
                         ("connector.pre_process.bedrock.nova.embedding", "No input provided"),
                         ("connector.pre_process.bedrock.nova.image_embedding", "No input image provided"),
                         ("connector.pre_process.bedrock.nova.audio_embedding", "No input audio provided")):
        with pytest.raises(ApiError) as err:
            pre_process(name, TextDocs(()), {}, {})
        assert err.value.reason == reason, name


def test_a_pre_process_script_sees_escaped_docs_and_gson_numbers():
    script = ('return \'{"parameters": {"doc": "\' + params.text_docs[0] + \'", "algo": "\' + params.algorithm + '
              '\'", "n": 3, "l": [1, 2]}}\';')
    out = pre_process(script, TextDocs(('say "hi"',)), {}, {})
    assert out.parameters == {"doc": 'say "hi"', "algo": "TEXT_EMBEDDING", "n": "3.0", "l": "[1.0,2.0]"}
    filled = pre_process('return \'{"parameters": {"m": "\' + ${parameters.model} + \'"}}\';', TextDocs(("x",)),
                         {"model": "gpt-3.5"}, {})  # ${parameters.x} in a script: its quoted JSON
    assert filled.parameters == {"m": "gpt-3.5"}  # the quoted JSON is a painless string literal


def test_gson_text():
    assert [gson_json(v) for v in (None, True, 3, 3.0, 1e-05, "a\"<b>", [1, "x"], {"k": None})] == [
        "null", "true", "3", "3.0", "1.0E-5", '"a\\"<b>"', '[1,"x"]', '{"k":null}']


def test_model_tensor_json():
    assert parse_tensors({"name": "n", "data_type": "FLOAT32", "shape": [2], "data": [1, 2], "extra": 1}) == [
        {"name": "n", "data_type": "FLOAT32", "shape": [2], "data": [1, 2]}]
    assert parse_tensors([{"name": "n", "data": [1]}, {"result": "r"}]) == [{"name": "n"}, {"result": "r"}]
    with pytest.raises(ApiError) as err:
        parse_tensors({"data_type": "FLOAT99"})
    assert err.value.reason == "No enum constant org.opensearch.ml.common.output.model.MLResultDataType.FLOAT99"


@pytest.mark.parametrize("path, answer, expected", [
    ("$.embedding", {"embedding": [1, 2]}, [1, 2]),
    ("$['a']['b'][1]", {"a": {"b": [5, 6]}}, 6),
    ("$.data[*].embedding", {"data": [{"embedding": [1]}, {"x": 1}, {"embedding": [2]}]}, [[1], [2]]),
    ("$[*]", [[1], [2]], [[1], [2]]),
    ("$.data[-1]", {"data": [1, 2, 3]}, 3),
    ("$..embedding", {"a": {"embedding": 1}, "b": [{"embedding": 2}]}, [1, 2]),
])
def test_jayway_reads(path, answer, expected):
    assert jayway.read(answer, path) == expected


@pytest.mark.parametrize("path, answer, reason", [
    ("$.embedding", {"x": []}, "No results for path: $['embedding']"),
    ("$.data[*].embedding", {"nodata": 1}, "Missing property in path $['data']"),
    ("$.a.b", {"a": {}}, "No results for path: $['a']['b']"),
    ("$.a.b.c", {"a": {}}, "Missing property in path $['a']['b']"),
    ("$.data[5]", {"data": [1]}, "No results for path: $['data'][5]"),
    ("$.a.b", {"a": [1]}, "Expected to find an object with property ['b'] in path $['a'] but found "
                          "'net.minidev.json.JSONArray'. This is not a json object according to the JsonProvider: "
                          "'com.jayway.jsonpath.spi.json.JsonSmartJsonProvider'."),
])
def test_jayway_misses(path, answer, reason):
    with pytest.raises(jayway.PathNotFound) as err:
        jayway.read(answer, path)
    assert str(err.value) == reason
