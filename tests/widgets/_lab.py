"""A real JupyterLab for the browser test: started on 127.0.0.1 with a token and a temporary root,
isolated from the user's Jupyter config, stopped (its process group) at the end.

``window.jupyterapp`` is exposed (``--LabApp.expose_app_in_browser``) so the test can run JupyterLab
commands (``notebook:run-all-cells``) instead of clicking menus.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

CHROMIUM = "/usr/bin/chromium"
#: the server must answer within this (it is a loaded 2-core CI machine)
START_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Lab:
    url: str  # http://127.0.0.1:<port>
    token: str
    root: Path
    log: Path

    def notebook_url(self, name: str) -> str:
        return f"{self.url}/lab/tree/{name}?token={self.token}&reset"

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def jupyter_lab(root: Path, state: Path) -> Iterator[Lab]:
    """Start ``jupyter lab`` serving ``root``; config, runtime files, settings and workspaces live under ``state``."""
    token = secrets.token_hex(16)
    port = free_port()
    for sub in ("config", "runtime", "settings", "workspaces"):
        (state / sub).mkdir(parents=True, exist_ok=True)
    # no "get notified about Jupyter news?" toast over the page
    notification = state / "settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    notification.parent.mkdir(parents=True, exist_ok=True)
    notification.write_text('{"fetchNews": "false"}')
    env = dict(os.environ)
    env.pop("ES_INFER_NB_HOME", None)  # the notebook makes its own in-memory engine
    env.update({
        "JUPYTER_CONFIG_DIR": str(state / "config"),
        "JUPYTER_RUNTIME_DIR": str(state / "runtime"),
        "JUPYTER_PLATFORM_DIRS": "1",
        "PYTHONUNBUFFERED": "1",
        # the kernel imports this checkout's es_infer_nb, not whichever one the environment installed
        "PYTHONPATH": os.pathsep.join(p for p in (str(Path(__file__).resolve().parents[2]),
                                                  os.environ.get("PYTHONPATH")) if p),
    })
    log = state / "jupyter-lab.log"
    cmd = [
        sys.executable, "-m", "jupyter", "lab", "--no-browser",
        "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
        "--LabApp.expose_app_in_browser=True", "--LabApp.news_url=",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        f"--LabApp.user_settings_dir={state / 'settings'}", f"--LabApp.workspaces_dir={state / 'workspaces'}",
        "--ServerApp.terminals_enabled=False",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # CI containers run as root
        cmd.append("--allow-root")
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    lab = Lab(url=f"http://127.0.0.1:{port}", token=token, root=root, log=log)
    try:
        _wait_ready(lab, proc)
        yield lab
    finally:
        _shutdown_kernels(lab)
        _stop(proc)


def _shutdown_kernels(lab: Lab) -> None:
    """Ask the server to stop its kernels (they run in their own sessions, outside its process group)."""
    try:
        kernels = httpx.get(f"{lab.url}/api/kernels", params={"token": lab.token}, timeout=5.0).json()
        for kernel in kernels:
            httpx.delete(f"{lab.url}/api/kernels/{kernel['id']}", params={"token": lab.token}, timeout=10.0)
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        pass


def _wait_ready(lab: Lab, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"jupyter lab exited with {proc.returncode}:\n{lab.log_tail()}")
        try:
            if httpx.get(f"{lab.url}/api/status", params={"token": lab.token}, timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"jupyter lab did not answer within {START_TIMEOUT_S:.0f}s:\n{lab.log_tail()}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group (server and kernels), SIGKILL what is left after 10 s."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # kernels started by the server share its group
    except ProcessLookupError:
        pass
    proc.wait(timeout=10)
