"""``/api/tasks``: submit, read, list, cancel, trace.

A submit (by its one statement) and a cancel (in its transaction) append their audit row.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Response, get, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Parameter

from qasdk._excerpt import excerpt
from qasdk.audit import Actor
from qasdk.config import LimitsConfig
from qasdk.errors import ValidationError
from qasdk.models import TERMINAL_STATUSES, Problem, Task, TaskStatus, TraceStep
from qasdk.store import audit
from qasdk.store import tasks as store
from qasdk_server.auth import Principal
from qasdk_server.errors import ApiError, error_responses
from qasdk_server.executor import prepare_params
from qasdk_server.quota import admit, refuse_tool
from qasdk_server.routes._cursor import decode_cursor, page
from qasdk_server.routes._lookup import invalid, load_task, wait_until_done
from qasdk_server.state import ServerState
from qasdk_server.telemetry.carrier import trace_carrier

__all__ = ["TaskController"]

MAX_WAIT = 60.0


class SubmitTask(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Either ``task_description`` (the model decides) or ``method`` + ``params`` (run it)."""

    task_description: (
        Annotated[
            str,
            msgspec.Meta(
                description="What to do, in words; the model picks the tools.",
                examples=["What is the weather in Paris?"],
            ),
        ]
        | None
    ) = None
    method: (
        Annotated[
            str, msgspec.Meta(description="A registered tool to run directly.", examples=["add"])
        ]
        | None
    ) = None
    params: (
        Annotated[
            dict[str, Any],
            msgspec.Meta(description="The tool's arguments.", examples=[{"a": 2, "b": 3}]),
        ]
        | None
    ) = None
    priority: Annotated[
        int, msgspec.Meta(ge=1, le=10, description="1-10, higher runs first.", examples=[5])
    ] = 5
    timeout: (
        Annotated[
            float,
            msgspec.Meta(gt=0, le=86400, description="Seconds for the whole task.", examples=[30]),
        ]
        | None
    ) = None


class Submitted(msgspec.Struct):
    task_id: uuid.UUID
    status: TaskStatus


class TaskPage(msgspec.Struct):
    tasks: list[Task]
    next_cursor: str | None


class Trace(msgspec.Struct):
    task_id: uuid.UUID
    status: TaskStatus
    steps: list[TraceStep]


def _unknown_method(server: ServerState, name: str) -> ApiError:
    if name in server.registry.refused:
        reason = f"tool {name!r} is not loaded: {server.registry.refused[name]}"
    else:
        hint = server.registry.suggest(name) or _available(server)
        reason = f"no registered tool named {excerpt(name)!r}{hint}"
    return ApiError(
        400, "unknown_method", f"method: {reason}", [Problem(reason=reason, field="method")]
    )


def _available(server: ServerState, shown: int = 5) -> str:
    """What there is, when nothing is close: the first few names and where the rest are."""
    names = sorted(server.registry.methods)
    if not names:
        return "; no tools are registered yet (qasdk sync PATH registers them)"
    listed = ", ".join(names[:shown])
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return f"; registered: {listed}{more} (GET /api/methods lists them)"


def _shown_field(field: str) -> str:
    """``params.<a key the client sent>``, the key shortened to an excerpt."""
    head, dot, rest = field.partition(".")
    return head + dot + excerpt(rest)


def _nul_field(value: Any, path: str) -> str | None:
    """Where a NUL character hides in request text (PostgreSQL text cannot hold it)."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            if "\x00" in key:
                return f"{path}.{key!r}"
            found = _nul_field(item, f"{path}.{key}")
            if found:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = _nul_field(item, f"{path}[{index}]")
            if found:
                return found
    return None


_INCLUDABLE = ("params", "result")


def _included(include: str | None) -> set[str]:
    fields = {f.strip() for f in (include or "").split(",") if f.strip()}
    unknown = sorted(fields - set(_INCLUDABLE))
    if unknown:
        raise invalid(
            f"unknown field {excerpt(unknown[0])!r}; one of {', '.join(_INCLUDABLE)}", "include"
        )
    return fields


def _check_size(data: SubmitTask, limits: LimitsConfig) -> None:
    """What a task may carry, so one request cannot fill the database or a worker."""
    description = data.task_description
    if description is not None and len(description) > limits.task_description:
        raise invalid(
            f"must be at most {limits.task_description} characters "
            f"(limits.task_description), got {len(description)}",
            "task_description",
        )
    if data.params:
        size = len(msgspec.json.encode(data.params))
        if size > limits.params:
            raise invalid(
                f"must be at most {limits.params} bytes as JSON (limits.params), got {size}",
                "params",
            )


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
    ) -> Response[Submitted]:
        """Queue a task: a natural-language ``task_description`` or a ``method`` with ``params``."""
        if data.task_description is not None and data.method is not None:
            raise invalid("give either task_description or method, not both")
        if data.task_description is None and data.method is None:
            raise invalid("give task_description (run by the model) or method (run directly)")
        nul = _nul_field(data.task_description, "task_description") or _nul_field(
            data.params, "params"
        )
        if nul is not None:
            raise invalid("must not contain NUL (\\u0000): the database cannot store it", nul)
        _check_size(data, server.config.limits)
        params: dict[str, Any] | None = None
        if data.task_description is not None:
            if not data.task_description.strip():
                raise invalid("must not be empty", "task_description")
            if data.params is not None:
                raise invalid("params go with method, not with task_description", "params")
            kind = "described"
        else:
            assert data.method is not None
            method = await server.registry.find(data.method)
            if method is None:
                raise _unknown_method(server, data.method)
            if principal.key is not None and not principal.key.may_run(method):
                raise refuse_tool(principal.key, method.name)
            try:
                params = prepare_params(method, data.params or {}, fill_defaults=False)
            except ValidationError as exc:
                problems = [
                    msgspec.structs.replace(p, field=p.field and _shown_field(p.field))
                    for p in exc.problems
                ]
                raise ApiError(
                    400,
                    "invalid_params",
                    "; ".join(f"{p.field}: {p.reason}" for p in problems),
                    problems,
                ) from None
            kind = "direct"
        async with server.pool.connection() as conn:
            if principal.key is not None:
                await admit(conn, principal.key)
            task = await store.insert_task(
                conn,
                kind=kind,
                description=data.task_description,
                method=data.method,
                params=params,
                priority=data.priority,
                timeout=data.timeout,
                owner=principal.owner,
                actor=actor,
                trace_context=trace_carrier(
                    {"traceparent": traceparent or "", "tracestate": tracestate or ""}
                ),
            )
        return Response(
            Submitted(task.task_id, task.status),
            status_code=201,
            headers={"Location": f"/api/tasks/{task.task_id}"},
        )

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
        """The task's status and, once finished, its result or error."""
        if wait > 0:
            return await wait_until_done(server, task_id, wait, principal)
        return await load_task(server, task_id, principal)

    @get("/", summary="List tasks", responses=error_responses(400), opt={"scope": "read"})
    async def list_tasks(
        self,
        server: ServerState,
        principal: Principal,
        status: TaskStatus | None = None,
        method: Annotated[str | None, Parameter(description="Direct tasks of this tool.")] = None,
        kind: Annotated[
            Literal["described", "direct"] | None,
            Parameter(description="Tasks in words (described) or tool runs (direct)."),
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
        async with server.pool.connection() as conn, conn.transaction():
            status = await store.cancel_task(conn, task_id)
            if status is not None:
                await audit.record(
                    conn,
                    actor=actor,
                    action="task.cancel",
                    target=str(task_id),
                    detail={"status": status},
                )
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
