"""binder/ builds a working environment the way repo2docker does, and notebook 01 runs in it.

repo2docker copies the repository, installs ``binder/requirements.txt`` with pip into the image's
Python, then runs ``binder/postBuild`` from the repository root. This test does the same in a fresh
venv (no system site-packages). It reuses pip's cache and, when pip's configuration finds one, a
local ``torch==2.13.0`` wheel: ``ES_INFER_NB_TORCH_INDEX_URL=""`` tells postBuild to let pip's own
configuration resolve torch instead of PyTorch's CPU index (unreachable offline).

Bounded (tests/venvs.py): every step has a timeout out of one overall budget, and the venv lives in a temp folder.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path


from nb_runner import NOTEBOOKS_DIR, ROOT
from external import need, registry_available
from venvs import VenvBuild

BUDGET_S = 600  # building the environment (requirements + postBuild): ~3-5 min on an idle 2-core machine, 6-8 min under heavy load
NOTEBOOK_TIMEOUT_S = 300  # running notebook 01 in it: ~130 s on a loaded machine (first imports compile, model load)
SKIP_PARTS = {".venv", ".git", "__pycache__", ".pytest_cache", "build", "dist", ".ipynb_checkpoints"}

RUN_NOTEBOOK = """
import sys
import nbformat
from nbclient import NotebookClient
nb = nbformat.read(sys.argv[1], as_version=4)
NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": sys.argv[2]}}).execute()
codes = [c for c in nb.cells if c.cell_type == "code"]
assert all(c.execution_count is not None for c in codes)
print("executed", len(codes), "code cells")
"""


def _copy_repo(dest: Path) -> None:
    """The repository's files as repo2docker would see them (no venv, caches or build output)."""

    def ignore(folder: str, names: list[str]) -> set[str]:
        return {n for n in names if n in SKIP_PARTS or n.endswith(".egg-info")}

    shutil.copytree(ROOT, dest, ignore=ignore)


def test_binder_environment_runs_the_quickstart(tmp_path: Path):
    need("registry", registry_available())
    assert (ROOT / "binder" / "requirements.txt").is_file() and os.access(ROOT / "binder" / "postBuild", os.X_OK)
    repo = tmp_path / "repo"
    _copy_repo(repo)
    venv = tmp_path / "venv"
    build = VenvBuild(venv, BUDGET_S, "binder build")
    build.create(repo)
    env = build.env
    env["ES_INFER_NB_TORCH_INDEX_URL"] = ""  # pip's own configuration finds torch==2.13.0 (see module docstring)
    py = build.python
    build.run([py, "-m", "pip", "install", "-q", "-r", "binder/requirements.txt"], cwd=repo,
              what="pip install -r binder/requirements.txt")
    out = build.run(["bash", "binder/postBuild"], cwd=repo, what="binder/postBuild")
    assert "es_infer_nb 0.1.0 with torch 2.13.0" in out and "CUDA build: no" in out

    # the package is the copied checkout, installed editable, in the venv (run outside the checkout)
    workdir = tmp_path / "work"
    workdir.mkdir()
    where = subprocess.run([py, "-c", "import es_infer_nb, sys; print(es_infer_nb.__file__); print(sys.prefix)"],
                           cwd=workdir, env=env, capture_output=True, text=True, timeout=120, check=True).stdout.split()
    assert Path(where[0]).is_relative_to(repo), where
    assert Path(where[1]) == venv, where

    notebook = repo / "notebooks" / "01_quickstart.ipynb"
    assert notebook.is_file() and (NOTEBOOKS_DIR / notebook.name).is_file()
    proc = subprocess.run([py, "-c", RUN_NOTEBOOK, str(notebook), str(workdir)], cwd=repo, env=env,
                          capture_output=True, text=True, timeout=NOTEBOOK_TIMEOUT_S)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert "executed" in proc.stdout
