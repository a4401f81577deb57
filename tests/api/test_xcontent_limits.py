"""ES's XContent limits on request bodies (issue 23.7 / 19.4): Jackson's nesting depth (1000), number
length (1000), duplicate keys, NaN literals and invalid UTF-8 are ES's 400 ``x_content_parse_exception``,
in ``Engine.request`` (text, bytes or Python objects) and over HTTP alike, and nothing is stored."""

from __future__ import annotations

import json
import math

import httpx
import pytest

from es_infer_nb import Engine
from es_infer_nb.api.xcontent import MAX_NESTING_DEPTH, check_object, parse_json
from es_infer_nb.errors import ApiError
from helpers import stump_regression

SOURCE = "[Source: REDACTED (`StreamReadFeature.INCLUDE_SOURCE_IN_LOCATION` disabled); line: {}, column: {}]"
DEPTH = ("Document nesting depth (1001) exceeds the maximum allowed (1000, from "
         "`StreamReadConstraints.getMaxNestingDepth()`)")


def error(resp) -> dict:
    assert resp.status == 400, resp.body
    assert resp.body["status"] == 400
    err = resp.body["error"]
    assert err["root_cause"][0]["type"] in (err["type"], err.get("caused_by", {}).get("type"))
    return err


def deep(depth: int, leaf=1):
    value = leaf
    for _ in range(depth):
        value = {"a": value}
    return value


@pytest.fixture
def eng(tmp_path):
    engine = Engine(tmp_path / "home")
    assert engine.request("PUT", "_ml/trained_models/keep", stump_regression()).status == 200
    return engine


def nothing_stored(engine: Engine) -> None:
    assert engine.request("GET", "_ingest/pipeline/p").status == 404
    for reader in (engine, Engine(engine.home)):
        models = reader.request("GET", "_ml/trained_models")
        assert models.status == 200
        json.dumps(models.body, allow_nan=False)  # every listing still serialises
        ids = {m["model_id"] for m in models.body["trained_model_configs"]} - {"lang_ident_model_1"}  # built in
        assert ids == {"keep"}


# -- nesting depth --------------------------------------------------------------------------------

def test_depth_limit_is_jacksons_1000():
    assert parse_json("[" * MAX_NESTING_DEPTH + "]" * MAX_NESTING_DEPTH) is not None
    with pytest.raises(ApiError) as info:
        parse_json("[" * (MAX_NESTING_DEPTH + 1) + "]" * (MAX_NESTING_DEPTH + 1))
    assert info.value.type == "x_content_parse_exception" and info.value.status == 400
    assert info.value.reason == f"[1:1002] {DEPTH}\n at {SOURCE.format(1, 1002)}"
    # brackets inside strings do not count
    assert parse_json(json.dumps({"s": "[" * 5000})) == {"s": "[" * 5000}


@pytest.mark.parametrize("as_text", [True, False])
def test_ten_thousand_deep_body_is_a_400_not_a_recursion_error(eng, as_text):
    body = {"description": "d", "processors": [], "_meta": deep(10_000)}
    sent = ("{" + '"description":"d","processors":[],"_meta":' + '{"a":' * 10_000 + "1" + "}" * 10_001) if as_text else body
    err = error(eng.request("PUT", "_ingest/pipeline/p", sent))
    assert err["type"] == "x_content_parse_exception"
    assert DEPTH in err["reason"]
    nothing_stored(eng)


def test_5000_deep_model_put_is_a_400_in_memory_and_on_disk(eng):
    body = stump_regression()
    body["metadata"] = deep(5000)
    for engine in (eng, Engine()):
        err = error(engine.request("PUT", "_ml/trained_models/m2", body))
        assert err["type"] == "x_content_parse_exception" and DEPTH in err["reason"]
        assert engine.request("GET", "_ml/trained_models/m2").status == 404
        assert engine.request("GET", "_ml/trained_models").status == 200
    nothing_stored(eng)


def test_objects_at_the_limit_are_accepted(eng):
    pipeline = {"processors": [{"set": {"field": "x", "value": 1}}], "_meta": deep(MAX_NESTING_DEPTH - 3)}
    check_object(pipeline)  # depth 1000 exactly
    assert eng.request("PUT", "_ingest/pipeline/p", pipeline).status == 200
    assert eng.request("GET", "_ingest/pipeline/p").body["p"]["_meta"] == deep(MAX_NESTING_DEPTH - 3)
    with pytest.raises(ApiError, match="nesting depth"):
        check_object({"x": deep(MAX_NESTING_DEPTH)})


def test_a_body_that_contains_itself_is_a_400(eng):
    loop: dict = {"processors": []}
    loop["_meta"] = loop
    err = error(eng.request("PUT", "_ingest/pipeline/p", loop))
    assert "nesting depth" in err["reason"]


def test_if_with_3000_parentheses_is_a_400(eng):
    condition = "(" * 3000 + "ctx.x == 1" + ")" * 3000
    resp = eng.request("PUT", "_ingest/pipeline/p", {"processors": [{"set": {"field": "y", "value": 1, "if": condition}}]})
    err = error(resp)
    assert err["type"] == "script_exception" and err["reason"] == "compile error"
    assert err["caused_by"]["type"] == "illegal_argument_exception"
    chain = "ctx.x == 1" + " && ctx.x == 1" * 3000  # long, flat: still evaluates
    sim = eng.request("POST", "_ingest/pipeline/_simulate", {"pipeline": {"processors": [
        {"set": {"field": "y", "value": 1, "if": chain}}]}, "docs": [{"_source": {"x": 1}}]})
    assert sim.status == 200, sim.body
    assert "error" in sim.body["docs"][0] or sim.body["docs"][0]["doc"]["_source"]["y"] == 1
    nothing_stored(eng)


# -- duplicate keys ---------------------------------------------------------------------------------

def test_duplicate_keys_are_jacksons_400(eng):
    text = '{"processors": [], "processors": [{"set": {"field": "a", "value": 1}}]}'
    err = error(eng.request("PUT", "_ingest/pipeline/p", text))
    assert err["type"] == "x_content_parse_exception"
    assert err["reason"] == f"[1:32] Duplicate field 'processors'\n at {SOURCE.format(1, 32)}"
    nested = '{\n  "docs": [{"x": 1,\n           "x": 2}]\n}'
    err = error(eng.request("POST", "_ml/trained_models/keep/_infer", nested))
    assert err["reason"].startswith("[3:15] Duplicate field 'x'")
    # the same key in sibling objects, or as a string value, is not a duplicate
    ok = eng.request("POST", "_ml/trained_models/keep/_infer", '{"docs": [{"x": 0.1}, {"x": 0.9, "y": "x"}]}')
    assert ok.status == 200 and ok.body["inference_results"] == [{"predicted_value": 1.0}, {"predicted_value": 2.0}]
    nothing_stored(eng)


def test_escaped_duplicate_keys_are_found_too():
    with pytest.raises(ApiError, match=r"Duplicate field 'ab'"):
        parse_json('{"ab": 1, "a\\u0062": 2}')


# -- numbers and NaN ----------------------------------------------------------------------------------

def test_5000_digit_integer_is_a_400(eng):
    text = '{"processors": [], "version": ' + "9" * 5000 + "}"
    err = error(eng.request("PUT", "_ingest/pipeline/p", text))
    assert err["type"] == "x_content_parse_exception"
    assert err["reason"].startswith("[1:5031] Number value length (5000) exceeds the maximum allowed (1000, from "
                                    "`StreamReadConstraints.getMaxNumberLength()`)")
    err = error(eng.request("PUT", "_ingest/pipeline/p", {"processors": [], "version": 10**5000}))
    assert "Number value length (5001) exceeds the maximum allowed (1000" in err["reason"]
    err = error(eng.request("PUT", "_ingest/pipeline/p", '{"processors": [], "x": -' + "1" * 1001 + ".5}"))
    assert "Number value length" in err["reason"]
    assert parse_json("[" + "7" * 1000 + "]") == [int("7" * 1000)]  # at the limit: a number
    nothing_stored(eng)


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_nan_literals_are_jacksons_400(eng, token):
    text = '{"docs": [{"x": ' + token + "}]}"
    err = error(eng.request("POST", "_ml/trained_models/keep/_infer", text))
    assert err["type"] == "x_content_parse_exception"
    column = len('{"docs": [{"x": ') + len(token) + 1
    assert err["reason"] == (f"[1:{column}] Non-standard token '{token}': enable "
                             f"`JsonReadFeature.ALLOW_NON_NUMERIC_NUMBERS` to allow\n at {SOURCE.format(1, column)}")


def test_a_double_past_its_range_is_infinity_as_jackson_reads_it():
    from es_infer_nb.server.render import to_json_bytes

    assert parse_json('{"x": 1e999, "y": -1e999, "z": 5e-324}') == {"x": math.inf, "y": -math.inf, "z": 5e-324}
    assert to_json_bytes(parse_json('{"x": 1e999}')) == b'{"x":"Infinity"}'  # answered as Jackson writes it
    with pytest.raises(ApiError, match="Number value length"):
        parse_json('{"x": 1.' + "0" * 1000 + '1}')


# -- bytes ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("raw,reason", [
    (b'{"docs": [{"x": "\xff"}]}', "[1:18] Invalid UTF-8 start byte 0xff"),
    (b'{"docs": [{"x": "\xc3\x28"}]}', "[1:18] Invalid UTF-8 middle byte 0x28"),
    (b'{"docs":\n [{"x": "\x80"}]}', "[2:10] Invalid UTF-8 start byte 0x80"),
])
def test_invalid_utf8_is_a_400(eng, raw, reason):
    err = error(eng.request("POST", "_ml/trained_models/keep/_infer", raw))
    assert err["type"] == "x_content_parse_exception"
    assert err["reason"].startswith(reason)


def test_a_byte_order_mark_is_skipped_as_jackson_does(eng):
    resp = eng.request("POST", "_ml/trained_models/keep/_infer", "\ufeff".encode() + b'{"docs": [{"x": 0.9}]}')
    assert resp.status == 200 and resp.body["inference_results"] == [{"predicted_value": 2.0}]


def test_valid_bodies_parse_as_before():
    text = json.dumps({"a": [1, 2.5, -3e-5, True, None, "ü\u2603"], "b": {"c": {}}, "d": "[{\"x\"}]"})
    assert parse_json(text) == json.loads(text)
    assert parse_json("  ") is None
    with pytest.raises(ApiError, match=r"x_content_parse_exception: \[1:7\] Unexpected character"):
        parse_json('{"a": }')


# -- over HTTP -------------------------------------------------------------------------------------------

def test_the_same_400s_over_http(eng):
    from es_infer_nb.server import serve

    cases = [
        ("PUT", "/_ingest/pipeline/p", b'{"processors": [], "processors": []}', "Duplicate field 'processors'"),
        ("PUT", "/_ingest/pipeline/p", b"[" * 1200 + b"]" * 1200, "Document nesting depth (1001)"),
        ("PUT", "/_ingest/pipeline/p", b'{"processors": [], "v": ' + b"1" * 5000 + b"}", "Number value length (5000)"),
        ("POST", "/_ml/trained_models/keep/_infer", b'{"docs": [{"x": NaN}]}', "Non-standard token 'NaN'"),
        ("POST", "/_ml/trained_models/keep/_infer", b'{"docs": [{"x": "\xff"}]}', "Invalid UTF-8 start byte 0xff"),
    ]
    with serve(eng, port=0, quiet=True) as handle:
        for method, path, raw, reason in cases:
            resp = httpx.request(method, handle.url + path, content=raw, headers={"Content-Type": "application/json"})
            assert resp.status_code == 400, resp.text
            body = resp.json()
            assert body["error"]["type"] == "x_content_parse_exception"
            assert reason in body["error"]["reason"]
            direct = eng.request(method, path, raw)
            assert direct.status == 400 and direct.body == body
    nothing_stored(eng)


def test_lone_surrogates_are_refused_where_the_body_is_stored(eng):
    text = '{"processors": [{"set": {"field": "a", "value": "x\\ud800"}}]}'
    err = error(eng.request("PUT", "_ingest/pipeline/p", text))
    assert err["type"] == "x_content_parse_exception"
    assert err["reason"] == ("[processors.0.set.value] holds a lone surrogate [\\ud800]: an object that is stored "
                             "must be valid Unicode")
    connector = {"name": "c\udfff", "protocol": "http", "parameters": {}, "actions": []}
    assert error(eng.request("POST", "_plugins/_ml/connectors/_create", connector))["type"] == "x_content_parse_exception"
    nothing_stored(eng)
    # a request that only answers keeps them, and its answer escapes them
    sim = eng.request("POST", "_ingest/pipeline/_simulate", {"pipeline": {"processors": []},
                                                             "docs": [{"_source": {"t": "x\ud800"}}]})
    assert sim.status == 200 and sim.body["docs"][0]["doc"]["_source"]["t"] == "x\ud800"
