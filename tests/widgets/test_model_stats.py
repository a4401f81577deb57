"""model_stats: the _stats dashboard's content, refresh and background thread, by state (no timing asserts)."""

from __future__ import annotations

import re
import threading
import time

import ipywidgets as w
import pytest
from conftest import fitted_engine, training_frame

from es_infer_nb.widgets import ModelStatsWidget, model_stats


@pytest.fixture
def eng():
    return fitted_engine()  # a fresh engine: the counters start at 0 in every test


def _stat(html: str, model_id: str, name: str) -> str:
    row = re.search(rf'<tr class="esinb-ms-model" data-model-id="{model_id}">(.*?)</tr>', html).group(1)
    return re.search(rf'data-stat="{name}"(?: data-value="([^"]*)")?', row).group(1)


def _until(predicate, limit: float = 30.0) -> bool:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def test_counters_and_manual_refresh(eng):
    widget = model_stats(["reg", "cls"], engine=eng, interval=0)
    assert isinstance(widget, ModelStatsWidget) and not widget.running and widget.refresh_count == 1
    assert isinstance(widget.live, w.ToggleButton) and widget.live.value is False
    assert [s["model_id"] for s in widget.stats] == ["cls", "reg"]
    assert _stat(widget.view.value, "reg", "inference_count") == "0"
    training_frame().head(7).infer.run("reg", engine=eng, progress=False)
    widget.refresh()
    assert widget.refresh_count == 2 and _stat(widget.view.value, "reg", "inference_count") == "7"
    assert _stat(widget.view.value, "cls", "inference_count") == "0"
    assert widget.throughput["reg"] > 0 and widget.throughput["cls"] == 0
    widget.refresh_button.click()
    assert widget.refresh_count == 3
    text = repr(widget)
    assert text.startswith("model stats (_ml/trained_models/reg,cls/_stats, paused)") and "reg" in text
    assert widget._repr_html_() == widget.static_html()


def test_background_refresh_follows_a_run_and_stops_cleanly(eng):
    widget = model_stats("reg", engine=eng, interval=0.05, idle_stop=None)
    try:
        assert widget.running and widget.live.value is True
        thread = widget._thread
        assert thread.daemon and thread.name == "es-infer-nb-model-stats"
        training_frame().head(11).infer.run("reg", engine=eng, progress=False)
        assert _until(lambda: _stat(widget.view.value, "reg", "inference_count") == "11")
        seen = widget.refresh_count
        assert _until(lambda: widget.refresh_count > seen + 1)
    finally:
        widget.stop()
    assert not widget.running and not thread.is_alive() and widget.live.value is False
    stopped_at = widget.refresh_count
    assert "paused" in widget.status.value
    time.sleep(0.2)
    assert widget.refresh_count == stopped_at  # nothing refreshes after stop()
    widget.live.value = True  # the toggle starts it again
    assert widget.running
    widget.live.value = False
    assert not widget.running
    widget.start(0.05)
    widget.close()
    assert not widget.running


def test_idle_dashboard_stops_by_itself(eng):
    widget = model_stats(["reg"], engine=eng, interval=0.02, idle_stop=0.1)
    assert _until(lambda: not widget.running)
    assert widget.live.value is False and "stopped (no change)" in widget.status.value
    assert threading.active_count() >= 1


def test_deployments_and_ingest_per_pipeline(eng):
    assert eng.request("PUT", "_ingest/pipeline/score", {"processors": [
        {"inference": {"model_id": "reg", "tag": "scorer"}}]}).ok
    training_frame().head(4).infer.pipeline("score", engine=eng)
    widget = model_stats(["reg"], engine=eng, interval=0)
    html = widget.view.value
    assert re.search(r'class="esinb-ms-pipeline" data-model-id="reg" data-pipeline="score"', html)
    assert 'data-processor="inference:scorer" data-type="inference"' in html
    assert _stat(html, "reg", "pipeline_count") == "1"
    ingest = re.search(r'data-pipeline="score">(.*?)</tr>', html).group(1)
    assert 'data-stat="count" data-value="4"' in ingest


def test_deployment_totals():
    from es_infer_nb.widgets.model_stats import _deployment_totals

    dep = {"state": "started", "peak_throughput_per_minute": 9, "nodes": [
        {"inference_count": 3, "average_inference_time_ms": 2.0, "throughput_last_minute": 3,
         "average_inference_time_ms_last_minute": 2.0, "inference_cache_hit_count": 1},
        {"inference_count": 1, "average_inference_time_ms": 6.0, "throughput_last_minute": 1,
         "average_inference_time_ms_last_minute": 6.0, "inference_cache_hit_count": 0}]}
    out = _deployment_totals(dep)
    assert out["inference_count"] == 4 and out["inference_cache_hit_count"] == 1
    assert out["average_inference_time_ms"] == pytest.approx(3.0)
    assert out["average_inference_time_ms_last_minute"] == pytest.approx(3.0)
    assert out["state"] == "started" and out["peak_throughput_per_minute"] == 9


def test_unknown_model_is_an_error_line_not_an_exception(eng):
    widget = model_stats(["nope"], engine=eng, interval=0)
    assert widget.stats == [] and widget.error.startswith("404 resource_not_found_exception")
    assert "esinb-ms-error" in widget.view.value and widget.error in widget.status.value
    with pytest.raises(ValueError, match="interval"):
        widget.start(0)


def test_accessor_stats(eng):
    scored = training_frame().head(3).infer.run("cls", engine=eng, progress=False)
    widget = scored.infer.stats(engine=eng)
    try:
        assert isinstance(widget, ModelStatsWidget) and widget.model_ids == ["cls"]
        assert _stat(widget.view.value, "cls", "inference_count") == "3"
    finally:
        widget.stop()
