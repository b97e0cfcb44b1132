"""``qasdk mcp``: the MCP server over stdin/stdout, for an MCP client that starts it.

stdin and stdout are claimed before anything else starts: while it serves, fd 0
reads from the null device and fd 1 writes to stderr (the SDK's ``stdio_server``
does that), so nothing but MCP frames reaches the client's pipe — not the
embedded database's start line, not a tool's ``print``. Logs go to stderr and
the configured log file.

The process is the client's own: it is trusted as the local user (no API key;
the audit log names ``mcp:<user>@<host>``), like ``qasdk sync``. By default it
runs an embedded worker, so a client needs nothing else running; with
``--no-worker`` it only submits, and a ``qasdk serve`` or ``qasdk worker`` on
the same database runs the tasks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from qasdk.audit import Actor
from qasdk.config import Config
from qasdk.errors import QasdkError
from qasdk_server.auth import OPEN
from qasdk_server.mcp.tools import Caller, McpTools
from qasdk_server.serve import _process
from qasdk_server.state import ServerState
from qasdk_server.tasks.worker import Worker

__all__ = ["run_stdio"]

logger = logging.getLogger("qasdk.mcp")


async def run_stdio(
    config: Config,
    *,
    embedded_worker: bool = True,
    version: str = "",
    stop: asyncio.Event | None = None,
) -> None:
    """Serve MCP on stdin/stdout until the client closes stdin (or a signal stops it)."""
    try:
        await _serve(config, embedded_worker=embedded_worker, version=version, stop=stop)
    except Exception as exc:
        # The transport's task group wraps what fails inside it (an unreachable database).
        single = _single(exc)
        if single is not exc and isinstance(single, QasdkError):
            raise single from None
        raise


def _single(exc: BaseException) -> BaseException:
    """The one error inside (nested) exception groups of one error each."""
    inner = getattr(exc, "exceptions", None)
    while isinstance(inner, tuple) and len(inner) == 1 and isinstance(inner[0], BaseException):
        exc = inner[0]
        inner = getattr(exc, "exceptions", None)
    return exc


async def _serve(
    config: Config, *, embedded_worker: bool, version: str, stop: asyncio.Event | None
) -> None:
    from mcp.server.stdio import stdio_server

    caller = Caller(OPEN, Actor.local("mcp"))

    def caller_of(ctx: Any) -> Caller:
        return caller

    async with stdio_server() as (read, write), _process(config) as base:
        state = ServerState(
            config=config,
            url=base.url,
            pool=base.pool,
            registry=base.registry,
            events=base.events,
        )
        tools = McpTools(state, caller_of, version=version)
        async with contextlib.AsyncExitStack() as stack:
            worker = None
            if embedded_worker:
                running = Worker.running(
                    config, base.url, base.pool, base.registry, metrics=state.metrics
                )
                worker = await stack.enter_async_context(running)
                state.worker = worker
            serving = asyncio.create_task(
                tools.server.run(read, write, tools.server.create_initialization_options()),
                name="qasdk mcp stdio",
            )
            logger.info(
                "serving MCP on stdio (%d tools, %s)",
                len(base.registry.methods),
                "embedded worker" if worker is not None else "no embedded worker",
            )
            waits: list[asyncio.Task[Any]] = [
                serving,
                asyncio.create_task(base.stopper.event.wait()),
            ]
            if stop is not None:
                waits.append(asyncio.create_task(stop.wait()))
            if worker is not None:
                waits.append(asyncio.create_task(worker.wait()))
            done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            if serving in done and serving.exception() is not None:
                logger.error("the MCP session failed", exc_info=serving.exception())
            if serving not in done:
                # Stopped by a signal, not by the client: calls cut short leave their
                # durable tasks alone (the client closing stdin cancels its calls' tasks).
                tools.closing = True
            for task in waits:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await serving
            if worker is not None:
                await worker.stop()
    logger.info("MCP on stdio: stopped")
