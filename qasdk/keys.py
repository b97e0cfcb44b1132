"""API keys: how a key looks, what it may do, and how it is checked.

A key is ``qasdk_<id>_<secret>``: the id (a UUID's 32 hex digits) finds its row,
the secret (256 random bits) proves it. Only ``sha256(secret)`` is stored, and
it is compared in constant time. Scopes: ``read`` (a key's own tasks, the
tools), ``submit``, ``cancel``, ``admin`` (every task, the configuration,
reloads). ``admin`` implies the others.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from datetime import datetime
from typing import Literal

import msgspec

__all__ = ["SCOPES", "ApiKey", "Scope", "new_key", "parse_key", "secret_digest", "verify"]

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

    def allows(self, scope: str) -> bool:
        return scope in self.scopes or "admin" in self.scopes

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
