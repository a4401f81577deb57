"""Painless as a template script (what ml-commons runs a connector's pre- and post-process functions as):
the returned value, ``StringBuilder``, a list's ``length`` and Java's ``toString`` of what is concatenated."""

from __future__ import annotations

import pytest

from es_infer_nb.errors import ApiError
from es_infer_nb.painless import compile_script

# ml-commons' Bedrock Titan blueprint scripts, as its docs give them
PRE = (
    '\n    StringBuilder builder = new StringBuilder();\n    builder.append("\\"");\n'
    '    String first = params.text_docs[0];\n    builder.append(first);\n    builder.append("\\"");\n'
    '    def parameters = "{" +"\\"inputText\\":" + builder + "}";\n'
    '    return  "{" +"\\"parameters\\":" + parameters + "}";'
)
POST = (
    '\n      def name = "sentence_embedding";\n      def dataType = "FLOAT32";\n'
    '      if (params.embedding == null || params.embedding.length == 0) {\n        return params.message;\n      }\n'
    '      def shape = [params.embedding.length];\n      def json = "{" +\n'
    '                 "\\"name\\":\\"" + name + "\\"," +\n'
    '                 "\\"data_type\\":\\"" + dataType + "\\"," +\n'
    '                 "\\"shape\\":" + shape + "," +\n'
    '                 "\\"data\\":" + params.embedding +\n                 "}";\n      return json;\n    '
)


def test_a_template_script_gives_back_what_it_returns() -> None:
    assert compile_script(PRE).evaluate({"text_docs": ["hello"]}) == '{"parameters":{"inputText":"hello"}}'
    out = compile_script(POST).evaluate({"embedding": [0.1, 2.0, 1e-05, 384]})
    assert out == '{"name":"sentence_embedding","data_type":"FLOAT32","shape":[4],"data":[0.1, 2.0, 1.0E-5, 384]}'
    assert compile_script(POST).evaluate({"embedding": [], "message": "no vector"}) == "no vector"
    assert compile_script("def x = 1;").evaluate({}) is None
    assert compile_script("return;").evaluate({}) is None


def test_string_builder_as_java_has_it() -> None:
    script = """
        StringBuilder sb = new StringBuilder();
        sb.append('a').append(1).append(2.5).append(true).append([1, 'b']).append(null);
        sb.insert(0, '>');
        def n = sb.length();
        sb.deleteCharAt(1);
        return sb.toString() + '|' + n + '|' + sb.charAt(0) + '|' + (sb == sb) + '|' + sb.reverse();
    """
    assert compile_script(script).evaluate({}) == ">12.5true[1, b]null|20|>|true|llun]b ,1[eurt5.21>"
    with pytest.raises(ApiError) as err:
        compile_script("StringBuilder sb = new StringBuilder(); sb.charAt(3);").evaluate({})
    assert err.value.type == "script_exception"
    assert err.value.caused_by.type == "index_out_of_bounds_exception"
    with pytest.raises(ApiError) as err:
        compile_script("String s = new StringBuilder(); return s;").evaluate({})
    assert err.value.caused_by.reason == "Cannot cast java.lang.StringBuilder to java.lang.String"


def test_a_lists_length_and_its_index_shortcut() -> None:
    assert compile_script("return params.v.length + params.v[1];").evaluate({"v": [1, 2, 3]}) == 5
    with pytest.raises(ApiError) as err:
        compile_script("return params.v.size;").evaluate({"v": [1]})
    assert err.value.caused_by.reason == "Illegal list shortcut value [size]."


def test_a_script_processor_still_ignores_what_its_script_returns() -> None:
    ctx: dict = {"a": 1}
    assert compile_script("ctx.b = ctx.a + 1; return 7;").execute(ctx, {}) is None
    assert ctx == {"a": 1, "b": 2}
