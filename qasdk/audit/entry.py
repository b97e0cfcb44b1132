"""What an audit row holds, and who the actor of a change is."""

from __future__ import annotations

import getpass
import socket
import uuid
from datetime import datetime
from typing import Any

import msgspec

__all__ = ["ACTIONS", "ANONYMOUS", "OPEN", "Actor", "AuditEntry"]

#: The actions qasdk records (others may add theirs: the column is free text).
ACTIONS = (
    "approval.decide",
    "denied",
    "key.create",
    "key.revoke",
    "registry.refused",
    "reload",
    "signing_key.rotate",
    "sync",
    "task.cancel",
    "task.submit",
)
#: The actor of a request on a server with no keys in force.
OPEN = "open"
#: The actor of a request that showed no valid key.
ANONYMOUS = "anonymous"


class Actor(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Who acts: an API key (name and id) and the client's address, or a local user."""

    name: str
    key_id: uuid.UUID | None = None
    client: str | None = None

    @classmethod
    def local(cls, via: str) -> Actor:
        """``<via>:<os user>@<host>``: a person (or a service) on this machine."""
        try:
            user = getpass.getuser()
        except (KeyError, OSError):  # no name for this uid (a bare container)
            user = "unknown"
        return cls(name=f"{via}:{user}@{socket.gethostname()}")


class AuditEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One row of the audit log, as ``GET /api/audit`` and ``qasdk audit --json`` show it."""

    id: int
    at: datetime
    actor: str
    key_id: uuid.UUID | None = None
    client: str | None = None
    action: str
    target: str | None = None
    detail: dict[str, Any] = {}
    #: How many events this row stands for (repeated denials are aggregated).
    count: int = 1
