"""Every tutorial in notebooks/ runs top to bottom in a real kernel and is committed without outputs."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from nb_runner import NOTEBOOKS_DIR, execute, notebooks, outputs_text

#: tutorials the README lists; each must exist
EXPECTED = ("01_quickstart", "02_tabular_models", "03_nlp_tasks", "04_ingest_pipelines", "05_inference_endpoints",
            "06_stats_monitoring")
#: the demo API key notebook 05 gives its local service: never shown in an output
DEMO_SECRET = "sk-demo-local-0123456789abcdef"


def test_every_tutorial_is_there():
    names = [p.stem for p in notebooks()]
    for stem in EXPECTED:
        assert stem in names, f"notebooks/{stem}.ipynb is missing (found {names})"


@pytest.mark.parametrize("path", notebooks(), ids=lambda p: p.stem)
def test_committed_without_outputs(path: Path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name} cell {i} has outputs: clear them before committing"
            assert cell.execution_count is None, f"{path.name} cell {i} has an execution count"
    assert nb.metadata["kernelspec"]["name"] == "python3"
    assert json.loads(path.read_text(encoding="utf-8"))["nbformat"] == 4


@pytest.mark.parametrize("path", notebooks(), ids=lambda p: p.stem)
def test_notebook_runs(path: Path, tmp_path: Path):
    nb = execute(path, tmp_path)  # nbclient raises CellExecutionError on any failing cell
    text = outputs_text(nb)
    assert "Traceback" not in text
    assert DEMO_SECRET not in text, f"{path.name} shows a secret in its outputs"
    ran = [c for c in nb.cells if c.cell_type == "code"]
    assert ran and all(c.execution_count is not None for c in ran)


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
