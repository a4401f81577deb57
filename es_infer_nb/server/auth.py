"""Credentials as Elasticsearch security checks them: ``Authorization: ApiKey`` / ``Basic``.

A server bound to anything but a loopback address must be given an API key or basic-auth
credentials; every request then has to carry one of them. Failures answer 401 with ES's
``security_exception`` body and its ``WWW-Authenticate`` challenges. Secrets are kept only
as the values to compare against (constant-time) and never appear in reprs or logs.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from ..errors import ApiError

#: environment variables the server's credentials may come from (kept out of the process list)
API_KEY_VARIABLE = "ES_INFER_NB_API_KEY"
USER_VARIABLE = "ES_INFER_NB_USER"
PASSWORD_VARIABLE = "ES_INFER_NB_PASSWORD"

#: the challenges ES answers a 401 with (one header line each)
WWW_AUTHENTICATE = ('Basic realm="security", charset="UTF-8"', 'Bearer realm="security"', "ApiKey")


def encode_api_key(key: str) -> str:
    """The value a client sends after ``ApiKey``: ``base64(id:api_key)``.

    ``key`` may already be that encoded value (what ``POST _security/api_key`` returns as
    ``encoded``) or the ``id:api_key`` pair.
    """
    if ":" in key:
        return base64.b64encode(key.encode("utf-8")).decode("ascii")
    return key


def is_loopback(host: str) -> bool:
    if host in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Credentials:
    """The API keys and ``user:password`` pairs a server accepts (empty: no security)."""

    api_keys: tuple[str, ...] = field(default=(), repr=False)
    users: tuple[tuple[str, str], ...] = field(default=(), repr=False)

    @classmethod
    def build(cls, api_key: str | list[str] | None = None, basic_auth: str | tuple[str, str] | None = None) -> "Credentials":
        keys = [api_key] if isinstance(api_key, str) else list(api_key or [])
        users: list[tuple[str, str]] = []
        if isinstance(basic_auth, tuple):
            users.append((basic_auth[0], basic_auth[1]))
        elif isinstance(basic_auth, str):
            if ":" not in basic_auth:
                raise ValueError("basic_auth must be 'user:password'")
            name, password = basic_auth.split(":", 1)
            users.append((name, password))
        return cls(tuple(encode_api_key(k) for k in keys if k), tuple(users))

    @property
    def enabled(self) -> bool:
        return bool(self.api_keys or self.users)

    def describe(self) -> str:
        kinds = [k for k, on in (("API key", self.api_keys), ("basic auth", self.users)) if on]
        return " or ".join(kinds)

    def check(self, authorization: str | None, uri: str) -> None:
        """Raise ES's 401 unless ``authorization`` holds accepted credentials."""
        if not self.enabled:
            return
        if not authorization or " " not in authorization.strip():
            raise _unauthorized(f"missing authentication credentials for REST request [{uri}]")
        scheme, value = authorization.strip().split(None, 1)
        scheme = scheme.lower()
        value = value.strip()
        if scheme == "apikey":
            if any(hmac.compare_digest(value.encode(), k.encode()) for k in self.api_keys):
                return
            raise _unauthorized("unable to authenticate with provided credentials and anonymous access is not allowed for this request")
        if scheme == "basic":
            try:
                name, password = base64.b64decode(value, validate=True).decode("utf-8").split(":", 1)
            except (binascii.Error, UnicodeDecodeError, ValueError):
                raise _unauthorized(f"missing authentication credentials for REST request [{uri}]") from None
            for user, secret in self.users:
                if hmac.compare_digest(name.encode(), user.encode()) and hmac.compare_digest(password.encode(), secret.encode()):
                    return
            raise _unauthorized(f"unable to authenticate user [{name}] for REST request [{uri}]")
        raise _unauthorized(f"missing authentication credentials for REST request [{uri}]")


def _unauthorized(reason: str) -> ApiError:
    return ApiError(
        "security_exception",
        reason,
        401,
        metadata={"header": {"WWW-Authenticate": list(WWW_AUTHENTICATE)}},
    )


def read_secret_file(path: str | os.PathLike[str], option: str) -> str:
    """The secret in ``path``: its first line, surrounding whitespace removed (``ValueError`` naming
    ``option`` when it cannot be read or is empty; the value itself is never in a message)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{option}: cannot read [{path}]: {getattr(exc, 'strerror', None) or type(exc).__name__}") from None
    lines = text.splitlines()
    value = lines[0].strip() if lines else ""
    if not value:
        raise ValueError(f"{option}: [{path}] is empty; write the secret on its first line")
    return value


def credential_options(
    api_key: str | None = None,
    api_key_file: str | None = None,
    user: str | None = None,
    password_file: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> tuple[str | None, str | None]:
    """``(api_key, "user:password")`` from command-line values, files and the environment, so
    that no secret has to appear in the process list.

    The API key: ``--api-key``, else ``--api-key-file``, else ``$ES_INFER_NB_API_KEY``. The user:
    ``--user NAME[:PASSWORD]``, else ``$ES_INFER_NB_USER``; a NAME without a password takes it from
    ``--password-file``, else ``$ES_INFER_NB_PASSWORD``.
    """
    env = os.environ if environ is None else environ
    if api_key and api_key_file:
        raise ValueError("give either --api-key or --api-key-file, not both")
    key = api_key or (read_secret_file(api_key_file, "--api-key-file") if api_key_file else None)
    key = key or env.get(API_KEY_VARIABLE) or None
    name = user or env.get(USER_VARIABLE) or None
    if name is None:
        if password_file:
            raise ValueError("--password-file needs --user NAME (or $ES_INFER_NB_USER)")
        return key, None
    if ":" in name:
        if password_file:
            raise ValueError("give the password either in --user NAME:PASSWORD or in --password-file, not both")
        return key, name
    if password_file:
        password = read_secret_file(password_file, "--password-file")
    else:
        password = env.get(PASSWORD_VARIABLE) or ""
    if not password:
        raise ValueError(f"no password for user [{name}]: use --password-file PATH or ${PASSWORD_VARIABLE} "
                         "(or --user NAME:PASSWORD)")
    return key, f"{name}:{password}"
