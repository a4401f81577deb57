"""Fresh virtual environments built by tests (Binder's environment, eland beside pandas 2), within a time budget.

Each step of a build runs with a timeout taken from one overall budget; a step that fails or runs
out of time fails the test with its output and the seconds every earlier step took. The venv has
no system site-packages and none of this process's Python/Jupyter variables; pip's own
configuration (find-links, constraints, the local torch wheel) stays in force, and
``PIP_NO_COMPILE`` skips byte-compiling, which is most of an install's time on a small machine.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

_DROPPED = ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "ES_INFER_NB_HOME", "JUPYTER_PATH", "PIP_REQUIRE_VIRTUALENV")


class VenvBuild:
    """Build steps sharing one deadline; ``timings`` records what each took (shown on failure)."""

    def __init__(self, venv: Path, budget_s: float, label: str) -> None:
        self.venv = venv
        self.budget_s = budget_s
        self.label = label
        self.deadline = time.monotonic() + budget_s
        self.timings: dict[str, float] = {}
        self.env = {k: v for k, v in os.environ.items() if k not in _DROPPED}
        self.env["PATH"] = f"{venv / 'bin'}{os.pathsep}{self.env.get('PATH', '')}"
        self.env["VIRTUAL_ENV"] = str(venv)
        self.env["PIP_NO_COMPILE"] = "1"
        self.env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
        self.env["HF_HUB_OFFLINE"] = "1"

    @property
    def python(self) -> str:
        return str(self.venv / "bin" / "python")

    def create(self, cwd: Path) -> None:
        base_python = getattr(sys, "_base_executable", None) or sys.executable
        self.run([base_python, "-m", "venv", str(self.venv)], cwd=cwd, what="python -m venv", env=dict(os.environ))

    def run(self, cmd: list[str], *, cwd: Path, what: str, env: dict[str, str] | None = None) -> str:
        left = self.deadline - time.monotonic()
        if left <= 0:
            pytest.fail(f"{self.label} ran out of its {self.budget_s} s budget before: {what} (steps so far: {self.timings})")
        started = time.monotonic()
        try:
            proc = subprocess.run(cmd, cwd=cwd, env=env or self.env, capture_output=True, text=True, timeout=left)
        except subprocess.TimeoutExpired as exc:
            out = exc.stdout if isinstance(exc.stdout, str) else (exc.stdout or b"").decode(errors="replace")
            pytest.fail(f"{what}: still running when the {self.budget_s} s budget ran out (steps so far: {self.timings})\n{out[-2000:]}")
        self.timings[what] = round(time.monotonic() - started, 1)
        print(f"{what}: {self.timings[what]} s")
        if proc.returncode != 0:
            pytest.fail(f"{what} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        return proc.stdout
