"""Built-in ``approval``: a person approves a tool call before it runs.

A call that needs approval (its tool says ``requires_approval=True``, or this
middleware is configured with ``tools:``/``tags:``) does not run: an approval
is requested and the task pauses (``awaiting_approval``, holding no worker).
``POST /api/tasks/{id}/approvals/{approval_id}`` decides; the task is queued
again and resumes on any worker without repeating its model turns: an approved
call runs, a rejected one returns the rejection to the model as the tool's
result (a direct task fails with it). An approval not decided within
``expires_after`` seconds expires, which counts as a rejection.
"""

from __future__ import annotations

import logging

from qasdk.models import ExecutionResult
from qasdk.store import approvals as store
from qasdk.store.connection import Pool
from qasdk.store.notify import announce_event
from qasdk_server.middleware.base import AwaitingApproval, Middleware, ToolCall, ToolRefused

__all__ = ["Approval"]

logger = logging.getLogger("qasdk.approval")


def _needs_approval(call: ToolCall) -> bool:
    policy = None if call.method is None else call.method.policy
    return policy is not None and policy.requires_approval


class Approval(Middleware):
    name = "approval"

    def __init__(self, pool: Pool, *, scoped: bool = False, expires_after: float = 86400.0) -> None:
        if isinstance(expires_after, bool) or not isinstance(expires_after, (int, float)):
            raise ValueError(f"expires_after: expected seconds, got {expires_after!r}")
        if expires_after <= 0:
            raise ValueError(f"expires_after: expected seconds > 0, got {expires_after!r}")
        self._pool = pool
        #: Configured with ``tools:``/``tags:``: every call it sees needs approval.
        self._scoped = scoped
        self.expires_after = float(expires_after)

    async def before(self, call: ToolCall) -> ExecutionResult | None:
        if not (self._scoped or _needs_approval(call)):
            return None
        if call.task_id is None:
            raise ToolRefused(f"tool {call.tool!r} needs approval, which only a task can wait for")
        key = store.call_key(call.tool, call.arguments)
        async with self._pool.connection() as conn:
            approval = await store.find(conn, call.task_id, key)
            if approval is None:
                approval = await store.request(
                    conn, call.task_id, key, call.tool, call.arguments, self.expires_after
                )
                await announce_event(
                    conn,
                    call.task_id,
                    "approval",
                    {
                        "approval_id": str(approval.approval_id),
                        "tool": call.tool,
                        "arguments": call.arguments,
                        "expires_at": approval.expires_at.isoformat(),
                    },
                )
                logger.info(
                    "task %s: call of %r awaits approval %s",
                    call.task_id,
                    call.tool,
                    approval.approval_id,
                    extra={"method": call.tool, "task_id": str(call.task_id)},
                )
        if approval.status == "approved":
            return None
        if approval.status == "pending":
            raise AwaitingApproval(approval.approval_id, call.tool, call.arguments)
        why = f": {approval.reason}" if approval.reason else ""
        if approval.status == "expired":
            message = f"the call of {call.tool!r} was not approved in time{why}"
            return ExecutionResult(success=False, error_type="ApprovalExpired", error=message)
        who = f" by {approval.decided_by}" if approval.decided_by else ""
        message = f"the call of {call.tool!r} was rejected{who}{why}"
        return ExecutionResult(success=False, error_type="ApprovalRejected", error=message)
