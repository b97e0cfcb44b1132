"""The ``audit_log`` table: append a row, read rows back, and let retention delete old ones.

:func:`record` is what any code that changes something calls, on the
connection (and so in the transaction) that makes the change: the row commits
or rolls back with it. What it stores is bounded and masked: the texts of the
detail go through :func:`~qasdk.redaction.redact_value` (known secrets, URL
passwords, ``Bearer`` tokens, ``password=`` values; not by key, since a tool may
well be called ``get_token``), the detail is cut to :data:`DETAIL_BYTES` as
JSON, and the other texts to :data:`TEXT_CHARS`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import msgspec

from qasdk.audit.entry import Actor, AuditEntry
from qasdk.redaction import redact, redact_value
from qasdk.store._sql import Conn, execute, fetch_all
from qasdk.store.values import clean_text, json_text

__all__ = [
    "DETAIL_BYTES",
    "TEXT_CHARS",
    "delete_expired_entries",
    "list_entries",
    "record",
    "row_params",
]

#: Bytes of a row's detail, as JSON (beyond: a marker with its size and a preview).
DETAIL_BYTES = 65_536
#: Characters of the actor, client, action and target columns.
TEXT_CHARS = 200


def _text(value: str | None, secrets: Iterable[str]) -> str | None:
    if value is None:
        return None
    return clean_text(redact(value, secrets))[:TEXT_CHARS]


async def record(
    conn: Conn,
    *,
    actor: Actor,
    action: str,
    target: str | None = None,
    detail: Mapping[str, Any] | None = None,
    count: int = 1,
    secrets: Iterable[str] = (),
) -> None:
    """Append one row to the audit log, in the caller's transaction.

    Args:
        conn: The connection making the change (wrap both in ``conn.transaction()``
            on an autocommit connection, so they commit together).
        actor: Who: ``Actor(name=key.name, key_id=key.id, client=address)``, or
            ``Actor.local("cli")``.
        action: What, such as ``key.create`` (see :data:`qasdk.audit.ACTIONS`).
        target: What it was done to: a task id, a key's name, a tool.
        detail: Anything else worth knowing, as JSON; never a secret (values
            that look like one are masked anyway, and so are ``secrets``).
        count: How many events the row stands for (aggregated denials).
        secrets: Values to mask wherever they appear (``Config.secrets()``).
    """
    params = row_params(
        actor=actor, action=action, target=target, detail=detail, count=count, secrets=secrets
    )
    await execute(conn, "insert_audit", params)


def row_params(
    *,
    actor: Actor,
    action: str,
    target: str | None = None,
    detail: Mapping[str, Any] | None = None,
    count: int = 1,
    secrets: Iterable[str] = (),
) -> dict[str, Any]:
    """The parameters of an audit row, masked and bounded (for statements that write one)."""
    known = list(secrets)
    return {
        "actor": _text(actor.name, known),
        "key_id": actor.key_id,
        "client": _text(actor.client, known),
        "action": _text(action, known),
        "target": _text(target, known),
        "detail": json_text(
            redact_value(dict(detail or {}), known, by_key=False), max_bytes=DETAIL_BYTES
        ),
        "count": max(1, count),
    }


async def list_entries(
    conn: Conn,
    *,
    action: str | None = None,
    actor: str | None = None,
    target: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 50,
    before: tuple[datetime, int] | None = None,
) -> list[AuditEntry]:
    """Rows newest first; ``before`` is the (at, id) of the last one seen."""
    params = {
        "action": action,
        "actor": actor,
        "target": target,
        "since": since,
        "until": until,
        "limit": limit,
        "before_at": before[0] if before else None,
        "before_id": before[1] if before else None,
    }
    rows = await fetch_all(conn, "list_audit", params)
    return [msgspec.convert(row, AuditEntry) for row in rows]


async def delete_expired_entries(conn: Conn, *, days: float, batch: int = 1000) -> int:
    """Delete up to ``batch`` rows older than ``days``; how many went.

    The only way rows leave the table: migration 0014's trigger refuses any
    other ``DELETE`` (and every ``UPDATE``).
    """
    async with conn.transaction():
        await execute(conn, "allow_audit_retention", {"allowed": "on"})
        rows = await fetch_all(
            conn, "delete_expired_audit", {"seconds": days * 86400, "batch": batch}
        )
        await execute(conn, "allow_audit_retention", {"allowed": "off"})
    return len(rows)
