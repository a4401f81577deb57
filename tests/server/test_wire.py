"""The wire as Elasticsearch speaks it, checked with raw HTTP (httpx)."""

from __future__ import annotations

import gzip
import json
import zlib

import httpx
import pytest

from es_infer_nb import Engine
from es_infer_nb.server import serve
from helpers import stump_regression

JSON = {"content-type": "application/json"}
COMPAT = "application/vnd.elasticsearch+json; compatible-with={}"


@pytest.fixture
def http(server):
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


def _product(resp: httpx.Response) -> None:
    assert resp.headers["x-elastic-product"] == "Elasticsearch", (resp.status_code, resp.headers)


def test_root_cluster_info(http):
    resp = http.get("/")
    _product(resp)
    assert resp.status_code == 200 and resp.headers["content-type"] == "application/json"
    body = resp.json()
    assert set(body) == {"name", "cluster_name", "cluster_uuid", "version", "tagline"}
    assert body["cluster_name"] == "elasticsearch"
    assert len(body["cluster_uuid"]) == 22
    version = body["version"]
    assert version["number"].split(".")[0] == "9"
    assert version["build_flavor"] == "default"
    for key in ("lucene_version", "minimum_wire_compatibility_version", "minimum_index_compatibility_version", "build_hash"):
        assert key in version
    assert body["tagline"] == "You Know, for Search"
    assert http.get("/").json()["cluster_uuid"] == body["cluster_uuid"]


def test_cluster_uuid_is_stable_per_home(tmp_path):
    uuids = []
    for _ in range(2):
        with serve(Engine(tmp_path), port=0, quiet=True) as handle:
            uuids.append(httpx.get(handle.url + "/").json()["cluster_uuid"])
    with serve(Engine(tmp_path / "other"), port=0, quiet=True) as handle:
        other = httpx.get(handle.url + "/").json()["cluster_uuid"]
    assert uuids[0] == uuids[1] != other


def test_head_has_status_and_no_body(http):
    ok = http.head("/")
    _product(ok)
    assert ok.status_code == 200 and ok.content == b""
    missing = http.head("/_ml/trained_models/nope")
    _product(missing)
    assert missing.status_code == 404 and missing.content == b""
    http.put("/_ml/trained_models/m", json=stump_regression())
    assert http.head("/_ml/trained_models/m").status_code == 200


def test_unknown_route_wrong_method_and_error_shapes(http):
    unknown = http.get("/_nope/x?pretty=false")
    _product(unknown)
    assert unknown.status_code == 400
    assert unknown.json() == {"error": "no handler found for uri [/_nope/x?pretty=false] and method [GET]"}

    wrong = http.post("/_ml/trained_models", content=b"{}", headers=JSON)
    _product(wrong)
    assert wrong.status_code == 405
    assert wrong.headers["allow"] == "GET,HEAD"
    assert wrong.json()["error"].startswith("Incorrect HTTP method for uri [/_ml/trained_models] and method [POST]")

    missing = http.get("/_ml/trained_models/nope")
    _product(missing)
    body = missing.json()
    assert missing.status_code == 404 and body["status"] == 404
    assert body["error"]["type"] == "resource_not_found_exception"
    assert body["error"]["root_cause"][0]["type"] == "resource_not_found_exception"
    assert body["error"]["reason"]


@pytest.mark.parametrize("major", [8, 9])
def test_compatible_with_answers_in_the_same_type(http, major):
    headers = {"accept": COMPAT.format(major), "content-type": COMPAT.format(major)}
    put = http.put("/_ml/trained_models/m", content=json.dumps(stump_regression()), headers=headers)
    assert put.status_code == 200, put.text
    assert put.headers["content-type"] == f"application/vnd.elasticsearch+json;compatible-with={major}"
    got = http.get("/_ml/trained_models/m", headers={"accept": COMPAT.format(major)})
    assert got.headers["content-type"] == f"application/vnd.elasticsearch+json;compatible-with={major}"
    err = http.get("/_ml/trained_models/missing", headers={"accept": COMPAT.format(major)})
    _product(err)
    assert err.headers["content-type"] == f"application/vnd.elasticsearch+json;compatible-with={major}"


def test_unsupported_compatible_versions(http):
    old = http.get("/", headers={"accept": COMPAT.format(7)})
    _product(old)
    assert old.status_code == 400
    err = old.json()["error"]
    assert err["type"] == "media_type_header_exception"
    assert "Accept version must be either version 9 or 8, but found 7" in err["caused_by"]["reason"]
    mismatch = http.put(
        "/_ingest/pipeline/p",
        content=b'{"processors": []}',
        headers={"accept": COMPAT.format(9), "content-type": COMPAT.format(8)},
    )
    assert mismatch.status_code == 400
    assert "the compatible versions must match" in mismatch.json()["error"]["caused_by"]["reason"]


def test_unsupported_or_missing_content_type_is_406(http):
    plain = http.put("/_ingest/pipeline/p", content=b'{"processors": []}', headers={"content-type": "text/plain"})
    _product(plain)
    assert plain.status_code == 406
    assert plain.json() == {"error": "Content-Type header [text/plain] is not supported", "status": 406}
    form = http.put("/_ingest/pipeline/p", content=b'{"processors": []}', headers={"content-type": "application/x-www-form-urlencoded"})
    assert form.status_code == 406
    missing = http.put("/_ingest/pipeline/p", content=b'{"processors": []}')
    assert missing.status_code == 406
    assert missing.json() == {"error": "Content-Type header is missing", "status": 406}
    # no body: no content type needed
    assert http.get("/_ingest/pipeline").status_code == 200
    # parameters on the JSON type are fine
    charset = http.put("/_ingest/pipeline/p", content=b'{"processors": []}', headers={"content-type": "application/json; charset=UTF-8"})
    assert charset.status_code == 200, charset.text
    # an unknown route says so before looking at the content type, as ES does
    unknown = http.put("/_nope/x", content=b"x", headers={"content-type": "text/plain"})
    assert unknown.status_code == 400 and unknown.json()["error"].startswith("no handler found for uri [/_nope/x]")


def test_gzip_and_deflate_request_bodies(http):
    body = json.dumps({"processors": [{"set": {"field": "a", "value": 1}}]}).encode()
    resp = http.put("/_ingest/pipeline/gz", content=gzip.compress(body), headers={**JSON, "content-encoding": "gzip"})
    assert resp.status_code == 200, resp.text
    assert http.get("/_ingest/pipeline/gz").json()["gz"]["processors"][0]["set"]["field"] == "a"
    resp = http.put("/_ingest/pipeline/df", content=zlib.compress(body), headers={**JSON, "content-encoding": "deflate"})
    assert resp.status_code == 200, resp.text
    broken = http.put("/_ingest/pipeline/x", content=b"not gzip", headers={**JSON, "content-encoding": "gzip"})
    _product(broken)
    assert broken.status_code == 400 and "decompress" in broken.json()["error"]["reason"]


def test_gzip_responses_when_accepted(http):
    resp = http.get("/", headers={"accept-encoding": "gzip"})
    assert resp.headers["content-encoding"] == "gzip"
    assert resp.json()["tagline"] == "You Know, for Search"  # httpx inflates it
    raw = http.get("/", headers={"accept-encoding": "identity"})
    assert "content-encoding" not in raw.headers


def test_empty_bodies(http):
    http.put("/_ml/trained_models/m", json=stump_regression())
    # ES allows an empty body where the body is optional ...
    assert http.request("GET", "/_ml/trained_models/m", content=b"", headers=JSON).status_code == 200
    # ... and says it is required where it is not
    resp = http.put("/_ingest/pipeline/p", content=b"", headers=JSON)
    _product(resp)
    assert resp.status_code == 400
    assert resp.json()["error"]["reason"] == "request body is required"


def test_malformed_json_gets_the_parse_error(http):
    resp = http.put("/_ingest/pipeline/p", content=b'{"processors": [', headers=JSON)
    _product(resp)
    assert resp.status_code == 400
    err = resp.json()["error"]
    assert err["type"] == "x_content_parse_exception"
    assert "Traceback" not in resp.text
    bad_utf8 = http.put("/_ingest/pipeline/p", content=b'{"description": "\xff"}', headers=JSON)
    assert bad_utf8.status_code == 400
    assert bad_utf8.json()["error"]["type"] == "x_content_parse_exception"


def test_query_parameters_as_clients_send_them(http):
    for name in ("a1", "a2", "b1"):
        http.put(f"/_ml/trained_models/{name}", json=stump_regression())
    listed = http.get("/_ml/trained_models/a1,b*", params={"allow_no_match": "true", "size": "10", "from": "0"})
    assert [m["model_id"] for m in listed.json()["trained_model_configs"]] == ["a1", "b1"]
    strict = http.get("/_ml/trained_models/zzz*", params={"allow_no_match": "false"})
    assert strict.status_code == 404
    blank = http.get("/_ml/trained_models/zzz*?allow_no_match")  # bare flag means true
    assert blank.status_code == 200
    bogus = http.get("/_ml/trained_models?allow_no_match=maybe")
    assert bogus.status_code == 400
    assert bogus.json()["error"]["reason"] == "Failed to parse value [maybe] as only [true] or [false] are allowed."
    unknown = http.get("/_ml/trained_models?colour=red")
    assert unknown.status_code == 400 and "unrecognized parameter: [colour]" in unknown.json()["error"]["reason"]
    traced = http.get("/_ml/trained_models/nope?error_trace=true&human=true")
    assert traced.status_code == 404 and traced.json()["error"]["type"] == "resource_not_found_exception"


def test_filter_path_and_pretty(http):
    http.put("/_ml/trained_models/m1", json=stump_regression())
    http.put("/_ml/trained_models/m2", json=stump_regression())
    resp = http.get("/_ml/trained_models/m*", params={"filter_path": "count,trained_model_configs.model_id"})
    assert resp.json() == {"count": 2, "trained_model_configs": [{"model_id": "m1"}, {"model_id": "m2"}]}
    excluded = http.get("/_ml/trained_models/m1", params={"filter_path": "-trained_model_configs.input,-count"})
    assert "count" not in excluded.json() and "input" not in excluded.json()["trained_model_configs"][0]
    nothing = http.get("/_ml/trained_models", params={"filter_path": "nope"})
    assert nothing.json() == {}
    err = http.get("/_ml/trained_models/zzz", params={"filter_path": "error.type"})
    assert err.status_code == 404 and err.json() == {"error": {"type": "resource_not_found_exception"}}
    pretty = http.get("/?pretty")
    assert pretty.text.startswith('{\n  "name" : ') and pretty.text.endswith("}\n")
    compact = http.get("/?pretty=false")
    assert "\n" not in compact.text


def test_body_over_max_content_length_is_413(engine):
    with serve(engine, port=0, max_content_length="1kb", quiet=True) as handle, httpx.Client(base_url=handle.url) as http:
        big = json.dumps({"description": "x" * 2048, "processors": []}).encode()
        resp = http.put("/_ingest/pipeline/p", content=big, headers=JSON)
        _product(resp)
        assert resp.status_code == 413 and resp.content == b""
        # a small gzip body that inflates past the limit is refused too
        bomb = http.put("/_ingest/pipeline/p", content=gzip.compress(big), headers={**JSON, "content-encoding": "gzip"})
        assert bomb.status_code == 413
        # streamed without a Content-Length
        chunked = http.put("/_ingest/pipeline/p", content=iter([big[:600], big[600:]]), headers=JSON)
        assert chunked.status_code == 413
    assert not handle.running
    assert engine.pipelines.get("p") is None


def test_numbers_and_unicode_round_trip(http):
    body = {"description": "naïve — ünïcode ✓", "processors": [{"set": {"field": "v", "value": 1.5e-7}}]}
    assert http.put("/_ingest/pipeline/u", json=body).status_code == 200
    got = http.get("/_ingest/pipeline/u").json()["u"]
    assert got["description"] == body["description"]
    assert got["processors"][0]["set"]["value"] == 1.5e-7
