"""Safe by default: loopback only without credentials; ES's 401 when credentials are missing or wrong."""

from __future__ import annotations

import base64

import httpx
import pytest
from elasticsearch import AuthenticationException, Elasticsearch

from es_infer_nb.server import InsecureBindError, ServerSettings, serve, settings_from
from es_infer_nb.server.runner import start_background
from helpers import stump_regression

API_KEY_ID, API_KEY_SECRET = "key-id", "s3cr3t-api-key-value"
ENCODED = base64.b64encode(f"{API_KEY_ID}:{API_KEY_SECRET}".encode()).decode()


def test_binding_beyond_loopback_needs_credentials(engine):
    with pytest.raises(InsecureBindError, match="without credentials"):
        serve(engine, port=0, host="0.0.0.0", quiet=True)
    with pytest.raises(InsecureBindError):
        ServerSettings(host="192.168.1.10").check()
    ServerSettings(host="127.0.0.1").check()
    ServerSettings(host="::1").check()
    ServerSettings(host="localhost").check()


def test_non_loopback_with_an_api_key_serves_and_checks_it(engine, capfd):
    with serve(engine, port=0, host="0.0.0.0", api_key=ENCODED) as handle:
        port = handle.url.rsplit(":", 1)[1]
        url = f"http://127.0.0.1:{port}"
        anonymous = httpx.get(url + "/")
        assert anonymous.status_code == 401
        with Elasticsearch(url, api_key=(API_KEY_ID, API_KEY_SECRET)) as es:
            assert es.info()["tagline"] == "You Know, for Search"
    err = capfd.readouterr().err
    assert "every request needs API key" in err
    assert API_KEY_SECRET not in err and ENCODED not in err


def test_401_body_and_challenges(engine):
    with serve(engine, port=0, api_key=f"{API_KEY_ID}:{API_KEY_SECRET}", basic_auth=("elastic", "changeme"), quiet=True) as handle:
        missing = httpx.get(handle.url + "/_ml/trained_models")
        assert missing.status_code == 401
        assert missing.headers["x-elastic-product"] == "Elasticsearch"
        assert missing.headers.get_list("www-authenticate") == [
            'Basic realm="security", charset="UTF-8"',
            'Bearer realm="security"',
            "ApiKey",
        ]
        err = missing.json()["error"]
        assert err["type"] == "security_exception"
        assert err["reason"] == "missing authentication credentials for REST request [/_ml/trained_models]"
        assert err["root_cause"][0]["type"] == "security_exception"
        assert err["header"]["WWW-Authenticate"][2] == "ApiKey"
        assert missing.json()["status"] == 401

        wrong_user = httpx.get(handle.url + "/", auth=("elastic", "nope"))
        assert wrong_user.status_code == 401
        assert wrong_user.json()["error"]["reason"] == "unable to authenticate user [elastic] for REST request [/]"
        assert "nope" not in wrong_user.text

        wrong_key = httpx.get(handle.url + "/", headers={"authorization": "ApiKey d3Jvbmc6a2V5"})
        assert wrong_key.status_code == 401
        assert "unable to authenticate with provided credentials" in wrong_key.json()["error"]["reason"]

        head = httpx.head(handle.url + "/")
        assert head.status_code == 401 and head.content == b""

        with Elasticsearch(handle.url, basic_auth=("elastic", "changeme")) as es:
            es.ml.put_trained_model(model_id="m", **stump_regression())
        with Elasticsearch(handle.url, api_key=ENCODED) as es:
            assert es.ml.get_trained_models(model_id="m")["count"] == 1
        with Elasticsearch(handle.url, basic_auth=("elastic", "wrong")) as es:
            with pytest.raises(AuthenticationException):
                es.info()


def test_secrets_never_logged(engine, capfd):
    settings = settings_from("127.0.0.1", 0, api_key=ENCODED, access_log=True, log_level="debug")
    handle = start_background(engine, settings)
    try:
        httpx.get(handle.url + "/", headers={"authorization": f"ApiKey {ENCODED}"})
        httpx.get(handle.url + "/", headers={"authorization": "ApiKey wrong-secret-value"})
        httpx.get(handle.url + "/", auth=("elastic", "hunter2-password"))
    finally:
        handle.stop()
    out = capfd.readouterr()
    logged = out.out + out.err
    assert "GET / HTTP/1.1" in logged  # the access log ran
    for secret in (ENCODED, API_KEY_SECRET, "wrong-secret-value", "hunter2-password"):
        assert secret not in logged
    assert API_KEY_SECRET not in repr(settings) and ENCODED not in repr(settings)


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="basic_auth must be 'user:password'"):
        settings_from(basic_auth="no-colon")
    with pytest.raises(ValueError, match="max_content_length"):
        settings_from(max_content_length="lots")
    with pytest.raises(ValueError, match="port"):
        settings_from(port=70000)
    assert settings_from(max_content_length="512kb").max_content_length == 512 * 1024


def test_credentials_are_checked_before_the_body_is_read(engine):
    with serve(engine, port=0, api_key=ENCODED, max_content_length="1kb", quiet=True) as handle:
        big = b'{"description": "' + b"x" * 4096 + b'"}'
        anonymous = httpx.put(handle.url + "/_ingest/pipeline/p", content=big, headers={"content-type": "application/json"})
        assert anonymous.status_code == 401
        signed = httpx.put(handle.url + "/_ingest/pipeline/p", content=big,
                           headers={"content-type": "application/json", "authorization": f"ApiKey {ENCODED}"})
        assert signed.status_code == 413
