"""Finding a task for a request: load it, wait for it to finish."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from typing import Any

from qasdk.models import TERMINAL_STATUSES, Problem, Task
from qasdk.store import tasks as store
from qasdk_server.auth import OPEN, Principal
from qasdk_server.errors import ApiError
from qasdk_server.state import ServerState
from qasdk_server.webhooks import state_of

__all__ = ["follow", "invalid", "load_task", "wait_until_done"]


def invalid(message: str, field: str | None = None) -> ApiError:
    problems = [Problem(reason=message, field=field)] if field else []
    text = f"{field}: {message}" if field else message
    return ApiError(400, "invalid_request", text, problems)


async def load_task(
    server: ServerState, task_id: uuid.UUID, principal: Principal = OPEN, *, webhook: bool = False
) -> Task:
    """The task, if ``principal`` may see it; another key's task is 404 like a missing one.

    ``webhook``: with its completion webhook's state (read in the same round trip).
    """
    async with server.pool.connection() as conn:
        found = await store.get_task_and_webhook(conn, task_id)
    if found is None or not principal.may_see(found[0].owner):
        raise ApiError(404, "not_found", f"no task with id {task_id}")
    task, row = found
    if webhook:
        task.webhook = state_of(row)
    return task


async def wait_until_done(
    server: ServerState,
    task_id: uuid.UUID,
    wait: float,
    principal: Principal = OPEN,
    *,
    webhook: bool = False,
) -> Task:
    """The task once it has finished, or as it is when ``wait`` seconds have passed."""
    deadline = time.monotonic() + wait
    async with server.events.subscribe(task_id) as queue:
        task = await load_task(server, task_id, principal, webhook=webhook)
        return await follow(server, queue, task, deadline, webhook=webhook)


async def follow(
    server: ServerState,
    queue: asyncio.Queue[dict[str, Any]],
    task: Task,
    deadline: float,
    *,
    webhook: bool = False,
) -> Task:
    """``task`` once it has finished, or as it is at ``deadline`` (``time.monotonic()``);
    ``queue``: its events, subscribed to before ``task`` was read (or inserted).

    Only an event that may end the wait reads the task again: steps and other status
    changes only mark it stale, for one read when the wait runs out.
    """
    stale = False
    while task.status not in TERMINAL_STATUSES:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        with contextlib.suppress(asyncio.TimeoutError):
            # Without a listening connection, poll; events may be missed.
            timeout = remaining if server.events.connected else min(remaining, 0.25)
            event = await asyncio.wait_for(queue.get(), timeout)
            if event.get("event") == "step" or (
                event.get("event") == "status" and event.get("status") not in TERMINAL_STATUSES
            ):
                stale = True
                continue
        task = await load_task(server, task.task_id, webhook=webhook)
        stale = False
    if stale:
        task = await load_task(server, task.task_id, webhook=webhook)
    return task
