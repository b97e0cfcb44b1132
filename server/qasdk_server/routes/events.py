"""``GET /api/tasks/{id}/events``: a task's progress as Server-Sent Events.

The stream opens with the task's current state and the trace so far, then
sends each status change (``event: status``), trace step (``event: step``)
tool progress report (``event: progress``: ``tool``, ``fraction``,
``message``, from ``ToolContext.report_progress``) and circuit breaker
transition its calls caused (``event: breaker``) as it happens, wherever the
task runs: PostgreSQL notifications are the bus.
It ends after the terminal status. ``curl -N`` shows it as it comes.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

import msgspec
from litestar import get
from litestar.response import ServerSentEvent, ServerSentEventMessage

from qasdk.models import TERMINAL_STATUSES, Task
from qasdk.store import tasks as store
from qasdk_server.auth import Principal
from qasdk_server.errors import error_responses
from qasdk_server.routes._lookup import load_task
from qasdk_server.state import ServerState

__all__ = ["task_events"]

KEEP_ALIVE = 15.0


def _message(event: str, payload: object, event_id: str | None = None) -> ServerSentEventMessage:
    return ServerSentEventMessage(
        data=msgspec.json.encode(payload).decode(), event=event, id=event_id
    )


#: Events that are told, not stored, and the fields followers see of each.
TOLD = {
    "progress": ("tool", "fraction", "message"),
    "breaker": ("tool", "state", "failures", "calls", "retry_at"),
}


def _told(event: dict[str, object]) -> dict[str, object]:
    """A told event as followers see it (only its known fields)."""
    return {key: event.get(key) for key in TOLD[str(event["event"])]}


@get(
    "/api/tasks/{task_id:uuid}/events",
    opt={"scope": "read"},
    summary="Follow a task (Server-Sent Events)",
    media_type="text/event-stream",
    responses=error_responses(404),
    tags=("tasks",),
)
async def task_events(
    task_id: uuid.UUID, server: ServerState, principal: Principal
) -> ServerSentEvent:
    """Status changes and trace steps of one task, live, until it finishes."""
    await load_task(server, task_id, principal)  # 404 before the stream starts

    async def stream() -> AsyncIterator[ServerSentEventMessage]:
        last_seq = 0

        async def new_steps() -> AsyncIterator[ServerSentEventMessage]:
            nonlocal last_seq
            async with server.pool.connection() as conn:
                steps = await store.list_steps(conn, task_id, after=last_seq)
            for step in steps:
                last_seq = step.seq
                yield _message("step", step, str(step.seq))

        async with server.events.subscribe(task_id) as queue:
            task: Task = await load_task(server, task_id)
            yield _message("status", task)
            while True:
                async for message in new_steps():
                    yield message
                if task.status in TERMINAL_STATUSES:
                    return
                timeout = KEEP_ALIVE if server.events.connected else 0.25
                events = []
                try:
                    events.append(await asyncio.wait_for(queue.get(), timeout))
                except asyncio.TimeoutError:
                    if server.events.connected:
                        yield ServerSentEventMessage(comment="keep-alive")
                # A burst of notifications collapses into one read.
                with contextlib.suppress(asyncio.QueueEmpty):
                    while True:
                        events.append(queue.get_nowait())
                told = [e for e in events if e.get("event") in TOLD]
                progress = [e for e in told if e["event"] == "progress"]
                for event in told:
                    if event["event"] != "progress" or event is progress[-1]:
                        yield _message(event["event"], _told(event))  # progress: the latest
                if told and len(told) == len(events):
                    continue
                current = await load_task(server, task_id)
                if current.status != task.status:
                    if current.status in TERMINAL_STATUSES:
                        async for message in new_steps():  # the trace before the end
                            yield message
                    yield _message("status", current)
                task = current

    return ServerSentEvent(stream())
