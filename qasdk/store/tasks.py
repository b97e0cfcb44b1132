"""The ``tasks`` and ``task_steps`` tables.

A task row is what the API shows; the queue job that runs it lives in
Procrastinate's tables and is created in the same statement (``insert_task``).
Workers claim a task with an attempt number and only that attempt may finish
it, so a worker that was presumed dead cannot overwrite a newer outcome.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import msgspec
import psycopg
from psycopg.rows import DictRow

from qasdk.audit.entry import Actor
from qasdk.config import LimitsConfig
from qasdk.models import Task, TaskError, TraceStep
from qasdk.store import audit, graphs
from qasdk.store._sql import execute, fetch_all, fetch_one
from qasdk.store.pools import DEFAULT_POOL, QUEUE, queue_for
from qasdk.store.values import clean_text, json_text

__all__ = [
    "JOB_TASK",
    "QUEUE",
    "Claimed",
    "TaskLocked",
    "cancel_abandoned",
    "cancel_task",
    "claim_task",
    "delete_expired_tasks",
    "finish_task",
    "get_task",
    "get_task_and_webhook",
    "insert_step",
    "insert_task",
    "list_steps",
    "list_tasks",
    "lock_key",
    "release_task",
    "settle_orphans",
    "unlock",
]

Conn = psycopg.AsyncConnection[DictRow]

#: The Procrastinate task name qasdk's jobs use (``QUEUE``: the default pool's queue).
JOB_TASK = "qasdk.run_task"


_DEFAULT_LIMITS = LimitsConfig()
#: Characters of an error's type and message that are stored.
ERROR_TYPE_MAX, ERROR_MESSAGE_MAX = 200, 8192


def _json(value: Any, limits: LimitsConfig, max_bytes: int | None = None) -> str | None:
    return json_text(value, max_bytes=max_bytes, depth=limits.json_depth)


def _text(value: str | None, max_chars: int) -> str | None:
    if value is None:
        return None
    value = clean_text(value)
    if len(value) > max_chars:
        dropped = len(value) - max_chars
        value = f"{value[:max_chars]}... [{dropped} more characters not stored]"
    return value


def storable_error(error: TaskError | None) -> TaskError | None:
    """An error whose type and message fit their columns and can be stored."""
    if error is None:
        return None
    kind = _text(error.type, ERROR_TYPE_MAX) or "Error"
    return TaskError(kind, _text(error.message, ERROR_MESSAGE_MAX) or "")


def _task(row: dict[str, Any]) -> Task:
    return msgspec.convert(row, Task)


async def insert_task(
    conn: Conn,
    *,
    kind: str,
    description: str | None = None,
    method: str | None = None,
    params: dict[str, Any] | None = None,
    priority: int = 5,
    timeout: float | None = None,
    task_id: uuid.UUID | None = None,
    owner: uuid.UUID | None = None,
    actor: Actor | None = None,
    trace_context: Mapping[str, str] | None = None,
    pool: str = DEFAULT_POOL,
    split: bool = False,
    failure_policy: str | None = None,
) -> Task:
    """Store a new pending task and queue its job, atomically; ``owner``: the API key's id.

    ``pool``: the worker pool it runs in (its job goes to that pool's queue).
    ``split``: the model first plans sub-tasks (``failure_policy`` is then their graph's).

    With ``actor``, the submit is audited (``task.submit``) by the same statement.
    ``trace_context``: the submitting request's ``traceparent`` (and ``tracestate``).
    """
    if actor is None:
        audited: dict[str, Any] = dict.fromkeys(("actor", "key_id", "client", "action", "detail"))
        audited["count"] = 1
    else:
        detail: dict[str, Any] = {"kind": kind, "priority": priority}
        if method is not None:
            detail["method"] = method
        audited = audit.row_params(actor=actor, action="task.submit", detail=detail)
        del audited["target"]  # the task's id, as the statement stored it
    row = await (
        await execute(
            conn,
            "insert_task",
            {
                **audited,
                "id": task_id or uuid.uuid4(),
                "kind": kind,
                "description": description,
                "method": method,
                "params": _json(params, _DEFAULT_LIMITS),
                "priority": priority,
                "timeout": timeout,
                "owner": owner,
                "trace_context": _json(dict(trace_context), _DEFAULT_LIMITS)
                if trace_context
                else None,
                "queue": queue_for(pool),
                "pool": pool,
                "job_task": JOB_TASK,
                "split": "planning" if split else None,
                "failure_policy": failure_policy if split else None,
            },
        )
    ).fetchone()
    assert row is not None
    return _task(row)


async def get_task(conn: Conn, task_id: uuid.UUID) -> Task | None:
    found = await get_task_and_webhook(conn, task_id)
    return None if found is None else found[0]


async def get_task_and_webhook(
    conn: Conn, task_id: uuid.UUID
) -> tuple[Task, dict[str, Any] | None] | None:
    """The task and its completion webhook's row (url, status, attempts, next_at), in one
    round trip; ``None`` if there is no such task."""
    row = await (await execute(conn, "get_task", {"id": task_id})).fetchone()
    if row is None:
        return None
    webhook = {name: row.pop(f"webhook_{name}") for name in _WEBHOOK_COLUMNS}
    return _task(row), (webhook if webhook["url"] is not None else None)


_WEBHOOK_COLUMNS = ("url", "status", "attempts", "next_at")


async def list_tasks(
    conn: Conn,
    *,
    status: str | None = None,
    method: str | None = None,
    kind: str | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    limit: int = 50,
    before: tuple[datetime, uuid.UUID] | None = None,
    with_params: bool = False,
    with_result: bool = False,
    owner: uuid.UUID | None = None,
    parent_id: uuid.UUID | None = None,
) -> list[Task]:
    """Tasks newest first; ``before`` is the (created_at, id) of the last one seen.

    ``params`` and ``result`` are left out (unset) unless asked for, ``attempt_history``
    always: a page of tasks stays small whatever the tasks carried. ``owner``: only that
    key's tasks; ``parent_id``: only that graph's sub-tasks.
    """
    params = {
        "status": status,
        "method": method,
        "kind": kind,
        "created_after": created_after,
        "created_before": created_before,
        "limit": limit,
        "before_created": before[0] if before else None,
        "before_id": before[1] if before else None,
        "with_params": with_params,
        "with_result": with_result,
        "owner": owner,
        "parent_id": parent_id,
    }
    rows = await (await execute(conn, "list_tasks", params)).fetchall()
    tasks = [_task(row) for row in rows]
    for task in tasks:
        task.attempt_history = msgspec.UNSET  # not read: GET the task for it
        if not with_params:
            task.params = msgspec.UNSET
        if not with_result:
            task.result = msgspec.UNSET
    return tasks


class TaskLocked(Exception):
    """Another worker holds the task's lock: it is running there."""


class Claimed(msgspec.Struct, frozen=True):
    """A task a worker took: the task, its last trace step number, its trace context."""

    task: Task
    last_seq: int
    trace_context: dict[str, str] | None = None


async def claim_task(conn: Conn, task_id: uuid.UUID, worker: str) -> Claimed | None:
    """Lock the task and mark it running for a new attempt; return it, with what running it
    needs, or ``None`` if it is cancelled or finished already.

    Raises :class:`TaskLocked` when another worker holds it (then nothing changed).
    """
    params = {"id": task_id, "worker": worker, "key": lock_key(task_id)}
    row = await (await execute(conn, "claim_task", params)).fetchone()
    if row is None or not row.pop("locked"):
        raise TaskLocked(str(task_id))
    if row["task_id"] is None:
        return None
    last_seq = int(row.pop("last_seq"))
    context = row.pop("trace_context")
    carrier = (
        {str(k): str(v) for k, v in context.items() if isinstance(v, str)}
        if isinstance(context, dict)
        else None
    )
    return Claimed(_task(row), last_seq, carrier or None)


async def finish_task(
    conn: Conn,
    task_id: uuid.UUID,
    attempt: int,
    *,
    status: str,
    result: Any = None,
    error: TaskError | None = None,
    limits: LimitsConfig = _DEFAULT_LIMITS,
    in_graph: bool = True,
    release_lock: bool = False,
    end_job: int | None = None,
) -> bool:
    """Record the outcome; ``False`` if another attempt owns the task now.

    The result is stored as it can be (see :mod:`qasdk.store.values`): over
    ``limits.result`` it is a marker with its size and a preview. ``in_graph=False``
    (the caller knows the task has no parent: that never changes) makes it one
    statement, with no graph to lock and advance. ``release_lock``: then release the
    task's session lock too, after the outcome (in a pipeline, in the same round trip).
    ``end_job``: the task's queue job, ended (deleted, as a succeeded job) with the outcome
    when it is written.
    """
    params = {
        "id": task_id,
        "attempt": attempt,
        "status": status,
        "result": _json(result, limits, limits.result),
        "error": _json(storable_error(error), limits),
        "job_id": end_job,
    }
    if not in_graph:
        cursor = await execute(conn, "finish_task", params)
        if release_lock:
            await unlock(conn, task_id)  # sent before the outcome's row is read
        return await cursor.fetchone() is not None
    async with conn.transaction():
        parent = await graphs.lock_parent(conn, task_id)
        written = await (await execute(conn, "finish_task", params)).fetchone() is not None
        if written and parent is not None:
            await graphs.advance(conn, parent)
    if release_lock:
        await unlock(conn, task_id)
    return written


async def release_task(conn: Conn, task_id: uuid.UUID, attempt: int) -> bool:
    cur = await execute(conn, "release_task", {"id": task_id, "attempt": attempt})
    return await cur.fetchone() is not None


async def cancel_task(conn: Conn, task_id: uuid.UUID) -> str | None:
    """Cancel a pending task or ask a running one to stop; its status after, or ``None``.

    A graph's unfinished sub-tasks are cancelled with it; a sub-task's graph goes on
    as its failure policy says.
    """
    async with conn.transaction():
        parent = await graphs.lock_parent(conn, task_id)
        row = await (await execute(conn, "cancel_task", {"id": task_id})).fetchone()
        if row is None:
            return None
        if row["kind"] == "graph" or row["split"] == "waiting":
            await graphs.advance(conn, task_id)
        elif parent is not None:
            await graphs.advance(conn, parent)
    return str(row["status"])


async def cancel_abandoned(conn: Conn, task_id: uuid.UUID) -> bool:
    async with conn.transaction():
        parent = await graphs.lock_parent(conn, task_id)
        row = await fetch_one(conn, "cancel_abandoned", {"id": task_id})
        if row is not None and parent is not None:
            await graphs.advance(conn, parent)
    return row is not None


def lock_key(task_id: uuid.UUID) -> int:
    """The advisory-lock key of a task: 64 bits of its id."""
    return int.from_bytes(task_id.bytes[:8], "big", signed=True)


async def unlock(conn: Conn, task_id: uuid.UUID) -> None:
    await execute(conn, "task_unlock", {"key": lock_key(task_id)})


async def insert_step(
    conn: Conn, task_id: uuid.UUID, step: TraceStep, limits: LimitsConfig = _DEFAULT_LIMITS
) -> None:
    """Store one trace step; values over their limits are stored as markers."""
    await execute(
        conn,
        "insert_step",
        {
            "task_id": task_id,
            "seq": step.seq,
            "kind": step.kind,
            "name": _text(step.name, ERROR_TYPE_MAX),
            "attempt": step.attempt,
            "arguments": _json(step.arguments, limits, limits.trace_value),
            "result": _json(step.result, limits, limits.result),
            "error": _json(storable_error(step.error), limits),
            "content": _text(step.content, limits.trace_value),
            "thinking": _text(step.thinking, limits.trace_value),
            "usage": _json(step.usage, limits, limits.trace_value),
            "started_at": step.started_at,
            "duration_ms": step.duration_ms,
            "code_version": _text(step.code_version, ERROR_TYPE_MAX),
            "cached": step.cached,
            "retries": step.retries,
        },
    )


async def list_steps(conn: Conn, task_id: uuid.UUID, after: int = 0) -> list[TraceStep]:
    rows = await (await execute(conn, "list_steps", {"id": task_id, "after": after})).fetchall()
    return [msgspec.convert(row, TraceStep) for row in rows]


async def settle_orphans(conn: Conn, *, grace: float) -> list[uuid.UUID]:
    """End as failed the tasks whose job ended without an outcome; their ids."""
    rows = await fetch_all(conn, "settle_orphans", {"grace": grace})
    for parent in {row["parent_id"] for row in rows if row["parent_id"] is not None}:
        await graphs.advance(conn, parent)
    return [row["id"] for row in rows]


async def delete_expired_tasks(conn: Conn, *, days: float, batch: int = 1000) -> tuple[int, int]:
    """Delete up to ``batch`` tasks finished more than ``days`` ago: (tasks, jobs) deleted."""
    row = await fetch_one(conn, "delete_expired_tasks", {"seconds": days * 86400, "batch": batch})
    assert row is not None
    return int(row["tasks"]), int(row["jobs"])
