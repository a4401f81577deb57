"""The stats dashboard fits 900 px and draws sparklines of rate and latency from a bounded history."""

from __future__ import annotations

import re

import pytest
from conftest import fitted_engine, training_frame

from es_infer_nb.widgets import model_stats
from es_infer_nb.widgets._html import sparkline
from es_infer_nb.widgets.model_stats import MAX_WIDTH


@pytest.fixture
def eng():
    return fitted_engine()


def _spark(html: str, model_id: str, metric: str) -> list[float | None]:
    m = re.search(rf'<svg class="esinb-spark"[^>]* data-values="([^"]*)" data-metric="{metric}" '
                  rf'data-model-id="{model_id}"', html)
    assert m is not None, (model_id, metric)
    return [None if v == "" else float(v) for v in m.group(1).split(",")] if m.group(1) else []


def test_the_dashboard_fits_900_px(eng):
    widget = model_stats(["reg", "cls"], engine=eng, interval=0)
    assert MAX_WIDTH == "900px"
    assert widget.layout.max_width == "900px" and widget.layout.width == "100%"
    assert widget.view.layout.max_width == "900px"
    assert widget.children[0].layout.flex_flow == "row wrap"  # the controls wrap rather than overflow
    html = widget.static_html()
    assert html.startswith('<div class="esinb-ms-frame" style="max-width:900px;overflow-x:auto">')
    assert ".esinb-ms{max-width:900px;overflow-x:auto" in html and ".esinb-ms table{width:100%" in html
    # two sparklines of 120 px beside 8 narrow number columns and a 180 px id column
    widths = [int(w) for w in re.findall(r'<svg class="esinb-spark" width="(\d+)"', html)]
    assert widths == [120] * 4
    heads = re.search(r'<table class="esinb-ms-models"><thead><tr>(.*?)</tr>', html).group(1)
    assert heads.count("<th>") == 10 and "rate over time" in heads and "latency over time" in heads


def test_rate_and_latency_sparklines_follow_the_counters(eng):
    eng.request("PUT", "_ingest/pipeline/score", {"processors": [
        {"inference": {"model_id": "reg", "tag": "scorer"}}]}).raise_for_status()
    widget = model_stats("reg", engine=eng, interval=0, history=4)
    assert widget.series("reg", "rate") == []  # one refresh: no interval yet
    frame = training_frame().head(20)
    for n in (5, 0, 20, 10, 3):
        if n:
            frame.head(n).infer.pipeline("score", engine=eng)
        widget.refresh()
    rates = widget.series("reg", "rate")
    assert len(rates) == 4  # bounded: the oldest of 5 samples is gone
    assert rates[1] > 0 and rates[2] > 0 and rates[3] > 0 and rates[0] == 0  # samples of 0, 20, 10, 3 rows
    latency = widget.series("reg", "latency")
    assert latency[0] is None and all(v is not None and v >= 0 for v in latency[1:])
    html = widget.static_html()
    assert _spark(html, "reg", "rate") == pytest.approx(rates, rel=1e-5)
    drawn = _spark(html, "reg", "latency")
    assert drawn[0] is None and drawn[1:] == pytest.approx(latency[1:], rel=1e-5, abs=1e-9)
    assert '<polyline points="' in html
    assert len(widget.history["reg"]) == 4 and widget.history["reg"].maxlen == 4


def test_latency_from_deployment_counters():
    from es_infer_nb.widgets.model_stats import _latency_sources

    stat = {"deployment_stats": {"nodes": [{"inference_count": 4, "average_inference_time_ms": 2.5},
                                           {"inference_count": 1, "average_inference_time_ms": 10.0}]}}
    assert _latency_sources(stat) == (20.0, 5)
    ingest = {"ingest": {"pipelines": {"p": {"processors": [
        {"inference:t": {"type": "inference", "stats": {"count": 4, "time_in_millis": 8}}},
        {"set:s": {"type": "set", "stats": {"count": 4, "time_in_millis": 100}}}]}}}}
    assert _latency_sources(ingest) == (8.0, 4)
    assert _latency_sources({}) == (0.0, 0)


def test_history_must_hold_a_line():
    with pytest.raises(ValueError, match="history must keep at least 2 samples"):
        model_stats("reg", engine=fitted_engine(), interval=0, history=1)
    with pytest.raises(ValueError, match="metric must be 'rate' or 'latency'"):
        model_stats("reg", engine=fitted_engine(), interval=0).series("reg", "speed")


def test_sparkline_svg():
    svg = sparkline([1, 2, None, 4, 3], width=100, height=20, data_metric="rate")
    assert svg.startswith('<svg class="esinb-spark" width="100" height="20" role="img" data-values="1,2,,4,3" '
                          'data-metric="rate">')
    assert svg.count("<polyline") == 2  # the gap splits the line (a single-point segment draws nothing)
    assert svg.count("<circle") == 1
    assert sparkline([]).endswith("></svg>") and "<polyline" not in sparkline([None, None])
    flat = sparkline([5, 5, 5], width=40, height=10)
    assert 'points="2.0,8.0 20.0,8.0 38.0,8.0"' in flat
