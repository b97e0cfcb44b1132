"""Retries of failed attempts, and the dead-letter set (``blocked`` tasks) an operator handles.

A retryable failure is written by the attempt that claimed the task (status
``running`` and its attempt number, as ``finish_task``): the task either waits,
``pending``, for a job Procrastinate holds back until ``next_attempt_at``, or,
its attempts used up, becomes ``blocked``, with no job, until an operator
retries it (a new job, its failures counted afresh) or discards it (``failed``,
error kind ``Discarded``, and its graph moves on). Each write happens in one
statement with the job it needs, so a task never waits without a job to run it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import msgspec

from qasdk.audit.entry import Actor
from qasdk.config import LimitsConfig
from qasdk.models import TaskError
from qasdk.store import audit, graphs
from qasdk.store import tasks as task_store
from qasdk.store._sql import Conn, fetch_one
from qasdk.store.pools import queue_for
from qasdk.store.values import json_text

__all__ = ["HISTORY_KEPT", "Failed", "discard_blocked", "fail_attempt", "retry_blocked"]

#: Failed attempts kept on a task (the latest): an operator may retry it many times.
HISTORY_KEPT = 50
_LIMITS = LimitsConfig()


class Failed(msgspec.Struct, frozen=True):
    """What a retryable failure did: ``pending`` (due again at ``retry_at``) or ``blocked``."""

    status: str
    retry_at: datetime | None


def _json(value: Any) -> str | None:
    return json_text(value, depth=_LIMITS.json_depth)


async def _queue(conn: Conn, task_id: uuid.UUID) -> str:
    """The queue of the task's pool (its next job goes there, as its first did)."""
    row = await fetch_one(conn, "task_pool", {"id": task_id})
    return queue_for(row["pool"] if row else None)


async def fail_attempt(
    conn: Conn,
    task_id: uuid.UUID,
    attempt: int,
    error: TaskError,
    *,
    delay: float,
    block: bool,
) -> Failed | None:
    """Record attempt ``attempt``'s retryable failure; ``None`` if another attempt owns the task
    or its cancel was asked for.

    ``block``: its attempts are used up (it becomes ``blocked``); otherwise it runs
    again in ``delay`` seconds.
    """
    queue = await _queue(conn, task_id)
    row = await fetch_one(
        conn,
        "fail_attempt",
        {
            "id": task_id,
            "attempt": attempt,
            "error": _json(task_store.storable_error(error)),
            "delay": delay,
            "block": block,
            "keep": HISTORY_KEPT,
            "queue": queue,
            "job_task": task_store.JOB_TASK,
        },
    )
    return None if row is None else Failed(str(row["status"]), row["next_attempt_at"])


async def retry_blocked(
    conn: Conn,
    task_id: uuid.UUID,
    *,
    actor: Actor,
    params: dict[str, Any] | None = None,
    set_params: bool = False,
    description: str | None = None,
    secrets: Iterable[str] = (),
) -> bool:
    """Queue a blocked task again (audited ``task.retry``); ``False`` if it is not blocked.

    ``set_params``: replace its params with ``params`` (a direct task); ``description``:
    replace its description (a described task).
    """
    async with conn.transaction():
        queue = await _queue(conn, task_id)
        row = await fetch_one(
            conn,
            "retry_blocked",
            {
                "id": task_id,
                "params": _json(params),
                "set_params": set_params,
                "description": description,
                "queue": queue,
                "job_task": task_store.JOB_TASK,
            },
        )
        if row is None:
            return False
        changed = [
            name
            for name, given in (
                ("params", set_params),
                ("task_description", description is not None),
            )
            if given
        ]
        await audit.record(
            conn,
            actor=actor,
            action="task.retry",
            target=str(task_id),
            detail={"changed": changed},
            secrets=secrets,
        )
    return True


async def discard_blocked(conn: Conn, task_id: uuid.UUID, *, actor: Actor) -> bool:
    """End a blocked task as failed (``Discarded``; audited ``task.discard``), its graph too.

    ``False`` if it is not blocked. Under its graph's lock, as every change of a sub-task.
    """
    message = f"discarded by {actor.name}"
    async with conn.transaction():
        parent = await graphs.lock_parent(conn, task_id)
        row = await fetch_one(conn, "discard_blocked", {"id": task_id, "message": message})
        if row is None:
            return False
        await audit.record(conn, actor=actor, action="task.discard", target=str(task_id))
        if parent is not None:
            await graphs.advance(conn, parent)
    return True
