"""API keys: how a key looks, what it may do, and how it is checked.

A key is ``qasdk_<id>_<secret>``: the id (a UUID's 32 hex digits) finds its row,
the secret (256 random bits) proves it. Only ``sha256(secret)`` is stored, and
it is compared in constant time. Scopes: ``read`` (a key's own tasks, the
tools), ``submit``, ``cancel``, ``admin`` (every task, the configuration,
reloads). ``admin`` implies the others.

A key may also be limited: to some tools (by name or tag) and to tools that
need no more than some permissions, to a rate of submits (``10/m``), and to a
number of tasks unfinished at once. The server applies these at submit and
offers the model only the tools the key may run.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from datetime import datetime
from typing import Literal

import msgspec

from qasdk.models import MethodConfig
from qasdk.permissions import permitted
from qasdk.rates import format_rate, parse_rate

__all__ = [
    "SCOPES",
    "ApiKey",
    "Scope",
    "format_rate",
    "new_key",
    "parse_key",
    "parse_rate",
    "secret_digest",
    "verify",
]

Scope = Literal["read", "submit", "cancel", "admin"]
SCOPES: tuple[Scope, ...] = ("read", "submit", "cancel", "admin")
_PREFIX = "qasdk_"


class ApiKey(msgspec.Struct, frozen=True, kw_only=True):
    """A key as stored (never its secret)."""

    id: uuid.UUID
    name: str
    scopes: tuple[str, ...]
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    #: Tools it may run, by name and by tag (both ``None``: every tool).
    tools: tuple[str, ...] | None = None
    tags: tuple[str, ...] | None = None
    #: Permissions the tools it runs may need (``None``: any).
    permissions: tuple[str, ...] | None = None
    #: At most ``rate_count`` submits per ``rate_seconds`` (``None``: no limit).
    rate_count: int | None = None
    rate_seconds: int | None = None
    #: At most this many of its tasks pending or running at once (``None``: no cap).
    max_running: int | None = None
    #: Tokens one of its tasks may use (``None``: only ``model.max_tokens_per_task``).
    max_tokens_per_task: int | None = None

    def allows(self, scope: str) -> bool:
        return scope in self.scopes or "admin" in self.scopes

    @property
    def rate(self) -> str | None:
        """The rate limit as written (``10/m``), or ``None``."""
        if self.rate_count is None or self.rate_seconds is None:
            return None
        return format_rate(self.rate_count, self.rate_seconds)

    @property
    def limits_tools(self) -> bool:
        return self.tools is not None or self.tags is not None or self.permissions is not None

    def may_run(self, method: MethodConfig) -> bool:
        """Whether this key may run ``method`` (by its name, tags and permissions)."""
        if self.tools is not None or self.tags is not None:
            by_name = method.name in (self.tools or ())
            if not by_name and not set(method.tags) & set(self.tags or ()):
                return False
        return permitted(method.permissions, self.permissions)

    def active(self, now: datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


def secret_digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def new_key() -> tuple[uuid.UUID, str, bytes]:
    """A fresh key: its id, the text to give the user (once), and the digest to store."""
    key_id = uuid.uuid4()
    secret = secrets.token_urlsafe(32)
    return key_id, f"{_PREFIX}{key_id.hex}_{secret}", secret_digest(secret)


def parse_key(text: str) -> tuple[uuid.UUID, str] | None:
    """``(id, secret)`` of a key's text, or ``None`` if it is not shaped like one."""
    if not text.startswith(_PREFIX) or len(text) > 200:
        return None
    body = text[len(_PREFIX) :]
    key_hex, _, secret = body.partition("_")
    if len(key_hex) != 32 or not secret:
        return None
    try:
        return uuid.UUID(hex=key_hex), secret
    except ValueError:
        return None


def verify(secret: str, digest: bytes) -> bool:
    """Whether ``secret`` is the one ``digest`` was made from (constant time)."""
    return hmac.compare_digest(secret_digest(secret), digest)
