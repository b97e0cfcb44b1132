"""Where a webhook may go: the URL rules at submit and the host rules at every attempt.

SSRF hygiene: a task's submitter chooses the URL, and the worker that POSTs it
sits inside the operator's network. So by default only hosts whose addresses
are all public are reached; loopback, private, link-local and reserved targets
need ``webhooks.allowed_hosts``. Names are resolved at each attempt, and the
POST goes to the very address that was checked (the name kept for ``Host`` and
TLS), so a name that re-resolves elsewhere (DNS rebinding) cannot slip past.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import uuid
from typing import Any
from urllib.parse import SplitResult, urlsplit

import msgspec

from qasdk.config import WebhooksConfig
from qasdk.models import WebhookAttempt, WebhookState
from qasdk.redaction import MASK

__all__ = ["HostPolicy", "Refused", "check_callback_url", "masked_url", "resolve", "state_of"]

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
_SCHEMES = ("http", "https")


class Refused(Exception):
    """The URL or its host may not be used (a reason that retrying will not change)."""


class HostPolicy:
    """``webhooks.allowed_hosts``: names, ``*.suffix`` wildcards, addresses and networks."""

    def __init__(self, patterns: tuple[str, ...]) -> None:
        self.listed = bool(patterns)
        self.anything = "*" in patterns
        self.names: set[str] = set()
        self.suffixes: list[str] = []
        self.networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for raw in patterns:
            pattern = raw.strip().lower().rstrip(".")
            if pattern == "*":
                continue
            try:
                self.networks.append(ipaddress.ip_network(pattern.strip("[]"), strict=False))
                continue
            except ValueError:
                pass
            if pattern.startswith("*."):
                self.suffixes.append(pattern[1:])
            else:
                self.names.add(pattern)

    def name_listed(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        return self.anything or host in self.names or any(host.endswith(s) for s in self.suffixes)

    def refusal(self, host: str, addresses: list[Address]) -> str | None:
        """Why ``host`` (resolved to ``addresses``) may not be called, or ``None``."""
        if self.name_listed(host):
            return None
        if self.listed:
            if addresses and all(any(a in n for n in self.networks) for a in addresses):
                return None
            return f"host {host!r} is not in webhooks.allowed_hosts"
        for address in addresses:
            if not address.is_global or address.is_multicast:
                return (
                    f"host {host!r} is a non-public address ({address}); "
                    "list it in webhooks.allowed_hosts to allow it"
                )
        return None


def _literal(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def _split(url: str) -> SplitResult:
    parts = urlsplit(url)
    _ = parts.port  # raises ValueError for a port that is not a number in range
    return parts


def check_callback_url(url: str, config: WebhooksConfig) -> str:
    """``url`` if a webhook may be sent there, else :class:`Refused` saying why.

    A name is checked against ``allowed_hosts`` only when that is set; its
    addresses are checked at each attempt (resolving here would make a submit
    wait on DNS).
    """
    if config.secret is None:
        raise Refused("webhooks are off on this server (set webhooks.secret to turn them on)")
    if len(url) > config.max_url_length:
        raise Refused(
            f"must be at most {config.max_url_length} characters "
            f"(webhooks.max_url_length), got {len(url)}"
        )
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        raise Refused("must not contain whitespace or control characters")
    try:
        parts = _split(url)
    except ValueError as exc:
        raise Refused(f"is not a valid URL ({exc})") from None
    if parts.scheme.lower() not in _SCHEMES:
        raise Refused(f"must be an http or https URL, got scheme {parts.scheme.lower()!r}")
    host = parts.hostname
    if not host:
        raise Refused("must name a host (http://host/path)")
    policy = HostPolicy(config.allowed_hosts)
    address = _literal(host)
    if address is not None:
        reason = policy.refusal(host, [address])
    elif host == "localhost" or host.endswith(".localhost"):
        reason = policy.refusal(host, [ipaddress.ip_address("127.0.0.1")])
    elif policy.listed and not policy.name_listed(host) and not policy.networks:
        reason = f"host {host!r} is not in webhooks.allowed_hosts"
    else:
        reason = None
    if reason:
        raise Refused(reason)
    return url


async def resolve(url: str, policy: HostPolicy, timeout: float) -> tuple[str, Address]:
    """The host of ``url`` and the address to POST to, checked; :class:`Refused` if none may be.

    ``OSError`` when the name does not resolve (worth another attempt later).
    """
    parts = _split(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    literal = _literal(host)
    if literal is not None:
        addresses: list[Address] = [literal]
    else:
        loop = asyncio.get_running_loop()
        infos = await asyncio.wait_for(
            loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout
        )
        addresses = []
        for info in infos:
            found = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
            if found not in addresses:
                addresses.append(found)
        if not addresses:
            raise OSError(f"host {host!r} has no address")
    reason = policy.refusal(host, addresses)
    if reason:
        raise Refused(reason)
    return host, addresses[0]


def masked_url(url: str) -> str:
    """``url`` without what may be a credential: its userinfo and its query's values."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{MASK}@{netloc.rsplit('@', 1)[1]}"
    query = f"?{MASK}" if parts.query else ""
    scheme = f"{parts.scheme}:" if parts.scheme else ""
    authority = f"//{netloc}" if netloc or parts.scheme else ""
    return f"{scheme}{authority}{parts.path}{query}"


def state_of(row: dict[str, Any] | None) -> WebhookState | None:
    """A ``task_webhooks`` row as the API shows it (its URL masked)."""
    if row is None:
        return None
    attempts = msgspec.convert(row["attempts"] or [], list[WebhookAttempt])
    return WebhookState(
        url=masked_url(row["url"]),
        status=row["status"],
        attempts=attempts,
        next_attempt_at=row["next_at"] if row["status"] == "pending" else None,
    )


def delivery_id(task_id: uuid.UUID) -> str:
    """``X-Qasdk-Delivery``: the same on every attempt, so a receiver can drop repeats."""
    return str(task_id)
