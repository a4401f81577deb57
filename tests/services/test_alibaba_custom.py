"""``alibaba-cloud-custom-model``'s ``path.<path>.<METHOD>`` layout: templates, validation and the secret rules
(env references only from the Python API, ``_update`` to a new url needs the secret again, call-time
parameters cannot steer the url, literal credential headers masked)."""

from __future__ import annotations

import json
from typing import Any, Iterator

import httpx
import pytest
from alibaba_services import API_KEY, EMBEDDING, RERANK, AlibabaService, start, vector_of

from es_infer_nb.server import serve
from es_infer_nb.services.registry import endpoints
from es_infer_nb.services.secrets import MASK
from es_infer_nb.services.templates import JsonTemplate

CONTENT = '{"input":${input},"input_type":"${input_type}"}'


@pytest.fixture(scope="module")
def ali() -> Iterator[AlibabaService]:
    server = start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def http(engine):
    handle = serve(engine, port=0, quiet=True)
    try:
        with httpx.Client(base_url=handle.url, timeout=30) as client:
            yield client
    finally:
        handle.stop()


def layout(url: str, path: str = EMBEDDING, method: str = "POST", **settings: Any) -> dict[str, Any]:
    """A text_embedding endpoint body in the seed's layout."""
    route = {"headers": {"Authorization": "Bearer ${api_key}"},
             "request": {"format": "string", "content": CONTENT},
             "response": {"json_parser": {"text_embeddings": "$.result.embeddings[*].embedding"}}}
    route.update(settings)
    return {"service": "alibaba-cloud-custom-model",
            "service_settings": {"secret_parameters": {"api_key": API_KEY}, "url": url, "path": {path: {method: route}}},
            "task_settings": {"parameters": {"input_type": "document"}}}


def put(engine, inference_id: str, body: dict[str, Any], task_type: str = "text_embedding"):
    return engine.request("PUT", f"_inference/{task_type}/{inference_id}", body)


def ok(resp) -> Any:
    assert resp.status == 200, resp.body
    return resp.body


def reason(resp) -> str:
    assert resp.status == 400, resp.body
    return resp.body["error"]["reason"]


# -- the body template ---------------------------------------------------------------------------------------

def test_json_template_fills_by_position():
    t = JsonTemplate('{"a":${a},"b":"x-${b}-y","c":"q\\"${c}","d":[${d}],"e":"${e}"}', "request.content")
    body = t.render({"a": ["s", 'q"'], "b": 'he said "hi"}', "c": 3, "d": True, "e": ["l", 1]})
    assert json.loads(body) == {"a": ["s", 'q"'], "b": 'x-he said "hi"}-y', "c": 'q"3', "d": [True],
                                "e": '["l", 1]'}
    assert t.names() == ["a", "b", "c", "d", "e"]


def test_json_template_is_one_pass_and_names_a_missing_value():
    t = JsonTemplate('{"a":"${a}","b":${b}}', "request.content")
    assert json.loads(t.render({"a": "${b}", "b": "${a}"})) == {"a": "${b}", "b": "${a}"}
    with pytest.raises(Exception) as err:
        t.render({"a": "x"})
    assert getattr(err.value, "reason", "") == "Found placeholder [${b}] in field [request.content] after replacement call"


# -- validation ----------------------------------------------------------------------------------------------

def test_get_without_request_sends_no_body_and_query_values_are_encoded(engine, ali):
    body = layout(ali.url, "/canned/plain", "GET", query_string="q=${q}&fixed=1")
    del body["service_settings"]["path"]["/canned/plain"]["GET"]["request"]
    body["task_settings"]["parameters"]["q"] = "a&b=c d"
    ali.can("plain", {"result": {"embeddings": [{"embedding": [0.5, 1.0]}]}})
    ok(put(engine, "g", body))
    assert ok(engine.request("POST", "_inference/g", {"input": "x"})) == {"text_embedding": [{"embedding": [0.5, 1.0]}]}
    sent = ali.received[-1]
    assert sent.method == "GET" and sent.body == b"" and sent.path == "/canned/plain?q=a%26b%3Dc%20d&fixed=1"


@pytest.mark.parametrize("change, message", [
    (lambda b: b["service_settings"]["path"][EMBEDDING]["POST"].pop("request"),
     f"[service_settings.path.{EMBEDDING}.POST] does not contain the required setting [request]"),
    (lambda b: b["service_settings"]["path"].update({"/other": {"POST": {}}}),
     "[service_settings.path] must hold exactly one path"),
    (lambda b: b["service_settings"]["path"][EMBEDDING].update({"PUT": {}}),
     f"[service_settings.path.{EMBEDDING}] must hold exactly one HTTP method"),
    (lambda b: b["service_settings"]["path"].update({EMBEDDING: {"DELETE": {}}}),
     "HTTP method [DELETE] is not supported, use one of [POST, PUT, GET]"),
    (lambda b: b["service_settings"]["path"][EMBEDDING]["POST"].update({"body": "x"}),
     "contains settings [body] unknown to the [alibaba-cloud-custom-model] service"),
    (lambda b: b["service_settings"]["path"][EMBEDDING]["POST"]["request"].update({"format": "json"}),
     "[format] must be one of [string]"),
    (lambda b: b["service_settings"]["path"][EMBEDDING]["POST"]["request"].update({"content": {"input": 1}}),
     "Invalid value type [LinkedHashMap] for setting [content], expected [String]"),
    (lambda b: b["service_settings"]["path"][EMBEDDING]["POST"].pop("response"),
     "does not contain the required setting [response]"),
    (lambda b: b["service_settings"]["path"][EMBEDDING]["POST"]["response"]["json_parser"].update(
        {"relevance_score": "$.s"}),
     "settings [relevance_score] are not read for task type [text_embedding]; it reads [text_embeddings, "
     "embedding_type]"),
    (lambda b: b["service_settings"]["path"][EMBEDDING]["POST"]["request"].update({"content": '{"x":${nope}}'}),
     "Failed to validate model configuration: Found placeholder [${nope}] in field [request.content] after "
     "replacement call"),
    (lambda b: b["service_settings"]["path"][EMBEDDING]["POST"].update({"query_string": "q=${input}"}),
     "Found placeholder [${input}] in field [query_string]"),
    (lambda b: b["service_settings"].update({"urll": "x"}),
     "Model configuration contains settings [urll] unknown to the [alibaba-cloud-custom-model] service"),
    (lambda b: b["task_settings"]["parameters"].update({"api_key": "x"}),
     "keys ['api_key'] are also secret_parameters"),
])
def test_bad_layouts_are_refused_with_the_field_named(engine, change, message):
    body = layout("http://127.0.0.1:9")
    change(body)
    assert message in reason(put(engine, "bad", body))
    assert "bad" not in endpoints(engine).ids()


def test_sparse_result_needs_its_paths(engine):
    body = layout("http://127.0.0.1:9")
    body["service_settings"]["path"][EMBEDDING]["POST"]["response"] = {
        "json_parser": {"sparse_result": {"path": "$.result.sparse_embeddings[*]", "value": {"sparse_token": "$.t"}}}}
    assert ("[service_settings.path./v3/openapi/workspaces/default/text-embedding/ops-text-embedding-001.POST."
            "response.json_parser.sparse_result.value] does not contain the required setting [sparse_weight]"
            ) in reason(put(engine, "sp", body, "sparse_embedding"))


def test_custom_task_type_needs_no_response_and_rerank_gets_query(engine, ali):
    body = layout(ali.url, RERANK, request={"format": "string", "content": '{"query":${query},"docs":${input}}'})
    route = body["service_settings"]["path"][RERANK]["POST"]
    del route["response"]
    assert "Found placeholder [${query}]" in reason(put(engine, "raw", body, "custom"))  # no query but for rerank
    route["request"]["content"] = '{"query":"fixed","docs":${input}}'
    ok(put(engine, "raw", body, "custom"))
    got = ok(engine.request("POST", "_inference/custom/raw", {"input": ["b a", "a"]}))
    assert [s["index"] for s in got["custom"]["result"]["scores"]] == [0, 1]
    route["request"]["content"] = '{"query":${query},"docs":${input}}'
    assert "does not contain the required setting [response]" in reason(put(engine, "raw3", body, "rerank"))
    route["response"] = {"json_parser": {"relevance_score": "$.result.scores[*].score"}}
    ok(put(engine, "rr", body, "rerank"))
    got = ok(engine.request("POST", "_inference/rerank/rr", {"input": ["b a", "a"], "query": "a b", "top_n": 1}))
    assert [e["index"] for e in got["rerank"]] == [0]
    assert json.loads(ali.received[-1].body) == {"query": "a b", "docs": ["b a", "a"]}


def test_flat_layout_still_works_under_the_alibaba_name(engine, ali):
    body = {"service": "alibaba-cloud-custom-model", "service_settings": {
        "url": f"{ali.url}{EMBEDDING}", "secret_parameters": {"api_key": API_KEY},
        "headers": {"Authorization": "Bearer ${api_key}"}, "request": '{"input": ${input}, "input_type": ${kind}}',
        "response": {"json_parser": {"text_embeddings": "$.result.embeddings[*].embedding"}}},
        "task_settings": {"parameters": {"kind": "query"}}}
    shown = ok(put(engine, "flat", body))
    assert shown["service_settings"]["request"] == '{"input": ${input}, "input_type": ${kind}}'
    got = ok(engine.request("POST", "_inference/flat", {"input": ["x"]}))
    assert got == {"text_embedding": [{"embedding": vector_of("x", "query")}]}


# -- secrets ---------------------------------------------------------------------------------------------------

def test_env_reference_only_from_the_python_api(engine, ali, http, monkeypatch):
    monkeypatch.setenv("ES_INFER_TEST_ALI_KEY", API_KEY)
    body = layout(ali.url)
    body["service_settings"]["secret_parameters"] = {"api_key": {"env": "ES_INFER_TEST_ALI_KEY"}}
    resp = http.put("/_inference/text_embedding/over-http", json=body)
    assert resp.status_code == 400 and "[service_settings.secret_parameters.api_key]" in resp.json()["error"]["reason"]
    assert API_KEY not in resp.text and "over-http" not in endpoints(engine).ids()
    ok(put(engine, "local", body))
    assert ok(engine.request("POST", "_inference/local", {"input": "x"}))["text_embedding"][0]["embedding"] == \
        vector_of("x")


@pytest.mark.parametrize("moved", ["url", "path"])
def test_update_to_a_new_destination_needs_the_secret_again(engine, ali, moved):
    ok(put(engine, "u", layout(ali.url)))
    new = layout(ali.url, "/elsewhere" + EMBEDDING)["service_settings"]
    change = {"url": ali.url + "/elsewhere"} if moved == "url" else {"path": new["path"]}
    resp = engine.request("PUT", "_inference/u/_update", {"service_settings": change})
    assert "[secret_parameters] must be given again" in reason(resp)
    # a change that keeps the destination keeps the stored secret
    ok(engine.request("PUT", "_inference/u/_update", {"task_settings": {"parameters": {"input_type": "query"}}}))
    ok(engine.request("POST", "_inference/u", {"input": "x"}))
    assert ali.received[-1].headers["Authorization"] == f"Bearer {API_KEY}"
    assert json.loads(ali.received[-1].body)["input_type"] == "query"
    # given again, the move works with the new secret only
    ok(engine.request("PUT", "_inference/u/_update", {"service_settings": {
        **change, "secret_parameters": {"api_key": "new-key"}}}))
    resp = engine.request("POST", "_inference/u", {"input": "x"})
    assert ali.received[-1].headers["Authorization"] == "Bearer new-key"
    assert resp.status == 401 and "new-key" not in json.dumps(resp.body)


def test_call_time_parameters_cannot_steer_the_url(engine, ali):
    port = ali.url.rsplit(":", 1)[1]
    body = layout("http://${host}", "/v3/openapi/workspaces/${ws}/text-embedding/ops-text-embedding-001")
    body["task_settings"]["parameters"].update({"host": f"127.0.0.1:{port}", "ws": "default"})
    ok(put(engine, "steer", body))
    before = len(ali.received)
    for value in ("evil.example", f"127.0.0.2:{port}", f"127.0.0.1:{port}/x"):
        resp = engine.request("POST", "_inference/steer", {"input": "x", "task_settings": {"parameters": {"host": value}}})
        assert "may not change the scheme, host, port or path segments" in reason(resp)
    assert len(ali.received) == before
    engine.request("POST", "_inference/steer", {"input": "x", "task_settings": {"parameters": {"ws": "../../a"}}})
    assert ali.received[-1].path == "/v3/openapi/workspaces/..%2F..%2Fa/text-embedding/ops-text-embedding-001"
    ok(engine.request("POST", "_inference/steer", {"input": "x"}))
    assert ali.received[-1].path == EMBEDDING


def test_literal_credential_headers_in_the_layout_are_masked_but_sent(engine, ali):
    body = layout(ali.url, headers={"Authorization": "Bearer ${api_key}", "X-Api-Key": "literal-k9",
                                    "X-Trace": "t1"})
    put_answer = ok(put(engine, "lit", body))
    for shown in (put_answer, ok(engine.request("GET", "_inference/lit"))["endpoints"][0]):
        assert shown["service_settings"]["path"][EMBEDDING]["POST"]["headers"] == {
            "Authorization": "Bearer ${api_key}", "X-Api-Key": MASK, "X-Trace": "t1"}
    assert "literal-k9" not in repr(endpoints(engine).get("lit"))
    ok(engine.request("POST", "_inference/lit", {"input": "x"}))
    assert ali.received[-1].headers["X-Api-Key"] == "literal-k9"


def test_secret_echoed_by_the_service_is_redacted(engine, ali):
    body = layout(ali.url, "/canned/echo")
    ali.can("echo", {"code": "Overloaded", "message": f"busy; your key was {API_KEY}"}, status=400)
    ok(put(engine, "echo", body))
    resp = engine.request("POST", "_inference/echo", {"input": "x"})
    assert resp.status == 400 and "Overloaded" in resp.body["error"]["reason"]
    assert API_KEY not in json.dumps(resp.body) and MASK in resp.body["error"]["reason"]
    wrong = layout(ali.url)
    wrong["service_settings"]["secret_parameters"] = {"api_key": "wrong-key-123"}
    ok(put(engine, "wrong", wrong))
    resp = engine.request("POST", "_inference/wrong", {"input": "x"})
    assert resp.status == 401 and "InvalidApiKey" in resp.body["error"]["reason"]
