"""The ``script`` ingest processor: the Painless subset (assignments, arithmetic, strings, conditionals,
locals, params), ES's answers for the examples of its docs, its errors, and hostile scripts."""

from __future__ import annotations

import time
from typing import Any

import pytest

from es_infer_nb import Engine
from es_infer_nb.painless import interpreter as painless

# -- helpers ---------------------------------------------------------------------------------------


def simulate(processors: Any, docs: list[dict[str, Any]], engine: Engine | None = None) -> Any:
    if isinstance(processors, dict):
        processors = [processors]
    resp = (engine or Engine()).request("POST", "_ingest/pipeline/_simulate",
                                        {"pipeline": {"processors": processors}, "docs": docs})
    return resp


def simulated_doc(source: str, doc: dict[str, Any] | None, params: dict[str, Any] | None) -> dict[str, Any]:
    """The one document ``_simulate`` answers for a script processor over ``doc``."""
    body: dict[str, Any] = {"source": source}
    if params is not None:
        body["params"] = params
    resp = simulate({"script": body}, [{"_source": dict(doc or {})}])
    assert resp.status == 200, resp.body
    return resp.body["docs"][0]


def run(source: str, doc: dict[str, Any] | None = None, params: dict[str, Any] | None = None) -> dict[str, Any]:
    out = simulated_doc(source, doc, params)
    assert "doc" in out, out
    return out["doc"]["_source"]


def run_error(source: str, doc: dict[str, Any] | None = None, params: dict[str, Any] | None = None) -> dict[str, Any]:
    out = simulated_doc(source, doc, params)
    assert "error" in out, out
    return out["error"]


def put_error(processor: dict[str, Any]) -> Any:
    return Engine().request("PUT", "_ingest/pipeline/p", {"processors": [processor]})


def without_timestamp(body: Any) -> Any:
    for d in body["docs"]:
        d["doc"]["_ingest"].pop("timestamp")
    return body


# -- the examples of ES's script processor page -------------------------------------------------------

def test_es_docs_extract_tags_from_env():
    engine = Engine()
    resp = engine.request("PUT", "_ingest/pipeline/my-pipeline", {"processors": [{"script": {
        "description": "Extract 'tags' from 'env' field",
        "lang": "painless",
        "source": """
          String[] envSplit = ctx['env'].splitOnToken(params['delimiter']);
          ArrayList tags = new ArrayList();
          tags.add(envSplit[params['position']].trim());
          ctx['tags'] = tags;
        """,
        "params": {"delimiter": "-", "position": 1}}}]})
    assert resp.status == 200 and resp.body == {"acknowledged": True}
    resp = engine.request("POST", "_ingest/pipeline/my-pipeline/_simulate", {"docs": [{"_source": {"env": "es01-prod"}}]})
    assert resp.status == 200
    assert without_timestamp(resp.body) == {"docs": [{"doc": {
        "_index": "_index", "_id": "_id", "_version": "-3",
        "_source": {"env": "es01-prod", "tags": ["prod"]}, "_ingest": {}}}]}


def test_es_docs_set_index_from_lang_and_dataset():
    resp = simulate({"script": {
        "description": "Set index based on `lang` field and `dataset` param",
        "lang": "painless",
        "source": "\n        ctx['_index'] = ctx['lang'] + '-' + params['dataset'];\n      ",
        "params": {"dataset": "catalog"}}}, [{"_index": "generic-index", "_source": {"lang": "fr"}}])
    assert resp.status == 200
    assert without_timestamp(resp.body) == {"docs": [{"doc": {
        "_index": "fr-catalog", "_id": "_id", "_version": "-3", "_source": {"lang": "fr"}, "_ingest": {}}}]}


def test_es_docs_shorthand_string_form():
    resp = simulate([{"script": "ctx.my_field = 'foo'"}], [{"_source": {}}])
    assert resp.body["docs"][0]["doc"]["_source"] == {"my_field": "foo"}


# -- assignments ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("source", "doc", "expected"), [
    ("ctx.a = 1", {}, {"a": 1}),
    ("ctx['a'] = 'x'", {}, {"a": "x"}),
    ("ctx[\"a\"] = true", {}, {"a": True}),
    ("ctx.a.b = 2", {"a": {"b": 1}}, {"a": {"b": 2}}),
    ("ctx['a']['c'] = null", {"a": {}}, {"a": {"c": None}}),
    ("ctx.a = [:]; ctx.a.b = [1, 2]; ctx.a.b[0] = 9", {}, {"a": {"b": [9, 2]}}),
    ("ctx.n += 5", {"n": 1}, {"n": 6}),
    ("ctx.n -= 5", {"n": 1}, {"n": -4}),
    ("ctx.n *= 3", {"n": 2}, {"n": 6}),
    ("ctx.n /= 2", {"n": 7}, {"n": 3}),
    ("ctx.n %= 4", {"n": 7}, {"n": 3}),
    ("ctx.s += '!'", {"s": "hi"}, {"s": "hi!"}),
    ("ctx.n++", {"n": 1}, {"n": 2}),
    ("--ctx.n", {"n": 1}, {"n": 0}),
    ("ctx.list.add(3)", {"list": [1]}, {"list": [1, 3]}),
    ("ctx.remove('gone')", {"gone": 1, "kept": 2}, {"kept": 2}),
    ("ctx.put('k', ctx.containsKey('kept'))", {"kept": 2}, {"kept": 2, "k": True}),
    ("ctx.l[-1] = 'last'", {"l": [1, 2]}, {"l": [1, "last"]}),
    ("ctx.m = ['a': 1, 'b': [2]]", {}, {"m": {"a": 1, "b": [2]}}),
])
def test_assignments(source, doc, expected):
    assert run(source, doc) == expected


# -- arithmetic ----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("expr", "expected"), [
    ("1 + 2 * 3", 7), ("(1 + 2) * 3", 9), ("7 / 2", 3), ("-7 / 2", -3), ("7 / 2.0", 3.5), ("-7 % 3", -1),
    ("7 % -3", 1), ("7.5 % 2", 1.5), ("2147483647 + 1", -2147483648), ("2147483647L + 1", 2147483648),
    ("1 - -1", 2), ("10 - 2 - 3", 5), ("1.0 / 0", float("inf")), ("'a' + 1", "a1"), ("'a' + 1.0", "a1.0"),
    ("'a' + null", "anull"), ("'a' + true", "atrue"), ("1 + 2 + 'x'", "3x"), ("'x' + 1 + 2", "x12"),
    ("(int) 3.9", 3), ("(double) 3", 3.0), ("(long) -2.5", -2), ("0x10", 16), ("1e3", 1000.0),
    ("Math.max(2, 5)", 5), ("Math.min(2.5, 1)", 1), ("Math.abs(-3)", 3), ("Math.round(2.5)", 3),
    ("Math.floor(2.7)", 2.0), ("Math.sqrt(16)", 4.0), ("Math.pow(2, 10)", 1024.0),
    ("Integer.parseInt('42')", 42), ("Double.parseDouble('2.5')", 2.5), ("String.valueOf(12)", "12"),
    ("String.join('-', ['a', 'b', 1])", "a-b-1"),
    ("3 > 2 ? 'yes' : 'no'", "yes"), ("null ?: 'default'", "default"), ("'v' ?: 'default'", "v"),
    ("1 == 1.0", True), ("1 != 2", True), ("'a' == 'a'", True), ("[1, 2] == [1, 2]", True),
    ("!(1 < 2) || 2 >= 2", True), ("1 < 2 && 2 > 3", False),
])
def test_expressions(expr, expected):
    assert run(f"ctx.r = {expr};")["r"] == expected


def test_arithmetic_over_fields():
    out = run("ctx.field_c = (ctx.field_a + ctx.field_b) * params.param_c;",
              {"field_a": 2, "field_b": 3.5}, {"param_c": 10})
    assert out["field_c"] == 55.0


# -- strings -------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("expr", "expected"), [
    ("ctx.s.length()", 11), ("ctx.s.substring(6)", "World"), ("ctx.s.substring(0, 5)", "Hello"),
    ("ctx.s.toLowerCase()", "hello world"), ("ctx.s.toUpperCase()", "HELLO WORLD"),
    ("ctx.s.contains('lo W')", True), ("ctx.s.startsWith('Hell')", True), ("ctx.s.endsWith('x')", False),
    ("'  pad \t'.trim()", "pad"), ("'it\\'s \\\\'", "it's \\"), ("ctx.s.replace('o', '0')", "Hell0 W0rld"), ("ctx.s.indexOf('o')", 4),
    ("ctx.s.indexOf('o', 5)", 7), ("ctx.s.lastIndexOf('o')", 7), ("ctx.s.indexOf('z')", -1),
    ("ctx.s.splitOnToken(' ')", ["Hello", "World"]), ("'a,b,,'.splitOnToken(',')", ["a", "b"]),
    ("'a-b-c'.splitOnToken('-', 2)", ["a", "b-c"]), ("ctx.s.isEmpty()", False),
    ("ctx.s.equalsIgnoreCase('hello world')", True), ("ctx.s.charAt(1)", "e"), ("'b'.compareTo('a')", 1),
    ("ctx.s?.length()", 11), ("ctx.missing?.length()", None), ("ctx.s.length() > 3", True),
    ("[3, 4].size()", 2), ("[3, 4].contains(4)", True), ("[3, 4].indexOf(4)", 1), ("[3, 4].get(0)", 3),
    ("['a': 1].keySet()", ["a"]), ("['a': 1].getOrDefault('b', 0)", 0), ("[1, 2].toString()", "[1, 2]"),
])
def test_string_and_collection_methods(expr, expected):
    assert run(f"ctx.r = {expr}", {"s": "Hello World"})["r"] == expected


# -- control flow, locals, params ------------------------------------------------------------------------

def test_if_else_chains():
    src = """
        if (ctx.score >= 90) { ctx.grade = 'A'; }
        else if (ctx.score >= 80) ctx.grade = 'B';
        else { ctx.grade = 'C' }
    """
    assert [run(src, {"score": s})["grade"] for s in (95, 85, 10)] == ["A", "B", "C"]


def test_locals_typed_and_def():
    out = run("""
        def total = 0;
        int n = 3;
        String label = 'n=' + n;
        double half = n / 2.0;
        boolean flag;
        List items = [];
        for (def v : ctx.values) { total += v; items.add(v * 2) }
        for (int i = 0; i < n; i++) { if (i == 1) { continue } total += 100 }
        while (total > 1000) { total -= 1000; break; }
        ctx.out = [total, label, half, flag, items];
    """, {"values": [1, 2, 3]})
    assert out["out"] == [206, "n=3", 1.5, False, [2, 4, 6]]


def test_return_ends_the_script_and_its_value_is_ignored():
    out = run("ctx.a = 1; if (ctx.stop) { return 42; } ctx.b = 2;", {"stop": True})
    assert out == {"stop": True, "a": 1}
    assert run("ctx.a = 1; return; ctx.b = 2;", {}) == {"a": 1}


def test_params_are_read_and_copied_per_document():
    engine = Engine()
    resp = simulate({"script": {"source": "params.list.add(ctx.x); ctx.seen = params.list; ctx.k = params['k']",
                                "params": {"list": [], "k": "v"}}},
                    [{"_source": {"x": 1}}, {"_source": {"x": 2}}], engine)
    assert [d["doc"]["_source"]["seen"] for d in resp.body["docs"]] == [[1], [2]]
    assert resp.body["docs"][0]["doc"]["_source"]["k"] == "v"


def test_params_are_read_only():
    err = run_error("params.k = 1", params={"k": 0})
    assert err["type"] == "script_exception" and err["caused_by"]["type"] == "unsupported_operation_exception"


def test_if_and_tag_apply_to_the_script_processor():
    resp = simulate({"script": {"source": "ctx.hit = true", "if": "ctx.kind == 'a'", "tag": "t"}},
                    [{"_source": {"kind": "a"}}, {"_source": {"kind": "b"}}])
    assert [d["doc"]["_source"].get("hit") for d in resp.body["docs"]] == [True, None]


# -- config errors ---------------------------------------------------------------------------------

def test_lang_other_than_painless_is_es_error():
    resp = put_error({"script": {"lang": "expression", "source": "1"}})
    assert resp.status == 400
    assert resp.body["error"]["type"] == "illegal_argument_exception"
    assert resp.body["error"]["reason"] == "script_lang not supported [expression]"


def test_stored_script_id_is_not_found_and_says_why():
    resp = put_error({"script": {"id": "my-stored", "tag": "t1"}})
    assert resp.status == 404
    err = resp.body["error"]
    assert err["type"] == "resource_not_found_exception"
    assert err["reason"].startswith("unable to find script [my-stored] in cluster state")
    assert "not supported by es_infer_nb" in err["reason"]
    assert err["processor_type"] == "script" and err["processor_tag"] == "t1"


@pytest.mark.parametrize(("body", "reason"), [
    ({"source": "ctx.a = 1", "id": "x"},
     "org.elasticsearch.xcontent.XContentParseException: [1:28] [script] failed to parse field [id]"),
    ({"params": {}}, "must specify either [source] for an inline script or [id] for a stored script"),
    ({"source": "ctx.a = 1", "params": [1]}, "[params] must be an object, but was [java.util.ArrayList]"),
    ({"source": "ctx.a = 1", "nope": 1}, "processor [script] doesn't support one or more provided configuration "
                                         "parameters [nope]"),
])
def test_config_errors(body, reason):
    resp = put_error({"script": body})
    assert resp.status == 400 and resp.body["error"]["reason"] == reason


def test_compile_error_is_a_script_exception_with_its_position():
    resp = put_error({"script": {"source": "ctx.a = ctx.b +;", "tag": "calc"}})
    assert resp.status == 400
    err = resp.body["error"]
    assert err["type"] == "script_exception" and err["reason"] == "compile error"
    assert err["lang"] == "painless" and err["script"] == "ctx.a = ctx.b +;"
    assert err["processor_type"] == "script" and err["processor_tag"] == "calc"
    assert err["position"] == {"offset": 15, "start": 0, "end": 16}
    assert err["script_stack"] == ["ctx.a = ctx.b +;", " " * 15 + "^---- HERE"]
    assert err["caused_by"]["type"] == "illegal_argument_exception"
    assert err["root_cause"][0]["type"] == "script_exception"
    assert err["root_cause"][0]["position"] == err["position"]


def test_compile_error_stack_is_cut_around_the_offset_like_painless():
    source = "ctx.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa = 1; ctx.b = nope; ctx.ccccccccccccccccccccccccccccccc = 2"
    err = put_error({"script": source}).body["error"]
    offset = source.index("nope")
    assert err["caused_by"]["reason"] == "cannot resolve symbol [nope]"
    assert err["position"] == {"offset": offset, "start": offset - 25, "end": offset + 25}
    assert err["script_stack"] == ["... " + source[offset - 25:offset + 25] + " ...", " " * 29 + "^---- HERE"]


@pytest.mark.parametrize("source", [
    "ctx.a = ", "ctx.a ==", "ctx.a", "x = 1", "ctx = [:]", "ctx.a = 1 1", "if (ctx.a { }", "ctx.a = 'unterminated",
    "ctx.a = (1", "def x = 1; def x = 2;", "ctx.a = new Date()", "ctx.a = ctx.b =~ /x/", "ctx.l.sort((a, b) -> a - b)",
    "int f(int x) { return x; } int f(int y) { return y; } ctx.a = 1", "ctx.a = 1; int f(int x) { return x; }",
    "ctx.a = 99999999999", "",
    "ctx.a = Foo.bar()", "ctx.a = Math.exec('x')",
])
def test_compile_errors(source):
    resp = put_error({"script": {"source": source}})
    assert resp.status == 400, resp.body
    assert resp.body["error"]["type"] == "script_exception" and resp.body["error"]["reason"] == "compile error"
    assert resp.body["error"]["script_stack"][1].endswith("^---- HERE")


def test_subset_gaps_say_valid_painless_but_not_supported():
    reason = put_error({"script": "ctx.l.sort((a, b) -> a - b)"}).body["error"]["caused_by"]["reason"]
    assert "valid painless but not supported by es_infer_nb" in reason


# -- runtime errors ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("source", "doc", "cause"), [
    ("ctx.a.b = 1", {}, "null_pointer_exception"),
    ("ctx.r = ctx.missing.length()", {}, "null_pointer_exception"),
    ("ctx.r = 1 / 0", {}, "arithmetic_exception"),
    ("ctx.r = ctx.s.substring(5)", {"s": "abc"}, "string_index_out_of_bounds_exception"),
    ("ctx.r = ctx.l[5]", {"l": [1]}, "index_out_of_bounds_exception"),
    ("ctx.r = ctx.s.nope()", {"s": "abc"}, "illegal_argument_exception"),
    ("ctx.r = ctx.l - 1", {"l": [1]}, "class_cast_exception"),
    ("ctx.r = ctx.s < 1", {"s": "a"}, "class_cast_exception"),
    ("if (ctx.s) { ctx.r = 1 }", {"s": "a"}, "class_cast_exception"),
    ("ctx.r = Integer.parseInt(ctx.s)", {"s": "x1"}, "number_format_exception"),
    ("int x = ctx.s", {"s": "a"}, "class_cast_exception"),
])
def test_runtime_errors(source, doc, cause):
    err = run_error(source, doc)
    assert err["type"] == "script_exception" and err["reason"] == "runtime error"
    assert err["caused_by"]["type"] == cause
    # as ES: the root cause is the script_exception (the Java exception under it is no ES exception)
    assert err["root_cause"][0]["type"] == "script_exception" and err["root_cause"][0]["script"] == source
    assert err["root_cause"][0]["script_stack"] == err["script_stack"]
    assert err["lang"] == "painless" and err["script"] == source
    assert set(err["position"]) == {"offset", "start", "end"}


def test_a_failing_document_fails_alone_and_on_failure_handles_it():
    docs = [{"_source": {"s": "abcdef"}}, {"_source": {"s": "ab"}}, {"_source": {"s": "xyz123"}}]
    resp = simulate({"script": {"source": "ctx.t = ctx.s.substring(3)"}}, docs)
    out = resp.body["docs"]
    assert out[0]["doc"]["_source"]["t"] == "def" and out[2]["doc"]["_source"]["t"] == "123"
    assert out[1]["error"]["caused_by"]["type"] == "string_index_out_of_bounds_exception"
    resp = simulate({"script": {"source": "ctx.t = ctx.s.substring(3)", "tag": "sub", "on_failure": [
        {"set": {"field": "failed", "value": "{{_ingest.on_failure_message}}"}}]}}, docs)
    handled = resp.body["docs"][1]["doc"]["_source"]
    assert handled["failed"] == "begin 3, end 2, length 2"
    resp = simulate({"script": {"source": "ctx.t = ctx.s.substring(3)", "ignore_failure": True}}, docs)
    assert resp.body["docs"][1]["doc"]["_source"] == {"s": "ab"}


def test_partial_changes_before_a_runtime_error_stay_like_es():
    resp = simulate({"script": {"source": "ctx.first = 1; ctx.r = 1 / 0;", "ignore_failure": True}},
                    [{"_source": {}}])
    assert resp.body["docs"][0]["doc"]["_source"] == {"first": 1}


def test_runs_over_a_dataframe():
    import pandas as pd

    engine = Engine()
    engine.request("PUT", "_ingest/pipeline/p", {"processors": [{"script": {
        "source": "ctx.y = ctx.x * params.k; ctx.t = ctx.s.toUpperCase()", "params": {"k": 2}}}]})
    out = pd.DataFrame({"x": [1, 2], "s": ["a", "b"]}).infer.pipeline("p", engine=engine)
    assert out["y"].tolist() == [2, 4] and out["t"].tolist() == ["A", "B"]


def test_pipeline_get_returns_the_script_as_written():
    engine = Engine()
    body = {"processors": [{"script": {"source": "ctx.a = params.x", "params": {"x": 1}, "tag": "s"}}]}
    engine.request("PUT", "_ingest/pipeline/p", body)
    assert engine.request("GET", "_ingest/pipeline/p").body["p"] == body


# -- hostile input ------------------------------------------------------------------------------------

HOSTILE = [
    "__import__('os').system('echo pwned')", "ctx.__class__", "ctx.a = ctx.__class__.__mro__",
    "ctx.a = ctx.getClass()", "ctx.a = ''.__class__", "ctx.a = params.__dict__", "ctx.a = ctx.keys",
    "ctx.a = ctx.s.format('x')", "ctx.a = ctx.s.__len__()", "ctx.a = Runtime.getRuntime().exec('ls')",
    "ctx.a = java.lang.System.exit(0)", "ctx.a = eval('1')", "ctx.a = exec('1')", "ctx.a = open('/etc/passwd')",
    "while (true) {}", "for (;;) { ctx.a = 1 }", "def i = 0; while (i >= 0) { i++ }",
    "def s = 'ab'; for (int i = 0; i < 64; i++) { s = s + s } ctx.s = s",
    "def l = ['x']; for (int i = 0; i < 64; i++) { l = [l, l] } ctx.l = l",
    "def a = ['x']; def b = ['x']; for (int i = 0; i < 64; i++) { a = [a, a]; b = [b, b] } ctx.r = a == b",
    "def l = ['x']; for (int i = 0; i < 64; i++) { l = [l, l] } ctx.r = l.toString()",
    "def l = []; l.add(l); ctx.l = l", "def m = [:]; m.put('m', m); ctx.m = m",
    "ctx.s = 'x'.replace('', 'yyyyyyyyyyyy'); def t = 'a'; for (int i = 0; i < 30; i++) { t = t.replace('a', 'aa') }",
    "ctx.a = " + "(" * 5000 + "1" + ")" * 5000, "ctx.a = " + "-" * 5000 + "1", "ctx.a = " + "!" * 5000 + "true",
    "ctx.a = " + "[" * 3000 + "]" * 3000, "{" * 3000 + "}" * 3000, "ctx.a = 1" + " + 1" * 20000,
    "ctx.a = " + "9" * 5000, "ctx.a = Integer.parseInt('" + "9" * 5000 + "')", "ctx.a = 'x' * 10",
    "ctx.a = /* unterminated", "ctx.a = '\\u0000\\'", "ctx['\u00e9'] = 1; ctx.\u00e9 = 2", "ctx.a = ctx[ctx]",
    "ctx.l[1000000000] = 1", "ctx.a = ctx.l.get(-1)", "ctx.a = [1,2].remove(5)", "ctx.a = 1 >>> 2", "ctx.a = ~1",
    "ctx.m = [[1]: 2]",
]


@pytest.mark.parametrize("source", HOSTILE)
def test_hostile_scripts_stay_data(source, monkeypatch):
    monkeypatch.setattr(painless, "MAX_LOOP_COUNTER", 20_000)
    docs = [{"_source": {"s": "abc", "l": [1, 2]}}, {"_source": {"other": True}}]
    started = time.monotonic()
    resp = simulate({"script": {"source": source}}, docs)
    assert time.monotonic() - started < 20
    assert resp.status in (200, 400), resp.body
    if resp.status == 400:
        err = resp.body["error"]
        assert err["type"] == "script_exception" and err["reason"] == "compile error", err
        return
    for out in resp.body["docs"]:
        if "error" in out:
            assert out["error"]["type"] == "script_exception", out
            assert out["error"]["reason"] == "runtime error", out
            assert out["error"]["caused_by"]["type"] != "exception", out  # never a raw Python error


def test_the_loop_counter_is_painless_s():
    assert painless.MAX_LOOP_COUNTER == 1_000_000


def test_loop_limit_error_names_painless_s_message(monkeypatch):
    monkeypatch.setattr(painless, "MAX_LOOP_COUNTER", 1000)
    err = run_error("def n = 0; while (true) { n++ }")
    assert err["caused_by"] == {"type": "painless_error", "reason": "The maximum number of statements that can be "
                                "executed in a loop has been reached."}
    assert run("def n = 0; while (n < 999) { n++ } ctx.n = n")["n"] == 999


def test_long_results_are_plain_ints_over_http_encoders():
    import orjson

    out = run("ctx.big = 2147483647L * 4; ctx.l = [1L, ctx.big]")
    assert type(out["big"]) is int and out["big"] == 8589934588
    assert [type(v) for v in out["l"]] == [int, int]
    assert orjson.dumps(out) == b'{"big":8589934588,"l":[1,8589934588]}'


def test_ctx_ingest_in_foreach_and_never_in_the_source():
    resp = simulate({"foreach": {"field": "names", "processor": {"script": {
        "source": "ctx._ingest._value = ctx._ingest._value.toUpperCase() + '!'"}}}},
        [{"_source": {"names": ["ann", "bob"]}}])
    doc = resp.body["docs"][0]["doc"]
    assert doc["_source"] == {"names": ["ANN!", "BOB!"]}
    out = run("ctx.has_ts = ctx._ingest.timestamp != null")
    assert out == {"has_ts": True}


def test_loops_count_the_statements_of_their_body_like_painless(monkeypatch):
    monkeypatch.setattr(painless, "MAX_LOOP_COUNTER", 1000)
    assert run("def n = 0; while (n < 500) { n++; ctx.x = n; }")["x"] == 500  # 2 statements x 500
    err = run_error("def n = 0; while (n < 501) { n++; ctx.x = n; }")
    assert err["caused_by"]["type"] == "painless_error"


def test_a_slow_script_stops_at_the_time_limit(monkeypatch):
    monkeypatch.setattr(painless, "MAX_SECONDS", 0.2)
    monkeypatch.setattr(painless, "MAX_LOOP_COUNTER", 10**9)
    started = time.monotonic()
    err = run_error("def s = 'x'; for (int i = 0; i < 100000000; i++) { s = s.toUpperCase().toLowerCase() }")
    assert time.monotonic() - started < 10
    assert err["caused_by"] == {"type": "painless_error",
                                "reason": "the script ran longer than 0.2 s on one document (es_infer_nb's limit)"}


def test_functions_arrays_builders_and_throw_as_painless_has_them():
    """Functions declared before the statements (their own locals, recursion), ``new T[n]``, constructors
    with arguments and ``throw`` of an exception the script makes."""
    source = """
        int fact(int n) { return n <= 1 ? 1 : n * fact(n - 1) }
        String wrap(def s) { return new StringBuilder('<').append(s).append('>').toString(); }
        def scores = new double[3];
        scores[1] = 0.5;
        ctx.out = wrap(fact(5)) + scores + scores.length + new BigDecimal('2.50').doubleValue();
    """
    assert run(source, {})["out"] == "<120>[0.0, 0.5, 0.0]32.5"
    err = run_error("if (ctx.n < 0) { throw new IllegalArgumentException('n must be >= 0: ' + ctx.n); }", {"n": -1})
    assert (err["type"], err["caused_by"]["type"], err["caused_by"]["reason"]) == (
        "script_exception", "illegal_argument_exception", "n must be >= 0: -1")
    err = run_error("throw 'x';", {})
    assert err["caused_by"]["reason"] == "Cannot cast java.lang.String to java.lang.Throwable"
