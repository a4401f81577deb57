"""The widgets rendered by JupyterLab in headless Chromium (Playwright).

The test starts ``jupyter lab`` on 127.0.0.1 (token, temporary root), opens a notebook that builds
the widgets, runs all cells in JupyterLab's own kernel and checks the DOM: the live ipywidgets
views (``@jupyter-widgets/jupyterlab-manager``, not the static ``text/html`` fallback) carry the
elements the widgets must show: waterfall steps per feature, model totals, class probabilities,
the frame summary, the stats table (refreshed by its thread after more rows ran) and the HTML repr
of a response. Changing the row dropdown in the page redraws the waterfall through the kernel.
Screenshots land in the test's tmp dir (elements are checked, not pixels).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import nbformat
import pytest

from _lab import CHROMIUM, Lab, jupyter_lab

pytestmark = pytest.mark.slow

HERE = Path(__file__).resolve().parent
DONE = "ES_INFER_NB_WIDGETS_DONE"
#: one bound for the whole page work (kernel start, imports, model fits, rendering)
PAGE_TIMEOUT_MS = 90_000

CELLS = [
    # the fixtures of the widget tests: xgboost regression + 3-class models with importance metadata
    f"import sys\nsys.path.insert(0, {json.dumps(str(HERE))})\n"
    "from conftest import fitted_engine, training_frame\n"
    "from es_infer_nb import widgets\n"
    "eng = fitted_engine()\n"
    "rows = training_frame().head(5).set_axis(['r0', 'r1', 'r2', 'r3', 'r4'])\n"
    "reg = rows.infer.run('reg', engine=eng, progress=False,\n"
    "    inference_config={'regression': {'num_top_feature_importance_values': 3}})\n"
    "cls = rows.infer.run('cls', engine=eng, progress=False, inference_config={'classification': {\n"
    "    'num_top_classes': -1, 'num_top_feature_importance_values': 3}})",
    "widgets.feature_importance(reg, engine=eng)",
    "widgets.feature_importance(cls, row='r2', engine=eng)",
    "widgets.top_classes(cls)",
    "dash = widgets.model_stats(['reg', 'cls'], engine=eng, interval=0.5)\ndash",
    # more rows run after the dashboard is shown: its thread redraws the counts
    "more = training_frame().head(40).infer.run('reg', engine=eng, progress=False)",
    "eng.request('GET', '_ml/trained_models/cls')",
    f"print({DONE!r})",
]


def _notebook(path: Path) -> None:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(src) for src in CELLS])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nbformat.write(nb, path)


def _live(widget_class: str) -> str:
    """A selector inside the live ipywidgets view (the VBox carries the class only when rendered)."""
    return f".jp-OutputArea-output .widget-vbox.{widget_class}"


@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> Lab:
    root = tmp_path_factory.mktemp("lab-root")
    _notebook(root / "widgets.ipynb")
    with jupyter_lab(root, tmp_path_factory.mktemp("lab-state")) as running:
        yield running


def test_widgets_render_in_jupyterlab(lab: Lab, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "Debian's chromium is needed (apt-get install chromium)"
    shots = tmp_path / "screenshots"
    shots.mkdir()
    started = time.monotonic()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 2400})
            page.set_default_timeout(PAGE_TIMEOUT_MS)
            try:
                _run_notebook(page, lab)
                _check_widgets(page)
                _element_shots(page, shots)
                _check_interaction(page)
            finally:
                page.screenshot(path=str(shots / "notebook.png"), full_page=True)
        finally:
            browser.close()
    shot = shots / "notebook.png"
    assert shot.stat().st_size > 10_000, "the screenshot is empty"
    print(f"screenshot: {shot} ({time.monotonic() - started:.0f}s in the browser)")


def _run_notebook(page, lab: Lab) -> None:
    page.goto(lab.notebook_url("widgets.ipynb"))
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
                           " && window.jupyterapp.shell.currentWidget.sessionContext")
    # kernel up, then every cell, through JupyterLab's own command (as Run > Run All Cells)
    page.wait_for_function(
        "() => { const s = window.jupyterapp.shell.currentWidget.sessionContext;"
        " return s.session && s.session.kernel && s.session.kernel.connectionStatus === 'connected'; }")
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    try:
        page.locator(".jp-OutputArea-output", has_text=DONE).wait_for()
    except Exception:
        errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']").all_inner_texts()
        raise AssertionError(f"the notebook did not finish; errors shown: {errors}\nserver log:\n{lab.log_tail()}")
    errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']").all_inner_texts()
    assert not [e for e in errors if "Error" in e], errors


def _check_widgets(page) -> None:
    fi = page.locator(_live("esinb-feature-importance"))
    assert fi.count() == 2  # regression (row selector) and classification (one row)
    reg, cls = fi.nth(0), fi.nth(1)

    # regression waterfall: baseline -> one bar per feature -> prediction, and the model totals
    # live ipywidgets views: the row dropdown (the class one is hidden for a regression)
    assert reg.locator(".widget-dropdown select").first.is_visible()
    assert reg.locator(".widget-dropdown select").first.locator("option").all_inner_texts() == [
        "r0", "r1", "r2", "r3", "r4"]
    assert reg.locator(".esinb-fi-row").get_attribute("data-row") == "r0"
    assert reg.locator(".esinb-waterfall .esinb-fi-baseline").count() == 1
    assert reg.locator(".esinb-waterfall .esinb-fi-prediction").count() == 1
    features = {reg.locator(".esinb-fi-bar").nth(i).get_attribute("data-feature")
                for i in range(reg.locator(".esinb-fi-bar").count())}
    assert features == {"a", "b", "c"}
    assert reg.locator(".esinb-fi-bar rect").first.is_visible()
    assert reg.locator(".esinb-fi-totals .esinb-fi-total").count() == 3

    # classification: one row, the waterfall of a class, a class selector and per-class totals
    row = cls.locator(".esinb-fi-row")
    assert row.get_attribute("data-row") == "r2"
    assert row.get_attribute("data-class") in {"hi", "lo", "mid"}
    assert cls.locator(".esinb-fi-bar").count() == 3
    class_options = cls.locator(".widget-dropdown select option").all_inner_texts()
    assert sorted(class_options) == ["hi", "lo", "mid"]
    assert cls.locator(".esinb-fi-total").count() == 3

    # top classes: the row's probabilities and the frame's summary
    tc = page.locator(_live("esinb-top-classes"))
    assert tc.count() == 1
    assert tc.locator(".esinb-tc-bar").count() >= 3
    assert tc.locator(".esinb-tc-summary-row").count() >= 1

    # the stats dashboard, redrawn by its refresh thread after 40 more regression rows
    ms = page.locator(_live("esinb-model-stats"))
    assert ms.count() == 1
    assert ms.locator(".esinb-ms-model").count() == 2
    ms.locator(".esinb-ms-model[data-model-id='reg'] td[data-stat='inference_count'][data-value='45']").wait_for()
    assert ms.locator(".esinb-ms-model[data-model-id='cls'] td[data-stat='inference_count']").get_attribute(
        "data-value") == "5"
    assert ms.locator("button").count() >= 2  # live toggle and refresh now

    # the rich repr of a response (text/html output, not a widget)
    model = page.locator(".jp-OutputArea-output .esinb-response .esinb-model")
    assert model.count() == 1
    assert "cls" in model.inner_text()


def _element_shots(page, shots: Path) -> None:
    """One picture per widget (for a person to look at; the assertions are on the DOM)."""
    for name in ("esinb-feature-importance", "esinb-top-classes", "esinb-model-stats"):
        page.locator(_live(name)).first.screenshot(path=str(shots / f"{name}.png"))


def _check_interaction(page) -> None:
    """Pick another row in the regression widget's dropdown: the kernel redraws the waterfall."""
    reg = page.locator(_live("esinb-feature-importance")).nth(0)
    reg.locator(".widget-dropdown select").first.select_option(label="r3")
    reg.locator(".esinb-fi-row[data-row='r3']").wait_for()
    assert reg.locator(".esinb-fi-bar").count() == 3
