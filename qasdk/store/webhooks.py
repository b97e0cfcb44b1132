"""The ``task_webhooks`` table: a task's callback URL and its delivery outbox (migration 0028).

A row is written with its task and made due by a trigger in the transaction that
ends the task, so every way a task ends queues its notification and nothing is
lost to a crash. A deliverer claims one due row at a time (``SKIP LOCKED``),
holds its lock while it sends, and records the attempt in the same transaction:
a deliverer that dies mid-attempt releases the row to the next one.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

import msgspec

from qasdk.store._sql import Conn, execute, fetch_one

__all__ = [
    "Due",
    "claim_due",
    "listen",
    "next_due",
    "record_attempt",
    "subscribe",
]


class Due(msgspec.Struct, frozen=True, kw_only=True):
    """A delivery to attempt now, with what its payload says about the task."""

    task_id: uuid.UUID
    url: str
    attempts: int
    status: str
    kind: str
    result: Any = None
    error: Any = None
    created_at: datetime
    completed_at: datetime | None = None
    parent_id: uuid.UUID | None = None
    subtask_id: str | None = None


async def subscribe(conn: Conn, task_id: uuid.UUID, url: str) -> None:
    """Give the task its callback; call in the transaction that inserts the task."""
    await execute(conn, "webhook_subscribe", {"task_id": task_id, "url": url})


async def claim_due(conn: Conn) -> Due | None:
    """Lock the most overdue delivery no one else holds; call inside a transaction."""
    row = await fetch_one(conn, "webhook_claim")
    return msgspec.convert(row, Due) if row else None


async def record_attempt(
    conn: Conn,
    task_id: uuid.UUID,
    attempt: dict[str, Any],
    *,
    status: Literal["pending", "delivered", "failed"],
    delay: float = 0.0,
) -> None:
    """Append ``attempt`` ({at, status_code, error}); ``pending`` again after ``delay`` s."""
    await execute(
        conn,
        "webhook_record",
        {
            "task_id": task_id,
            "attempt": msgspec.json.encode(attempt).decode(),
            "status": status,
            "delay": delay,
        },
    )


async def next_due(conn: Conn) -> float | None:
    """Seconds until the next pending delivery is due (≤ 0: now), ``None`` with none."""
    row = await fetch_one(conn, "webhook_next_due")
    seconds = row["seconds"] if row else None
    return float(seconds) if seconds is not None else None


async def listen(conn: Conn) -> None:
    """Subscribe ``conn`` (autocommit) to "a delivery became due"."""
    await execute(conn, "listen_webhooks")
