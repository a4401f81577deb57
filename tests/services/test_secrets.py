"""Secrets are write-only: never in GET, reprs, errors, the endpoint store or _stats; 0600 file or env refs."""

from __future__ import annotations

import os
import stat

from endpoint_servers import ali_embeddings, ok

from es_infer_nb import Engine
from es_infer_nb.services.registry import endpoints
from es_infer_nb.services.secrets import SECRETS_FILE

SECRET = "ali-secret-XYZ"


def _all_text(home) -> dict[str, str]:
    return {str(p): p.read_text(errors="replace") for p in home.rglob("*") if p.is_file()}


def test_secret_never_shown_and_persisted_apart(tmp_path, model_server):
    engine = Engine(tmp_path)
    put = ok(engine.request("PUT", "_inference/text_embedding/s", ali_embeddings(f"{model_server.url}/ali-embeddings")))
    assert SECRET not in repr(put) and "secret_parameters" not in put["service_settings"]
    got = ok(engine.request("GET", "_inference/s"))
    assert SECRET not in repr(got)
    endpoint = endpoints(engine).get("s")
    for obj in (endpoint, endpoints(engine), endpoints(engine).secrets, endpoint.secrets, engine):
        assert SECRET not in repr(obj) and SECRET not in str(obj)
    assert SECRET not in repr(ok(engine.request("GET", "_ml/trained_models/_stats")))
    files = _all_text(tmp_path)
    secret_file = tmp_path / SECRETS_FILE
    holding = [p for p, text in files.items() if SECRET in text]
    assert holding == [str(secret_file)]
    assert stat.S_IMODE(os.stat(secret_file).st_mode) == 0o600
    # a new engine on the same home still calls the service with the secret
    again = Engine(tmp_path)
    assert ok(again.request("POST", "_inference/s", {"input": ["x"]}))["text_embedding"]
    assert model_server.received[-1].headers["Authorization"] == f"Bearer {SECRET}"
    ok(again.request("DELETE", "_inference/s"))
    assert SECRET not in secret_file.read_text()


def test_secret_echoed_by_the_service_is_redacted(engine, model_server):
    ok(engine.request("PUT", "_inference/text_embedding/echo", ali_embeddings(f"{model_server.url}/echo-auth")))
    resp = engine.request("POST", "_inference/echo", {"input": ["x"]})
    assert resp.status == 401
    reason = resp.body["error"]["reason"]
    assert "invalid key" in reason and SECRET not in reason


def test_secret_in_the_body_is_json_escaped_and_documents_cannot_inject(engine, model_server):
    body = ali_embeddings(f"{model_server.url}/ali-embeddings",
                          request='{"input": ${input}, "key": ${api_key}}')
    ok(engine.request("PUT", "_inference/text_embedding/inj", body))
    evil = 'x", "key": "stolen", "y": "${api_key}'
    ok(engine.request("POST", "_inference/inj", {"input": [evil]}))
    sent = model_server.received[-1].json()
    assert sent == {"input": [evil], "key": SECRET}  # the document stayed one string, ${api_key} stayed literal


def test_secret_from_an_environment_variable(tmp_path, model_server, monkeypatch):
    monkeypatch.setenv("ES_INFER_TEST_KEY", "env-secret-123")
    engine = Engine(tmp_path)
    body = ali_embeddings(f"{model_server.url}/ali-embeddings")
    body["service_settings"]["secret_parameters"] = {"api_key": {"env": "ES_INFER_TEST_KEY"}}
    ok(engine.request("PUT", "_inference/text_embedding/env", body))
    ok(engine.request("POST", "_inference/env", {"input": ["x"]}))
    assert model_server.received[-1].headers["Authorization"] == "Bearer env-secret-123"
    assert not any("env-secret-123" in text for text in _all_text(tmp_path).values())
    monkeypatch.delenv("ES_INFER_TEST_KEY")
    missing = Engine(tmp_path).request("POST", "_inference/env", {"input": ["x"]})
    assert missing.status == 400 and "[ES_INFER_TEST_KEY]" in missing.body["error"]["reason"]


def test_validation_errors_do_not_echo_secrets(engine):
    body = {"service": "openai", "service_settings": {"api_key": "sk-very-secret", "model_id": "m",
                                                      "dimensions": "sk-very-secret"}}
    resp = engine.request("PUT", "_inference/text_embedding/v", body)
    assert resp.status == 400 and "sk-very-secret" not in repr(resp.body)
    body = {"service": "openai", "service_settings": {"api_key": "sk-very-secret", "model_id": "m",
                                                      "bogus": "sk-very-secret"}}
    resp = engine.request("PUT", "_inference/text_embedding/v", body)
    assert resp.status == 400 and "sk-very-secret" not in repr(resp.body) and "bogus" in repr(resp.body)


def test_secrets_stay_out_of_logs(engine, model_server, caplog):
    import logging

    body = ali_embeddings(f"{model_server.url}/ali-embeddings", query_parameters=[["key", "${api_key}"]])
    with caplog.at_level(logging.DEBUG):
        ok(engine.request("PUT", "_inference/text_embedding/logged", body))
        ok(engine.request("POST", "_inference/logged", {"input": ["x"]}))
    assert "key=ali-secret-XYZ" in model_server.received[-1].path  # the service got it
    assert any("HTTP Request" in r.getMessage() for r in caplog.records)  # httpx logged the call
    assert not any(SECRET in r.getMessage() for r in caplog.records)
