"""Requests from other sites are refused: the ``Host`` a client names, the ``Origin`` it comes from.

A server on 127.0.0.1 is reachable from every web page its user opens. Two
doors stay shut here, before any route runs:

- **DNS rebinding.** A page on ``evil.example`` re-points its name at 127.0.0.1
  and reads the API as "same origin". Its requests still say
  ``Host: evil.example``: only the names in ``server.allowed_hosts`` are
  answered (by default, on a loopback address, ``localhost``, ``127.0.0.1`` and
  ``::1``).
- **Cross-site writes.** A form or a ``fetch`` from another page can send a
  POST without asking (a "simple" request): ``POST /api/tasks/{id}/cancel``
  has no body to check. A request that changes something and says it comes
  from another origin (``Origin``, or ``Sec-Fetch-Site: cross-site``) is
  refused unless that origin is in ``server.cors_origins``.

Clients that are not browsers (curl, httpx, SDKs) send neither header and are
not affected.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from litestar.enums import ScopeType
from litestar.types import (
    ASGIApp,
    HTTPResponseBodyEvent,
    HTTPResponseStartEvent,
    Receive,
    Scope,
    Send,
)

from qasdk._excerpt import excerpt

__all__ = ["SiteGuard", "default_hosts", "is_loopback"]

_LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def is_loopback(host: str) -> bool:
    """Whether the bind address ``host`` is reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def default_hosts(bind: str) -> tuple[str, ...] | None:
    """The ``Host`` names answered when ``server.allowed_hosts`` is not set (None: any)."""
    return (*_LOOPBACK_NAMES, bind) if is_loopback(bind) else None


def _hostname(value: str) -> str:
    """``Host`` header or URL netloc without its port, lower case, IPv6 without brackets."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:].split("]", 1)[0]
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


class _Names:
    """Host names, with ``*`` (any) and ``*.example.com`` (its subdomains)."""

    def __init__(self, names: Iterable[str]) -> None:
        self.shown = tuple(names)
        cleaned = {_hostname(n) for n in self.shown}
        self.any = "*" in cleaned
        self.suffixes = tuple(n[1:] for n in cleaned if n.startswith("*."))
        self.exact = frozenset(n for n in cleaned if not n.startswith("*"))

    def __contains__(self, host: str) -> bool:
        return self.any or host in self.exact or host.endswith(self.suffixes or ("\0",))


class SiteGuard:
    """ASGI middleware: 400 for a ``Host`` not allowed, 403 for a cross-site write."""

    def __init__(
        self, app: ASGIApp, *, hosts: Iterable[str] | None, origins: Iterable[str] = ()
    ) -> None:
        self.app = app
        self.hosts = None if hosts is None else _Names(hosts)
        self.origins = frozenset(o.rstrip("/").lower() for o in origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:  # the API has no websockets
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        refusal = self._refusal(scope, headers)
        if refusal is None:
            await self.app(scope, receive, send)
            return
        status, kind, message = refusal
        body = json.dumps({"error": {"type": kind, "message": message}}).encode()
        start: HTTPResponseStartEvent = {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
        await send(start)
        end: HTTPResponseBodyEvent = {
            "type": "http.response.body",
            "body": body,
            "more_body": False,
        }
        await send(end)

    def _refusal(self, scope: Any, headers: dict[str, str]) -> tuple[int, str, str] | None:
        host = _hostname(headers.get("host", ""))
        if self.hosts is not None and host not in self.hosts:
            allowed = ", ".join(self.hosts.shown)
            return (
                400,
                "invalid_host",
                f"this server does not answer to Host {excerpt(host)!r} "
                f"(server.allowed_hosts: {allowed}); add the name you reach it by there",
            )
        if scope.get("method", "GET") in _SAFE_METHODS:
            return None
        origin = headers.get("origin")
        if origin is not None:
            own = headers.get("host", "").strip().lower()
            if origin != "null" and urlsplit(origin).netloc.lower() == own:
                return None
            if origin.rstrip("/").lower() in self.origins:
                return None
            return _cross_site(scope, origin)
        if headers.get("sec-fetch-site") == "cross-site":
            return _cross_site(scope, None)
        return None


def _cross_site(scope: Any, origin: str | None) -> tuple[int, str, str]:
    where = f" ({excerpt(origin)})" if origin else ""
    return (
        403,
        "forbidden_origin",
        f"a {scope.get('method')} from another site{where} is refused; "
        "list the origin in server.cors_origins to allow it",
    )
