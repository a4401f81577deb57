"""Tests that need something outside Python: skip with how to get it, or fail when CI asks for it.

``ES_INFER_NB_REQUIRE`` (comma-separated: ``browser``, ``registry``, ``gpu``, or ``all``) turns the
skip of a missing resource into a failure; ``.ci/run`` sets ``browser,registry`` so that CI goes red
when Chromium is missing or the package registry cannot be reached, while a fresh clone on a
machine without them still passes the README's test command.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"

HOW = {
    "browser": "Debian's chromium at /usr/bin/chromium and the playwright package (apt-get install chromium)",
    "registry": "a package registry pip can install from (the venv-building tests install packages) and npm's "
                "(the exported-HTML tests fetch @jupyter-widgets/html-manager, see tests/widget_embed.py)",
    "gpu": "a CUDA device",
}


def required() -> set[str]:
    return {part.strip() for part in os.environ.get("ES_INFER_NB_REQUIRE", "").split(",") if part.strip()}


def need(resource: str, available: bool) -> None:
    """Skip (or, when ``ES_INFER_NB_REQUIRE`` names ``resource``, fail) unless ``available``."""
    if available:
        return
    wanted = required()
    message = f"needs {HOW[resource]}"
    if resource in wanted or "all" in wanted:
        pytest.fail(f"{message}; ES_INFER_NB_REQUIRE={os.environ.get('ES_INFER_NB_REQUIRE')} asks for it",
                    pytrace=False)
    pytest.skip(f"{message} (ES_INFER_NB_REQUIRE={resource} makes its absence a failure)")


def browser_available() -> bool:
    return Path(CHROMIUM).exists() and importlib.util.find_spec("playwright") is not None


@functools.cache
def registry_available() -> bool:
    """Whether pip, as configured here, can fetch a package (a small wheel, no dependencies)."""
    with tempfile.TemporaryDirectory() as dest:
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--no-cache-dir",
                 "-q", "-d", dest, "six"],
                capture_output=True, timeout=120,
            )
        except (OSError, subprocess.TimeoutExpired):
            return False
        return proc.returncode == 0 and any(Path(dest).iterdir())
