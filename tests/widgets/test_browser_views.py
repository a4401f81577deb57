"""The new views in a real browser (headless Chromium, JavaScript off: what nbviewer and exported HTML
show): ``%%infer``'s coloured, collapsed answer and the 900 px stats dashboard with its sparklines.
Screenshots land in the test's tmp dir; the assertions are on boxes and computed styles."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import training_frame
from playwright.sync_api import sync_playwright

from _lab import CHROMIUM
from es_infer_nb.widgets import model_stats
from es_infer_nb.widgets.json_view import console_html
from external import browser_available, need

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True, scope="module")
def needs_browser() -> None:
    need("browser", browser_available())


def _stats_body(n: int) -> dict:
    return {"count": n, "trained_model_stats": [{"model_id": f"model-{i}", "inference_stats": {
        "inference_count": i, "failure_count": 0}} for i in range(n)]}


def test_console_answers_and_dashboard_in_a_browser(eng, tmp_path: Path) -> None:
    eng.request("PUT", "_ingest/pipeline/score", {"processors": [
        {"inference": {"model_id": "reg", "tag": "s"}}]}).raise_for_status()
    dash = model_stats(["reg", "cls"], engine=eng, interval=0)
    for n in (5, 12, 3, 8):
        training_frame().head(n).infer.pipeline("score", engine=eng)
        dash.refresh()
    parts = {
        "ok": console_html("GET _ml/trained_models/_stats", 200, _stats_body(40), note="OK"),
        "bad": console_html("GET _ml/trained_models/nope", 404, {"error": {"type": "resource_not_found_exception",
                            "reason": "Could not find trained model [nope]"}, "status": 404},
                            note="resource_not_found_exception: Could not find trained model [nope]"),
        "big": console_html("POST _ml/trained_models/m/_infer", 200, {"docs": [{"i": i} for i in range(1000)]}),
        "ms": dash._repr_html_(),
    }
    page_html = "<!doctype html><html><body>" + "".join(
        f'<section id="{name}">{html}</section>' for name, html in parts.items()) + "</body></html>"
    (tmp_path / "views.html").write_text(page_html)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 2000}, java_script_enabled=False)
            page.goto((tmp_path / "views.html").as_uri())
            # the status colours: green for the 200, amber for the 404
            color = "el => getComputedStyle(el).color"
            assert page.locator("#ok .esinb-console-head").evaluate(color) == "rgb(26, 127, 55)"
            assert page.locator("#bad .esinb-console-head").evaluate(color) == "rgb(191, 135, 0)"
            # collapsed: the 40 models' array is closed (its rows hidden), the root open
            stats = page.locator("#ok details[data-path='trained_model_stats']")
            assert stats.get_attribute("open") is None
            assert not stats.locator("details[data-path='trained_model_stats.0']").is_visible()
            assert page.locator("#ok details[data-path='']").get_attribute("open") == ""
            stats.locator("> summary").click()  # <details> open without any script
            assert stats.locator("details[data-path='trained_model_stats.0']").is_visible()
            # the row limit: 100 of 1,000 documents and a note
            big = page.locator("#big details[data-path='docs']")
            big.locator("> summary").click()
            assert big.locator("> details").count() == 100
            assert big.locator("> .esinb-jv-more").inner_text() == "… 900 more"
            # the dashboard fits 900 px in a wider page, its sparklines drawn
            frame = page.locator("#ms .esinb-ms-frame").bounding_box()
            assert frame is not None and frame["width"] <= 900
            table = page.locator("#ms table.esinb-ms-models").bounding_box()
            assert table is not None and table["width"] <= 900
            rate = page.locator("#ms svg.esinb-spark[data-metric='rate'][data-model-id='reg'] polyline")
            assert rate.count() >= 1 and rate.first.is_visible()
            page.locator("#ok").screenshot(path=str(tmp_path / "console-200.png"))
            page.locator("#bad").screenshot(path=str(tmp_path / "console-404.png"))
            page.locator("#ms").screenshot(path=str(tmp_path / "dashboard.png"))
        finally:
            browser.close()
    for name in ("console-200.png", "console-404.png", "dashboard.png"):
        assert (tmp_path / name).stat().st_size > 2_000, name
