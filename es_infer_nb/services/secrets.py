"""Write-only secrets of inference endpoints (API keys, ``secret_parameters``).

Secrets never live in the endpoint configs (``<home>/inference_endpoints/*.json``): they are kept
in one separate file, ``<home>/inference_secrets.json``, created with mode ``0600``, or given as
environment-variable references ``{"env": "NAME"}`` so the value is never written anywhere.
:class:`Secret` wraps a value so that ``repr``/``str`` never show it; :func:`redact` scrubs known
secret values from any text (error messages, logs) before it leaves the services package.

Environment references are trusted input: a request arriving over HTTP could otherwise point one at
its own URL and read any variable of the server. :class:`EnvPolicy` says where they are accepted:
always from the Python API (``Engine.request`` in-process), from a remote request only for the
variables an operator allowed (``Engine(env_secrets_allow=[...])`` or ``$ES_INFER_NB_ENV_SECRETS``,
comma-separated names or ``fnmatch`` patterns such as ``OPENAI_*``), never for the server's own
credential variables.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from ..errors import ApiError
from ..storage import atomic_write_json, load_state_file, stamp, writing

MASK = "::es_redacted::"
SECRETS_FILE = "inference_secrets.json"
ML_SECRETS_FILE = "ml_connector_secrets.json"  # the ml-commons connectors' (services.ml_commons)
#: the operator's allowlist of variables remote requests may reference (comma-separated patterns)
ENV_ALLOW_VARIABLE = "ES_INFER_NB_ENV_SECRETS"
#: variables a remote request may never reference, allowlisted or not (the server's own credentials)
NEVER_REMOTE = ("ES_INFER_NB_API_KEY", "ES_INFER_NB_USER", "ES_INFER_NB_PASSWORD", ENV_ALLOW_VARIABLE)
#: request headers whose literal values are credentials (masked in GET answers and reprs)
CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "x-api-key", "api-key", "cookie",
                                "x-auth-token"})
_AUTH_SCHEMES = frozenset({"", "bearer", "basic", "apikey", "token", "key"})
_PLACEHOLDER = re.compile(r"\$\{[^}]*\}")


@dataclass(frozen=True)
class EnvPolicy:
    """Whether ``{"env": "NAME"}`` secrets are accepted: ``remote`` requests (over HTTP) only for
    variables matching ``allow`` (plus ``$ES_INFER_NB_ENV_SECRETS``), local ones always."""

    remote: bool = False
    allow: tuple[str, ...] = ()

    def patterns(self) -> tuple[str, ...]:
        extra = os.environ.get(ENV_ALLOW_VARIABLE, "")
        return self.allow + tuple(p.strip() for p in extra.split(",") if p.strip())

    def allows(self, name: str) -> bool:
        if not self.remote:
            return True
        if name in NEVER_REMOTE:
            return False
        return any(fnmatch.fnmatchcase(name, pattern) for pattern in self.patterns())

    def check(self, name: str, field: str) -> None:
        if not self.allows(name):
            raise ApiError(
                "validation_exception",
                f"Validation Failed: 1: [service_settings.{field}] an environment reference "
                f'{{"env": "{name}"}} is not accepted in a request over HTTP; give the secret\'s value '
                f"instead, or have the server's operator allow the variable (Engine(env_secrets_allow=[...]) "
                f"or ${ENV_ALLOW_VARIABLE});", 400)


LOCAL = EnvPolicy()


class Secret:
    """A secret string: ``reveal()`` gives the value, ``repr``/``str`` never do."""

    __slots__ = ("_value", "_env")

    def __init__(self, value: str | None = None, *, env: str | None = None) -> None:
        self._value = value
        self._env = env

    @classmethod
    def from_setting(cls, raw: Any, field: str, policy: EnvPolicy = LOCAL) -> "Secret":
        if isinstance(raw, Secret):
            return raw
        if isinstance(raw, str):
            return cls(raw)
        if cls.is_reference(raw):
            policy.check(raw["env"], field)
            return cls(env=raw["env"])
        raise ApiError("validation_exception",
                       f"Validation Failed: 1: [{field}] must be a string or an environment reference "
                       '{"env": "<VARIABLE>"};', 400)

    @staticmethod
    def is_reference(raw: Any) -> bool:
        """Whether ``raw`` is an environment reference ``{"env": "NAME"}``."""
        return isinstance(raw, dict) and set(raw) == {"env"} and isinstance(raw["env"], str)

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
    """``text`` with every secret value (of any length, as given or JSON-escaped) replaced by a mask.

    One pass, longest values first: a mask already written is never scanned again, and a secret
    that is part of a longer one cannot leave the rest of the longer one in the clear."""
    values: set[str] = set()
    for s in secrets:
        try:
            value = s.reveal()
        except ApiError:
            continue
        if value:
            values.add(value)
            values.add(json.dumps(value)[1:-1])
    if not values:
        return text
    pattern = "|".join(re.escape(v) for v in sorted(values, key=len, reverse=True))
    return re.sub(pattern, MASK, text)


def is_literal_credential(name: str, value: Any) -> bool:
    """Whether header ``name: value`` carries a credential written out (not a ``${secret}`` template)."""
    if str(name).lower() not in CREDENTIAL_HEADERS or not isinstance(value, str):
        return False
    rest = _PLACEHOLDER.sub("", value).strip()
    return rest.lower() not in _AUTH_SCHEMES


def mask_headers(headers: Mapping[str, Any]) -> dict[str, Any]:
    """``headers`` with literal credential values masked (templates such as ``Bearer ${api_key}`` kept)."""
    return {k: (MASK if is_literal_credential(k, v) else v) for k, v in headers.items()}


def _secrets_shape(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(v, dict) for v in value.values())


class SecretStore:
    """``{inference_id: {name: secret}}``, in memory and (with a home) in one 0600 JSON file.

    The file is shared by the engines of one home: each change re-reads it and is written under the
    home's lock, and :meth:`get` re-reads it when another engine replaced it. An unreadable file is
    moved aside (``inference_secrets.json.corrupt``) and the store starts empty."""

    def __init__(self, home: Path | None, filename: str = SECRETS_FILE) -> None:
        self._home = home
        self._file = home / filename if home is not None else None
        self._lock = threading.Lock()
        self._items: dict[str, dict[str, Any]] = {}
        self._stamp: tuple[int, int, int] | None = None
        self._reload()

    def _reload(self) -> None:
        if self._file is None:
            return
        self._items = load_state_file(self._file, self._home, _secrets_shape, default={})
        self._stamp = stamp(self._file)

    def _fresh(self) -> None:
        if self._file is not None and stamp(self._file) != self._stamp:
            self._reload()

    def get(self, inference_id: str) -> dict[str, Secret]:
        with self._lock:
            self._fresh()
            stored = dict(self._items.get(inference_id, {}))
        return {k: Secret.from_setting(v, k) for k, v in stored.items()}

    def put(self, inference_id: str, secrets: Mapping[str, Secret]) -> None:
        with writing(self._home), self._lock:
            self._fresh()
            if secrets:
                self._items[inference_id] = {k: s.stored() for k, s in secrets.items()}
            else:
                self._items.pop(inference_id, None)
            self._write()

    def delete(self, inference_id: str) -> None:
        with writing(self._home), self._lock:
            self._fresh()
            if self._items.pop(inference_id, None) is not None:
                self._write()

    def prune(self, keep: Iterable[str]) -> list[str]:
        """Drop the secrets of endpoints that no longer exist (left by a crash between two writes)."""
        keep = set(keep)
        with writing(self._home), self._lock:
            self._fresh()
            orphans = sorted(k for k in self._items if k not in keep)
            for key in orphans:
                del self._items[key]
            if orphans:
                self._write()
        return orphans

    def _write(self) -> None:
        if self._file is None:
            return
        atomic_write_json(self._file, self._items, mode=0o600)
        self._stamp = stamp(self._file)

    def __repr__(self) -> str:
        return f"<SecretStore {len(self._items)} endpoints (values hidden)>"


def prune_secrets(home: Path, endpoint_ids: Iterable[str], filename: str = SECRETS_FILE) -> list[str]:
    """At an engine's start: remove from ``<home>/<filename>`` (``inference_secrets.json``) the secrets
    of objects that are not among ``endpoint_ids`` (under the home's lock); returns their ids."""
    if not (home / filename).exists():
        return []
    with writing(home):
        return SecretStore(home, filename).prune(endpoint_ids)
