"""The MCP server object: ``tools/list`` is the registry, ``tools/call`` a durable direct task.

A call goes through :func:`qasdk_server.submit.submit`, exactly as
``POST /api/tasks`` with ``method`` and ``params`` does (validation, the key's
tools, rate and running cap, owner, audit row), then waits for the task on the
PostgreSQL event bus. ``progress`` events of the task become MCP progress
notifications; a client that cancels the request cancels the task. Whatever
runs the task (the embedded worker or any ``qasdk worker``), its executor,
limits and trace are the same as for a REST submit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio
import mcp_types as types
import msgspec
from mcp.server.connection import Connection
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel.server import NotificationOptions, Server
from mcp.server.models import InitializationOptions
from mcp.shared.exceptions import MCPError

from qasdk._excerpt import excerpt
from qasdk.audit import Actor
from qasdk.models import TERMINAL_STATUSES, MethodConfig, Task
from qasdk.store.connection import is_outage
from qasdk_server.agent.shim import tool_schema
from qasdk_server.auth import Principal, Refused
from qasdk_server.errors import ApiError
from qasdk_server.routes._lookup import load_task
from qasdk_server.state import ServerState
from qasdk_server.submit import SubmitTask, cancel, submit

__all__ = ["TASK_ID_META", "Caller", "McpTools", "structured"]

logger = logging.getLogger("qasdk.mcp")

#: ``_meta`` key of a call's result: the task it ran as (``GET /api/tasks/{id}/trace``).
TASK_ID_META = "qasdk/task_id"
#: Seconds between reads of a task while waiting, should a notification be missed.
RECHECK = 5.0
#: Error kinds of a submit that are the call's own fault, shown to the model as a tool
#: error (``isError``) so it can correct its arguments or wait; the rest are protocol errors.
_TOOL_ERRORS = ("invalid_params", "invalid_request", "too_many_requests")


@dataclass(frozen=True)
class Caller:
    """Who sends a request: the key (or nobody, on an open server), as the audit log names it."""

    principal: Principal
    actor: Actor
    #: Records a refusal in the audit log (HTTP: the guard's aggregated denials).
    deny: Callable[[Refused], Awaitable[None]] | None = None


CallerOf = Callable[[ServerRequestContext[Any, Any]], Caller]


def structured(result: Any) -> dict[str, Any]:
    """A result as ``structuredContent`` (an object): other values go under ``result``."""
    return result if isinstance(result, dict) else {"result": result}


def _text(result: Any) -> str:
    return result if isinstance(result, str) else msgspec.json.encode(result).decode()


def _outcome(task: Task) -> types.CallToolResult:
    meta = {TASK_ID_META: str(task.task_id)}
    if task.status == "completed":
        return types.CallToolResult(
            content=[types.TextContent(text=_text(task.result))],
            structured_content=structured(task.result),
            _meta=meta,
        )
    if task.status == "failed" and task.error is not None:
        text = f"{task.error.type}: {task.error.message}"
    elif task.status == "blocked" and task.error is not None:
        text = (
            f"task {task.task_id} is blocked after {task.failures} failed attempts "
            f"(POST /api/tasks/{task.task_id}/retry runs it again): "
            f"{task.error.type}: {task.error.message}"
        )
    else:
        text = f"task {task.task_id} was {task.status}"
    return types.CallToolResult(content=[types.TextContent(text=text)], is_error=True, _meta=meta)


def _tool_error(message: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(text=message)], is_error=True)


def _tool(config: MethodConfig) -> types.Tool:
    return types.Tool(
        name=config.name, description=config.description, input_schema=tool_schema(config)
    )


class McpTools:
    """The registry as MCP tools, for one process; every session of every transport shares it."""

    def __init__(self, state: ServerState, caller_of: CallerOf, *, version: str = "") -> None:
        self.state = state
        self.caller_of = caller_of
        #: Set when the process stops: calls cut short then do not cancel their tasks.
        self.closing = False
        self._connections: dict[int, Connection] = {}
        self._sends: set[asyncio.Task[None]] = set()
        self.server = _QasdkServer(
            "qasdk",
            version=version,
            instructions="The tools registered with this qasdk server; each call runs as a task.",
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
        )
        self.server.add_notification_handler(
            "notifications/initialized", types.NotificationParams, self._initialized
        )
        state.registry.on_change(lambda _configs: self._tools_changed())

    # -- list_changed ----------------------------------------------------------

    async def _initialized(
        self, ctx: ServerRequestContext[Any, Any], params: types.NotificationParams
    ) -> None:
        """Remember the connection until it closes: a registry change is announced to it."""
        # The SDK hands handlers a per-request session; its connection (the standalone
        # channel: stdio, or the GET stream of streamable HTTP) has no public accessor.
        connection: Connection = ctx.session._connection
        key = id(connection)
        self._connections[key] = connection
        connection.exit_stack.callback(self._connections.pop, key, None)

    def _tools_changed(self) -> None:
        """Called by the registry (in its load, on the loop) when its tools changed."""
        for connection in list(self._connections.values()):
            task = asyncio.get_running_loop().create_task(connection.send_tool_list_changed())
            self._sends.add(task)
            task.add_done_callback(self._sends.discard)

    # -- tools/list ----------------------------------------------------------

    async def _list_tools(
        self, ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        key = self.caller_of(ctx).principal.key
        methods = sorted(
            (m for m in self.state.registry.methods.values() if key is None or key.may_run(m)),
            key=lambda m: m.name,
        )
        return types.ListToolsResult(tools=[_tool(m) for m in methods])

    # -- tools/call ----------------------------------------------------------

    async def _call_tool(
        self, ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        try:
            return await self._call(ctx, params)
        except MCPError:
            raise
        except Exception as exc:
            # The SDK would send str(exc) to the client: say what a client may know.
            raise _internal("tools/call", exc) from None

    async def _call(
        self, ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        caller = self.caller_of(ctx)
        key = caller.principal.key
        if key is not None and not key.allows("submit"):
            message = (
                f"the API key {key.name!r} lacks the 'submit' scope (it has: "
                f"{', '.join(key.scopes)}); calling a tool submits a task"
            )
            if caller.deny is not None:
                await caller.deny(
                    Refused(403, "forbidden", message, reason="scope", key=key, scope="submit")
                )
            raise MCPError(types.INVALID_REQUEST, message)
        data = SubmitTask(method=params.name, params=params.arguments or {})
        try:
            task = await submit(self.state, data, caller.principal, caller.actor)
        except ApiError as exc:
            if exc.kind in _TOOL_ERRORS:
                return _tool_error(exc.message)
            # An unknown tool, or one the key may not run: the client asked for the wrong thing.
            raise MCPError(types.INVALID_PARAMS, exc.message) from None
        logger.info(
            "mcp: tools/call %s as task %s",
            excerpt(params.name),
            task.task_id,
            extra={"tool": params.name, "task_id": str(task.task_id)},
        )
        try:
            return _outcome(await self._finished(ctx, task.task_id))
        except anyio.get_cancelled_exc_class():
            if self.closing:  # this server stops: the task is durable, it goes on elsewhere
                raise
            # The client cancelled the request (or went away): the task stops too.
            with anyio.CancelScope(shield=True):
                status = await cancel(self.state, task.task_id, caller.actor)
            logger.info(
                "mcp: call cancelled by the client; task %s %s",
                task.task_id,
                "cancelled" if status else "had already finished",
            )
            raise

    async def _finished(self, ctx: ServerRequestContext[Any, Any], task_id: uuid.UUID) -> Task:
        """The task once it has finished; its progress events sent on as they come."""
        state = self.state
        sent = -math.inf
        async with state.events.subscribe(task_id) as queue:
            task = await load_task(state, task_id)
            # A blocked task waits for an operator: the call ends, saying so.
            while task.status not in TERMINAL_STATUSES and task.status != "blocked":
                # Without a listening connection, poll; notifications may be missed.
                timeout = RECHECK if state.events.connected else 0.25
                event: dict[str, Any] | None = None
                with contextlib.suppress(asyncio.TimeoutError):
                    event = await asyncio.wait_for(queue.get(), timeout)
                if event is not None and event.get("event") == "progress":
                    sent = await _progress(ctx, event, sent)
                    continue
                if event is not None and event.get("event") == "step":
                    continue
                task = await load_task(state, task_id)
        return task


def _internal(method: str, exc: Exception) -> MCPError:
    """An outage or a bug as the client sees it; the log has the rest (a bug: by ``error_id``)."""
    if is_outage(exc):
        logger.warning("mcp: database unavailable during %s: %s", method, exc)
        return MCPError(types.INTERNAL_ERROR, "the database is unavailable; retry shortly")
    error_id = uuid.uuid4().hex[:12]
    logger.error(
        "mcp: unhandled error in %s (error id %s)",
        method,
        error_id,
        exc_info=exc,
        extra={"error_id": error_id},
    )
    return MCPError(types.INTERNAL_ERROR, f"internal server error (error id {error_id})")


async def _progress(
    ctx: ServerRequestContext[Any, Any], event: dict[str, Any], sent: float
) -> float:
    """Send a ``progress`` task event on as MCP progress; the last fraction sent.

    MCP requires progress to increase: an event that does not is dropped, as is a
    malformed one. Without a progress token from the client, nothing is sent.
    """
    fraction = event.get("fraction")
    message = event.get("message")
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)):
        return sent
    if not math.isfinite(fraction) or fraction <= sent:
        return sent
    shown = excerpt(message, 1000) if isinstance(message, str) else None
    await ctx.session.report_progress(float(fraction), 1.0, shown)
    return float(fraction)


class _QasdkServer(Server[Any]):
    """An MCP server that says it announces tool-list changes (the registry's reloads)."""

    def create_initialization_options(
        self,
        notification_options: NotificationOptions | None = None,
        experimental_capabilities: dict[str, dict[str, Any]] | None = None,
        extensions: dict[str, dict[str, Any]] | None = None,
    ) -> InitializationOptions:
        return super().create_initialization_options(
            notification_options or NotificationOptions(tools_changed=True),
            experimental_capabilities,
            extensions,
        )
