"""Submitting and cancelling a task: what ``POST /api/tasks`` and MCP's ``tools/call`` share.

One path for every way in, so a task is validated, admitted (the key's tools,
rate and running cap: ``quota.py``), owned and audited the same whichever
protocol submitted it. A submit writes its audit row in its insert statement;
a cancel in its transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Annotated, Any, Literal

import msgspec

from qasdk._excerpt import excerpt
from qasdk.audit import Actor
from qasdk.config import LimitsConfig
from qasdk.errors import ValidationError
from qasdk.models import Problem, Task
from qasdk.store import audit, graphs, webhooks
from qasdk.store import tasks as store
from qasdk_server.auth import Principal
from qasdk_server.errors import ApiError
from qasdk_server.executor import prepare_params
from qasdk_server.graphs import SubtaskSpec, check_subtasks
from qasdk_server.quota import admit, refuse_tool
from qasdk_server.routes._lookup import invalid
from qasdk_server.state import ServerState
from qasdk_server.webhooks.target import Refused, check_callback_url

__all__ = ["SubmitTask", "cancel", "invalid_params", "submit"]


class SubmitTask(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``task_description`` (the model decides), ``method`` + ``params`` (run it), or
    ``subtasks`` (a graph of such tasks, see ``qasdk_server.graphs``)."""

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
    subtasks: (
        Annotated[
            list[SubtaskSpec],
            msgspec.Meta(description="A graph: sub-tasks, each with the ids it depends on."),
        ]
        | None
    ) = None
    failure_policy: Annotated[
        Literal["fail_fast", "continue"],
        msgspec.Meta(
            description="Of a graph: a failed sub-task cancels the rest (fail_fast), or only "
            "its dependents (continue)."
        ),
    ] = "fail_fast"
    callback_url: (
        Annotated[
            str,
            msgspec.Meta(
                description="Where to POST the task's summary, signed, once it has ended "
                "(completed, failed or cancelled); see webhooks in the README.",
                examples=["https://hooks.example.com/qasdk"],
            ),
        ]
        | None
    ) = None

    split: Annotated[
        bool,
        msgspec.Meta(
            description="With task_description: the model first plans sub-tasks (a graph, "
            "run as declared ones are), then answers from their results."
        ),
    ] = False


def _callback(server: ServerState, data: SubmitTask) -> str | None:
    """The checked ``callback_url``, or 400 naming the field and why."""
    if data.callback_url is None:
        return None
    try:
        return check_callback_url(data.callback_url, server.config.webhooks)
    except Refused as exc:
        raise invalid(str(exc), "callback_url") from None


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


def invalid_params(exc: ValidationError) -> ApiError:
    """A 400 naming each param the tool's schema refused (the client's keys excerpted)."""
    problems = [
        msgspec.structs.replace(p, field=p.field and _shown_field(p.field)) for p in exc.problems
    ]
    return ApiError(
        400, "invalid_params", "; ".join(f"{p.field}: {p.reason}" for p in problems), problems
    )


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


async def submit(
    server: ServerState,
    data: SubmitTask,
    principal: Principal,
    actor: Actor,
    *,
    trace_context: Mapping[str, str] | None = None,
    task_id: uuid.UUID | None = None,
) -> Task:
    """Validate ``data``, admit it under ``principal``'s key and insert the task (audited).

    ``trace_context`` (W3C ``traceparent``...) is the caller's trace, which the task's continues.
    ``task_id``: the id to give it (a graph's parent gets one of its own).

    Raises :class:`ApiError`: 400 for bad input or an unknown tool, 403 for a tool
    the key may not run, 429 over the key's rate or running cap.
    """
    callback = _callback(server, data)
    if data.subtasks is not None:
        if data.split:
            raise invalid("a graph declares its sub-tasks; split asks the model for them", "split")
        return await _submit_graph(server, data, principal, actor, trace_context, callback)
    if data.split and data.task_description is None:
        raise invalid("split needs task_description: the model plans the sub-tasks", "split")
    if data.task_description is not None and data.method is not None:
        raise invalid("give either task_description or method, not both")
    if data.task_description is None and data.method is None:
        raise invalid("give task_description (run by the model) or method (run directly)")
    nul = _nul_field(data.task_description, "task_description") or _nul_field(data.params, "params")
    if nul is not None:
        raise invalid("must not contain NUL (\\u0000): the database cannot store it", nul)
    _check_size(data, server.config.limits)
    params: dict[str, Any] | None = None
    pool = "default"  # a described task runs in the default pool (see README, Worker pools)
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
            raise invalid_params(exc) from None
        kind = "direct"
        pool = method.pool
    async with server.pool.connection() as conn:
        if principal.key is not None:
            await admit(conn, principal.key)
        insert = store.insert_task(
            conn,
            task_id=task_id,
            kind=kind,
            description=data.task_description,
            method=data.method,
            params=params,
            priority=data.priority,
            timeout=data.timeout,
            owner=principal.owner,
            actor=actor,
            trace_context=trace_context,
            pool=pool,
            split=data.split,
            failure_policy=data.failure_policy,
        )
        if callback is None:
            return await insert
        async with conn.transaction():  # the task and its callback, or neither
            task = await insert
            await webhooks.subscribe(conn, task.task_id, callback)
        return task


async def _submit_graph(
    server: ServerState,
    data: SubmitTask,
    principal: Principal,
    actor: Actor,
    trace_context: Mapping[str, str] | None,
    callback: str | None,
) -> Task:
    """A graph: the parent and its sub-tasks, in one transaction with the key's admission."""
    assert data.subtasks is not None
    for name in ("task_description", "method", "params"):
        if getattr(data, name) is not None:
            raise invalid("a graph's work is in its subtasks; give it no " + name, name)
    nodes = await check_subtasks(
        server.registry,
        data.subtasks,
        principal,
        priority=data.priority,
        timeout=data.timeout,
        limits=server.config.limits,
    )
    async with server.pool.connection() as conn:
        async with conn.transaction():
            if principal.key is not None:
                await admit(conn, principal.key)
            parent = await graphs.insert_graph(
                conn,
                nodes,
                failure_policy=data.failure_policy,
                priority=data.priority,
                timeout=data.timeout,
                owner=principal.owner,
                actor=actor,
                trace_context=trace_context,
            )
            if callback is not None:
                await webhooks.subscribe(conn, parent, callback)
        task = await store.get_task(conn, parent)
    assert task is not None
    return task


async def cancel(server: ServerState, task_id: uuid.UUID, actor: Actor) -> str | None:
    """Ask the task to stop (audited); its status before, or ``None`` if it had finished.

    A pending task never starts; a running one is interrupted by its worker.
    """
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
    return status
