"""Secrets stay where the operator put them (issue 23): no ``{"env": ...}`` secrets from requests over
HTTP unless allowlisted, ``_update`` to a new url needs the secret again, call-time parameters
cannot steer the url, short secrets and literal credential headers are masked."""

from __future__ import annotations

import httpx
import pytest
from endpoint_servers import ali_embeddings, ok, vector

from es_infer_nb import Engine
from es_infer_nb.server import serve
from es_infer_nb.services.registry import endpoints
from es_infer_nb.services.secrets import MASK, EnvPolicy, Secret, redact

SECRET = "ali-secret-XYZ"  # what ali_embeddings() stores
ENV_VALUE = "server-env-value-42"


@pytest.fixture
def http(engine):
    handle = serve(engine, port=0, quiet=True)
    try:
        with httpx.Client(base_url=handle.url, timeout=30) as client:
            yield client
    finally:
        handle.stop()


def _env_body(url: str, variable: str) -> dict:
    body = ali_embeddings(url)
    body["service_settings"]["secret_parameters"] = {"api_key": {"env": variable}}
    return body


# -- A. {"env": ...} secrets: Python API yes, over HTTP only allowlisted ------------------------------------------

def test_env_reference_over_http_is_refused(http, engine, model_server, monkeypatch):
    monkeypatch.setenv("ES_INFER_TEST_CLOUD_KEY", ENV_VALUE)
    resp = http.put("/_inference/text_embedding/steal", json=_env_body(f"{model_server.url}/ali-embeddings",
                                                                      "ES_INFER_TEST_CLOUD_KEY"))
    assert resp.status_code == 400
    error = resp.json()["error"]
    assert error["type"] == "validation_exception"
    assert "[service_settings.secret_parameters.api_key]" in error["reason"]
    assert "env_secrets_allow" in error["reason"] and "ES_INFER_NB_ENV_SECRETS" in error["reason"]
    assert ENV_VALUE not in resp.text
    assert "steal" not in endpoints(engine).ids()
    # api_key of the openai service likewise
    openai = {"service": "openai", "service_settings": {"api_key": {"env": "ES_INFER_TEST_CLOUD_KEY"},
                                                        "model_id": "m", "url": f"{model_server.url}/embeddings"}}
    resp = http.put("/_inference/text_embedding/steal2", json=openai)
    assert resp.status_code == 400 and "[service_settings.api_key]" in resp.json()["error"]["reason"]
    # an _update cannot bring one in either
    ok(engine.request("PUT", "_inference/text_embedding/e", ali_embeddings(f"{model_server.url}/ali-embeddings")))
    resp = http.put("/_inference/e/_update", json={"service_settings": {
        "secret_parameters": {"api_key": {"env": "ES_INFER_TEST_CLOUD_KEY"}}}})
    assert resp.status_code == 400 and "environment reference" in resp.json()["error"]["reason"]


def test_env_reference_from_the_python_api_still_works(engine, model_server, monkeypatch):
    monkeypatch.setenv("ES_INFER_TEST_CLOUD_KEY", ENV_VALUE)
    ok(engine.request("PUT", "_inference/text_embedding/local",
                      _env_body(f"{model_server.url}/ali-embeddings", "ES_INFER_TEST_CLOUD_KEY")))
    ok(engine.request("POST", "_inference/local", {"input": ["x"]}))
    assert model_server.received[-1].headers["Authorization"] == f"Bearer {ENV_VALUE}"
    # the same body marked as arriving over HTTP is refused
    remote = engine.request("PUT", "_inference/text_embedding/remote",
                            _env_body(f"{model_server.url}/ali-embeddings", "ES_INFER_TEST_CLOUD_KEY"), remote=True)
    assert remote.status == 400 and remote.body["error"]["type"] == "validation_exception"


def test_allowlisted_variables_are_accepted_over_http(model_server, monkeypatch):
    monkeypatch.setenv("ES_INFER_TEST_CLOUD_KEY", ENV_VALUE)
    monkeypatch.setenv("OTHER_TEST_KEY", "other-value")
    monkeypatch.setenv("ES_INFER_NB_API_KEY", "the-servers-own-key")
    engine = Engine(env_secrets_allow=["ES_INFER_TEST_*"])
    with serve(engine, port=0, quiet=True) as handle, httpx.Client(base_url=handle.url, timeout=30) as http:
        url = f"{model_server.url}/ali-embeddings"
        assert http.put("/_inference/text_embedding/ok", json=_env_body(url, "ES_INFER_TEST_CLOUD_KEY")).status_code == 200
        answer = http.post("/_inference/ok", json={"input": ["ab"]})
        assert answer.json() == {"text_embedding": [{"embedding": vector("ab")}]}
        assert model_server.received[-1].headers["Authorization"] == f"Bearer {ENV_VALUE}"
        assert http.put("/_inference/text_embedding/no", json=_env_body(url, "OTHER_TEST_KEY")).status_code == 400
        # the operator's environment variable adds patterns
        monkeypatch.setenv("ES_INFER_NB_ENV_SECRETS", "OTHER_*, SOMETHING_ELSE")
        assert http.put("/_inference/text_embedding/no", json=_env_body(url, "OTHER_TEST_KEY")).status_code == 200
        # the server's own credentials never, even under a catch-all pattern
        monkeypatch.setenv("ES_INFER_NB_ENV_SECRETS", "*")
        resp = http.put("/_inference/text_embedding/own", json=_env_body(url, "ES_INFER_NB_API_KEY"))
        assert resp.status_code == 400 and "the-servers-own-key" not in resp.text


def test_env_policy_rules():
    local, remote = EnvPolicy(), EnvPolicy(remote=True, allow=("OPENAI_*", "EXACT"))
    assert local.allows("ANYTHING") and local.allows("ES_INFER_NB_API_KEY")
    assert remote.allows("OPENAI_API_KEY") and remote.allows("EXACT")
    assert not remote.allows("EXACTLY") and not remote.allows("HOME") and not remote.allows("ES_INFER_NB_USER")


# -- B. _update that moves the endpoint needs the secret again ----------------------------------------------------

def test_update_to_a_new_url_needs_the_secret_again(engine, model_server, http):
    ok(engine.request("PUT", "_inference/text_embedding/u", ali_embeddings(f"{model_server.url}/ali-embeddings")))
    moved = {"service_settings": {"url": f"{model_server.url}/attacker/ali-embeddings"}}
    for resp in (http.put("/_inference/u/_update", json=moved), http.put("/_inference/text_embedding/u/_update",
                                                                         json=moved)):
        assert resp.status_code == 400, resp.text
        error = resp.json()["error"]
        assert error["type"] == "validation_exception"
        assert "[secret_parameters] must be given again" in error["reason"] and "url" in error["reason"]
    assert endpoints(engine).get("u").service_settings["url"].endswith("/ali-embeddings")
    assert "/attacker/" not in endpoints(engine).get("u").service_settings["url"]
    # a change that keeps the url keeps the stored secret
    assert http.put("/_inference/u/_update", json={"service_settings": {"batch_size": 5}}).status_code == 200
    ok(engine.request("POST", "_inference/u", {"input": ["x"]}))
    assert model_server.received[-1].headers["Authorization"] == f"Bearer {SECRET}"
    # with the secret given again, the move works and only the new secret goes to the new url
    moved["service_settings"]["secret_parameters"] = {"api_key": "new-key-for-new-url"}
    assert http.put("/_inference/u/_update", json=moved).status_code == 200
    ok(engine.request("POST", "_inference/u", {"input": ["x"]}))
    last = model_server.received[-1]
    assert last.path == "/attacker/ali-embeddings" and last.headers["Authorization"] == "Bearer new-key-for-new-url"


def test_update_of_parameters_that_render_the_url_needs_the_secret_again(engine, model_server):
    body = ali_embeddings("${base}/ali-embeddings")
    body["task_settings"] = {"parameters": {"base": model_server.url}}
    ok(engine.request("PUT", "_inference/text_embedding/p", body))
    resp = engine.request("PUT", "_inference/p/_update",
                          {"task_settings": {"parameters": {"base": f"{model_server.url}/elsewhere"}}})
    assert resp.status == 400 and "must be given again" in resp.body["error"]["reason"]
    # openai: api_key
    openai = {"service": "openai", "service_settings": {"api_key": "sk-test-123", "model_id": "m",
                                                        "url": f"{model_server.url}/embeddings"}}
    ok(engine.request("PUT", "_inference/text_embedding/o", openai))
    resp = engine.request("PUT", "_inference/o/_update", {"service_settings": {"url": f"{model_server.url}/x/embeddings"}})
    assert resp.status == 400 and "[api_key] must be given again" in resp.body["error"]["reason"]
    ok(engine.request("PUT", "_inference/o/_update", {"service_settings": {"url": f"{model_server.url}/x/embeddings",
                                                                            "api_key": "sk-test-123"}}))


# -- C. call-time parameters cannot steer the url ------------------------------------------------------------------

def _steerable(engine, url: str, model_server) -> None:
    body = ali_embeddings(url)
    body["task_settings"] = {"parameters": {"seg": "v1"}}
    ok(engine.request("PUT", "_inference/text_embedding/steer", body))


@pytest.mark.parametrize("value, sent", [
    ("../../admin", "/api/..%2F..%2Fadmin/ali-embeddings"),
    ("..", "/api/%2E%2E/ali-embeddings"),
    ("x?y=1#frag", "/api/x%3Fy%3D1%23frag/ali-embeddings"),
    ("user@evil.example:80", "/api/user%40evil.example%3A80/ali-embeddings"),
    ("v2", "/api/v2/ali-embeddings"),
])
def test_call_time_parameters_fill_one_path_segment(engine, model_server, value, sent):
    _steerable(engine, f"{model_server.url}/api/${{seg}}/ali-embeddings", model_server)
    ok(engine.request("POST", "_inference/steer", {"input": ["x"], "task_settings": {"parameters": {"seg": value}}}))
    assert model_server.received[-1].path == sent
    ok(engine.request("POST", "_inference/steer", {"input": ["x"]}))
    assert model_server.received[-1].path == "/api/v1/ali-embeddings"  # the endpoint's own value, raw


def test_call_time_parameters_in_the_query_are_one_value(engine, model_server):
    _steerable(engine, f"{model_server.url}/ali-embeddings?model=${{seg}}", model_server)
    ok(engine.request("POST", "_inference/steer",
                      {"input": ["x"], "task_settings": {"parameters": {"seg": "a&admin=1#x"}}}))
    assert model_server.received[-1].path == "/ali-embeddings?model=a%26admin%3D1%23x"


def test_call_time_parameters_cannot_change_the_host(engine, model_server):
    port = model_server.url.rsplit(":", 1)[1]
    body = ali_embeddings("http://${host}/ali-embeddings")
    body["task_settings"] = {"parameters": {"host": f"127.0.0.1:{port}"}}
    ok(engine.request("PUT", "_inference/text_embedding/h", body))
    before = len(model_server.received)
    for value in (f"127.0.0.2:{port}", "evil.example", f"127.0.0.1:{port}/x"):
        resp = engine.request("POST", "_inference/h", {"input": ["x"], "task_settings": {"parameters": {"host": value}}})
        assert resp.status == 400, value
        assert "may not change the scheme, host, port or path segments" in resp.body["error"]["reason"]
    assert len(model_server.received) == before  # nothing was sent anywhere
    ok(engine.request("POST", "_inference/h", {"input": ["x"]}))


def test_inputs_never_reach_the_url(engine, model_server):
    resp = engine.request("PUT", "_inference/text_embedding/i", ali_embeddings(f"{model_server.url}/${{input}}"))
    # refused at PUT with ES's model configuration check (CustomServiceTests#testParseRequestConfig_...)
    assert resp.status == 400 and resp.body["error"]["type"] == "validation_exception"
    assert resp.body["error"]["reason"] == (
        "Validation Failed: 1: Failed to validate model configuration: Found placeholder [${input}] in field [url] "
        "after replacement call, please check that all templates have a corresponding field definition.;")


# -- D. short secrets and literal credential headers are masked --------------------------------------------------

def test_two_character_secrets_are_redacted(engine, model_server):
    body = ali_embeddings(f"{model_server.url}/echo-auth")
    body["service_settings"]["secret_parameters"] = {"api_key": "Q7"}
    ok(engine.request("PUT", "_inference/text_embedding/short", body))
    resp = engine.request("POST", "_inference/short", {"input": ["x"]})
    assert resp.status == 401
    reason = resp.body["error"]["reason"]
    assert "invalid key [Bearer ::es_redacted::]" in reason and "Q7" not in reason


def test_redact_any_length_longest_first_in_one_pass():
    assert redact("k=ab, k=abc, k=a", [Secret("ab"), Secret("abc")]) == f"k={MASK}, k={MASK}, k=a"
    assert redact("x-z", [Secret("-")]) == f"x{MASK}z"
    assert redact("es and es", [Secret("es")]) == f"{MASK} and {MASK}"  # the mask itself is not re-scanned
    assert redact('say "q\\"" ', [Secret('q"')]) == f'say "{MASK}" '  # JSON-escaped form too
    assert redact("nothing", [Secret("")]) == "nothing"


def test_literal_credential_headers_are_masked_but_sent(engine, model_server, http):
    body = ali_embeddings(f"{model_server.url}/ali-embeddings")
    body["service_settings"]["headers"] = {"Authorization": "Bearer literal-tok-1", "X-Api-Key": "k2",
                                           "Cookie": "session=c3", "X-Trace": "trace-4", "Api-Key": "${api_key}"}
    ok(engine.request("PUT", "_inference/text_embedding/lit", body))
    for got in (ok(engine.request("GET", "_inference/lit")), http.get("/_inference/lit").json()):
        headers = got["endpoints"][0]["service_settings"]["headers"]
        assert headers == {"Authorization": MASK, "X-Api-Key": MASK, "Cookie": MASK, "X-Trace": "trace-4",
                           "Api-Key": "${api_key}"}
    endpoint = endpoints(engine).get("lit")
    shown = repr(engine.request("GET", "_inference/lit")) + repr(endpoint) + str(endpoint)
    assert not any(v in shown for v in ("literal-tok-1", "k2", "session=c3"))
    put_answer = http.put("/_inference/lit/_update", json={"service_settings": {"batch_size": 3}})
    assert put_answer.status_code == 200 and "literal-tok-1" not in put_answer.text
    ok(engine.request("POST", "_inference/lit", {"input": ["x"]}))
    sent = model_server.received[-1].headers
    assert sent["Authorization"] == "Bearer literal-tok-1" and sent["X-Api-Key"] == "k2"
    assert sent["Api-Key"] == SECRET and sent["X-Trace"] == "trace-4"
