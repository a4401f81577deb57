"""Run a notebook top to bottom in a real Jupyter kernel (nbclient + ipykernel)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS_DIR = ROOT / "notebooks"


def notebooks() -> list[Path]:
    return sorted(NOTEBOOKS_DIR.glob("*.ipynb"))


def tutorial_script():
    """notebooks/execute.py, the script that writes the committed tutorials (a file, not a package module)."""
    spec = importlib.util.spec_from_file_location("notebooks_execute", NOTEBOOKS_DIR / "execute.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def execute(path: Path, workdir: Path) -> nbformat.NotebookNode:
    """Execute ``path`` as notebooks/execute.py does (a fresh ``python3`` kernel of this interpreter
    importing this checkout, ``ES_INFER_NB_HOME`` left out: the notebooks make their own state), cwd
    ``workdir``; the outputs as they came (not tidied); raise on any error.

    jupyter_client starts the native ``python3`` kernel with ``sys.executable``, so the kernel is
    the one of the environment running the tests.
    """
    return tutorial_script().run(path, workdir)


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
