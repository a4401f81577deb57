"""Run a notebook top to bottom in a real Jupyter kernel (nbclient + ipykernel)."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS_DIR = ROOT / "notebooks"
#: per cell; a notebook as a whole should take well under a minute
CELL_TIMEOUT_S = 300


def notebooks() -> list[Path]:
    return sorted(NOTEBOOKS_DIR.glob("*.ipynb"))


def execute(path: Path, workdir: Path) -> nbformat.NotebookNode:
    """Execute ``path`` with the ``python3`` kernel of this interpreter, cwd ``workdir``; raise on any error.

    jupyter_client starts the native ``python3`` kernel with ``sys.executable``, so the kernel is
    the one of the environment running the tests. ``ES_INFER_NB_HOME`` is left out: the notebooks
    make their own state.
    """
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    env_home = os.environ.pop("ES_INFER_NB_HOME", None)
    try:
        client = NotebookClient(
            nb,
            timeout=CELL_TIMEOUT_S,
            kernel_name="python3",
            resources={"metadata": {"path": str(workdir)}},
        )
        client.execute()
    finally:
        if env_home is not None:
            os.environ["ES_INFER_NB_HOME"] = env_home
    return nb


def outputs_text(nb: nbformat.NotebookNode) -> str:
    """Every output of every cell as text (streams, results, errors)."""
    parts: list[str] = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                parts.append(out.get("text", ""))
            elif out.get("output_type") == "error":
                parts.append("\n".join(out.get("traceback", [])))
            else:
                for value in (out.get("data") or {}).values():
                    parts.append(value if isinstance(value, str) else str(value))
    return "\n".join(parts)
