"""The widgets in a notebook exported to HTML: live views of the embedded widget state, not an empty
output nor the static fallback.

A small notebook shows feature importance (regression and classification), top classes, the
stats dashboard, the importance summary and an evaluation; ``notebooks/execute.py`` runs it with the widget state saved (what the committed
tutorials go through), nbconvert exports it (the lab template, as ``jupyter nbconvert --to html``),
and headless Chromium opens the page with ``@jupyter-widgets/html-manager`` answered from a local
copy (tests/widget_embed.py): the manager must draw our widgets from the state alone, no kernel.
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import nbformat
import pytest

from external import browser_available, need
from widget_embed import export_html, exported_page, html_manager, pixels, screenshot_dir, widget_fixture_cell

pytestmark = pytest.mark.slow

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
RENDER_TIMEOUT_MS = 30_000

CELLS = [
    widget_fixture_cell(HERE),
    "widgets.feature_importance(reg, engine=eng)",
    "widgets.feature_importance(cls, row='r2', engine=eng)",
    "widgets.top_classes(cls)",
    "dash = widgets.model_stats(['reg', 'cls'], engine=eng, interval=0)\ndash",
    "widgets.importance_summary(reg)",
    "cls.infer.evaluate(['mid', 'lo', 'mid', 'mid', 'lo'])",
]


def load_execute():
    """notebooks/execute.py (a script, not a package module)."""
    spec = importlib.util.spec_from_file_location("notebooks_execute", ROOT / "notebooks" / "execute.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def executed(tmp_path_factory) -> Path:
    """The widget notebook, run by notebooks/execute.py with its widget state, written to disk."""
    folder = tmp_path_factory.mktemp("export")
    path = folder / "widgets.ipynb"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(src) for src in CELLS])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nbformat.write(nb, path)
    nbformat.write(load_execute().execute(path, folder), path)
    return path


def test_executed_notebook_keeps_the_widget_state(executed: Path) -> None:
    nb = nbformat.read(executed, as_version=4)
    nbformat.validate(nb)
    state = nb.metadata["widgets"][WIDGET_STATE]["state"]
    views = [out["data"][WIDGET_VIEW]["model_id"] for cell in nb.cells for out in cell.get("outputs", [])
             if WIDGET_VIEW in out.get("data", {})]
    assert len(views) == 6  # one per widget cell
    for model_id in views:
        assert state[model_id]["model_name"] == "VBoxModel"
    # each view's children are in the state, down to the leaves (a state missing one draws nothing)
    for model in state.values():
        for ref in re.findall(r"IPY_MODEL_([0-9a-f]{32})", json.dumps(model["state"])):
            assert ref in state, f"{model['model_name']} refers to {ref}, not in the saved state"
    # the static fallback rides along for pages without a widget manager (GitHub, nbviewer)
    first = next(out for out in nb.cells[1].outputs if WIDGET_VIEW in out.get("data", {}))
    assert "esinb-waterfall" in first["data"]["text/html"]


def test_exported_html_embeds_the_manager_and_the_state(executed: Path) -> None:
    page = export_html(executed)
    assert f'<script type="{WIDGET_STATE}">' in page
    assert page.count(f'<script type="{WIDGET_VIEW}">') == 6
    assert "@jupyter-widgets/html-manager@" in page and "embed-amd.js" in page


def test_widgets_render_in_exported_html(executed: Path, tmp_path: Path) -> None:
    need("browser", browser_available())
    manager = html_manager()  # None: npm could not fetch it (skipped, or failed where the registry is required)
    need("registry", manager is not None)
    assert manager is not None
    from playwright.sync_api import expect

    expect.set_options(timeout=RENDER_TIMEOUT_MS)
    html_text = export_html(executed)
    shots = screenshot_dir(tmp_path, "exported-html")
    (shots / "widgets.html").write_text(html_text, encoding="utf-8")
    with exported_page(html_text, manager, {"width": 1000, "height": 1400}) as (page, errors, requests):

        fi = page.locator(".jupyter-widgets .widget-vbox.esinb-feature-importance")
        expect(fi).to_have_count(2)
        reg, cls = fi.nth(0), fi.nth(1)
        # regression: the row dropdown and the waterfall of the first row, as saved
        assert reg.locator(".widget-dropdown select").first.locator("option").all_inner_texts() == \
            ["r0", "r1", "r2", "r3", "r4"]
        expect(reg.locator(".esinb-fi-row")).to_have_attribute("data-row", "r0")
        features = reg.locator(".esinb-waterfall .esinb-fi-bar")
        expect(features).to_have_count(3)
        assert {features.nth(i).get_attribute("data-feature") for i in range(3)} == {"a", "b", "c"}
        assert reg.locator(".esinb-fi-bar rect").first.bounding_box()["width"] > 0
        expect(reg.locator(".esinb-fi-prediction")).to_have_count(1)
        expect(reg.locator(".esinb-fi-totals .esinb-fi-total")).to_have_count(3)
        # classification: the row given, its class, the class dropdown
        expect(cls.locator(".esinb-fi-row")).to_have_attribute("data-row", "r2")
        assert sorted(cls.locator(".widget-dropdown select option").all_inner_texts()) == ["hi", "lo", "mid"]

        tc = page.locator(".jupyter-widgets .widget-vbox.esinb-top-classes")
        expect(tc).to_have_count(1)
        expect(tc.locator(".esinb-tc-bar")).to_have_count(3)
        shares = tc.locator(".esinb-tc-summary-row")
        assert sum(int(shares.nth(i).get_attribute("data-count") or 0) for i in range(shares.count())) == 5

        ms = page.locator(".jupyter-widgets .widget-vbox.esinb-model-stats")
        expect(ms).to_have_count(1)
        expect(ms.locator(".esinb-ms-model")).to_have_count(2)
        expect(ms.locator(".esinb-ms-model[data-model-id='reg'] td[data-stat='inference_count']")) \
            .to_have_attribute("data-value", "5")
        expect(ms.locator(".widget-toggle-button")).to_have_count(1)

        summary = page.locator(".jupyter-widgets .widget-vbox.esinb-importance-summary")
        expect(summary.locator(".esinb-fis-feature")).to_have_count(3)
        expect(summary.locator(".esinb-fis-dot").first).to_be_visible()
        ev = page.locator(".jupyter-widgets .widget-vbox.esinb-evaluation")
        cells = ev.locator(".esinb-ev-confusion .esinb-ev-cell")
        expect(cells.first).to_be_visible()
        assert sum(int(c.get_attribute("data-count") or 0) for c in cells.all()) == 5

        # every widget output became a view: no "Loading widget..." nor an empty output is left
        outputs = page.locator(".jp-OutputArea-output.jupyter-widgets")
        expect(outputs).to_have_count(6)
        for i in range(6):
            expect(outputs.nth(i).locator(".widget-vbox")).to_have_count(1)
        assert "Loading widget" not in page.locator("body").inner_text()
        assert not errors, errors
        assert any("embed-amd.js" in url for url in requests.served), requests
        assert not [url for url in requests.refused if "jupyter-widgets" in url], requests.refused

        # the pictures: drawn (not blank), at the size of the element, in our bar colours
        for name, widget in (("feature-importance", reg), ("top-classes", tc), ("model-stats", ms),
                             ("importance-summary", summary), ("evaluation", ev)):
            box = widget.bounding_box()
            png = widget.screenshot(path=str(shots / f"{name}.png"))
            shot = pixels(page, png)
            assert abs(shot.width - box["width"]) < 2 and abs(shot.height - box["height"]) < 2, (name, shot, box)
            assert shot.width > 300 and shot.height > 60, (name, shot)
            assert 0.01 < shot.ink < 0.9 and shot.colours > 4, (name, shot)
        page.screenshot(path=str(shots / "page.png"), full_page=True)
    print(f"exported page and screenshots in {shots}")
