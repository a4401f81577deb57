"""append / trim / split / join / gsub / json processors and string methods in ``if``."""

from __future__ import annotations

import pytest

from es_infer_nb.errors import ApiError
from es_infer_nb.ingest.condition import parse_condition
from helpers import error_of


def run(engine, processors, docs):
    r = engine.request("POST", "_ingest/pipeline/_simulate",
                       {"pipeline": {"processors": processors}, "docs": [{"_source": d} for d in docs]})
    assert r.status == 200, r.body
    return [d.get("doc", {}).get("_source") if d and "doc" in d else d for d in r.body["docs"]]


def error(engine, processors, doc):
    (out,) = run(engine, processors, [doc])
    assert "error" in out, out
    return out["error"]


def put_error(engine, processor):
    r = engine.request("PUT", "_ingest/pipeline/p", {"processors": [processor]})
    assert r.status == 400, r.body
    return error_of(r)["root_cause"][0]


# -- append -------------------------------------------------------------------------------------

def test_append_creates_list_appends_and_renders_templates(engine):
    procs = [{"append": {"field": "tags", "value": ["a", "{{kind}}"]}}, {"append": {"field": "one", "value": "x"}},
             {"append": {"field": "scalar", "value": 2}}]
    (src,) = run(engine, procs, [{"kind": "k", "scalar": 1}])
    assert src["tags"] == ["a", "k"]
    assert src["one"] == ["x"]
    assert src["scalar"] == [1, 2]


def test_append_allow_duplicates_false(engine):
    (src,) = run(engine, [{"append": {"field": "t", "value": ["a", "b", "c"], "allow_duplicates": False}}],
                 [{"t": ["a", "c"]}])
    assert src["t"] == ["a", "c", "b"]
    (src,) = run(engine, [{"append": {"field": "s", "value": "a", "allow_duplicates": False}},
                          {"append": {"field": "n", "value": ["x", "x"], "allow_duplicates": False}}],
                 [{"s": "a"}])
    assert src["s"] == "a"  # nothing added: the scalar stays as it was
    assert src["n"] == ["x"]


def test_append_value_required(engine):
    rc = put_error(engine, {"append": {"field": "t"}})
    assert rc["reason"] == "[value] required property is missing" and rc["processor_type"] == "append"


# -- trim / gsub ---------------------------------------------------------------------------------

def test_trim_strings_and_lists_target_field(engine):
    procs = [{"trim": {"field": "a"}}, {"trim": {"field": "l"}}, {"trim": {"field": "b", "target_field": "b2"}}]
    (src,) = run(engine, procs, [{"a": "  x y\t\n", "l": [" p ", "q "], "b": " z "}])
    assert src["a"] == "x y" and src["l"] == ["p", "q"] and src["b"] == " z " and src["b2"] == "z"


def test_trim_errors_and_ignore_missing(engine):
    err = error(engine, [{"trim": {"field": "a"}}], {"a": 3})
    assert err["type"] == "illegal_argument_exception"
    assert err["reason"] == "field [a] of type [java.lang.Integer] cannot be cast to [java.lang.String]"
    err = error(engine, [{"trim": {"field": "missing"}}], {})
    assert err["reason"] == "field [missing] not present as part of path [missing]"
    (src,) = run(engine, [{"trim": {"field": "missing", "ignore_missing": True}}], [{"k": 1}])
    assert src == {"k": 1}


def test_gsub_java_groups(engine):
    procs = [{"gsub": {"field": "s", "pattern": r"(\d+)-(\d+)", "replacement": "$2/$1"}},
             {"gsub": {"field": "t", "pattern": r"\.", "replacement": "-", "target_field": "u"}}]
    (src,) = run(engine, procs, [{"s": "10-20 and 3-4", "t": "a.b.c"}])
    assert src["s"] == "20/10 and 4/3"
    assert src["t"] == "a.b.c" and src["u"] == "a-b-c"


def test_gsub_config_errors(engine):
    assert put_error(engine, {"gsub": {"field": "s", "replacement": "x"}})["reason"] == \
        "[pattern] required property is missing"
    rc = put_error(engine, {"gsub": {"field": "s", "pattern": "(", "replacement": "x"}})
    assert rc["reason"].startswith("[pattern] Invalid regex pattern.") and rc["property_name"] == "pattern"


# -- split / join --------------------------------------------------------------------------------

def test_split_regex_separator_and_trailing(engine):
    procs = [{"split": {"field": "a", "separator": r"\s*,\s*"}},
             {"split": {"field": "b", "separator": ",", "preserve_trailing": True}},
             {"split": {"field": "c", "separator": ",", "target_field": "c2"}}]
    (src,) = run(engine, procs, [{"a": "x , y,z,,", "b": "p,,", "c": "1,2"}])
    assert src["a"] == ["x", "y", "z"]
    assert src["b"] == ["p", "", ""]
    assert src["c"] == "1,2" and src["c2"] == ["1", "2"]


def test_split_errors(engine):
    assert error(engine, [{"split": {"field": "a", "separator": ","}}], {"a": None})["reason"] == \
        "field [a] is null, cannot split."
    assert error(engine, [{"split": {"field": "a", "separator": ","}}], {"a": 5})["reason"] == \
        "field [a] of type [java.lang.Integer] cannot be cast to [java.lang.String]"
    assert put_error(engine, {"split": {"field": "a"}})["reason"] == "[separator] required property is missing"


def test_join(engine):
    (src,) = run(engine, [{"join": {"field": "l", "separator": "-"}},
                          {"join": {"field": "m", "separator": ",", "target_field": "j"}}],
                 [{"l": ["a", 1, True, 2.5], "m": ["x"]}])
    assert src["l"] == "a-1-true-2.5" and src["j"] == "x" and src["m"] == ["x"]
    assert error(engine, [{"join": {"field": "l", "separator": "-"}}], {"l": ["a", None]})["type"] == \
        "null_pointer_exception"
    err = error(engine, [{"join": {"field": "s", "separator": "-"}}], {"s": "abc"})
    assert err["reason"] == "field [s] of type [java.lang.String] cannot be cast to [java.util.List]"
    assert put_error(engine, {"join": {"field": "s"}})["reason"] == "[separator] required property is missing"


# -- json ----------------------------------------------------------------------------------------

def test_json_target_and_add_to_root(engine):
    procs = [{"json": {"field": "a", "target_field": "parsed"}}, {"json": {"field": "b", "add_to_root": True}},
             {"json": {"field": "n"}}]
    (src,) = run(engine, procs, [{"a": '{"k": [1, 2], "s": "x"}', "b": '{"top": 1, "a": "replaced"}', "n": "3"}])
    assert src["parsed"] == {"k": [1, 2], "s": "x"}
    assert src["top"] == 1 and src["a"] == "replaced"
    assert src["n"] == 3


def test_json_merge_strategy(engine):
    procs = [{"json": {"field": "b", "add_to_root": True, "add_to_root_conflict_strategy": "merge"}}]
    (src,) = run(engine, procs, [{"o": {"x": 1, "y": 2}, "b": '{"o": {"y": 3, "z": 4}}'}])
    assert src["o"] == {"x": 1, "y": 3, "z": 4}


def test_json_errors(engine):
    err = error(engine, [{"json": {"field": "a"}}], {"a": "{bad"})
    assert err["type"] == "illegal_argument_exception" and "JsonParseException" in err["reason"]
    err = error(engine, [{"json": {"field": "a", "add_to_root": True}}], {"a": "[1]"})
    assert err["reason"] == "cannot add non-map fields to root of document"
    err = error(engine, [{"json": {"field": "a"}}], {"a": '{"k": 1, "k": 2}'})
    assert "Duplicate field 'k'" in err["reason"]
    (src,) = run(engine, [{"json": {"field": "a", "allow_duplicate_keys": True}}], [{"a": '{"k": 1, "k": 2}'}])
    assert src["a"] == {"k": 2}
    rc = put_error(engine, {"json": {"field": "a", "add_to_root": True, "target_field": "t"}})
    assert rc["reason"] == "[target_field] Cannot set a target field while also setting `add_to_root` to true"
    rc = put_error(engine, {"json": {"field": "a", "add_to_root_conflict_strategy": "merge"}})
    assert rc["reason"] == ("[add_to_root_conflict_strategy] Cannot set `add_to_root_conflict_strategy` if "
                            "`add_to_root` is false")


def test_unknown_option_still_rejected(engine):
    rc = put_error(engine, {"trim": {"field": "a", "nope": 1}})
    assert rc["reason"] == "processor [trim] doesn't support one or more provided configuration parameters [nope]"


def test_existing_processors_still_work(engine):
    procs = [{"set": {"field": "a", "value": "v"}}, {"uppercase": {"field": "a"}}, {"rename": {"field": "a", "target_field": "b"}}]
    (src,) = run(engine, procs, [{}])
    assert src == {"b": "V"}


# -- if: string methods ----------------------------------------------------------------------------

@pytest.mark.parametrize("source, ctx, expected", [
    ("ctx.title?.contains('ab')", {"title": "xaby"}, True),
    ("ctx.title?.contains('zz')", {"title": "xaby"}, False),
    ("ctx.title.startsWith('xa') && ctx.title.endsWith(\"by\")", {"title": "xaby"}, True),
    ("!ctx.title.endsWith('x')", {"title": "xaby"}, True),
    ("ctx.tags.contains('red')", {"tags": ["blue", "red"]}, True),
    ("ctx.title?.contains('a') == true", {}, False),
    ("ctx.a?.b?.startsWith('q') == null", {}, True),
])
def test_string_methods(source, ctx, expected):
    assert parse_condition(source).evaluate(ctx) is expected


def test_method_outside_the_whitelist_is_a_runtime_error_naming_it():
    # Painless compiles any method call on a def value (a ctx field) and looks it up when it runs
    with pytest.raises(ApiError) as info:
        parse_condition("ctx.title.matches('x')").evaluate({"title": "x"})
    err = info.value
    assert err.type == "script_exception" and err.reason == "runtime error"
    assert err.caused_by.reason == "dynamic method [java.lang.String, matches/1] not found"


def test_method_on_null_without_safe_navigation_is_runtime_error():
    cond = parse_condition("ctx.title.contains('x')")
    with pytest.raises(ApiError) as info:
        cond.evaluate({})
    assert info.value.reason == "runtime error" and info.value.caused_by.type == "null_pointer_exception"


def test_method_on_number_is_runtime_error():
    with pytest.raises(ApiError) as info:
        parse_condition("ctx.n.startsWith('1')").evaluate({"n": 12})
    assert "dynamic method [java.lang.Integer, startsWith/1] not found" in info.value.caused_by.reason


def test_condition_with_method_in_pipeline(engine):
    procs = [{"set": {"if": "ctx.title?.contains('sale')", "field": "promo", "value": True}}]
    out = run(engine, procs, [{"title": "big sale"}, {"title": "news"}])
    assert out[0]["promo"] is True and "promo" not in out[1]


def test_string_processor_list_element_error(engine):
    err = error(engine, [{"trim": {"field": "l"}}], {"l": [" a", 5]})
    assert err["reason"] == "value [5] of type [java.lang.Integer] in list field [l] cannot be cast to [java.lang.String]"
    err = error(engine, [{"gsub": {"field": "l", "pattern": "a", "replacement": "b"}}], {"l": None})
    assert err["reason"] == "field [l] is null, cannot process it."
