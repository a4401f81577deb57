"""Kibana console syntax: requests, comments, triple quotes, ndjson, variables, errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from es_infer_nb.notebook.console import ConsoleError, ConsoleRequest, parse_console


def test_several_requests_with_and_without_bodies():
    text = """GET _ml/trained_models
put /_ml/trained_models/m1
{
  "input": {"field_names": ["x"]}
}

POST _ml/trained_models/m1/_infer?timeout=10s
{"docs": [{"x": 1}]}
DELETE /_ml/trained_models/m1
HEAD _ml/trained_models/m1
"""
    reqs = parse_console(text)
    assert [(r.method, r.path, r.line) for r in reqs] == [
        ("GET", "_ml/trained_models", 1),
        ("PUT", "_ml/trained_models/m1", 2),
        ("POST", "_ml/trained_models/m1/_infer?timeout=10s", 7),
        ("DELETE", "_ml/trained_models/m1", 9),
        ("HEAD", "_ml/trained_models/m1", 10),
    ]
    assert reqs[0].body is None
    assert reqs[1].body == {"input": {"field_names": ["x"]}}
    assert reqs[2].body == {"docs": [{"x": 1}]}
    assert reqs[3].body is None and reqs[4].body is None
    assert isinstance(reqs[0], ConsoleRequest) and str(reqs[1]) == "PUT _ml/trained_models/m1"


def test_empty_text_gives_no_requests():
    assert parse_console("") == []
    assert parse_console("\n# only a comment\n// another\n\n") == []


def test_comments_outside_strings_are_ignored():
    text = """# leading comment
// another one
GET _ml/trained_models   # trailing comment on the request line
# between requests
POST _ml/trained_models/m/_infer // trailing
{
  # a comment line in the body
  "docs": [   // trailing comment
    {"text": "# not a comment // nor this", "url": "http://x/y"}  # end
  ], /* block
  comment */ "timeout": "1s"
}
"""
    get, post = parse_console(text)
    assert get.path == "_ml/trained_models" and get.body is None
    assert post.path == "_ml/trained_models/m/_infer"
    assert post.body == {"docs": [{"text": "# not a comment // nor this", "url": "http://x/y"}], "timeout": "1s"}


def test_triple_quoted_strings_become_json_strings():
    text = '''POST _ml/trained_models/m/_infer
{
  "docs": [{"text": """He said "hi"\\n
GET this is not a request line
	tab and \\ backslash"""}],
  "after": """x"""
}
GET _cat
'''
    post, get = parse_console(text)
    assert post.body["docs"][0]["text"] == 'He said "hi"\\n\nGET this is not a request line\n\ttab and \\ backslash'
    assert post.body["after"] == "x"
    assert get.method == "GET" and get.line == 8


def test_ndjson_body_is_a_list():
    text = """POST _bulk
{"index": {"_index": "docs", "_id": "1"}}
{"text": "one"}
{"index": {"_index": "docs", "_id": "2"}}
{"text": "two"}

POST _ml/trained_models/m/_infer
{"docs": [{"x": 1}]}
"""
    bulk, infer = parse_console(text)
    assert bulk.body == [
        {"index": {"_index": "docs", "_id": "1"}},
        {"text": "one"},
        {"index": {"_index": "docs", "_id": "2"}},
        {"text": "two"},
    ]
    assert infer.body == {"docs": [{"x": 1}]}


def test_substitution_as_json_values_both_forms():
    ns = {
        "mid": "my-model",
        "docs": [{"x": 1.5}, {"x": None}],
        "k": 3,
        "flag": True,
        "arr": np.array([1.0, 2.5], dtype=np.float32),
        "n": np.int64(7),
        "frame": pd.DataFrame({"x": [1, 2]}),
        "cfg": {"inner": {"size": 4}},
    }
    text = """POST _ml/trained_models/{{mid}}/_infer
{
  "docs": {{docs}},
  "inference_config": {"classification": {"num_top_classes": ${k}}},
  "flag": ${ flag },
  "arr": {{arr}},
  "n": {{ n }},
  "rows": ${frame},
  "size": {{cfg.inner.size}},
  "model": ${mid}
}
"""
    (req,) = parse_console(text, ns)
    assert req.path == "_ml/trained_models/my-model/_infer"
    assert req.body == {
        "docs": [{"x": 1.5}, {"x": None}],
        "inference_config": {"classification": {"num_top_classes": 3}},
        "flag": True,
        "arr": [1.0, 2.5],
        "n": 7,
        "rows": [{"x": 1}, {"x": 2}],
        "size": 4,
        "model": "my-model",
    }


def test_substitution_inside_strings_and_request_line_is_text():
    ns = {"name": 'say "hi"\nnow', "ids": ["a", "b"], "n": 5, "size": 10}
    text = '''GET _ml/trained_models/${ids}/_stats?size={{size}}
PUT _ml/trained_models/m
{"description": "model {{name}} #{{n}}", "raw": """{{name}}!""", "obj": "{{ids}}"}
'''
    stats, put = parse_console(text, ns)
    assert stats.path == "_ml/trained_models/a,b/_stats?size=10"
    assert put.body["description"] == 'model say "hi"\nnow #5'
    assert put.body["raw"] == 'say "hi"\nnow!'
    assert put.body["obj"] == '["a", "b"]'


def test_unknown_names_inside_strings_are_kept_for_es_templates():
    text = '''PUT _inference/text_embedding/svc
{"service_settings": {"request": "{\\"input\\": ${input}, \\"q\\": \\"{{query}}\\"}"}, "model": "{{mid}}"}
'''
    (req,) = parse_console(text, {"mid": "m1"})
    assert req.body["service_settings"]["request"] == '{"input": ${input}, "q": "{{query}}"}'
    assert req.body["model"] == "m1"


def test_escaped_placeholders_are_literal():
    text = r'''POST x/${mid}/\${mid}
{"a": "\${mid} and \{{mid}}", "b": ${mid}}
'''
    (req,) = parse_console(text, {"mid": "m1"})
    assert req.path == "x/m1/${mid}"
    assert req.body == {"a": "${mid} and {{mid}}", "b": "m1"}


def test_no_substitution_mode_leaves_placeholders():
    (req,) = parse_console('GET a/{{x}}\n{"q": "${x}"}', {}, substitute=False)
    assert req.path == "a/{{x}}" and req.body == {"q": "${x}"}


@pytest.mark.parametrize(
    "text, line",
    [
        ('GET x\n{"size": {{nope}}}', 2),
        ("GET _ml/trained_models/${nope}", 1),
        ('GET x\n\n{"a": """ok""",\n "b": ${nope}}', 4),
    ],
)
def test_unknown_variable_is_named(text, line):
    with pytest.raises(ConsoleError) as info:
        parse_console(text, {"other": 1})
    assert "nope" in str(info.value)
    assert info.value.line == line
    assert f"line {line}" in str(info.value)


def test_missing_attribute_of_a_variable_is_named():
    with pytest.raises(ConsoleError, match=r"'cfg' has no key or attribute 'zz'"):
        parse_console('GET x\n{"a": {{cfg.zz}}}', {"cfg": {"a": 1}})


def test_value_without_json_form_is_an_error():
    with pytest.raises(ConsoleError, match="cannot be written as JSON"):
        parse_console('GET x\n{"a": {{obj}}}', {"obj": object()})


def test_malformed_json_reports_request_and_line():
    text = """GET _ml/trained_models

POST _ml/trained_models/m/_infer
{
  "docs": [{"x": 1},]
}
"""
    with pytest.raises(ConsoleError) as info:
        parse_console(text)
    msg = str(info.value)
    assert info.value.line == 5
    assert "line 5" in msg and "request 2" in msg and "POST _ml/trained_models/m/_infer" in msg
    assert "column" in msg and '"docs": [{"x": 1},]' in msg


def test_line_offset_counts_the_magic_line():
    with pytest.raises(ConsoleError) as info:
        parse_console('GET x\n{"a": }', line_offset=1)
    assert info.value.line == 3


def test_bad_ndjson_line_is_reported():
    with pytest.raises(ConsoleError) as info:
        parse_console('POST _bulk\n{"index": {}}\n{"text": "a"\n')
    assert info.value.line == 3


def test_text_before_the_first_request_is_an_error():
    with pytest.raises(ConsoleError, match=r"line 2: expected a request line"):
        parse_console("# ok\nFETCH _ml/trained_models\n")


def test_request_line_with_extra_words_is_an_error():
    with pytest.raises(ConsoleError, match=r"line 1: a request line is 'METHOD path'"):
        parse_console("GET _ml/trained_models extra")


def test_unterminated_triple_quote_is_an_error():
    with pytest.raises(ConsoleError, match='never closed'):
        parse_console('POST x\n{"a": """abc\n')


def test_method_case_and_leading_whitespace():
    (req,) = parse_console("   delete   /_ingest/pipeline/p1   ")
    assert (req.method, req.path) == ("DELETE", "_ingest/pipeline/p1")


def test_json_words_that_start_like_methods_are_body():
    # a body line starting with "get" inside a string, or a key, is not a request line
    (req,) = parse_console('PUT x\n{\n"get": 1,\n"b": """\nget y\n"""}')
    assert req.body == {"get": 1, "b": "\nget y\n"}
