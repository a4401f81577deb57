"""Every tutorial in notebooks/ runs top to bottom in a real kernel and is committed with its outputs
(written by notebooks/execute.py: widget state included, no machine-specific paths, no secrets)."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import nbformat
import pytest

from nb_runner import NOTEBOOKS_DIR, ROOT, execute, notebooks, outputs_text, tutorial_script

#: tutorials the README lists; each must exist
EXPECTED = ("01_quickstart", "02_tabular_models", "03_nlp_tasks", "04_ingest_pipelines", "05_inference_endpoints",
            "06_stats_monitoring")
#: the demo API key notebook 05 gives its local service: never shown in an output
DEMO_SECRET = "sk-demo-local-0123456789abcdef"


def test_every_tutorial_is_there():
    names = [p.stem for p in notebooks()]
    for stem in EXPECTED:
        assert stem in names, f"notebooks/{stem}.ipynb is missing (found {names})"


#: tutorials that show widgets: their committed state must let nbconvert / nbviewer draw them
WITH_WIDGETS = ("02_tabular_models", "06_stats_monitoring")
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
#: a committed tutorial stays small (outputs capped by notebooks/execute.py)
MAX_BYTES = 600_000


def widget_views(nb: nbformat.NotebookNode) -> list[str]:
    return [out["data"][WIDGET_VIEW]["model_id"] for cell in nb.cells for out in cell.get("outputs", [])
            if WIDGET_VIEW in (out.get("data") or {})]


@pytest.mark.parametrize("path", notebooks(), ids=lambda p: p.stem)
def test_committed_with_outputs(path: Path):
    """Run top to bottom in one kernel (counts 1..n), no error, outputs written; small; nothing
    machine-specific or secret in them (``python notebooks/execute.py`` writes them so)."""
    text = path.read_text(encoding="utf-8")
    nb = nbformat.reads(text, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    assert json.loads(text)["nbformat"] == 4
    code = [c for c in nb.cells if c.cell_type == "code"]
    stale = "run `python notebooks/execute.py " + path.name + "` and commit the result"
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1)), f"{path.name}: {stale}"
    assert sum(bool(c.outputs) for c in code) >= len(code) // 2, f"{path.name} has few outputs: {stale}"
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            assert out["output_type"] != "error", f"{path.name} cell {i} shows an error"
        assert "execution" not in cell.metadata, f"{path.name} cell {i} keeps execution timings"
    assert len(text.encode()) <= MAX_BYTES, f"{path.name} is {len(text.encode()):,} bytes"
    outputs = json.dumps([c.outputs for c in code])
    assert DEMO_SECRET not in outputs, f"{path.name} shows a secret in its outputs"
    for private in {str(ROOT), sys.prefix, str(Path.home())} - {"/", ""}:
        assert private not in outputs, f"{path.name} shows {private} in an output: {stale}"
    assert "/tmp/" not in outputs, f"{path.name} shows a temporary path: {stale}"
    for model_id in widget_views(nb):  # numbered by notebooks/execute.py: a re-run changes no id
        assert model_id.startswith("0" * 24), f"{path.name}: widget id {model_id} is a random uuid: {stale}"
    assert not re.search(r"\d+%\|[^|]*\| *\d+/\d+ \[", outputs), f"{path.name} keeps a progress bar"


@pytest.mark.parametrize("path", notebooks(), ids=lambda p: p.stem)
def test_committed_widget_state(path: Path):
    """Each shown widget's model, and every model it refers to, is in the notebook's widget state:
    nbconvert then renders the view (it falls back to text/html for a view without state)."""
    nb = nbformat.read(path, as_version=4)
    views = widget_views(nb)
    if path.stem in WITH_WIDGETS:
        assert views, f"{path.name} shows no widget any more (update WITH_WIDGETS)"
    if not views:
        assert "widgets" not in nb.metadata
        return
    state = nb.metadata["widgets"][WIDGET_STATE]
    assert state["version_major"] == 2
    models = state["state"]
    for model_id in views:
        assert model_id in models, f"{path.name}: view {model_id} has no saved state"
    for model in models.values():
        for ref in re.findall(r"IPY_MODEL_([0-9a-f]{32})", json.dumps(model["state"])):
            assert ref in models, f"{path.name}: {model['model_name']} refers to {ref}, not saved"
    # nothing saved that no view shows (progress bars, closed widgets): kept small
    script = tutorial_script()
    assert set(models) == set(script.reachable(models, views))


@pytest.mark.parametrize("path", notebooks(), ids=lambda p: p.stem)
def test_notebook_runs(path: Path, tmp_path: Path):
    nb = execute(path, tmp_path)  # nbclient raises CellExecutionError on any failing cell
    text = outputs_text(nb)
    assert "Traceback" not in text
    assert DEMO_SECRET not in text, f"{path.name} shows a secret in its outputs"
    ran = [c for c in nb.cells if c.cell_type == "code"]
    assert ran and all(c.execution_count is not None for c in ran)
    # the committed outputs are those of the notebook as it is: the same kinds of output per cell
    script = tutorial_script()
    committed = nbformat.read(path, as_version=4)
    assert script.shapes(script.tidy(nb)) == script.shapes(committed), \
        f"{path.name}'s committed outputs are stale: run `python notebooks/execute.py {path.name}` and commit it"


def test_notebooks_dir_is_the_repos():
    assert NOTEBOOKS_DIR.is_dir() and NOTEBOOKS_DIR.parent.joinpath("pyproject.toml").is_file()


@pytest.mark.parametrize("path", notebooks(), ids=lambda p: p.stem)
def test_code_reaches_no_network(path: Path):
    """Tutorials run offline: the only addresses their code names are on the loopback interface."""
    import re

    nb = nbformat.read(path, as_version=4)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    for url in re.findall(r"https?://[^\s\"'}]+", code):
        assert re.match(r"https?://(127\.0\.0\.1|localhost)([:/]|$)", url), f"{path.name} names {url}"
