"""``/api/tasks``: submit, read, list, cancel, trace.

Submitting and cancelling (each with its audit row) are ``submit.py``'s: MCP shares them.
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Response, get, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Parameter
from msgspec import UNSET, UnsetType

from qasdk._excerpt import excerpt
from qasdk.audit import Actor
from qasdk.models import TERMINAL_STATUSES, Task, TaskError, TaskStatus, TraceStep
from qasdk.store import tasks as store
from qasdk.store.workers import pool_served
from qasdk_server.auth import Principal
from qasdk_server.errors import ApiError, error_responses
from qasdk_server.routes._cursor import decode_cursor, page
from qasdk_server.routes._lookup import follow, invalid, load_task, wait_until_done
from qasdk_server.state import ServerState
from qasdk_server.submit import SubmitTask, cancel, submit
from qasdk_server.telemetry.carrier import trace_carrier

__all__ = ["TaskController"]

MAX_WAIT = 60.0


class Submitted(msgspec.Struct, omit_defaults=True):
    """A submitted task; with ``?wait=``, its outcome too once it has finished."""

    task_id: uuid.UUID
    status: TaskStatus
    result: Any = UNSET
    error: TaskError | UnsetType | None = UNSET


class TaskPage(msgspec.Struct):
    tasks: list[Task]
    next_cursor: str | None


class Trace(msgspec.Struct):
    task_id: uuid.UUID
    status: TaskStatus
    steps: list[TraceStep]


_INCLUDABLE = ("params", "result")


def _included(include: str | None) -> set[str]:
    fields = {f.strip() for f in (include or "").split(",") if f.strip()}
    unknown = sorted(fields - set(_INCLUDABLE))
    if unknown:
        raise invalid(
            f"unknown field {excerpt(unknown[0])!r}; one of {', '.join(_INCLUDABLE)}", "include"
        )
    return fields


class TaskController(Controller):
    """``/api/tasks``: submit, read, list, cancel, trace (the task's events: ``events.py``)."""

    path = "/api/tasks"
    tags = ("tasks",)

    @post(
        "/",
        status_code=201,
        summary="Submit a task",
        responses=error_responses(400, 403, 429),
        opt={"scope": "submit"},
    )
    async def submit_task(
        self,
        data: SubmitTask,
        server: ServerState,
        principal: Principal,
        actor: Actor,
        traceparent: Annotated[
            str | None,
            Parameter(
                header="traceparent",
                description="W3C Trace Context: the task's trace (OpenTelemetry) continues "
                "the caller's. Ignored when invalid.",
            ),
        ] = None,
        tracestate: Annotated[
            str | None,
            Parameter(header="tracestate", description="W3C Trace Context, with traceparent."),
        ] = None,
        wait: Annotated[
            float,
            Parameter(
                ge=0,
                le=MAX_WAIT,
                description="Seconds to wait for the task to finish: the answer then carries "
                "its result or error, in one request (GET /api/tasks/{id} has the rest).",
            ),
        ] = 0,
    ) -> Response[Submitted]:
        """Queue a task: a natural-language ``task_description`` or a ``method`` with ``params``."""
        carrier = trace_carrier({"traceparent": traceparent or "", "tracestate": tracestate or ""})
        if wait > 0:
            task = await self._submit_and_wait(server, data, principal, actor, carrier, wait)
        else:
            task = await submit(server, data, principal, actor, trace_context=carrier)
        submitted = Submitted(task.task_id, task.status)
        if task.status in TERMINAL_STATUSES:
            submitted.result, submitted.error = task.result, task.error
        return Response(
            submitted,
            status_code=201,
            headers={"Location": f"/api/tasks/{task.task_id}"},
        )

    @staticmethod
    async def _submit_and_wait(
        server: ServerState,
        data: SubmitTask,
        principal: Principal,
        actor: Actor,
        carrier: dict[str, str] | None,
        wait: float,
    ) -> Task:
        """Listen for the task's events before it exists: a fast outcome is not missed, and
        the task is not read again until it may have finished."""
        deadline = time.monotonic() + wait
        task_id = uuid.uuid4()
        async with server.events.subscribe(task_id) as queue:
            task = await submit(
                server, data, principal, actor, trace_context=carrier, task_id=task_id
            )
            if task.task_id == task_id:
                return await follow(server, queue, task, deadline)
        # A graph: its parent has an id of its own.
        return await wait_until_done(server, task.task_id, max(0.0, deadline - time.monotonic()))

    @get(
        "/{task_id:uuid}",
        summary="Read a task",
        responses=error_responses(400, 404),
        opt={"scope": "read"},
    )
    async def get_task(
        self,
        task_id: Annotated[uuid.UUID, Parameter(description="The task's id (a UUID).")],
        server: ServerState,
        principal: Principal,
        wait: Annotated[
            float,
            Parameter(ge=0, le=MAX_WAIT, description="Seconds to wait for the task to finish."),
        ] = 0,
    ) -> Task:
        """The task's status and, once finished, its result or error (and its webhook's); a
        pending one says whether it waits for a worker of its pool (``waiting_for_pool``)."""
        if wait > 0:
            task = await wait_until_done(server, task_id, wait, principal, webhook=True)
        else:
            task = await load_task(server, task_id, principal, webhook=True)
        if task.status == "pending" and task.kind != "graph":
            async with server.pool.connection() as conn:
                served = await pool_served(
                    conn, task.pool, stale=server.config.worker.stalled_after
                )
            task.waiting_for_pool = not served
        return task

    @get("/", summary="List tasks", responses=error_responses(400), opt={"scope": "read"})
    async def list_tasks(
        self,
        server: ServerState,
        principal: Principal,
        status: TaskStatus | None = None,
        method: Annotated[str | None, Parameter(description="Direct tasks of this tool.")] = None,
        kind: Annotated[
            Literal["described", "direct", "graph"] | None,
            Parameter(description="Tasks in words (described), tool runs (direct) or graphs."),
        ] = None,
        parent_id: Annotated[
            uuid.UUID | None, Parameter(description="The sub-tasks of this graph.")
        ] = None,
        created_after: Annotated[
            datetime | None, Parameter(description="Created at or after (ISO 8601).")
        ] = None,
        created_before: Annotated[
            datetime | None, Parameter(description="Created before (ISO 8601).")
        ] = None,
        include: Annotated[
            str | None,
            Parameter(description="Big fields to include, comma-separated: params, result."),
        ] = None,
        limit: Annotated[int, Parameter(ge=1, le=500)] = 50,
        cursor: str | None = None,
    ) -> TaskPage:
        """Tasks newest first; pass ``next_cursor`` back as ``cursor`` for the next page.

        ``params`` and ``result`` are left out unless ``include`` names them.
        """
        before = decode_cursor(cursor, uuid.UUID) if cursor else None
        fields = _included(include)
        async with server.pool.connection() as conn:
            tasks = await store.list_tasks(
                conn,
                status=status,
                method=method,
                kind=kind,
                created_after=created_after,
                created_before=created_before,
                limit=limit + 1,
                before=before,
                with_params="params" in fields,
                with_result="result" in fields,
                owner=None if principal.sees_all else principal.owner,
                parent_id=parent_id,
            )
        shown, next_cursor = page(tasks, limit, lambda t: (t.created_at, t.task_id))
        return TaskPage(tasks=shown, next_cursor=next_cursor)

    @post(
        "/{task_id:uuid}/cancel",
        status_code=200,
        opt={"scope": "cancel"},
        summary="Cancel a task",
        responses={
            202: ResponseSpec(
                data_container=Task,
                description="Asked to stop; still stopping",
                generate_examples=False,
            ),
            **error_responses(400, 404, 409),
        },
    )
    async def cancel_task(
        self,
        task_id: uuid.UUID,
        server: ServerState,
        principal: Principal,
        actor: Actor,
        wait: Annotated[
            float,
            Parameter(ge=0, le=MAX_WAIT, description="Seconds to wait for a running task to stop."),
        ] = 5,
    ) -> Response[Task]:
        """A pending task never starts; a running one is stopped, its tool interrupted.

        Answers 200 once the task is cancelled, 202 if it is still stopping after
        ``wait`` seconds, 409 if it had already finished.
        """
        await load_task(server, task_id, principal)  # 404 when unknown (or another key's)
        status = await cancel(server, task_id, actor)
        if status is None:
            task = await load_task(server, task_id, principal)
            raise ApiError(
                409, "conflict", f"task {task_id} already {task.status}; nothing to cancel"
            )
        if status == "running":
            task = await wait_until_done(server, task_id, wait, principal)
        else:
            task = await load_task(server, task_id, principal)
        return Response(task, status_code=200 if task.status in TERMINAL_STATUSES else 202)

    @get(
        "/{task_id:uuid}/trace",
        summary="A task's trace",
        responses=error_responses(404),
        opt={"scope": "read"},
    )
    async def get_trace(
        self, task_id: uuid.UUID, server: ServerState, principal: Principal
    ) -> Trace:
        """Every model turn and tool call, in order, with arguments, results and durations."""
        task = await load_task(server, task_id, principal)
        async with server.pool.connection() as conn:
            steps = await store.list_steps(conn, task.task_id)
        return Trace(task_id=task.task_id, status=task.status, steps=steps)
