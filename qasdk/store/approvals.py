"""The ``approvals`` table: tool calls waiting for a person, and where their task resumes.

A call is requested once per task (its tool and canonical arguments are the
key); pausing the task keeps the conversation to resume from; a decision
(approve, reject, or expiry) queues the task again with a new job, in the
same statement, so a decided approval never leaves its task waiting.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime
from typing import Any, Literal

import msgspec

from qasdk.store._sql import Conn, fetch_all, fetch_one
from qasdk.store.pools import queue_for
from qasdk.store.tasks import JOB_TASK
from qasdk.store.values import json_text

__all__ = [
    "Approval",
    "ResumePoint",
    "call_key",
    "decide",
    "expired",
    "find",
    "listed",
    "pause",
    "request",
    "resume_point",
]

Decision = Literal["approved", "rejected", "expired"]


class Approval(msgspec.Struct, kw_only=True):
    """A call that waits (or waited) for a person, as the API shows it."""

    approval_id: uuid.UUID
    task_id: uuid.UUID
    tool: str
    arguments: Any = None
    status: Literal["pending", "approved", "rejected", "expired"]
    reason: str | None = None
    decided_by: str | None = None
    created_at: datetime
    decided_at: datetime | None = None
    expires_at: datetime


class ResumePoint(msgspec.Struct, kw_only=True):
    """Where a paused model task goes on: its messages and the calls of that turn left."""

    approval_id: uuid.UUID
    conversation: list[Any]
    pending: list[Any]


def call_key(tool: str, arguments: Any) -> str:
    """A call within a task: its tool and canonical arguments (the same call, one approval)."""
    encoded = msgspec.json.encode([tool, arguments], order="sorted")
    return hashlib.sha256(encoded).hexdigest()


def _approval(row: dict[str, Any] | None) -> Approval | None:
    if row is None:
        return None
    return msgspec.convert({**row, "approval_id": row["id"]}, Approval)


async def find(conn: Conn, task_id: uuid.UUID, key: str) -> Approval | None:
    return _approval(await fetch_one(conn, "find_approval", {"task_id": task_id, "call_key": key}))


async def request(
    conn: Conn, task_id: uuid.UUID, key: str, tool: str, arguments: Any, ttl: float
) -> Approval:
    row = await fetch_one(
        conn,
        "request_approval",
        {
            "id": uuid.uuid4(),
            "task_id": task_id,
            "call_key": key,
            "tool": tool,
            "arguments": json_text(arguments),
            "ttl": ttl,
        },
    )
    approval = _approval(row)
    assert approval is not None
    return approval


async def pause(
    conn: Conn,
    task_id: uuid.UUID,
    attempt: int,
    approval_id: uuid.UUID,
    conversation: list[Any] | None,
    pending: list[Any] | None,
) -> bool:
    """Park the task (``awaiting_approval``); ``False`` if another attempt owns it now."""
    row = await fetch_one(
        conn,
        "pause_task",
        {
            "id": task_id,
            "attempt": attempt,
            "approval": approval_id,
            "conversation": json_text(conversation),
            "pending": json_text(pending),
        },
    )
    return row is not None


async def decide(
    conn: Conn,
    task_id: uuid.UUID,
    approval_id: uuid.UUID,
    decision: Decision,
    *,
    reason: str | None = None,
    actor: str | None = None,
) -> Approval | None:
    """Record the decision and queue the task again, in its pool; ``None``: not pending."""
    pool = await fetch_one(conn, "task_pool", {"id": task_id})
    row = await fetch_one(
        conn,
        "decide_approval",
        {
            "id": task_id,
            "approval": approval_id,
            "status": decision,
            "reason": reason,
            "actor": actor,
            "queue": queue_for(pool["pool"] if pool else None),
            "job_task": JOB_TASK,
        },
    )
    return _approval(row)


async def resume_point(conn: Conn, task_id: uuid.UUID) -> ResumePoint | None:
    row = await fetch_one(conn, "resume_point", {"id": task_id})
    if row is None:
        return None
    return ResumePoint(
        approval_id=row["id"], conversation=row["conversation"] or [], pending=row["pending"] or []
    )


async def listed(
    conn: Conn,
    *,
    status: str | None = "pending",
    owner: uuid.UUID | None = None,
    task_id: uuid.UUID | None = None,
    limit: int = 100,
) -> list[Approval]:
    rows = await fetch_all(
        conn,
        "list_approvals",
        {"status": status, "owner": owner, "task_id": task_id, "limit": limit},
    )
    return [a for row in rows if (a := _approval(row)) is not None]


async def expired(conn: Conn) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """Pending approvals past their time: (task, approval)."""
    rows = await fetch_all(conn, "expired_approvals")
    return [(row["task_id"], row["id"]) for row in rows]
