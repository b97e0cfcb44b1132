"""Task graphs in PostgreSQL: a parent of kind ``graph`` and its sub-tasks.

A sub-task is a task of its own (it runs, is traced and cancelled like any
other) with no queue job until its dependencies have completed. Whatever ends
a sub-task (its worker, a cancel, the orphan sweep) calls :func:`advance` in
the transaction that records it, under the parent's row lock: that queues the
sub-tasks now ready (their references resolved), cancels those that can no
longer run as the failure policy says, and ends the parent when every sub-task
has ended. No timer is involved: the next job exists as soon as the last
dependency's outcome is committed.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from qasdk.audit.entry import Actor
from qasdk.config import LimitsConfig
from qasdk.graphs import RefError, Subtask, resolve_params, resolve_text
from qasdk.models import TaskError
from qasdk.store import audit
from qasdk.store import tasks as task_store
from qasdk.store._sql import Conn, execute, fetch_all, fetch_one
from qasdk.store.pools import queue_for
from qasdk.store.values import clean_text, json_text

__all__ = [
    "FAILURE_POLICIES",
    "advance",
    "insert_graph",
    "lock_parent",
    "park_split",
    "split_conversation",
    "summary",
]

FAILURE_POLICIES = ("fail_fast", "continue")
_ENDED = frozenset({"completed", "failed", "cancelled"})
_LIMITS = LimitsConfig()


def _json(value: Any, max_bytes: int | None = None) -> str | None:
    return json_text(value, max_bytes=max_bytes, depth=_LIMITS.json_depth)


def _error(kind: str, message: str) -> str | None:
    return _json(task_store.storable_error(TaskError(kind, message)))


async def insert_graph(
    conn: Conn,
    subtasks: Sequence[Subtask],
    *,
    failure_policy: str = "fail_fast",
    priority: int = 5,
    timeout: float | None = None,
    owner: uuid.UUID | None = None,
    actor: Actor | None = None,
    trace_context: Mapping[str, str] | None = None,
) -> uuid.UUID:
    """Store the parent and its sub-tasks and queue those with no dependency, atomically."""
    if actor is None:
        audited: dict[str, Any] = dict.fromkeys(("actor", "key_id", "client", "action", "detail"))
        audited["count"] = 1
    else:
        detail = {"kind": "graph", "priority": priority, "subtasks": len(subtasks)}
        audited = audit.row_params(actor=actor, action="task.submit", detail=detail)
        del audited["target"]
    context = _json(dict(trace_context)) if trace_context else None
    parent = uuid.uuid4()
    async with conn.transaction():
        await execute(
            conn,
            "insert_graph",
            {
                **audited,
                "id": parent,
                "priority": priority,
                "timeout": timeout,
                "owner": owner,
                "trace_context": context,
                "failure_policy": failure_policy,
            },
        )
        await _insert_children(conn, parent, subtasks, owner=owner, context=context)
        await advance(conn, parent)
    return parent


async def _insert_children(
    conn: Conn,
    parent: uuid.UUID,
    subtasks: Sequence[Subtask],
    *,
    owner: uuid.UUID | None,
    context: str | None,
) -> dict[str, uuid.UUID]:
    ids = {node.id: uuid.uuid4() for node in subtasks}
    for node in subtasks:
        await execute(
            conn,
            "insert_subtask",
            {
                "id": ids[node.id],
                "kind": node.kind,
                "description": node.description,
                "method": node.method,
                "params": _json(node.params),
                "priority": node.priority,
                "timeout": node.timeout,
                "owner": owner,
                "trace_context": context,
                "parent_id": parent,
                "subtask_id": node.id,
                "depends_on": [ids[dep] for dep in node.depends_on],
                "pool": node.pool,
            },
        )
    return ids


async def park_split(
    conn: Conn,
    task_id: uuid.UUID,
    attempt: int,
    subtasks: Sequence[Subtask],
    conversation: list[Any],
    *,
    owner: uuid.UUID | None = None,
    trace_context: Mapping[str, str] | None = None,
) -> dict[str, uuid.UUID] | None:
    """A split task's plan: store its sub-tasks and let it wait for them, atomically.

    Returns the sub-tasks' task ids by their ids in the plan, or ``None`` when
    ``attempt`` no longer owns the task (then nothing is stored).
    """
    context = _json(dict(trace_context)) if trace_context else None
    async with conn.transaction():
        parked = await fetch_one(
            conn,
            "split_park",
            {"id": task_id, "attempt": attempt, "conversation": _json(conversation)},
        )
        if parked is None:
            return None
        ids = await _insert_children(conn, task_id, subtasks, owner=owner, context=context)
        await advance(conn, task_id)
    return ids


async def split_conversation(conn: Conn, task_id: uuid.UUID) -> list[Any]:
    """The conversation a split task's planning ended with (composing goes on from it)."""
    row = await fetch_one(conn, "split_conversation", {"id": task_id})
    found = row["plan_conversation"] if row else None
    return list(found) if isinstance(found, list) else []


async def lock_parent(conn: Conn, task_id: uuid.UUID) -> uuid.UUID | None:
    """Lock the graph ``task_id`` belongs to (if any) before changing the task; its id.

    Taking the parent's lock first, always, is what keeps two siblings that end at
    once from deadlocking on each other's rows.
    """
    row = await fetch_one(conn, "graph_parent_of", {"id": task_id})
    return row["id"] if row else None


async def advance(conn: Conn, parent_id: uuid.UUID) -> None:
    """Bring the graph up to date with its sub-tasks' states (see the module's docstring)."""
    async with conn.transaction():
        parent = await fetch_one(conn, "graph_lock", {"id": parent_id})
        if parent is None or parent["status"] in _ENDED:
            return
        while True:
            children = await fetch_all(conn, "graph_children", {"id": parent_id})
            if not await _step(conn, parent, children):
                break
        if all(child["status"] in _ENDED for child in children):
            await _finish(conn, parent, children)


async def _cancel(conn: Conn, ids: list[uuid.UUID], why: str) -> None:
    await execute(conn, "graph_cancel_subtasks", {"ids": ids, "error": _error("Cancelled", why)})


async def _step(conn: Conn, parent: Mapping[str, Any], children: list[Any]) -> bool:
    """One round of changes; ``True`` if anything changed (then look again)."""
    by_id = {child["id"]: child for child in children}
    open_ = [c for c in children if c["status"] not in _ENDED and not c["cancel_requested"]]
    broken = [c for c in children if c["status"] in ("failed", "cancelled")]
    if parent["cancel_requested"]:
        if open_:
            await _cancel(conn, [c["id"] for c in open_], "its graph was cancelled")
            return True
        return False
    if broken and parent["failure_policy"] != "continue":
        if open_:
            first = broken[0]
            why = f"sub-task {first['subtask_id']!r} {first['status']} (failure_policy fail_fast)"
            await _cancel(conn, [c["id"] for c in open_], why)
            return True
        return False
    changed = False
    for child in open_:
        if child["status"] != "pending" or child["job_id"] is not None:
            continue
        deps = [by_id[dep] for dep in child["depends_on"]]
        lost = [d for d in deps if d["status"] in ("failed", "cancelled")]
        if lost:
            why = f"its dependency {lost[0]['subtask_id']!r} {lost[0]['status']}"
            await _cancel(conn, [child["id"]], why)
            changed = True
            continue
        unmet = sum(d["status"] != "completed" for d in deps)
        if unmet:
            await execute(conn, "graph_set_unmet", {"id": child["id"], "unmet": unmet})
            continue
        changed |= await _queue(conn, child)
    return changed


async def _results(conn: Conn, ids: Sequence[uuid.UUID]) -> dict[str, Any]:
    rows = await fetch_all(conn, "graph_results", {"ids": list(ids)})
    return {row["subtask_id"]: row["result"] for row in rows}


async def _queue(conn: Conn, child: Mapping[str, Any]) -> bool:
    """Give a ready sub-task its job, its references resolved (or fail it if they cannot be)."""
    results = await _results(conn, child["depends_on"]) if child["depends_on"] else {}
    try:
        params = resolve_params(child["params"], results) if child["params"] else child["params"]
        description = (
            clean_text(resolve_text(child["description"], results))
            if child["description"] is not None
            else None
        )
    except RefError as exc:
        await execute(
            conn, "graph_fail_subtask", {"id": child["id"], "error": _error("RefError", str(exc))}
        )
        return True
    await execute(
        conn,
        "graph_queue_subtask",
        {
            "id": child["id"],
            "priority": child["priority"],
            "params": _json(params),
            "description": description,
            "queue": queue_for(child["pool"]),
            "job_task": task_store.JOB_TASK,
        },
    )
    return False  # queued: nothing else changes because of it now


async def _finish(conn: Conn, parent: Mapping[str, Any], children: list[Any]) -> None:
    """End the parent: its result is ``{subtask id: {status, result | error}}``."""
    failed = [c for c in children if c["status"] != "completed"]
    error = None
    if parent["cancel_requested"]:
        status, error = "cancelled", _error("Cancelled", "cancelled by request")
    elif parent["split"] == "waiting" and (not failed or parent["failure_policy"] == "continue"):
        # A plan's graph: the model answers from the summary (read when it runs).
        await execute(
            conn,
            "split_compose",
            {"id": parent["id"], "queue": task_store.QUEUE, "job_task": task_store.JOB_TASK},
        )
        return
    elif failed:
        status = "failed"
        listed = "; ".join(
            f"{c['subtask_id']!r} {c['status']}"
            + (f": {c['error'].get('message', '')}" if isinstance(c["error"], dict) else "")
            for c in failed[:10]
        )
        error = _error("SubtaskFailed", f"{len(failed)} of {len(children)} sub-tasks: {listed}")
    else:
        status = "completed"
    await execute(
        conn,
        "graph_finish",
        {
            "id": parent["id"],
            "status": status,
            "result": _json(await _summary(conn, children), _LIMITS.result),
            "error": error,
        },
    )


async def _summary(conn: Conn, children: list[Any]) -> dict[str, Any]:
    done = [c["id"] for c in children if c["status"] == "completed"]
    results = await _results(conn, done) if done else {}
    found: dict[str, Any] = {}
    for child in children:
        entry: dict[str, Any] = {"status": child["status"]}
        if child["status"] == "completed":
            entry["result"] = results[child["subtask_id"]]
        else:
            entry["error"] = child["error"]
        found[child["subtask_id"]] = entry
    return found


async def summary(conn: Conn, parent_id: uuid.UUID) -> dict[str, Any]:
    """``{subtask id: {status, result | error}}`` of a graph's sub-tasks."""
    return await _summary(conn, await fetch_all(conn, "graph_children", {"id": parent_id}))
