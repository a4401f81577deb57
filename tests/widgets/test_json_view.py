"""The console answer renderer: status classes and colours, the collapsed tree, the cut text."""

from __future__ import annotations

import re

from es_infer_nb import Response
from es_infer_nb.widgets.json_view import (STATUS_COLORS, console_html, console_text, json_tree_html, status_class,
                                           status_color)


def test_status_classes():
    assert [status_class(s) for s in (100, 200, 204, 302, 400, 404, 500, 503, 999)] == [
        "1xx", "2xx", "2xx", "3xx", "4xx", "4xx", "5xx", "5xx", "5xx"]
    assert status_color(200) != status_color(400) != status_color(500) != status_color(200)
    assert status_color(429) == STATUS_COLORS["4xx"]


def test_tree_opens_small_levels_and_closes_big_ones():
    value = {"small": {"a": 1}, "big": list(range(50)), "deep": {"x": {"y": {"z": 1}}}}
    html = json_tree_html(value, open_levels=2, collapse_over=20)
    nodes = dict((p, o == " open") for p, o in re.findall(r'data-path="([^"]*)" data-size="\d+"( open)?>', html))
    assert nodes == {"": True, "small": True, "big": False, "deep": True, "deep.x": False, "deep.x.y": False}


def test_item_and_row_limits():
    html = json_tree_html({"l": list(range(300))}, max_items=100)
    assert re.findall(r'data-more="(\d+)"', html) == ["200"]
    html = json_tree_html([[i] * 10 for i in range(100)], max_rows=50)
    rows = html.count('class="esinb-jv-row"')
    assert rows <= 50 and "more</div>" in html


def test_scalars_are_typed_and_escaped():
    html = json_tree_html({"s": "<b>", "n": 1.5, "t": True, "z": None, "e": [], "o": {}})
    assert '<span class="esinb-jv-str">&quot;&lt;b&gt;&quot;</span>' in html
    assert '<span class="esinb-jv-num">1.5</span>' in html
    assert '<span class="esinb-jv-lit">true</span>' in html and '<span class="esinb-jv-lit">null</span>' in html
    assert "[]</div>" in html and "{}</div>" in html


def test_console_html_and_text():
    html = console_html("GET x", 404, {"error": {"type": "t"}}, note="t: r")
    assert 'data-status="404" data-status-class="4xx"' in html and STATUS_COLORS["4xx"] in html and "t: r" in html
    assert 'class="esinb-jv-row"' not in console_html("HEAD x", 200, None)
    text = console_text("GET x  200 OK", {"l": list(range(100))}, max_lines=10, more_hint=" (see _)")
    lines = text.splitlines()
    assert lines[0] == "# GET x  200 OK" and len(lines) == 12 and lines[-1] == "… 94 more lines (see _)"


def test_response_repr_uses_the_same_status_colours():
    assert STATUS_COLORS["4xx"] in Response(404, {"error": {"type": "t", "reason": "r"}})._repr_html_()
    assert STATUS_COLORS["5xx"] in Response(500, {"error": {"type": "t", "reason": "r"}})._repr_html_()
    assert STATUS_COLORS["2xx"] in Response(200, {"acknowledged": True})._repr_html_()
