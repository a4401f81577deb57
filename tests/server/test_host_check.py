"""DNS-rebinding protection: the server answers only its own Host names and refuses foreign Origins."""

from __future__ import annotations

import base64

import httpx
import pytest
from elasticsearch import Elasticsearch

from es_infer_nb.server import serve, settings_from
from es_infer_nb.server.hosts import HostPolicy, host_of
from helpers import stump_regression


def _port(url: str) -> str:
    return url.rsplit(":", 1)[1]


def _get(port: str, host: str | None = None, origin: str | None = None, path: str = "/") -> httpx.Response:
    headers = {}
    if host is not None:
        headers["Host"] = host
    if origin is not None:
        headers["Origin"] = origin
    return httpx.get(f"http://127.0.0.1:{port}{path}", headers=headers)


@pytest.mark.parametrize("host", ["localhost", "localhost:{port}", "127.0.0.1:{port}", "127.0.0.1", "[::1]:{port}",
                                  "[::1]", "LOCALHOST:9200", "localhost.:1234", "[0:0:0:0:0:0:0:1]:80"])
def test_loopback_host_names_are_answered_on_any_port(server, host):
    port = _port(server.url)
    resp = _get(port, host.format(port=port))
    assert resp.status_code == 200, resp.text
    assert resp.json()["tagline"] == "You Know, for Search"


@pytest.mark.parametrize("host", ["evil.example", "evil.example:{port}", "127.0.0.1.evil.example:{port}",
                                  "localhost.evil.example", "10.0.0.1:{port}", "[::2]:{port}"])
def test_foreign_host_is_a_403_before_anything_runs(server, engine, host):
    port = _port(server.url)
    resp = httpx.put(f"http://127.0.0.1:{port}/_ml/trained_models/m", json=stump_regression(),
                     headers={"Host": host.format(port=port)})
    assert resp.status_code == 403
    assert resp.headers["x-elastic-product"] == "Elasticsearch"
    body = resp.json()
    assert body["status"] == 403
    assert body["error"]["type"] == "security_exception"
    assert "is not allowed" in body["error"]["reason"] and "--allowed-hosts" in body["error"]["reason"]
    assert body["error"]["root_cause"][0]["type"] == "security_exception"
    assert engine.request("GET", "_ml/trained_models/m").status == 404, "a refused request must not reach the engine"


@pytest.mark.parametrize("origin", ["http://evil.example", "https://evil.example:9200", "null", "file://",
                                    "http://127.0.0.1.evil.example", "ftp://localhost", "http://[::1"])
def test_foreign_origin_is_a_403(server, origin):
    resp = _get(_port(server.url), origin=origin)
    assert resp.status_code == 403
    assert resp.json()["error"]["type"] == "security_exception"
    assert "Origin" in resp.json()["error"]["reason"]


@pytest.mark.parametrize("origin", ["http://localhost:8888", "http://127.0.0.1:8888", "https://[::1]:443",
                                    "http://LOCALHOST"])
def test_local_origins_are_answered(server, origin):
    resp = _get(_port(server.url), origin=origin)
    assert resp.status_code == 200, resp.text


def test_the_official_client_and_a_write_still_work(server, engine):
    with Elasticsearch(server.url) as es:
        es.ml.put_trained_model(model_id="m", **stump_regression())
        answer = es.ml.infer_trained_model(model_id="m", docs=[{"x": 0.0}])
    assert answer["inference_results"] == [{"predicted_value": 1.0}]
    assert engine.request("GET", "_ml/trained_models/m").status == 200


def test_allowed_hosts_replace_the_default_list(engine):
    with serve(engine, port=0, quiet=True, allowed_hosts="es.internal, Other.Example.") as handle:
        port = _port(handle.url)
        assert _get(port, f"es.internal:{port}").status_code == 200
        assert _get(port, "other.example").status_code == 200
        assert _get(port, "other.example", origin="http://es.internal:5601").status_code == 200
        assert _get(port, f"localhost:{port}").status_code == 403
        assert _get(port, f"127.0.0.1:{port}").status_code == 403
        assert _get(port, "es.internal", origin="http://evil.example").status_code == 403
    with serve(engine, port=0, quiet=True, allowed_hosts="*") as handle:
        port = _port(handle.url)
        assert _get(port, "evil.example", origin="http://evil.example").status_code == 200


def test_the_host_check_comes_before_credentials(engine):
    key = base64.b64encode(b"id:secret-key").decode()
    with serve(engine, port=0, quiet=True, api_key=key) as handle:
        port = _port(handle.url)
        assert _get(port).status_code == 401
        assert _get(port, "evil.example").status_code == 403
        authed = httpx.get(f"http://127.0.0.1:{port}/", headers={"Authorization": f"ApiKey {key}", "Host": "evil.example"})
        assert authed.status_code == 403
        ok = httpx.get(f"http://127.0.0.1:{port}/", headers={"Authorization": f"ApiKey {key}"})
        assert ok.status_code == 200


def test_default_policy_is_the_bind_address_plus_loopback_names():
    policy = HostPolicy.build("10.1.2.3")
    assert policy.allows("10.1.2.3") and policy.allows("localhost") and policy.allows("127.0.0.1")
    assert policy.allows("::1")
    assert not policy.allows("10.1.2.4") and not policy.allows("evil.example")
    assert HostPolicy.build("127.0.0.1").hosts == ("localhost", "127.0.0.1")
    assert HostPolicy.build("::1").allows("localhost")
    assert HostPolicy.build("0.0.0.0").any and HostPolicy.build("::").any  # wildcard binds need credentials
    named = HostPolicy.build("10.1.2.3", ["es.lan"])
    assert named.allows("es.lan") and not named.allows("10.1.2.3") and not named.allows("localhost")
    with pytest.raises(ValueError, match="at least one host"):
        HostPolicy.build("127.0.0.1", " , ")
    assert settings_from(allowed_hosts="a,b").allowed_hosts == ("a", "b")
    assert settings_from().host_policy.hosts == ("localhost", "127.0.0.1")


def test_host_of_parses_header_forms():
    assert host_of("LocalHost:9200") == "localhost"
    assert host_of("[::1]:9200") == "::1"
    assert host_of("[::1]") == "::1"
    assert host_of("127.0.0.1") == "127.0.0.1"
    assert host_of("example.com.") == "example.com"


def test_missing_host_header_over_http_1_0_is_answered(server):
    import socket

    port = int(_port(server.url))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert data.split(b"\r\n", 1)[0].split(b" ")[1] == b"200"
