"""Mutated requests (issue 19, point 4): valid requests, mutated deterministically — keys dropped,
types swapped, huge and odd strings, NaN, deep nesting, odd ids — never escape as exceptions,
never answer a 5xx or a body that is not JSON, and never change what was stored before."""

from __future__ import annotations

import copy
import json
import math
import os
import random
import time
from typing import Any

import pytest

from es_infer_nb import Engine
from es_infer_nb.server.render import to_json_bytes
from helpers import churn_model, stump_regression

ENDPOINT = {"service": "hugging_face", "service_settings": {"url": "http://127.0.0.1:9/embed", "api_key": "k-123456"}}
PIPELINE = {"description": "keep", "processors": [
    {"set": {"field": "s", "value": "{{x}}", "if": "ctx.x != null"}},
    {"inference": {"model_id": "keep", "target_field": "out", "field_map": {"v": "x"}}},
]}
CONNECTOR = {"name": "c", "description": "d", "version": 1, "protocol": "http",
             "parameters": {"endpoint": "http://127.0.0.1:9"}, "credential": {"api_key": "k-123456"},
             "actions": [{"action_type": "predict", "method": "POST", "url": "${parameters.endpoint}/embed",
                          "headers": {"Authorization": "Bearer ${credential.api_key}"},
                          "request_body": '{ "input": "${parameters.input}" }'}]}
ODD_STRINGS = ["", "\x00", "a\x00b", "\ud800", "\udfff lone", "\u202eRTL\u202c", "\u200f\u05e9\u05dc\u05d5\u05dd",
               "emoji 🧪", "line\nbreak", "../../etc/passwd", "C:\\\\windows", "%00%2F", "{{x}}", "' OR 1=1 --",
               "\t", " " * 10, "ü" * 300]
ODD_IDS = ["../x", "..", "a%00b", "a%5Cb", "A", "x" * 300, "%20", "_all", "*", "a%2Fb", "%F0%9F%A7%AA",
           "a.b", "-a", "a-", "%ED%A0%80", "a%0A"]
BIG = "b" * (1024 * 1024)


def valid_requests() -> list[tuple[str, str, Any]]:
    """(method, path, body) of valid requests; ``{id}`` is replaced per request (new objects only)."""
    return [
        ("PUT", "_ml/trained_models/{id}", stump_regression()),
        ("POST", "_ml/trained_models/keep/_infer", {"docs": [{"x": 0.2}, {"x": 0.9}],
                                                    "inference_config": {"regression": {"results_field": "r"}}}),
        ("PUT", "_ingest/pipeline/{id}", PIPELINE),
        ("POST", "_ingest/pipeline/keep/_simulate", {"docs": [{"_source": {"v": 0.1}}, {"_source": {"v": 0.7}}]}),
        ("POST", "_ingest/pipeline/_simulate", {"pipeline": PIPELINE, "docs": [{"_source": {"v": 0.1}}]}),
        ("PUT", "_inference/text_embedding/{id}", ENDPOINT),
        ("GET", "_ml/trained_models/{id}/_stats", None),
        ("POST", "_ml/trained_models/{id}/deployment/_start", {"number_of_allocations": 1}),
        ("PUT", "_ml/trained_models/keep/model_aliases/{id}", None),
        ("PUT", "_ml/trained_models/{id}", churn_model()),
        ("POST", "_ml/trained_models/churner/_infer", {"docs": [{"tenure": 3, "plan": "pro"}], "inference_config": {
            "classification": {"num_top_classes": 2, "top_classes_results_field": "top", "num_top_feature_importance_values": 1}}}),
        ("POST", "_ingest/pipeline/_simulate", {"pipeline": {"processors": [
            {"convert": {"field": "n", "type": "integer", "ignore_missing": True}},
            {"gsub": {"field": "t", "pattern": "a+", "replacement": "b"}},
            {"inference": {"model_id": "churn", "inference_config": {"classification": {"num_top_classes": 1}}}},
            {"script": {"source": "ctx.z = 1"}}], "on_failure": [{"set": {"field": "f", "value": "{{_ingest.on_failure_message}}"}}]},
            "docs": [{"_source": {"n": "5", "t": "aaa", "tenure": 1, "plan": "basic"}}]}),
        ("GET", "_ml/trained_models/_stats", None),
        ("GET", "_ml/trained_models", None),
        ("GET", "_inference/_all", None),
        ("DELETE", "_ml/trained_models/{id}", None),
        ("DELETE", "_ingest/pipeline/{id}", None),
        ("DELETE", "_inference/{id}", None),
        ("POST", "_plugins/_ml/connectors/_create", CONNECTOR),
        ("POST", "_plugins/_ml/model_groups/_register", {"name": "group", "description": "d"}),
        ("POST", "_plugins/_ml/models/_register", {"name": "remote", "function_name": "remote", "connector": CONNECTOR}),
        ("POST", "_plugins/_ml/connectors/_search", {"query": {"match_all": {}}, "size": 5}),
        ("GET", "_plugins/_ml/models/{id}", None),
        ("POST", "_plugins/_ml/models/{id}/_predict", {"parameters": {"input": "x"}}),
        ("PUT", "{id}", {"mappings": {"properties": {"a": {"type": "keyword"}, "n": {"type": "integer"}}}}),
        ("POST", "kept/_bulk", [{"index": {"_id": "{id}"}}, {"a": "x", "n": 1}, {"create": {}}, {"a": "y", "n": "2"}]),
        ("POST", "kept/_search", {"size": 1, "query": {"match_all": {}}, "aggs": {"g": {"terms": {"field": "a"}, "aggs": {
            "m": {"avg": {"field": "n"}}, "i": {"inference": {"model_id": "keep", "buckets_path": {"x": "m"}}}}}}}),
        ("DELETE", "{id}", None),
    ]


PARAMS = [None, None, {"size": "ten"}, {"from": "-1", "size": "5"}, {"size": "100000"}, {"timeout": "abc"},
          {"include": "definition,bogus"}, {"allow_no_match": "maybe"}, {"verbose": "true"}, {"pretty": ""},
          {"filter_path": "**.x,-a"}, {"bogus\x00": "1"}, {"size": "9" * 50}, {"include": "definition"}]


# -- mutations ------------------------------------------------------------------------------------

def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path into ``node`` (dict keys and list indexes), the root included."""
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out.extend(_paths(v, prefix + (k,)))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out.extend(_paths(v, prefix + (i,)))
    return out


def _set(body: Any, path: tuple, value: Any) -> Any:
    if not path:
        return value
    parent = body
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = value
    return body


def _get(body: Any, path: tuple) -> Any:
    for step in path:
        body = body[step]
    return body


def _deep(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"d": value}
    return value


def _swap(value: Any, rng: random.Random) -> Any:
    choices: list[Any] = ["text", 7, -1, 0, 2**63, 1.5, True, None, [], {}, [1, "a", None], {"k": "v"}, "7", "true"]
    if isinstance(value, str):
        choices += [len(value), [value], {"value": value}]
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        choices += [str(value), [value], {"value": value}, -value]
    elif isinstance(value, list):
        choices += [value[0] if value else None, {"items": value}, json.dumps(value)]
    elif isinstance(value, dict):
        choices += [list(value.values()), list(value), json.dumps(value)]
    return copy.deepcopy(rng.choice(choices))


def mutate(body: Any, rng: random.Random) -> tuple[str, Any]:
    """One deterministic mutation of ``body``: (what was done, the new body)."""
    body = copy.deepcopy(body)
    paths = _paths(body) if body is not None else [()]
    path = rng.choice(paths)
    kind = rng.choice(["drop", "swap", "swap", "huge", "odd", "odd_key", "nan", "deep", "shallow_deep", "number",
                       "duplicate_list", "empty"])
    if kind == "drop" and path and isinstance(_get(body, path[:-1]), (dict, list)):
        parent = _get(body, path[:-1])
        del parent[path[-1]]
        return f"drop {path}", body
    if kind == "huge":
        return f"1 MB string at {path}", _set(body, path, BIG)
    if kind == "odd":
        s = rng.choice(ODD_STRINGS)
        return f"odd string {s!r} at {path}", _set(body, path, s)
    if kind == "odd_key" and isinstance(_get(body, path), dict):
        _get(body, path)[rng.choice(ODD_STRINGS)] = rng.choice(["x", 1, None, {}])
        return f"odd key at {path}", body
    if kind == "nan":
        value = rng.choice([math.nan, math.inf, -math.inf])
        return f"{value} at {path}", _set(body, path, value)
    if kind == "deep":
        return f"1200-deep at {path}", _set(body, path, _deep(1200))
    if kind == "shallow_deep":
        return f"40-deep at {path}", _set(body, path, _deep(40))
    if kind == "number":
        value = rng.choice([10**1200, -(10**40), 2**64, 1e308, 5e-324, -0.0, 10**999])
        return f"number {str(value)[:20]} at {path}", _set(body, path, value)
    if kind == "duplicate_list" and isinstance(_get(body, path), list):
        items = _get(body, path)
        items.extend(copy.deepcopy(items) * 3)
        return f"list x4 at {path}", body
    if kind == "empty":
        return f"empty at {path}", _set(body, path, rng.choice(["", [], {}, None]))
    return f"swap at {path}", _set(body, path, _swap(_get(body, path) if path or body is not None else None, rng))


# -- checks ---------------------------------------------------------------------------------------

def _strict_json(payload: bytes) -> Any:
    def refuse(token: str) -> Any:
        raise ValueError(f"non-JSON token {token}")

    return json.loads(payload, parse_constant=refuse)


def _stored(engine: Engine) -> dict[str, Any]:
    model = engine.request("GET", "_ml/trained_models/keep", params={"include": "definition"})
    churn = engine.request("GET", "_ml/trained_models/churner", params={"include": "definition"})
    pipeline = engine.request("GET", "_ingest/pipeline/keep")
    endpoint = engine.request("GET", "_inference/text_embedding/emb")
    infer = engine.request("POST", "_ml/trained_models/keep/_infer", {"docs": [{"x": 0.2}, {"x": 0.9}]})
    for resp in (model, churn, pipeline, endpoint, infer):
        assert resp.status == 200, resp.body
    models = model.body["trained_model_configs"] + churn.body["trained_model_configs"]
    for config in models:
        config.pop("create_time", None)
        config.get("metadata", {}).pop("model_aliases", None)  # a valid new alias is a legitimate change
        if config.get("metadata") == {}:
            del config["metadata"]
    return {"model": models, "pipeline": pipeline.body, "endpoint": endpoint.body, "infer": infer.body}


@pytest.fixture
def seeded(tmp_path):
    engine = Engine(tmp_path / "home")
    assert engine.request("PUT", "_ml/trained_models/keep", stump_regression()).status == 200
    assert engine.request("PUT", "_ingest/pipeline/keep", PIPELINE).status == 200
    assert engine.request("PUT", "_inference/text_embedding/emb", ENDPOINT).status == 200
    assert engine.request("PUT", "_ml/trained_models/churner", churn_model()).status == 200
    assert engine.request("PUT", "kept", {"mappings": {"properties": {"a": {"type": "keyword"}}}}).status == 200
    return engine


def _text_mutation(text: str, rng: random.Random) -> str | bytes:
    """A broken spelling of a JSON text: truncated, a character changed, a key repeated, bad bytes."""
    kind = rng.choice(["truncate", "flip", "dup_key", "bytes", "nan", "long_number", "deep_text", "comment"])
    at = rng.randrange(len(text) + 1)
    if kind == "truncate":
        return text[:at]
    if kind == "flip":
        return text[:at] + rng.choice('{}[]:,"\\ x0-') + text[at + 1:]
    if kind == "dup_key" and text.startswith("{") and len(text) > 2:
        first = text[1:].split(",", 1)[0].rstrip("}")
        return "{" + first + "," + text[1:]
    if kind == "bytes":
        raw = text.encode("utf-8", "surrogatepass")
        return raw[:at] + rng.choice([b"\xff", b"\xc3\x28", b"\xe2\x82", b"\x80", b"\xed\xa0\x80"]) + raw[at:]
    if kind == "nan":
        return text.replace("0.2", rng.choice(["NaN", "Infinity", "-Infinity", "1e999"]), 1)
    if kind == "long_number":
        return text.replace("1", "1" * 1500, 1)
    if kind == "deep_text":
        return "[" * 1100 + text + "]" * 1100
    return "// comment\n" + text


def _send(engine: Engine, method: str, path: str, body: Any, as_text: bool, rng: random.Random,
          params: dict[str, str] | None = None):
    if as_text and body is not None:
        try:
            body = json.dumps(body, allow_nan=True)
        except (ValueError, RecursionError):
            pass  # not writable as JSON text: sent as objects
        if isinstance(body, str) and rng.random() < 0.4:
            body = _text_mutation(body, rng)
    return engine.request(method, path, body, params=params)


#: the 5xx answers ml-commons itself gives to a request without a body: its REST handlers throw an
#: IOException ("Create Connector request has empty body", "Model group request has empty body"), which
#: OpenSearch answers with 500
UPSTREAM_5XX = {("i_o_exception", "Create Connector request has empty body"),
                ("i_o_exception", "Model group request has empty body")}


def _upstream_5xx(status: int, body: Any) -> bool:
    error = body.get("error") if isinstance(body, dict) else None
    return status == 500 and isinstance(error, dict) and (error.get("type"), error.get("reason")) in UPSTREAM_5XX


#: more seeds for a longer hunt: ES_INFER_NB_FUZZ_SEEDS=1-200
_SEEDS = os.environ.get("ES_INFER_NB_FUZZ_SEEDS", "1-8").split("-")


@pytest.mark.parametrize("seed", range(int(_SEEDS[0]), int(_SEEDS[-1]) + 1))
def test_mutated_requests_answer_json_2xx_or_4xx_and_keep_state(seeded, seed):
    rng = random.Random(seed)
    before = _stored(seeded)
    failures: list[str] = []
    started = time.monotonic()
    requests = valid_requests()
    for n in range(110):
        method, path, body = requests[n % len(requests)]
        what, mutated = mutate(body, rng) if body is not None else ("no body", None)
        new_id = rng.choice(ODD_IDS) if rng.random() < 0.3 else f"new-{seed}-{n}"
        if method == "DELETE" and new_id in ("*", "_all"):
            new_id = f"gone-{n}"  # a wildcard delete would rightly remove what the test keeps
        target = path.replace("{id}", new_id)
        if rng.random() < 0.1 and mutated is None:
            mutated = {"unexpected": [1, 2, {"x": None}]}
        params = rng.choice(PARAMS)
        try:
            resp = _send(seeded, method, target, mutated, rng.random() < 0.5, rng, params)
        except BaseException as exc:  # noqa: BLE001 - what the test looks for
            failures.append(f"{method} {target} ({what}): raised {type(exc).__name__}: {exc}"[:400])
            continue
        if not (200 <= resp.status < 300 or 400 <= resp.status < 500 or _upstream_5xx(resp.status, resp.body)):
            failures.append(f"{method} {target} ({what}): {resp.status} {json.dumps(resp.body, default=str)[:300]}")
            continue
        try:
            _strict_json(to_json_bytes(resp.body))
            _strict_json(to_json_bytes(resp.body, pretty=True))
        except Exception as exc:  # noqa: BLE001
            failures.append(f"{method} {target} ({what}): body is not JSON: {exc}"[:400])
    assert not failures, "\n".join(failures)
    assert _stored(seeded) == before
    reopened = Engine(seeded.home)
    assert _stored(reopened) == before
    assert time.monotonic() - started < 20


def test_odd_ids_on_every_kind_answer_4xx(seeded):
    for odd in ODD_IDS:
        for method, path, body in valid_requests():
            resp = seeded.request(method, path.replace("{id}", odd), body)
            assert 200 <= resp.status < 300 or 400 <= resp.status < 500, (method, path, odd, resp.body)
            assert seeded.home is not None and str(seeded.home) not in json.dumps(resp.body)


def test_mutated_requests_over_http(seeded):
    """The same mutations through ``es-infer serve``: each answer a 2xx / 4xx with a JSON body."""
    import httpx

    from es_infer_nb.server import serve

    rng = random.Random(99)
    before = _stored(seeded)
    failures: list[str] = []
    requests = valid_requests()
    with serve(seeded, port=0, quiet=True) as handle, httpx.Client(base_url=handle.url, timeout=30) as client:
        for n in range(40):
            method, path, body = requests[n % len(requests)]
            what, mutated = mutate(body, rng) if body is not None else ("no body", None)
            new_id = rng.choice(ODD_IDS) if rng.random() < 0.3 else f"web-{n}"
            if method == "DELETE" and new_id in ("*", "_all"):
                new_id = f"gone-{n}"
            content: str | bytes | None = None
            if mutated is not None:
                try:
                    content = json.dumps(mutated, allow_nan=True)
                except RecursionError:  # the 1200-deep mutation: the same depth, written out
                    content = "[" * 1200 + "]" * 1200
                if rng.random() < 0.4:
                    content = _text_mutation(content, rng)
                if isinstance(content, str):
                    content = content.encode("utf-8", "surrogatepass")
            resp = client.request(method, "/" + path.replace("{id}", new_id), content=content,
                                  headers={"Content-Type": "application/json"} if content else {})
            if not (200 <= resp.status_code < 300 or 400 <= resp.status_code < 500
                    or _upstream_5xx(resp.status_code, resp.json() if resp.content else None)):
                failures.append(f"{method} {path} ({what}): {resp.status_code} {resp.text[:300]}")
            elif method != "HEAD":
                try:
                    _strict_json(resp.content)
                except ValueError as exc:
                    failures.append(f"{method} {path} ({what}): body is not JSON: {exc}"[:400])
    assert not failures, "\n".join(failures)
    assert _stored(seeded) == before
