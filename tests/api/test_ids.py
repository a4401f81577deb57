"""Ids validated per kind as ES does (issue 23.7): ``../``, NUL, backslash, newlines, upper case and
300-character ids are ES's 400 with ES's message, never a 500, nothing is stored, and no error body
carries an absolute path."""

from __future__ import annotations

import errno
import json
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from es_infer_nb import Engine
from es_infer_nb.api.ids import inference_id_problem, pipeline_id_problem
from es_infer_nb.errors import without_paths
from helpers import stump_regression

ENDPOINT = {"service": "hugging_face", "service_settings": {"url": "http://127.0.0.1:9/embed", "api_key": "k-123456"}}
BAD = {"dots": "../../x", "nul": "a\x00b", "backslash": "a\\b", "long": "a" * 300, "upper": "A", "newline": "a\n",
       "space": "a b", "slash": "a/b"}
ML_MESSAGE = ("Invalid {kind}; '{id}' can contain lowercase alphanumeric (a-z and 0-9), hyphens or underscores; "
              "must start and end with alphanumeric")


def quoted(value: str) -> str:
    return quote(value, safe="")


@pytest.fixture
def eng(tmp_path):
    engine = Engine(tmp_path / "home")
    assert engine.request("PUT", "_ml/trained_models/keep", stump_regression()).status == 200
    return engine


def validation(resp, message: str) -> None:
    assert resp.status == 400, resp.body
    err = resp.body["error"]
    assert err["type"] == "action_request_validation_exception"
    assert err["reason"] == f"Validation Failed: 1: {message};"


def no_home_in(engine: Engine, body) -> None:
    text = json.dumps(body)
    assert str(engine.home) not in text and str(Path.home()) + "/" not in text


@pytest.mark.parametrize("name", sorted(BAD))
def test_model_ids(eng, name):
    bad = BAD[name]
    resp = eng.request("PUT", f"_ml/trained_models/{quoted(bad)}", stump_regression())
    if name == "long":
        validation(resp, f"Invalid model_id; '{bad}' cannot contain more than 64 characters.")
    else:
        validation(resp, ML_MESSAGE.format(kind="model_id", id=bad))
    no_home_in(eng, resp.body)
    ids = {m["model_id"] for m in eng.request("GET", "_ml/trained_models").body["trained_model_configs"]}
    assert bad not in ids


@pytest.mark.parametrize("name", sorted(BAD))
def test_deployment_ids_follow_the_model_id_rules(eng, name):
    bad = BAD[name]
    resp = eng.request("POST", "_ml/trained_models/keep/deployment/_start", params={"deployment_id": bad})
    if name == "long":
        validation(resp, f"Invalid deployment_id; '{bad}' cannot contain more than 64 characters.")
    else:
        validation(resp, ML_MESSAGE.format(kind="deployment_id", id=bad))
    no_home_in(eng, resp.body)


@pytest.mark.parametrize("name", sorted(BAD))
def test_inference_endpoint_ids(eng, name):
    bad = BAD[name]
    resp = eng.request("PUT", f"_inference/text_embedding/{quoted(bad)}", ENDPOINT)
    if name == "long":
        validation(resp, f"Invalid inference_id; '{bad}' cannot contain more than 250 characters.")
    else:
        validation(resp, ML_MESSAGE.format(kind="inference_id", id=bad))
    no_home_in(eng, resp.body)
    assert eng.request("GET", "_inference/_all").body == {"endpoints": []}


def test_inference_endpoint_ids_longer_than_64_are_accepted_as_es_does(eng):
    long_id = "e" * 100
    assert inference_id_problem(long_id) is None
    put = eng.request("PUT", f"_inference/text_embedding/{long_id}", ENDPOINT)
    assert put.status == 200, put.body
    assert Engine(eng.home).request("GET", f"_inference/{long_id}").status == 200


@pytest.mark.parametrize("bad,reason", [
    ("../../x", "Invalid pipeline id [../../x]: must not contain the following characters "
                "[' ','\"','*',',','/','<','>','?','\\','|']"),
    ("a\\b", "Invalid pipeline id [a\\b]: must not contain the following characters "
             "[' ','\"','*',',','/','<','>','?','\\','|']"),
    ("a b", "Invalid pipeline id [a b]: must not contain the following characters "
            "[' ','\"','*',',','/','<','>','?','\\','|']"),
    ("a\x00b", "Invalid pipeline id ['a\\x00b']: must not contain control characters"),
    ("a\nb", "Invalid pipeline id ['a\\nb']: must not contain control characters"),
    ("..", "Invalid pipeline id [..]: must not be '.' or '..'"),
    ("p" * 300, f"Invalid pipeline id [{'p' * 300}]: pipeline id is too long, (300 > 255)"),
    ("é" * 200, f"Invalid pipeline id [{'é' * 200}]: pipeline id is too long, (400 > 255)"),
])
def test_pipeline_ids(eng, bad, reason):
    resp = eng.request("PUT", f"_ingest/pipeline/{quoted(bad)}", {"processors": []})
    assert resp.status == 400, resp.body
    assert resp.body["error"]["type"] == "illegal_argument_exception"
    assert resp.body["error"]["reason"] == reason
    no_home_in(eng, resp.body)
    assert eng.request("GET", "_ingest/pipeline").body == {}
    assert not any((eng.home / "pipelines").glob("*.json")) if (eng.home / "pipelines").exists() else True


def test_pipeline_ids_es_still_accepts_are_accepted(eng):
    for pid in ("My-Pipeline", "_leading", "with:colon", "dotted.name", "ünïcode"):
        assert pipeline_id_problem(pid) is None
        assert eng.request("PUT", f"_ingest/pipeline/{quoted(pid)}", {"processors": []}).status == 200, pid
    assert sorted(Engine(eng.home).request("GET", "_ingest/pipeline").body) == sorted(
        ["My-Pipeline", "_leading", "with:colon", "dotted.name", "ünïcode"])


def test_model_aliases_with_a_trailing_newline_are_refused(eng):
    resp = eng.request("PUT", f"_ml/trained_models/keep/model_aliases/{quoted('alias' + chr(10))}")
    assert resp.status == 400 and "Invalid model_alias" in resp.body["error"]["reason"]


def test_odd_ids_over_http_are_400s(eng):
    from es_infer_nb.server import serve

    with serve(eng, port=0, quiet=True) as handle:
        for path, body in (("/_ingest/pipeline/..%2F..%2Fx", {"processors": []}),
                           ("/_ml/trained_models/a%00b", stump_regression()),
                           ("/_inference/text_embedding/a%5Cb", ENDPOINT),
                           ("/_ml/trained_models/" + "a" * 300, stump_regression())):
            resp = httpx.put(handle.url + path, json=body)
            assert resp.status_code == 400, (path, resp.text)
            assert resp.json()["error"]["type"].endswith("exception")
            no_home_in(eng, resp.json())


def test_storage_failures_answer_without_the_home_path(eng, monkeypatch):
    from es_infer_nb import storage

    def full_disk(path, value, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(storage, "atomic_write_json", full_disk)
    resp = eng.request("PUT", "_ingest/pipeline/p", {"processors": []})
    assert resp.status == 500
    no_home_in(eng, resp.body)
    assert "pipelines/p.json" in resp.body["error"]["reason"]
    assert "No space left on device" in resp.body["error"]["reason"]


def test_without_paths_keeps_the_rest(tmp_path):
    home = tmp_path / "h"
    body = {"error": {"reason": f"cannot write [{home}/pipelines/x.json] or [{home}]; see {Path.home()}/log",
                      "list": [f"{home}/a"], "n": 1}}
    out = without_paths(body, home)
    assert out == {"error": {"reason": "cannot write [pipelines/x.json] or [.]; see ~/log", "list": ["a"], "n": 1}}
    assert without_paths({"reason": "http://host/path stays"}, None) == {"reason": "http://host/path stays"}
    import sys

    assert without_paths([f"in {sys.prefix}/lib/x.py"]) == ["in <python>/lib/x.py"]
