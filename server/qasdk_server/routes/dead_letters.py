"""Dead letters: ``POST /api/tasks/{id}/retry`` and ``/discard`` for ``blocked`` tasks.

A task whose retryable failures used up ``worker.max_attempts`` is ``blocked``
(``GET /api/tasks?status=blocked`` lists them). An operator queues it again,
its failures counted afresh and its attempt history kept (optionally with new
``params`` for a direct task, validated as a submit's, or a new
``task_description``), or discards it: it ends ``failed`` with error kind
``Discarded``, and its graph, if any, applies its failure policy. Both need the
``cancel`` scope, and both are audited (``task.retry``, ``task.discard``).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import msgspec
from litestar import post

from qasdk.audit import Actor
from qasdk.errors import ValidationError
from qasdk.models import Task
from qasdk.store import dead_letters as store
from qasdk_server.auth import Principal
from qasdk_server.errors import ApiError, error_responses
from qasdk_server.executor import prepare_params
from qasdk_server.quota import refuse_tool
from qasdk_server.routes._lookup import invalid, load_task
from qasdk_server.state import ServerState
from qasdk_server.submit import _nul_field, _unknown_method, invalid_params

__all__ = ["RetryTask", "discard_task", "retry_task"]


class RetryTask(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """What changes for the next attempt; nothing given: it runs again as it was."""

    params: (
        Annotated[
            dict[str, Any],
            msgspec.Meta(description="A direct task's new arguments (replace the old ones)."),
        ]
        | None
    ) = None
    task_description: (
        Annotated[str, msgspec.Meta(description="A described task's new description.")] | None
    ) = None


def _not_blocked(task: Task, action: str) -> ApiError:
    return ApiError(
        409,
        "conflict",
        f"task {task.task_id} is {task.status}, not blocked; only a blocked task can be {action}",
    )


async def _checked(
    server: ServerState, task: Task, data: RetryTask, principal: Principal
) -> tuple[dict[str, Any] | None, str | None]:
    """The new params (validated against the tool) and description, as a submit checks them."""
    limits = server.config.limits
    if data.params is not None:
        if task.kind != "direct" or task.method is None:
            raise invalid(
                f"params go with a direct task; task {task.task_id} is {task.kind}", "params"
            )
        size = len(msgspec.json.encode(data.params))
        if size > limits.params:
            raise invalid(
                f"must be at most {limits.params} bytes as JSON (limits.params), got {size}",
                "params",
            )
        nul = _nul_field(data.params, "params")
        if nul is not None:
            raise invalid("must not contain NUL (\\u0000): the database cannot store it", nul)
        method = await server.registry.find(task.method)
        if method is None:
            raise _unknown_method(server, task.method)
        if principal.key is not None and not principal.key.may_run(method):
            raise refuse_tool(principal.key, method.name)
        try:
            params = prepare_params(method, data.params, fill_defaults=False)
        except ValidationError as exc:
            raise invalid_params(exc) from None
        return params, None
    description = data.task_description
    if description is not None:
        if task.kind != "described":
            raise invalid(
                f"task_description goes with a described task; task {task.task_id} is {task.kind}",
                "task_description",
            )
        if not description.strip():
            raise invalid("must not be empty", "task_description")
        if len(description) > limits.task_description:
            raise invalid(
                f"must be at most {limits.task_description} characters "
                f"(limits.task_description), got {len(description)}",
                "task_description",
            )
        if "\x00" in description:
            raise invalid(
                "must not contain NUL (\\u0000): the database cannot store it", "task_description"
            )
    return None, description


@post(
    "/api/tasks/{task_id:uuid}/retry",
    status_code=200,
    summary="Queue a blocked task again",
    responses=error_responses(400, 403, 404, 409),
    opt={"scope": "cancel"},
    tags=("tasks",),
)
async def retry_task(
    task_id: uuid.UUID,
    server: ServerState,
    principal: Principal,
    actor: Actor,
    data: RetryTask | None = None,
) -> Task:
    """It runs again now, with ``worker.max_attempts`` attempts afresh; 409 if not blocked."""
    task = await load_task(server, task_id, principal)  # 404 when unknown (or another key's)
    if task.status != "blocked":
        raise _not_blocked(task, "retried")
    params, description = await _checked(server, task, data or RetryTask(), principal)
    async with server.pool.connection() as conn:
        queued = await store.retry_blocked(
            conn,
            task_id,
            actor=actor,
            params=params,
            set_params=data is not None and data.params is not None,
            description=description,
            secrets=server.config.secrets(),
        )
    if not queued:  # retried or discarded by someone else meanwhile
        raise _not_blocked(await load_task(server, task_id, principal), "retried")
    return await load_task(server, task_id, principal)


@post(
    "/api/tasks/{task_id:uuid}/discard",
    status_code=200,
    summary="Give up on a blocked task",
    responses=error_responses(404, 409),
    opt={"scope": "cancel"},
    tags=("tasks",),
)
async def discard_task(
    task_id: uuid.UUID, server: ServerState, principal: Principal, actor: Actor
) -> Task:
    """It ends ``failed`` (``Discarded``); its graph goes on as its failure policy says."""
    task = await load_task(server, task_id, principal)
    if task.status != "blocked":
        raise _not_blocked(task, "discarded")
    async with server.pool.connection() as conn:
        discarded = await store.discard_blocked(conn, task_id, actor=actor)
    if not discarded:
        raise _not_blocked(await load_task(server, task_id, principal), "discarded")
    return await load_task(server, task_id, principal)
