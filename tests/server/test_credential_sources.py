"""Server credentials from a file or the environment, so they need not show in the process list."""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from es_infer_nb.cli import main
from es_infer_nb.server.auth import credential_options, read_secret_file

LAUNCH = "import sys; from es_infer_nb.cli import main; sys.exit(main(sys.argv[1:]))"
KEY = "file-api-key-9f3a"
PASSWORD = "pw-from-file-77"


def _secret_file(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    path.chmod(0o600)
    return str(path)


def test_credential_options_from_files_and_environment(tmp_path):
    key_file = _secret_file(tmp_path, "key", f"  {KEY}  \nignored second line\n")
    pw_file = _secret_file(tmp_path, "pw", f"{PASSWORD}\n")
    assert credential_options(api_key_file=key_file, environ={}) == (KEY, None)
    assert credential_options(api_key="cli-key", environ={"ES_INFER_NB_API_KEY": "env-key"}) == ("cli-key", None)
    assert credential_options(environ={"ES_INFER_NB_API_KEY": "env-key"}) == ("env-key", None)
    assert credential_options(user="analyst", password_file=pw_file, environ={}) == (None, f"analyst:{PASSWORD}")
    assert credential_options(user="analyst", environ={"ES_INFER_NB_PASSWORD": "env-pw"}) == (None, "analyst:env-pw")
    assert credential_options(environ={"ES_INFER_NB_USER": "bob", "ES_INFER_NB_PASSWORD": "pw2"}) == (None, "bob:pw2")
    assert credential_options(environ={"ES_INFER_NB_USER": "bob:inline"}) == (None, "bob:inline")
    assert credential_options(user="a:b", environ={}) == (None, "a:b")
    assert credential_options(environ={}) == (None, None)


@pytest.mark.parametrize("kwargs, message", [
    ({"api_key": "k", "api_key_file": "f"}, "either --api-key or --api-key-file"),
    ({"password_file": "f"}, "--password-file needs --user"),
    ({"user": "a:b", "password_file": "f"}, "either in --user NAME:PASSWORD or in --password-file"),
    ({"user": "analyst"}, "no password for user [analyst]"),
])
def test_credential_options_refuse_ambiguous_or_missing(kwargs, message):
    with pytest.raises(ValueError) as info:
        credential_options(environ={}, **kwargs)
    assert message in str(info.value)


def test_secret_files_that_cannot_be_used_are_named_not_shown(tmp_path):
    with pytest.raises(ValueError, match=r"--api-key-file: cannot read \[.*missing\]"):
        read_secret_file(tmp_path / "missing", "--api-key-file")
    empty = _secret_file(tmp_path, "empty", "\n\n")
    with pytest.raises(ValueError, match=r"is empty; write the secret on its first line"):
        read_secret_file(empty, "--password-file")


def test_cli_usage_errors_for_credential_options(tmp_path, capsys):
    assert main(["serve", "--port", "0", "--api-key-file", str(tmp_path / "nope")]) == 2
    assert "cannot read" in capsys.readouterr().err
    assert main(["serve", "--port", "0", "--password-file", _secret_file(tmp_path, "pw", "x\n")]) == 2
    assert "--password-file needs --user" in capsys.readouterr().err


def _serve(*args: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], str, list[str]]:
    proc = subprocess.Popen([sys.executable, "-c", LAUNCH, "serve", "--port", "0", *args], text=True,
                            stderr=subprocess.PIPE, stdout=subprocess.PIPE, env={**os.environ, **(env or {})})
    assert proc.stderr is not None
    lines: list[str] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        lines.append(line)
        found = re.search(r"on (http://\S+)$", line.strip())
        if found:
            lines.append(proc.stderr.readline())
            return proc, found.group(1), lines
    proc.kill()
    raise AssertionError("".join(lines))


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def test_serve_with_an_api_key_file_keeps_it_out_of_the_process_list(tmp_path):
    key_file = _secret_file(tmp_path, "key", KEY + "\n")
    proc, url, lines = _serve("--api-key-file", key_file)
    try:
        assert "security: every request needs API key" in lines[-1]
        assert KEY not in _cmdline(proc.pid) and key_file in _cmdline(proc.pid)
        with httpx.Client(base_url=url, timeout=30) as http:
            assert http.get("/").status_code == 401
            assert http.get("/", headers={"Authorization": f"ApiKey {KEY}"}).status_code == 200
    finally:
        _stop(proc)
    assert not any("process list" in line for line in lines)  # no warning: nothing on the command line


def test_serve_with_basic_auth_from_the_environment():
    proc, url, lines = _serve(env={"ES_INFER_NB_USER": "analyst", "ES_INFER_NB_PASSWORD": PASSWORD})
    try:
        assert "basic auth" in lines[-1]
        assert PASSWORD not in _cmdline(proc.pid)
        good = base64.b64encode(f"analyst:{PASSWORD}".encode()).decode()
        with httpx.Client(base_url=url, timeout=30) as http:
            assert http.get("/", headers={"Authorization": f"Basic {good}"}).status_code == 200
            assert http.get("/").status_code == 401
    finally:
        _stop(proc)


def test_credentials_on_the_command_line_get_a_note():
    proc, _url, lines = _serve("--api-key", KEY)
    try:
        assert any("show in the process list" in line for line in lines)
        assert not any(KEY in line for line in lines)
    finally:
        _stop(proc)
