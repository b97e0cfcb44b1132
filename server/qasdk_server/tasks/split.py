"""A split task's three phases, on the worker side: check the plan, park, compose.

Planning is a model task offered one tool, the plan (``qasdk_server.agent.plan``).
A plan that passes the checks of a declared graph is stored with the task's
sub-tasks in one transaction, and the task waits without a job; the graph's
last outcome queues it again (``qasdk.store.graphs``), and composing resumes the
recorded conversation with the plan call's result: the sub-tasks' outcomes.
"""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
import psycopg
from psycopg.rows import DictRow

from qasdk.config import Config
from qasdk.graphs import Subtask
from qasdk.models import Task
from qasdk.store import graphs
from qasdk.store import keys as keys_store
from qasdk_server.agent.plan import Resume, composing_turn
from qasdk_server.auth import Principal
from qasdk_server.errors import ApiError
from qasdk_server.graphs import SubtaskSpec, check_subtasks
from qasdk_server.registry import MethodRegistry

__all__ = ["check_plan", "composing", "park"]


def _field(path: str) -> str:
    """msgspec's ``$[1].id`` as the plan's ``subtasks[1].id``."""
    return "subtasks" + path.removeprefix("$") if path.startswith("$") else path


async def check_plan(
    pool: Any,
    registry: MethodRegistry,
    config: Config,
    task: Task,
    arguments: dict[str, Any],
) -> list[Subtask] | str:
    """The plan's nodes, checked as a declared graph is; or every problem, as one text."""
    try:
        specs = msgspec.convert(arguments.get("subtasks"), list[SubtaskSpec])
    except msgspec.ValidationError as exc:
        message, _, where = str(exc).rpartition(" - at `")
        if message and where:
            return f"{_field(where.rstrip('`'))}: {message}"
        return f"subtasks: {exc}"
    key = None
    if task.owner is not None:
        async with pool.connection() as conn:
            found = await keys_store.find_key(conn, task.owner)
        key = None if found is None else found[0]
    try:
        return await check_subtasks(
            registry,
            specs,
            Principal(key=key),
            priority=task.priority,
            timeout=task.timeout,
            limits=config.limits,
            max_subtasks=config.model.max_plan_subtasks,
        )
    except ApiError as exc:
        listed = "; ".join(f"{p.field}: {p.reason}" for p in exc.problems[:20])
        return listed or exc.message


async def park(
    conn: psycopg.AsyncConnection[DictRow],
    task: Task,
    subtasks: list[Subtask],
    conversation: list[Any],
    trace_context: dict[str, str] | None,
) -> dict[str, uuid.UUID] | None:
    """Store the plan's sub-tasks; ``None`` if a newer attempt owns the task."""
    return await graphs.park_split(
        conn,
        task.task_id,
        task.attempts,
        subtasks,
        conversation,
        owner=task.owner,
        trace_context=trace_context,
    )


async def composing(conn: psycopg.AsyncConnection[DictRow], task_id: uuid.UUID) -> Resume:
    """Where composing goes on: the planning conversation and the sub-tasks' outcomes."""
    conversation = await graphs.split_conversation(conn, task_id)
    return composing_turn(conversation, await graphs.summary(conn, task_id))
