"""Write-only secrets of inference endpoints (API keys, ``secret_parameters``).

Secrets never live in the endpoint configs (``<home>/inference_endpoints/*.json``): they are kept
in one separate file, ``<home>/inference_secrets.json``, created with mode ``0600``, or given as
environment-variable references ``{"env": "NAME"}`` so the value is never written anywhere.
:class:`Secret` wraps a value so that ``repr``/``str`` never show it; :func:`redact` scrubs known
secret values from any text (error messages, logs) before it leaves the services package.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from pathlib import Path
from typing import Any, Iterable, Mapping

from ..errors import ApiError

MASK = "::es_redacted::"
SECRETS_FILE = "inference_secrets.json"


class Secret:
    """A secret string: ``reveal()`` gives the value, ``repr``/``str`` never do."""

    __slots__ = ("_value", "_env")

    def __init__(self, value: str | None = None, *, env: str | None = None) -> None:
        self._value = value
        self._env = env

    @classmethod
    def from_setting(cls, raw: Any, field: str) -> "Secret":
        if isinstance(raw, Secret):
            return raw
        if isinstance(raw, str):
            return cls(raw)
        if isinstance(raw, dict) and set(raw) == {"env"} and isinstance(raw["env"], str):
            return cls(env=raw["env"])
        raise ApiError("validation_exception",
                       f"Validation Failed: 1: [{field}] must be a string or an environment reference "
                       '{"env": "<VARIABLE>"};', 400)

    def reveal(self) -> str:
        if self._env is not None:
            value = os.environ.get(self._env)
            if value is None:
                raise ApiError("status_exception",
                               f"The environment variable [{self._env}] holding a secret is not set", 400)
            return value
        return self._value or ""

    def stored(self) -> Any:
        """What is persisted in the 0600 secrets file (the reference for environment secrets)."""
        return {"env": self._env} if self._env is not None else self._value

    def __repr__(self) -> str:
        return f"Secret(env={self._env!r})" if self._env is not None else "Secret(****)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and (self._value, self._env) == (other._value, other._env)

    def __hash__(self) -> int:
        return hash((self._value, self._env))


def redact(text: str, secrets: Iterable[Secret]) -> str:
    """``text`` with every (non-trivial) secret value replaced by a mask."""
    for s in secrets:
        try:
            value = s.reveal()
        except ApiError:
            continue
        if len(value) >= 3:
            text = text.replace(value, MASK)
            quoted = json.dumps(value)[1:-1]
            if quoted != value:
                text = text.replace(quoted, MASK)
    return text


class SecretStore:
    """``{inference_id: {name: secret}}``, in memory and (with a home) in one 0600 JSON file."""

    def __init__(self, home: Path | None) -> None:
        self._file = home / SECRETS_FILE if home is not None else None
        self._lock = threading.Lock()
        self._items: dict[str, dict[str, Any]] = {}
        if self._file is not None and self._file.is_file():
            with open(self._file, encoding="utf-8") as fh:
                self._items = json.load(fh)

    def get(self, inference_id: str) -> dict[str, Secret]:
        return {k: Secret.from_setting(v, k) for k, v in self._items.get(inference_id, {}).items()}

    def put(self, inference_id: str, secrets: Mapping[str, Secret]) -> None:
        with self._lock:
            if secrets:
                self._items[inference_id] = {k: s.stored() for k, s in secrets.items()}
            else:
                self._items.pop(inference_id, None)
            self._write()

    def delete(self, inference_id: str) -> None:
        with self._lock:
            if self._items.pop(inference_id, None) is not None:
                self._write()

    def _write(self) -> None:
        if self._file is None:
            return
        self._file.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-secrets-", dir=self._file.parent)
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(self._items, fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self._file)
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise

    def __repr__(self) -> str:
        return f"<SecretStore {len(self._items)} endpoints (values hidden)>"
