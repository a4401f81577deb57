"""The widgets rendered by JupyterLab in headless Chromium (Playwright).

The test starts ``jupyter lab`` on 127.0.0.1 (token, temporary root), opens a notebook that builds
the widgets, runs all cells in JupyterLab's own kernel and checks the DOM: the live ipywidgets
views (``@jupyter-widgets/jupyterlab-manager``, not the static ``text/html`` fallback) carry the
elements the widgets must show: waterfall steps per feature, model totals, class probabilities,
the frame summary, the stats table (refreshed by its thread after more rows ran) and the HTML repr
of a response. Changing the row dropdown in the page redraws the waterfall through the kernel.
Each view is photographed (the test's tmp dir, or ``$ES_INFER_NB_SCREENSHOTS/jupyterlab``) and the picture checked: the
size of the element, something drawn (not blank), several colours (tests/widget_embed.pixels).

A second test loads each widget's static ``_repr_html_`` (what nbviewer or an exported page shows
without a widget manager) into a bare Chromium page with JavaScript off and checks its marks are
drawn to scale.
"""

from __future__ import annotations

import time
from pathlib import Path

import nbformat
import pytest
from playwright.sync_api import expect, sync_playwright

from _lab import CHROMIUM, Lab, jupyter_lab
from external import browser_available, need
from widget_embed import pixels, screenshot_dir, widget_fixture_cell

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True, scope="module")
def needs_browser() -> None:
    """Chromium must be there: skipped with how to get it, or failed where ES_INFER_NB_REQUIRE asks for it."""
    need("browser", browser_available())

HERE = Path(__file__).resolve().parent
DONE = "ES_INFER_NB_WIDGETS_DONE"
#: one bound for the whole page work (kernel start, imports, model fits, rendering)
PAGE_TIMEOUT_MS = 90_000
#: for each DOM check once the notebook has run (redraws come from the kernel)
CHECK_TIMEOUT_MS = 20_000

CELLS = [
    # the fixtures of the widget tests: xgboost regression + 3-class models with importance metadata,
    # and a pipeline whose inference processor the dashboard lists under ingest
    "import time\nimport numpy as np\n" + widget_fixture_cell(HERE)
    + "eng.request('PUT', '_ingest/pipeline/score',\n"
    "    {'processors': [{'inference': {'model_id': 'reg', 'tag': 'reg-score'}}]}).raise_for_status()\n"
    "piped = rows.infer.pipeline('score', engine=eng)",
    "widgets.feature_importance(reg, engine=eng)",
    "widgets.feature_importance(cls, row='r2', engine=eng)",
    "widgets.top_classes(cls)",
    "dash = widgets.model_stats(['reg', 'cls'], engine=eng, interval=0.5)\ndash",
    # more rows run after the dashboard is shown: its thread redraws the counts
    "more = training_frame().head(40).infer.run('reg', engine=eng, progress=False)",
    "eng.request('GET', '_ml/trained_models/cls')",
    # the same widgets from the accessor and the magic
    "rows.infer.explain('r1', 'reg', engine=eng)",
    "%load_ext es_infer_nb\n%infer stats reg --widget -e eng",
    # %%infer's answers: a 200 and a 404, status-coloured, collapsed
    "%%infer -e eng\nGET _ml/trained_models/reg/_stats\n\nGET _ml/trained_models/nope",
    # two more refreshes by the thread, then stop it; print the count the dashboard must show
    "n = dash.refresh_count\nt = time.monotonic()\n"
    "while dash.refresh_count < n + 2 and time.monotonic() - t < 30:\n    time.sleep(0.05)\n"
    "dash.stop()\n"
    "count = eng.request('GET', '_ml/trained_models/reg/_stats').body['trained_model_stats'][0]"
    "['inference_stats']['inference_count']\n"
    f"print({DONE!r}, 'reg', count, 'running', dash.running)",
    # one feature of three asked: the "other" step carries the rest up to the class's score
    # (after the counts above: its rows would change them)
    "cls1 = rows.infer.run('cls', engine=eng, progress=False, inference_config={'classification': {\n"
    "    'num_top_classes': -1, 'num_top_feature_importance_values': 1}})\n"
    "widgets.feature_importance(cls1, row='r2', class_name='mid', engine=eng)",
    # this turn's views that run nothing: the importance summary (beeswarm + mean |importance|) and
    # the evaluation of both models against the rule their labels / targets came from
    "widgets.importance_summary(reg)",
    "truth = np.where(rows.a > 0.3, 'hi', np.where(rows.b > 0, 'mid', 'lo'))\ncls.infer.evaluate(truth)",
    "reg.infer.evaluate(2 * rows.a + rows.b)",
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
    expect.set_options(timeout=CHECK_TIMEOUT_MS)
    shots = screenshot_dir(tmp_path, "jupyterlab")
    started = time.monotonic()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 3000})
            page.set_default_timeout(PAGE_TIMEOUT_MS)
            try:
                count = _run_notebook(page, lab)
                _check_feature_importance(page)
                _check_waterfall_steps(page)
                _check_importance_summary(page)
                _check_evaluation(page)
                _check_top_classes(page)
                _check_model_stats(page, count)
                _check_sparklines(page)
                _check_response(page)
                _check_console(page)
                _element_shots(page, shots)
                _check_interaction(page)
            finally:
                page.screenshot(path=str(shots / "notebook.png"), full_page=True)
        finally:
            browser.close()
    shot = shots / "notebook.png"
    assert shot.stat().st_size > 10_000, "the screenshot is empty"
    print(f"screenshots in {shots} ({time.monotonic() - started:.0f}s in the browser)")


def _stderr(page) -> list[str]:
    return page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']").all_inner_texts()


def _run_notebook(page, lab: Lab) -> int:
    """Open the notebook, run all cells in JupyterLab; the regression model's inference_count at the end."""
    page.goto(lab.notebook_url("widgets.ipynb"))
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
                           " && window.jupyterapp.shell.currentWidget.sessionContext")
    # kernel up, then every cell, through JupyterLab's own command (as Run > Run All Cells)
    page.wait_for_function(
        "() => { const s = window.jupyterapp.shell.currentWidget.sessionContext;"
        " return s.session && s.session.kernel && s.session.kernel.connectionStatus === 'connected'; }")
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    done = page.locator(".jp-OutputArea-output", has_text=DONE)
    try:
        done.wait_for()
    except Exception:
        raise AssertionError(f"the notebook did not finish; errors shown: {_stderr(page)}\n"
                             f"server log:\n{lab.log_tail()}") from None
    assert not [e for e in _stderr(page) if "Error" in e], _stderr(page)
    words = done.inner_text().split()
    assert words[3:] == ["running", "False"], words  # dash.stop() ended the refresh thread
    return int(words[2])


def _check_feature_importance(page) -> None:
    fi = page.locator(_live("esinb-feature-importance"))
    # regression (row selector), classification (one row), df.infer.explain, one feature of three
    expect(fi).to_have_count(4)
    reg, cls, explained = fi.nth(0), fi.nth(1), fi.nth(2)

    # regression: live ipywidgets views (the row dropdown; the class one is hidden for a regression),
    # the waterfall baseline -> one bar per feature -> prediction, and the model's totals
    row_select = reg.locator(".widget-dropdown select").first
    expect(row_select).to_be_visible()
    assert row_select.locator("option").all_inner_texts() == ["r0", "r1", "r2", "r3", "r4"]
    expect(reg.locator(".esinb-fi-row")).to_have_attribute("data-row", "r0")
    expect(reg.locator(".esinb-waterfall .esinb-fi-baseline")).to_have_count(1)
    expect(reg.locator(".esinb-waterfall .esinb-fi-prediction")).to_have_count(1)
    assert _features(reg) == {"a", "b", "c"}
    expect(reg.locator(".esinb-fi-bar rect").first).to_be_visible()
    expect(reg.locator(".esinb-fi-totals .esinb-fi-total")).to_have_count(3)

    # classification: one row (no row selector), the waterfall of a class, the class selector, class totals
    expect(cls.locator(".esinb-fi-row")).to_have_attribute("data-row", "r2")
    assert cls.locator(".esinb-fi-row").get_attribute("data-class") in {"hi", "lo", "mid"}
    assert _features(cls) == {"a", "b", "c"}
    class_select = cls.locator(".widget-dropdown select")
    expect(class_select).to_have_count(1)
    assert sorted(class_select.locator("option").all_inner_texts()) == ["hi", "lo", "mid"]
    expect(cls.locator(".esinb-fi-total")).to_have_count(3)

    # df.infer.explain on a frame without importance: the model ran on that row
    expect(explained.locator(".esinb-fi-row")).to_have_attribute("data-row", "r1")
    assert _features(explained) == {"a", "b", "c"}
    # ... and the waterfall starts at that engine's baseline for the model, with its totals below
    baseline = explained.locator(".esinb-fi-row").get_attribute("data-baseline")
    assert baseline is not None and baseline == reg.locator(".esinb-fi-row").get_attribute("data-baseline")
    expect(explained.locator(".esinb-fi-total")).to_have_count(3)


def _check_waterfall_steps(page) -> None:
    """The waterfall ends at the model's score: with 1 of 3 features shown, an "other" step carries
    the rest (classification as regression); each bar names its feature's value; the axis is zoomed
    to the steps (not from 0)."""
    fi = page.locator(_live("esinb-feature-importance"))
    one = fi.nth(3)
    expect(one.locator(".esinb-fi-row")).to_have_attribute("data-class", "mid")
    expect(one.locator(".esinb-waterfall .esinb-fi-bar")).to_have_count(1)
    expect(one.locator(".esinb-waterfall .esinb-fi-other")).to_have_count(1)
    for widget in (one, fi.nth(1), fi.nth(0)):
        baseline = float(widget.locator(".esinb-fi-baseline").get_attribute("data-value") or "nan")
        steps = [float(v or "nan") for v in widget.locator(
            ".esinb-waterfall .esinb-fi-bar, .esinb-waterfall .esinb-fi-other").evaluate_all(
            "els => els.map(e => e.getAttribute('data-importance'))")]
        score = float(widget.locator(".esinb-fi-prediction").get_attribute("data-value") or "nan")
        assert abs(baseline + sum(steps) - score) < 1e-6 * max(1.0, abs(score)), (baseline, steps, score)
        # the feature's value on its bar: "a = 0.00123"
        bar = widget.locator(".esinb-waterfall .esinb-fi-bar").first
        value = bar.get_attribute("data-feature-value")
        assert value is not None
        name, shown = (bar.locator("text").first.text_content() or "").split(" = ")
        assert name == bar.get_attribute("data-feature") and abs(float(shown) - float(value)) <= 1e-3 * abs(float(value))
        # zoomed: the axis spans the steps with a margin, not a fixed 0
        axis = widget.locator(".esinb-fi-axis")
        lo, hi = float(axis.get_attribute("data-lo") or "nan"), float(axis.get_attribute("data-hi") or "nan")
        ends = [baseline, score]
        at = baseline
        for step in steps:
            at += step
            ends.append(at)
        span = max(ends) - min(ends)
        assert lo <= min(ends) and hi >= max(ends) and hi - lo <= 2 * span + 1e-9, (lo, hi, ends)


def _check_importance_summary(page) -> None:
    """The beeswarm: one line per feature (by mean |importance|), a dot per row of the 5, coloured by the
    feature's value; the mean |importance| bars in the same order."""
    summary = page.locator(_live("esinb-importance-summary"))
    expect(summary).to_have_count(1)
    lines = summary.locator(".esinb-fis-beeswarm .esinb-fis-feature")
    expect(lines).to_have_count(3)
    means = [float(m or "nan") for m in lines.evaluate_all("els => els.map(e => e.getAttribute('data-mean-abs'))")]
    assert means == sorted(means, reverse=True), means
    dots = summary.locator(".esinb-fis-beeswarm .esinb-fis-dot")
    expect(dots.first).to_be_visible()
    assert 5 <= dots.count() <= 15  # a dot per row and feature reported (a zero importance may be left out)
    assert len(set(dots.evaluate_all("els => els.map(e => e.getAttribute('fill'))"))) > 1  # coloured by value
    bars = summary.locator(".esinb-fis-bars .esinb-fis-bar")
    expect(bars).to_have_count(3)
    assert [b.get_attribute("data-feature") for b in bars.all()] == \
        [li.get_attribute("data-feature") for li in lines.all()]


def _check_evaluation(page) -> None:
    """df.infer.evaluate: classification (metrics, per class, confusion matrix over the 5 rows,
    calibration) and regression (metrics, one residual per row)."""
    ev = page.locator(_live("esinb-evaluation"))
    expect(ev).to_have_count(2)
    cls, reg = ev.nth(0), ev.nth(1)
    expect(cls.locator(".esinb-ev[data-task='classification']")).to_have_count(1)
    accuracy = float(cls.locator(".esinb-ev-metric[data-name='accuracy']").get_attribute("data-value") or "nan")
    assert 0.0 <= accuracy <= 1.0
    cells = cls.locator(".esinb-ev-confusion .esinb-ev-cell")
    counts = [int(c or 0) for c in cells.evaluate_all("els => els.map(e => e.getAttribute('data-count'))")]
    assert sum(counts) == 5
    right = sum(int(c.get_attribute("data-count") or 0) for c in cells.all()
                if c.get_attribute("data-true") == c.get_attribute("data-predicted"))
    assert abs(right / 5 - accuracy) < 1e-9, (right, accuracy)
    expect(cls.locator(".esinb-ev-class").first).to_be_visible()
    expect(cls.locator(".esinb-ev-calibration-point").first).to_be_visible()
    expect(reg.locator(".esinb-ev[data-task='regression']")).to_have_count(1)
    expect(reg.locator(".esinb-ev-residual")).to_have_count(5)
    rmse = float(reg.locator(".esinb-ev-metric[data-name='rmse']").get_attribute("data-value") or "nan")
    assert rmse > 0


def _check_sparklines(page) -> None:
    """The dashboard's rate and latency sparklines, one of each per model, fed by the refreshes."""
    dash = page.locator(_live("esinb-model-stats")).first
    for metric in ("rate", "latency"):
        sparks = dash.locator(f"svg.esinb-spark[data-metric='{metric}']")
        expect(sparks).to_have_count(2)
        reg = dash.locator(f"svg.esinb-spark[data-metric='{metric}'][data-model-id='reg']")
        assert len((reg.get_attribute("data-values") or "").split(",")) >= 2  # a sample per refresh
    expect(dash.locator("svg.esinb-spark[data-model-id='reg'] polyline").first).to_be_visible()


def _features(widget) -> set[str | None]:
    bars = widget.locator(".esinb-waterfall .esinb-fi-bar")
    return {bars.nth(i).get_attribute("data-feature") for i in range(bars.count())}


def _check_top_classes(page) -> None:
    tc = page.locator(_live("esinb-top-classes"))
    expect(tc).to_have_count(1)
    bars = tc.locator(".esinb-tc-bar")
    expect(bars).to_have_count(3)  # num_top_classes -1: every class of the row
    probabilities = [float(bars.nth(i).get_attribute("data-probability") or "nan") for i in range(3)]
    assert abs(sum(probabilities) - 1.0) < 1e-6 and probabilities == sorted(probabilities, reverse=True)
    summary = tc.locator(".esinb-tc-summary-row")
    expect(summary.first).to_be_visible()
    assert sum(int(summary.nth(i).get_attribute("data-count") or 0) for i in range(summary.count())) == 5


def _check_model_stats(page, count: int) -> None:
    ms = page.locator(_live("esinb-model-stats"))
    expect(ms).to_have_count(2)  # widgets.model_stats and %infer stats --widget
    dash, magic = ms.nth(0), ms.nth(1)

    # redrawn by its own thread after the 40 + 1 more rows (it showed 10 when it was made)
    assert count > 10
    expect(dash.locator(".esinb-ms-model")).to_have_count(2)
    expect(dash.locator(".esinb-ms-model[data-model-id='reg'] td[data-stat='inference_count']")).to_have_attribute(
        "data-value", str(count))
    expect(dash.locator(".esinb-ms-model[data-model-id='cls'] td[data-stat='inference_count']")).to_have_attribute(
        "data-value", "5")
    # ingest per pipeline and processor
    expect(dash.locator(".esinb-ms-pipeline[data-pipeline='score']")).to_have_count(1)
    processor = dash.locator(".esinb-ms-processor[data-pipeline='score']")
    expect(processor).to_have_count(1)
    assert "inference" in (processor.get_attribute("data-processor") or "")
    # stopped: the live toggle is off in the page
    expect(dash.locator(".widget-toggle-button")).to_have_count(1)
    expect(dash.locator(".widget-toggle-button.mod-active")).to_have_count(0)
    expect(dash.locator("div.widget-label")).to_contain_text("paused")

    # the magic's dashboard: one model, still refreshing
    expect(magic.locator(".esinb-ms-model")).to_have_count(1)
    expect(magic.locator("td[data-stat='inference_count']")).to_have_attribute("data-value", str(count))
    expect(magic.locator(".widget-toggle-button.mod-active")).to_have_count(1)


def _check_response(page) -> None:
    """The rich repr of a Response (text/html output, not a widget)."""
    model = page.locator(".jp-OutputArea-output .esinb-response .esinb-model[data-model-id='cls']")
    expect(model).to_have_count(1)
    expect(model).to_contain_text("classification")


def _check_console(page) -> None:
    """``%%infer``'s answers render as the coloured, collapsed HTML (not JupyterLab's JSON tree)."""
    ok = page.locator(".jp-OutputArea-output .esinb-console[data-status-class='2xx']")
    bad = page.locator(".jp-OutputArea-output .esinb-console[data-status-class='4xx']")
    expect(ok).to_have_count(1)
    expect(bad).to_have_count(1)
    assert ok.locator(".esinb-console-head").evaluate("el => getComputedStyle(el).color") == "rgb(26, 127, 55)"
    assert bad.locator(".esinb-console-head").evaluate("el => getComputedStyle(el).color") == "rgb(191, 135, 0)"
    expect(bad.locator(".esinb-console-head")).to_contain_text("Could not find trained model [nope]")
    # the dashboard stays within 900 px in a 1280 px page
    box = page.locator(_live("esinb-model-stats")).first.bounding_box()
    assert box is not None and box["width"] <= 900


#: each view photographed: file name -> its element
VIEWS = {
    "feature-importance-regression": _live("esinb-feature-importance") + " >> nth=0",
    "feature-importance-classification": _live("esinb-feature-importance") + " >> nth=1",
    "feature-importance-other-step": _live("esinb-feature-importance") + " >> nth=3",
    "top-classes": _live("esinb-top-classes"),
    "model-stats": _live("esinb-model-stats") + " >> nth=0",
    "response": ".jp-OutputArea-output .esinb-response >> nth=0",
    "console-2xx": ".jp-OutputArea-output .esinb-console[data-status-class='2xx']",
    "console-4xx": ".jp-OutputArea-output .esinb-console[data-status-class='4xx']",
    "importance-summary": _live("esinb-importance-summary"),
    "evaluation-classification": _live("esinb-evaluation") + " >> nth=0",
    "evaluation-regression": _live("esinb-evaluation") + " >> nth=1",
}


def _element_shots(page, shots: Path) -> None:
    """One picture per view, checked: the element's size, drawn (not blank), in several colours."""
    for name, selector in VIEWS.items():
        element = page.locator(selector)
        element.scroll_into_view_if_needed()
        box = element.bounding_box()
        assert box is not None, f"{name}: {selector} is not on the page"
        png = element.screenshot(path=str(shots / f"{name}.png"))
        shot = pixels(page, png)
        assert abs(shot.width - box["width"]) < 2 and abs(shot.height - box["height"]) < 2, (name, shot, box)
        assert shot.width >= 200 and shot.height >= 40, (name, shot)
        assert 0.005 < shot.ink < 0.9 and shot.colours >= 4, f"{name} looks blank or flat: {shot}"


def _check_interaction(page) -> None:
    """Pick another row in the regression widget's dropdown: the kernel redraws the waterfall."""
    reg = page.locator(_live("esinb-feature-importance")).nth(0)
    reg.locator(".widget-dropdown select").first.select_option(label="r3")
    expect(reg.locator(".esinb-fi-row")).to_have_attribute("data-row", "r3")
    assert _features(reg) == {"a", "b", "c"}


def test_static_html_renders_without_jupyter(eng, reg_result, cls_result, tmp_path: Path) -> None:
    """The fallback a page without a widget manager shows (nbviewer, exported HTML): each widget's
    ``_repr_html_`` in a bare Chromium page draws its marks with real boxes, and no script runs."""
    from es_infer_nb import widgets

    dash = widgets.model_stats(["reg", "cls"], engine=eng, interval=0)
    parts = {
        "fi-reg": widgets.feature_importance(reg_result, row="r1", engine=eng)._repr_html_(),
        "fi-cls": widgets.feature_importance(cls_result, row="r2", engine=eng)._repr_html_(),
        "tc": widgets.top_classes(cls_result)._repr_html_(),
        "ms": dash._repr_html_(),
        "response": eng.request("GET", "_ml/trained_models/reg")._repr_html_(),
    }
    for name, html_text in parts.items():
        assert "<script" not in html_text.lower(), name
    page_html = "<!doctype html><html><body>" + "".join(
        f'<section id="{name}">{html_text}</section>' for name, html_text in parts.items()) + "</body></html>"
    (tmp_path / "static.html").write_text(page_html)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1000, "height": 1600}, java_script_enabled=False)
            page.goto((tmp_path / "static.html").as_uri())
            # regression waterfall: baseline, one bar per feature largest first, prediction
            bars = page.locator("#fi-reg .esinb-waterfall .esinb-fi-bar")
            assert bars.count() == 3
            importances = [abs(float(bars.nth(i).get_attribute("data-importance") or "nan")) for i in range(3)]
            widths = [bars.nth(i).locator("rect").bounding_box()["width"] for i in range(3)]
            assert importances == sorted(importances, reverse=True)
            assert widths == sorted(widths, reverse=True) and widths[0] > 10  # drawn to scale
            assert page.locator("#fi-reg .esinb-fi-baseline rect").bounding_box()["width"] > 0
            assert page.locator("#fi-reg .esinb-fi-totals .esinb-fi-total").count() == 3
            # classification: the class's waterfall, labelled with its class
            assert page.locator("#fi-cls .esinb-fi-row").get_attribute("data-class") in {"hi", "lo", "mid"}
            assert page.locator("#fi-cls .esinb-fi-bar").count() == 3
            # top classes and the summary; the stats table; the response card
            assert page.locator("#tc .esinb-tc-bar").count() == 3
            assert page.locator("#tc .esinb-tc-summary-row").count() >= 1
            assert page.locator("#ms .esinb-ms-model").count() == 2
            assert page.locator("#ms .esinb-ms-model[data-model-id='reg'] td[data-stat='inference_count']") \
                .get_attribute("data-value") == str(reg_stats_count(eng))
            assert page.locator("#response .esinb-model[data-model-id='reg']").is_visible()
            page.screenshot(path=str(tmp_path / "static.png"), full_page=True)
        finally:
            browser.close()
    assert (tmp_path / "static.png").stat().st_size > 10_000


def reg_stats_count(eng) -> int:
    body = eng.request("GET", "_ml/trained_models/reg/_stats").raise_for_status().body
    return int(body["trained_model_stats"][0]["inference_stats"]["inference_count"])
