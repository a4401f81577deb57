"""``jupyter nbconvert --to html`` of a committed tutorial shows its widgets: the page embeds the
widget state and the HTML widget manager, and in Chromium (the manager answered from a local copy,
tests/widget_embed.py) every widget output becomes our widget's view, drawn from the state alone.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from external import browser_available, need
from nb_runner import NOTEBOOKS_DIR
from widget_embed import export_html, exported_page, html_manager, pixels, screenshot_dir

pytestmark = pytest.mark.slow

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
RENDER_TIMEOUT_MS = 30_000
#: tutorial -> (CSS class of our widget, the DOM marks it must draw from the saved state)
TUTORIALS = {
    "02_tabular_models": {"esinb-feature-importance": ".esinb-waterfall .esinb-fi-bar",
                          "esinb-top-classes": ".esinb-tc-bar",
                          "esinb-evaluation": ".esinb-ev-metric",
                          "esinb-importance-summary": ".esinb-fis-beeswarm .esinb-fis-dot"},
    "06_stats_monitoring": {"esinb-model-stats": ".esinb-ms-model svg.esinb-spark polyline"},
}


def shown(path: Path) -> int:
    nb = nbformat.read(path, as_version=4)
    return sum(WIDGET_VIEW in (out.get("data") or {}) for cell in nb.cells for out in cell.get("outputs", []))


@pytest.mark.parametrize("stem", sorted(TUTORIALS))
def test_tutorial_widgets_render_in_exported_html(stem: str, tmp_path: Path) -> None:
    need("browser", browser_available())
    manager = html_manager()
    need("registry", manager is not None)
    assert manager is not None
    from playwright.sync_api import expect

    expect.set_options(timeout=RENDER_TIMEOUT_MS)
    path = NOTEBOOKS_DIR / f"{stem}.ipynb"
    views = shown(path)
    assert views >= len(TUTORIALS[stem]), f"{path.name} shows {views} widgets"
    html_text = export_html(path)
    assert html_text.count(f'<script type="{WIDGET_VIEW}">') == views  # none fell back to text/html
    shots = screenshot_dir(tmp_path, f"exported-{stem}")
    (shots / f"{stem}.html").write_text(html_text, encoding="utf-8")
    with exported_page(html_text, manager, {"width": 1100, "height": 1200}) as (page, errors, _):
        outputs = page.locator(".jp-OutputArea-output.jupyter-widgets")
        expect(outputs).to_have_count(views)
        for i in range(views):  # each output is a live view of one of our widgets
            expect(outputs.nth(i).locator(".widget-vbox[class*='esinb-']")).to_have_count(1)
        for css_class, marks in TUTORIALS[stem].items():
            widget = page.locator(f".jupyter-widgets .widget-vbox.{css_class}").first
            expect(widget).to_be_visible()
            expect(widget.locator(marks).first).to_be_visible()
            png = widget.screenshot(path=str(shots / f"{css_class}.png"))
            shot = pixels(page, png)
            box = widget.bounding_box()
            assert abs(shot.width - box["width"]) < 2 and abs(shot.height - box["height"]) < 2, (css_class, shot)
            assert shot.height > 60 and 0.01 < shot.ink < 0.9 and shot.colours > 4, (css_class, shot)
        assert "Loading widget" not in page.locator("body").inner_text()
        assert not errors, errors
