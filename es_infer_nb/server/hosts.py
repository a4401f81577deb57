"""Which ``Host`` and ``Origin`` headers a server answers (DNS-rebinding protection).

A page on ``http://evil.example`` can make a browser send requests to ``127.0.0.1:9200`` by
pointing its own DNS name at the loopback address: the requests then carry
``Host: evil.example:9200`` (and, for most of them, ``Origin: http://evil.example``). A server
answers only the host names it was reached under on purpose: by default the loopback names
(``localhost``, ``127.0.0.1``, ``[::1]``, any port) plus the address it is bound to; a
wildcard bind (``0.0.0.0`` / ``::``, which needs credentials) answers any host unless
``allowed_hosts`` / ``--allowed-hosts`` names them. A request whose ``Origin`` names a host
outside the same list is refused too. Refusals are 403s with an Elasticsearch error body,
before credentials are checked or a byte of the body is read.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from ..errors import ApiError

#: host names that always mean this machine (RFC 6761); IP literals are compared as addresses
LOCAL_NAMES = ("localhost",)
ANY = "*"


def _normal(host: str) -> str:
    """``host`` lower-cased, without a trailing dot or IPv6 brackets."""
    host = host.strip().lower().rstrip(".")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host


def _is_loopback_literal(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def _same(a: str, b: str) -> bool:
    if a == b:
        return True
    try:
        return ipaddress.ip_address(a) == ipaddress.ip_address(b)
    except ValueError:
        return False


def host_of(header: str) -> str:
    """The host part of a ``Host`` header value (``[::1]:9200`` -> ``::1``), normalised."""
    value = header.strip()
    if value.startswith("["):
        end = value.find("]")
        return _normal(value[: end + 1] if end >= 0 else value)
    if value.count(":") == 1:
        value = value.split(":", 1)[0]
    return _normal(value)


@dataclass(frozen=True)
class HostPolicy:
    """The host names a server answers; ``ANY`` among them turns both checks off."""

    hosts: tuple[str, ...] = LOCAL_NAMES

    @classmethod
    def build(cls, bind_host: str, allowed: str | list[str] | tuple[str, ...] | None = None) -> "HostPolicy":
        """``allowed`` as given (comma-separated or a list), else the bind address plus the loopback names."""
        if allowed is not None:
            names = allowed.split(",") if isinstance(allowed, str) else list(allowed)
            cleaned = tuple(ANY if n.strip() == ANY else _normal(n) for n in names if n.strip())
            if not cleaned:
                raise ValueError("allowed_hosts must name at least one host (or '*' for any)")
            return cls(cleaned)
        bind = _normal(bind_host)
        try:
            wildcard = ipaddress.ip_address(bind).is_unspecified
        except ValueError:
            wildcard = False
        if wildcard:
            return cls((ANY,))
        return cls(tuple(dict.fromkeys((*LOCAL_NAMES, bind))))

    @property
    def any(self) -> bool:
        return ANY in self.hosts

    def allows(self, host: str) -> bool:
        """Whether the normalised ``host`` is one this server answers."""
        if self.any:
            return True
        if host in LOCAL_NAMES or _is_loopback_literal(host):
            return any(h in LOCAL_NAMES or _is_loopback_literal(h) for h in self.hosts)
        return any(_same(host, h) for h in self.hosts)

    def describe(self) -> str:
        if self.any:
            return "any host"
        shown = [f"[{h}]" if ":" in h else h for h in self.hosts]
        if any(h in LOCAL_NAMES or _is_loopback_literal(h) for h in self.hosts):
            shown = list(dict.fromkeys([*shown, "127.0.0.1", "[::1]"]))
        return ", ".join(shown)

    def check(self, host_header: str | None, origin: str | None) -> None:
        """Raise the 403 for a ``Host`` or ``Origin`` this server does not answer."""
        if self.any:
            return
        if host_header is not None and not self.allows(host_of(host_header)):
            raise _forbidden(f"Host [{_printable(host_header)}] is not allowed: this server answers only "
                             f"[{self.describe()}] (es-infer serve --allowed-hosts)")
        if origin is None:
            return
        try:
            parts = urlsplit(origin.strip())
            origin_host = _normal(parts.hostname or "") if parts.scheme in ("http", "https") else ""
        except ValueError:  # e.g. an unclosed IPv6 bracket
            origin_host = ""
        if not origin_host or not self.allows(origin_host):
            raise _forbidden(f"Origin [{_printable(origin)}] is not allowed: this server answers only requests "
                             f"from [{self.describe()}] (es-infer serve --allowed-hosts)")


def _printable(value: str) -> str:
    cut = value[:200]
    return "".join(ch if ch.isprintable() else "?" for ch in cut)


def _forbidden(reason: str) -> ApiError:
    return ApiError("security_exception", reason, 403)
