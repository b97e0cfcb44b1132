"""API keys in PostgreSQL (see :mod:`qasdk.keys` for what a key is).

Creating and revoking a key append an audit row in the same transaction, so
whoever calls these (the CLI, an admin API) cannot change a key unrecorded.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from datetime import datetime

import msgspec

from qasdk.audit.entry import Actor
from qasdk.errors import ValidationError
from qasdk.keys import SCOPES, ApiKey, new_key, parse_rate
from qasdk.models import Problem
from qasdk.permissions import grant_problem
from qasdk.store import _rates, audit
from qasdk.store._sql import Conn, execute, fetch_all, fetch_one

__all__ = [
    "create_key",
    "find_key",
    "keys_in_force",
    "list_keys",
    "lock_owner",
    "open_tasks",
    "revoke_key",
    "take_rate",
]

_NAME = re.compile(r"^[A-Za-z0-9_.:*-]{1,200}$")


def _key(row: dict[str, object]) -> ApiKey:
    return msgspec.convert({k: v for k, v in row.items() if k != "digest"}, ApiKey)


def _names(field: str, values: Sequence[str] | None) -> list[Problem]:
    if values is None:
        return []
    if not values:
        return [Problem(field=field, reason="an empty list would allow nothing; leave it out")]
    return [
        Problem(field=field, reason=f"{value!r} is not a {field[:-1]} name")
        for value in values
        if not _NAME.match(value)
    ]


async def create_key(
    conn: Conn,
    name: str,
    scopes: Sequence[str],
    *,
    actor: Actor,
    expires_at: datetime | None = None,
    tools: Sequence[str] | None = None,
    tags: Sequence[str] | None = None,
    permissions: Sequence[str] | None = None,
    rate: str | None = None,
    max_running: int | None = None,
    max_tokens_per_task: int | None = None,
) -> tuple[ApiKey, str]:
    """Store a new key and its audit row (``actor`` made it); returns it and its text.

    The text is shown once and never stored. ``tools``/``tags``: what it may run
    (``None``: everything); ``permissions``: what its tools may need (``[]``: only
    tools that need none); ``rate``: submits such as ``10/m``; ``max_running``:
    tasks pending or running at once; ``max_tokens_per_task``: its tasks' token budget.
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
    problems += _names("tools", tools) + _names("tags", tags)
    problems += [
        Problem(field="permissions", reason=reason)
        for reason in map(grant_problem, permissions or ())
        if reason is not None
    ]

    rate_count = rate_seconds = None
    if rate is not None:
        try:
            rate_count, rate_seconds = parse_rate(rate)
        except ValueError as exc:
            problems.append(Problem(field="rate", reason=str(exc)))
    if max_running is not None and not 0 < max_running <= 1_000_000:
        problems.append(Problem(field="max_running", reason="must be 1 to 1000000"))
    if max_tokens_per_task is not None and not 0 < max_tokens_per_task <= 2**31 - 1:
        problems.append(Problem(field="max_tokens_per_task", reason="must be 1 to 2147483647"))
    if problems:
        raise ValidationError(problems=problems)
    key_id, text, digest = new_key()
    params = {
        "id": key_id,
        "name": name,
        "digest": digest,
        "scopes": list(dict.fromkeys(scopes)),
        "expires_at": expires_at,
        "tools": _unique(tools),
        "tags": _unique(tags),
        "permissions": _unique(permissions),
        "rate_count": rate_count,
        "rate_seconds": rate_seconds,
        "max_running": max_running,
        "max_tokens_per_task": max_tokens_per_task,
    }
    async with conn.transaction():
        row = await fetch_one(conn, "insert_key", params)
        if row is None:
            problem = Problem(field="name", reason=f"a key named {name!r} exists already")
            raise ValidationError(problems=[problem])
        key = _key(row)
        detail = {
            "id": str(key.id),
            "scopes": list(key.scopes),
            "expires_at": key.expires_at,
            "limits": {
                name: value
                for name in (
                    "tools",
                    "tags",
                    "permissions",
                    "rate",
                    "max_running",
                    "max_tokens_per_task",
                )
                if (value := getattr(key, name)) is not None
            },
        }
        await audit.record(conn, actor=actor, action="key.create", target=key.name, detail=detail)
    return key, text


def _unique(values: Sequence[str] | None) -> list[str] | None:
    return None if values is None else list(dict.fromkeys(values))


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


async def lock_owner(conn: Conn, owner: uuid.UUID) -> None:
    """Hold the key's submit lock until the transaction ends (see :func:`owner_usage`)."""
    await execute(conn, "lock_owner", {"owner": owner})


async def open_tasks(conn: Conn, owner: uuid.UUID, cap: int) -> int:
    """How many of the key's tasks are pending or running, counted up to ``cap``."""
    row = await fetch_one(conn, "open_tasks", {"owner": owner, "cap": cap})
    return int(row["open"]) if row else 0


async def take_rate(conn: Conn, key: uuid.UUID, count: int, seconds: int) -> float | None:
    """Count one submit against ``count`` per ``seconds``: ``None`` if allowed, else the wait.

    The generic cell rate algorithm: a burst of ``count``, then one per
    ``seconds / count``. Runs in the submit's transaction: a submit that fails
    later gives its place back.
    """
    return await _rates.take(
        conn, "take_rate", "rate_wait", {"key": key}, count, seconds, unknown_wait=seconds
    )
