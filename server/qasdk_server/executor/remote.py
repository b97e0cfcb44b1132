"""Tools of type ``mcp``: a remote ``tools/call`` instead of a tool process.

The executor hands a call here after the same checks as a Python tool's (the
tool is registered, its arguments fit its parameters); the call is bounded by
the same timeout, its result by the same size limit, and its failures come back
as the same :class:`ExecutionResult`: the remote's ``isError`` as
``McpToolError`` with its message, a server that cannot be reached as
``McpUnavailable`` naming it, no answer in time as ``TimeoutError``.

The call runs on an event loop of its own thread: decoding what a remote
answers (up to :data:`~qasdk.remote.client.MAX_ANSWER` bytes) never holds up
the worker's loop. It is bounded by its timeout there, so a cancelled task's
call ends by itself.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import msgspec

from qasdk.errors import ConfigurationError
from qasdk.models import ExecutionResult, McpEndpoint
from qasdk.remote.client import (
    INSTALL_HINT,
    CallOutcome,
    RemoteError,
    call_tool,
    mcp_available,
)

__all__ = ["MCP_TOOL_ERROR", "MCP_UNAVAILABLE", "call_remote"]

MCP_TOOL_ERROR = "McpToolError"
MCP_UNAVAILABLE = "McpUnavailable"

#: (error type, message) → the failed result, as the executor logs and builds it.
Failed = Callable[[str, str, float], ExecutionResult]
#: The encoded result → what is kept of it (a preview past the result limit).
Parse = Callable[[msgspec.Raw], Any]


async def call_remote(
    name: str,
    endpoint: McpEndpoint,
    arguments: dict[str, Any],
    limit: float,
    *,
    failed: Failed,
    parse: Parse,
) -> ExecutionResult:
    """Call ``endpoint``'s tool with ``arguments`` within ``limit`` seconds."""
    if not mcp_available():
        return failed(MCP_UNAVAILABLE, f"tool {name!r}: {INSTALL_HINT} where workers run", 0.0)
    start = time.perf_counter()
    try:
        outcome = await asyncio.to_thread(_call_in_own_loop, endpoint, arguments, limit)
    except RemoteError as exc:
        elapsed = time.perf_counter() - start
        if exc.timed_out:
            return failed(
                "TimeoutError",
                f"tool {name!r} timed out after {round(limit, 3)} s ({endpoint.where})",
                elapsed,
            )
        return failed(MCP_UNAVAILABLE, f"tool {name!r}: {exc}", elapsed)
    except ConfigurationError as exc:  # a ${VAR} of its headers or env is not set here
        return failed("ConfigurationError", f"tool {name!r}: {exc}", time.perf_counter() - start)
    elapsed = time.perf_counter() - start
    if not outcome.ok:
        return failed(MCP_TOOL_ERROR, outcome.error or "", elapsed)
    try:
        encoded = msgspec.json.encode(outcome.result)
    except (TypeError, ValueError, OverflowError) as exc:
        return failed(
            MCP_TOOL_ERROR, f"tool {name!r} answered a value JSON cannot hold: {exc}", elapsed
        )
    return ExecutionResult(success=True, result=parse(msgspec.Raw(encoded)), execution_time=elapsed)


def _call_in_own_loop(
    endpoint: McpEndpoint, arguments: dict[str, Any], limit: float
) -> CallOutcome:
    return asyncio.run(call_tool(endpoint, arguments, timeout=limit))
