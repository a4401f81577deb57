"""``_inference`` endpoint requests as ES's REST handlers and transport actions read them: task types (any case,
``any`` for none, ServiceUtils.resolveTaskType's messages), PUT's service checks, ``_update``'s body rules,
DELETE's parameters and answers, InferenceAction.Request.validate keyed on the URL's task type, ``_services``."""

from __future__ import annotations

from typing import Any

from endpoint_servers import ali_embeddings, ok


def error(resp: Any) -> tuple[int, str, str]:
    assert resp.status >= 400, resp.body
    return resp.status, resp.body["error"]["type"], resp.body["error"]["reason"]


def rerank_body(url: str) -> dict[str, Any]:
    return {"service": "custom", "service_settings": {
        "url": url, "secret_parameters": {"api_key": "k-rerank-secret"},
        "request": '{"query": ${query}, "docs": ${input}, "top_n": ${top_n}}',
        "response": {"json_parser": {"reranked_index": "$.result.scores[*].index",
                                     "relevance_score": "$.result.scores[*].score"}}}}


def test_task_types_in_paths_and_bodies(engine, model_server):
    url = f"{model_server.url}/ali-embeddings"
    assert ok(engine.request("PUT", "_inference/TEXT_EMBEDDING/e1", ali_embeddings(url)))["task_type"] == "text_embedding"
    assert ok(engine.request("PUT", "_inference/any/e2", {**ali_embeddings(url), "task_type": "Text_Embedding"}))
    assert ok(engine.request("GET", "_inference/any/e1"))["endpoints"][0]["inference_id"] == "e1"
    assert [e["inference_id"] for e in ok(engine.request("GET", "_inference/any/_all"))["endpoints"]] == ["e1", "e2"]
    assert ok(engine.request("POST", "_inference/any/e1", {"input": "a"}))["text_embedding"]
    assert error(engine.request("PUT", "_inference/e3", ali_embeddings(url))) == (
        400, "status_exception", "model is missing required setting [task_type]")
    assert error(engine.request("PUT", "_inference/any/e3", ali_embeddings(url)))[2] == \
        "model is missing required setting [task_type]"
    assert error(engine.request("PUT", "_inference/text_embedding/e3", {**ali_embeddings(url),
                                                                        "task_type": "sparse_embedding"}))[2] == (
        "Cannot resolve conflicting task_type parameter in the request URL [text_embedding] and the request body "
        "[sparse_embedding]")
    assert error(engine.request("PUT", "_inference/e3", {**ali_embeddings(url), "task_type": "any"}))[2] == \
        "task_type [any] is not valid type for inference"
    assert error(engine.request("PUT", "_inference/bad/e3", ali_embeddings(url))) == (
        400, "status_exception", "Unknown task_type [bad]")
    assert error(engine.request("GET", "_inference/sparse_embedding/e1")) == (
        400, "status_exception",
        "Requested task type [sparse_embedding] does not match the inference endpoint's task type [text_embedding]")
    assert error(engine.request("DELETE", "_inference/bad/e1"))[2] == "Unknown task_type [bad]"


def test_put_checks_the_service_first(engine, model_server):
    body = ali_embeddings(f"{model_server.url}/ali-embeddings")
    del body["service"]
    assert error(engine.request("PUT", "_inference/text_embedding/x", body)) == (
        400, "status_exception", "Inference endpoint configuration is missing the [service] setting")
    assert error(engine.request("PUT", "_inference/text_embedding/x", {**body, "service": "foo", "extra": 1}))[2] == \
        "Unknown service [foo]"
    for odd in ({"a": 1}, [1]):  # found by the request fuzzer (seed 21): was a 500 "unhashable type"
        status, kind, _ = error(engine.request("PUT", "_inference/text_embedding/x", {**body, "service": odd}))
        assert (status, kind) == (400, "status_exception")


def test_update_body_rules(engine, model_server):
    url = f"{model_server.url}/ali-embeddings"
    ok(engine.request("PUT", "_inference/text_embedding/u1", ali_embeddings(url)))
    update = "_inference/u1/_update"
    assert error(engine.request("PUT", update, {})) == (400, "status_exception", "Request body is empty")
    assert error(engine.request("PUT", update, {"foo": 1}))[2] == (
        "Request contained fields which cannot be updated, remove these fields and try again [foo]")
    assert error(engine.request("PUT", update, {"service_settings": "x"}))[2] == \
        "Unable to parse [service_settings] in the request"
    assert error(engine.request("PUT", update, {"task_type": "sparse_embedding"}))[2] == \
        "Task type must match the task type of the existing endpoint"
    assert error(engine.request("PUT", "_inference/rerank/u1/_update", {"task_settings": {}}))[2] == \
        "Task type must match the task type of the existing endpoint"
    assert error(engine.request("PUT", update, {"task_type": "bad"}))[2] == "Unknown task_type [bad]"
    assert error(engine.request("PUT", "_inference/Bad_ID/_update", {"task_settings": {}}))[1] == \
        "action_request_validation_exception"
    updated = ok(engine.request("PUT", update, {"task_type": "text_embedding", "task_settings": {"parameters": {"a": "1"}}}))
    assert updated["task_settings"] == {"parameters": {"a": "1"}}


def test_delete_parameters_and_answers(engine, model_server):
    ok(engine.request("PUT", "_inference/text_embedding/d1", ali_embeddings(f"{model_server.url}/ali-embeddings")))
    assert error(engine.request("DELETE", "_inference/nope", params={"force": "yes"}))[2] == \
        "Failed to parse value [yes] as only [true] or [false] are allowed."
    assert ok(engine.request("DELETE", "_inference/d1", params={"dry_run": "true"})) == {
        "acknowledged": False, "pipelines": [], "error_message": ""}
    assert ok(engine.request("DELETE", "_inference/any/d1")) == {"acknowledged": True, "pipelines": []}


def test_inference_request_validation_follows_the_urls_task_type(engine, model_server):
    ok(engine.request("PUT", "_inference/text_embedding/i1", ali_embeddings(f"{model_server.url}/ali-embeddings")))
    ok(engine.request("PUT", "_inference/rerank/r1", rerank_body(f"{model_server.url}/ali-rerank")))
    for field, value in (("top_n", 2), ("return_documents", True)):
        assert error(engine.request("POST", "_inference/text_embedding/i1", {"input": ["a"], field: value})) == (
            400, "action_request_validation_exception",
            f"Validation Failed: 1: Field [{field}] cannot be specified for task type [text_embedding];")
    assert ok(engine.request("POST", "_inference/i1", {"input": ["a"], "top_n": 2}))  # untyped: not checked
    assert error(engine.request("POST", "_inference/rerank/r1", {"input": ["a"], "query": ""}))[2] == \
        "Validation Failed: 1: Field [query] cannot be empty for task type [rerank];"
    assert error(engine.request("POST", "_inference/rerank/r1", {"input": ["a"], "query": "q", "input_type": "search"}))[2] \
        == "Validation Failed: 1: Field [input_type] cannot be specified for task type [rerank];"
    answer = ok(engine.request("POST", "_inference/rerank/r1", {"input": ["a b", "b"], "query": "b", "top_n": "1",
                                                                "input_type": "unspecified", "timeout": "20s"}))
    assert len(answer["rerank"]) == 1
    bad = engine.request("POST", "_inference/text_embedding/i1", {"input": ["a"], "input_type": "internal_search"})
    assert error(bad) == (400, "x_content_parse_exception",
                          "[cluster:internal/xpack/inference] failed to parse field [input_type]")
    assert bad.body["error"]["caused_by"]["reason"] == "Unrecognized input_type [internal_search]"
    assert error(engine.request("POST", "_inference/rerank/r1", {"input": ["a"], "query": 3}))[2] == \
        "[cluster:internal/xpack/inference] failed to parse field [query]"
    assert error(engine.request("POST", "_inference/i1", {"input": ["a"], "foo": 1}))[2] == \
        "[cluster:internal/xpack/inference] unknown field [foo]"
    assert ok(engine.request("POST", "_inference/i1", {"input": ["a"], "query": "ignored"}))["text_embedding"]


def test_services_listing(engine):
    listed = ok(engine.request("GET", "_inference/_services"))
    names = [s["service"] for s in listed]
    assert names == sorted(names)
    by_name = {s["service"]: s for s in listed}
    assert (by_name["custom"]["name"], by_name["openai"]["name"], by_name["hugging_face"]["name"]) == (
        "Custom", "OpenAI", "Hugging Face")
    setting = next(iter(by_name["openai"]["configurations"].values()))
    assert "default_value" not in setting or setting["default_value"] is not None
    assert list(setting)[-1] == "supported_task_types"
    assert ok(engine.request("GET", "_inference/_services/any")) == listed
