"""API keys in PostgreSQL (see :mod:`qasdk.keys` for what a key is).

Creating and revoking a key append an audit row in the same transaction, so
whoever calls these (the CLI, an admin API) cannot change a key unrecorded.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

import msgspec

from qasdk.audit.entry import Actor
from qasdk.errors import ValidationError
from qasdk.keys import SCOPES, ApiKey, new_key
from qasdk.models import Problem
from qasdk.store import audit
from qasdk.store._sql import Conn, fetch_all, fetch_one

__all__ = ["create_key", "find_key", "keys_in_force", "list_keys", "revoke_key"]


def _key(row: dict[str, object]) -> ApiKey:
    return msgspec.convert({k: v for k, v in row.items() if k != "digest"}, ApiKey)


async def create_key(
    conn: Conn,
    name: str,
    scopes: Sequence[str],
    *,
    actor: Actor,
    expires_at: datetime | None = None,
) -> tuple[ApiKey, str]:
    """Store a new key and its audit row (``actor`` made it); returns it and its text.

    The text is shown once and never stored.
    """
    problems = [
        Problem(field="scope", reason=f"unknown scope {s!r}; scopes: {', '.join(SCOPES)}")
        for s in scopes
        if s not in SCOPES
    ]
    if not name.strip() or len(name) > 100:
        problems.append(Problem(field="name", reason="must be 1 to 100 characters"))
    if not scopes:
        problems.append(Problem(field="scope", reason=f"give at least one of {', '.join(SCOPES)}"))
    if problems:
        raise ValidationError(problems=problems)
    key_id, text, digest = new_key()
    params = {
        "id": key_id,
        "name": name,
        "digest": digest,
        "scopes": list(dict.fromkeys(scopes)),
        "expires_at": expires_at,
    }
    async with conn.transaction():
        row = await fetch_one(conn, "insert_key", params)
        if row is None:
            problem = Problem(field="name", reason=f"a key named {name!r} exists already")
            raise ValidationError(problems=[problem])
        key = _key(row)
        detail = {"id": str(key.id), "scopes": list(key.scopes), "expires_at": key.expires_at}
        await audit.record(conn, actor=actor, action="key.create", target=key.name, detail=detail)
    return key, text


async def list_keys(conn: Conn) -> list[ApiKey]:
    return [_key(row) for row in await fetch_all(conn, "list_keys")]


async def find_key(conn: Conn, key_id: uuid.UUID) -> tuple[ApiKey, bytes] | None:
    """A key and its secret's digest, by id."""
    row = await fetch_one(conn, "key_digest", {"id": key_id})
    return None if row is None else (_key(row), bytes(row["digest"]))


async def revoke_key(conn: Conn, name: str, *, actor: Actor) -> ApiKey | None:
    """Revoke the key called ``name`` (with its audit row); ``None`` if none is in force."""
    async with conn.transaction():
        row = await fetch_one(conn, "revoke_key", {"name": name})
        if row is None:
            return None
        key = _key(row)
        await audit.record(
            conn, actor=actor, action="key.revoke", target=key.name, detail={"id": str(key.id)}
        )
    return key


async def keys_in_force(conn: Conn) -> bool:
    """Whether any key is neither revoked nor expired."""
    row = await fetch_one(conn, "keys_in_force")
    return bool(row and row["any"])
