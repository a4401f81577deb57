"""What ``%%infer`` shows for an answer: the status-coloured header, a collapsed JSON tree with a row
limit, a cut plain-text form, and the whole body in ``_``."""

from __future__ import annotations

import re

import pytest
from helpers import ipython_shell
from IPython.core.formatters import DisplayFormatter
from IPython.utils.capture import capture_output

from es_infer_nb import Engine, set_default_engine
from es_infer_nb.engine import Response
from es_infer_nb.notebook.console import ConsoleRequest
from es_infer_nb.notebook.magics import TEXT_LINES, TREE_ROWS, ConsoleResult


def result(status, body, method="GET", path="_ml/trained_models/_stats"):
    return ConsoleResult(ConsoleRequest(method, path, None, 1), Response(status, body))


def error_body(status, etype="x_exception", reason="went wrong"):
    return {"error": {"root_cause": [{"type": etype, "reason": reason}], "type": etype, "reason": reason},
            "status": status}


@pytest.mark.parametrize(("status", "cls", "color"), [
    (200, "2xx", "#1a7f37"), (201, "2xx", "#1a7f37"), (400, "4xx", "#bf8700"), (404, "4xx", "#bf8700"),
    (429, "4xx", "#bf8700"), (500, "5xx", "#cf222e"), (503, "5xx", "#cf222e"),
])
def test_the_header_colour_says_the_status_class(status, cls, color):
    body = {"acknowledged": True} if status < 300 else error_body(status)
    html = result(status, body)._repr_html_()
    assert f'data-status="{status}"' in html and f'data-status-class="{cls}"' in html
    head = re.search(r'<div class="esinb-console-head" style="([^"]+)">', html)
    assert head is not None and color in head.group(1)
    assert f'<span class="esinb-status" style="background:{color}">{status}</span>' in html


def test_a_400_and_a_200_differ_in_colour():
    ok = result(200, {"acknowledged": True})._repr_html_()
    bad = result(400, error_body(400))._repr_html_()
    assert "#1a7f37" in ok and "#1a7f37" not in bad and "#bf8700" in bad
    assert "x_exception: went wrong" in bad


def stats_body(n_models=40):
    return {"count": n_models, "trained_model_stats": [
        {"model_id": f"m{i}", "pipeline_count": 0,
         "inference_stats": {"inference_count": i, "failure_count": 0, "cache_miss_count": 0,
                             "missing_all_fields_count": 0, "timestamp": 1}} for i in range(n_models)]}


def test_big_arrays_are_collapsed_and_small_objects_open():
    html = result(200, stats_body())._repr_html_()
    nodes = re.findall(r'<details class="esinb-jv-node" data-path="([^"]*)" data-size="(\d+)"( open)?>', html)
    by_path = {p: (int(n), bool(o)) for p, n, o in nodes}
    assert by_path[""] == (2, True)  # the root is open
    assert by_path["trained_model_stats"] == (40, False)  # 40 items > 20: closed
    assert by_path["trained_model_stats.0"] == (3, True)  # small, but inside the closed array
    assert by_path["trained_model_stats.0.inference_stats"][1] is False  # below the open levels
    infer = result(200, {"inference_results": [{"predicted_value": 1.5, "top_classes": [{"class_name": "a"}]}]},
                   "POST", "_ml/trained_models/m/_infer")._repr_html_()
    assert 'data-path="inference_results.0" data-size="2" open' in infer  # a one-document answer shows its value
    assert 'data-path="inference_results.0.top_classes" data-size="1">' in infer
    small = result(200, {"a": {"b": 1}, "l": [1, 2]})._repr_html_()
    assert 'data-path="a" data-size="1" open' in small and 'data-path="l" data-size="2" open' in small


def test_the_row_limit_says_how_many_more_and_the_body_stays_whole():
    body = {"docs": [{"i": i} for i in range(1000)]}
    res = result(200, body, "POST", "_ml/trained_models/m/_infer")
    html = res._repr_html_()
    more = [int(n) for n in re.findall(r'class="esinb-jv-more" data-more="(\d+)"', html)]
    assert more and more[0] == 900  # 100 items of an array at most
    assert html.count('class="esinb-jv-row"') <= TREE_ROWS
    assert "… 900 more" in html
    assert res.body is body and len(res.body["docs"]) == 1000


def test_plain_text_is_cut_with_a_note():
    res = result(200, stats_body())
    text = DisplayFormatter().format(res)[0]["text/plain"]
    lines = text.splitlines()
    assert lines[0] == "# GET _ml/trained_models/_stats  200 OK"
    assert len(lines) == 1 + TEXT_LINES + 1
    assert re.fullmatch(r"… [\d,]+ more lines \(the whole body: _ after the cell, or --out NAME\)", lines[-1])
    short = DisplayFormatter().format(result(200, {"acknowledged": True}))[0]["text/plain"]
    assert "more lines" not in short


def test_long_strings_are_cut_in_the_tree():
    html = result(200, {"text": "x" * 5000})._repr_html_()
    assert "(3,000 more characters)" in html


def test_html_escapes_the_body():
    html = result(200, {"<script>": "</div><b>x</b>"})._repr_html_()
    assert "<script>" not in html.replace("<style>", "") and "&lt;/div&gt;" in html


def test_the_cell_keeps_the_last_whole_body_in_underscore():
    shell = ipython_shell()
    if "infer" not in shell.magics_manager.magics["cell"]:
        shell.run_line_magic("load_ext", "es_infer_nb")
    set_default_engine(Engine())
    try:
        with capture_output() as captured:
            shell.run_cell("%%infer\nGET _ml/trained_models\n\nGET _ml/trained_models/_stats\n")
        assert len(captured.outputs) == 2
        assert set(captured.outputs[0].data) == {"text/plain", "text/html"}
        engine = Engine()
        stats = engine.request("GET", "_ml/trained_models/_stats").body
        kept = shell.user_ns["_"]
        assert kept["count"] == stats["count"] and set(kept) == set(stats) == {"count", "trained_model_stats"}
        with capture_output():
            shell.run_cell("%infer GET _ml/trained_models")
        assert shell.user_ns["_"] == engine.request("GET", "_ml/trained_models").body
    finally:
        set_default_engine(None)
