"""Approvals of tool calls: ``GET /api/approvals`` and the decision on one.

A call of a tool that needs approval parks its task (``awaiting_approval``);
the decision queues it again: approved, the call runs; rejected (or expired),
the model gets the rejection as the tool's result, a direct task fails with it.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

import msgspec
from litestar import get, post
from litestar.params import Parameter

from qasdk.audit import Actor
from qasdk.store import approvals as store
from qasdk.store import audit
from qasdk_server.auth import Principal
from qasdk_server.errors import ApiError, error_responses
from qasdk_server.routes._lookup import load_task
from qasdk_server.state import ServerState

__all__ = ["decide_approval", "list_approvals"]


class ApprovalList(msgspec.Struct):
    approvals: list[store.Approval]
    count: int


class Decision(msgspec.Struct, forbid_unknown_fields=True):
    """``approve`` lets the call run; ``reject`` returns ``reason`` to the model instead."""

    decision: Literal["approve", "reject"]
    reason: Annotated[str, msgspec.Meta(max_length=2000)] | None = None


@get(
    "/api/approvals",
    summary="Tool calls waiting for a person (or decided)",
    responses=error_responses(400),
    opt={"scope": "read"},
    tags=("tasks",),
)
async def list_approvals(
    server: ServerState,
    principal: Principal,
    status: Literal["pending", "approved", "rejected", "expired", "all"] = "pending",
    task_id: uuid.UUID | None = None,
    limit: Annotated[int, Parameter(ge=1, le=500)] = 100,
) -> ApprovalList:
    """Newest first; a key sees its own tasks' approvals (``admin``: every one)."""
    async with server.pool.connection() as conn:
        found = await store.listed(
            conn,
            status=None if status == "all" else status,
            owner=None if principal.sees_all else principal.owner,
            task_id=task_id,
            limit=limit,
        )
    return ApprovalList(approvals=found, count=len(found))


@post(
    "/api/tasks/{task_id:uuid}/approvals/{approval_id:uuid}",
    status_code=200,
    summary="Approve or reject a tool call a task waits on",
    responses=error_responses(400, 404, 409),
    opt={"scope": "submit"},
    tags=("tasks",),
)
async def decide_approval(
    task_id: uuid.UUID,
    approval_id: uuid.UUID,
    data: Decision,
    server: ServerState,
    principal: Principal,
    actor: Actor,
) -> store.Approval:
    """The task is queued again and resumes on any worker, without repeating its model turns."""
    await load_task(server, task_id, principal)  # 404 when unknown (or another key's)
    outcome: store.Decision = "approved" if data.decision == "approve" else "rejected"
    async with server.pool.connection() as conn, conn.transaction():
        decided = await store.decide(
            conn, task_id, approval_id, outcome, reason=data.reason, actor=actor.name
        )
        if decided is not None:
            await audit.record(
                conn,
                actor=actor,
                action="approval.decide",
                target=str(task_id),
                detail={
                    "approval": str(approval_id),
                    "tool": decided.tool,
                    "decision": outcome,
                    "reason": data.reason,
                },
                secrets=server.config.secrets(),
            )
    if decided is None:
        async with server.pool.connection() as conn:
            known = await store.listed(conn, status=None, task_id=task_id, limit=500)
        mine = [a for a in known if a.approval_id == approval_id]
        if not mine:
            raise ApiError(404, "not_found", f"task {task_id} has no approval {approval_id}")
        raise ApiError(409, "conflict", f"approval {approval_id} is already {mine[0].status}")
    return decided
