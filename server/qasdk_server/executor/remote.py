"""Tools of type ``mcp``: a remote ``tools/call`` instead of a tool process.

The executor hands a call here after the same checks as a Python tool's (the
tool is registered, its arguments fit its parameters); the call is bounded by
the same timeout, its result by the same size limit, and its failures come back
as the same :class:`ExecutionResult`: the remote's ``isError`` as
``McpToolError`` with its message, a server that cannot be reached as
``McpUnavailable`` naming it, no answer in time as ``TimeoutError``.

Sessions are kept open per server and shared by the calls to it (a stdio
server costs a process start, an HTTP one a handshake), on an event loop of
their own thread: decoding what a remote answers never holds up the worker's
loop. A session of the handshake protocols (which a restarted server forgets) is
checked with a ping before each call goes out on it, so a server that
restarted is reconnected to rather than failed on (from protocol 2026-07-28 on,
requests stand alone and need no check); one that
breaks during a call is dropped (the call fails; it is never sent twice), and
one unused for :data:`IDLE_CLOSE` seconds is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
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
    mcp_available,
    open_session,
    outcome_of,
    reason,
)

__all__ = ["IDLE_CLOSE", "MCP_TOOL_ERROR", "MCP_UNAVAILABLE", "RemoteSessions"]

MCP_TOOL_ERROR = "McpToolError"
MCP_UNAVAILABLE = "McpUnavailable"
#: Seconds a session may sit unused before it is closed (a stdio server's process ends).
IDLE_CLOSE = 60.0

#: (error type, message, seconds) → the failed result, as the executor logs and builds it.
Failed = Callable[[str, str, float], ExecutionResult]
#: The encoded result → what is kept of it (a preview past the result limit).
Parse = Callable[[msgspec.Raw], Any]


class _Held:
    """One open session, held by a task of the sessions loop until it is told to stop."""

    def __init__(self, endpoint: McpEndpoint) -> None:
        self.endpoint = endpoint
        self.ready: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.stop = asyncio.Event()
        self.used = time.monotonic()
        self.task: asyncio.Task[None] | None = None

    async def hold(self) -> None:
        try:
            async with open_session(self.endpoint, os.environ, None) as client:
                self.ready.set_result(client)
                await self.stop.wait()
        except BaseException as exc:  # reported to whoever waits for the session
            if not self.ready.done():
                self.ready.set_exception(exc)
            if isinstance(exc, asyncio.CancelledError):
                raise
        finally:
            if not self.ready.done():
                self.ready.cancel()

    async def close(self) -> None:
        self.stop.set()
        if self.task is not None:
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(asyncio.shield(self.task), 5)
            if not self.task.done():
                self.task.cancel()
        if self.ready.done() and not self.ready.cancelled():
            self.ready.exception()  # retrieved: a failed open is no loop warning


class RemoteSessions:
    """MCP sessions per server, on an event loop of their own thread (started on first use)."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closing = False
        #: Only touched on the sessions loop.
        self._held: dict[bytes, _Held] = {}

    async def call(
        self,
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
        loop = self._running_loop()
        future = asyncio.run_coroutine_threadsafe(self._call(endpoint, arguments, limit), loop)
        try:
            outcome = await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            if not (self._closing and future.cancelled()):
                raise  # our caller was cancelled
            message = f"tool {name!r}: the worker is stopping ({endpoint.where})"
            return failed(MCP_UNAVAILABLE, message, time.perf_counter() - start)
        except RemoteError as exc:
            elapsed = time.perf_counter() - start
            if exc.timed_out:
                message = f"tool {name!r} timed out after {round(limit, 3)} s ({endpoint.where})"
                return failed("TimeoutError", message, elapsed)
            return failed(MCP_UNAVAILABLE, f"tool {name!r}: {exc}", elapsed)
        except ConfigurationError as exc:  # a ${VAR} of its headers or env is not set here
            return failed(
                "ConfigurationError", f"tool {name!r}: {exc}", time.perf_counter() - start
            )
        elapsed = time.perf_counter() - start
        if not outcome.ok:
            return failed(MCP_TOOL_ERROR, outcome.error or "", elapsed)
        try:
            encoded = msgspec.json.encode(outcome.result)
        except (TypeError, ValueError, OverflowError) as exc:
            message = f"tool {name!r} answered a value JSON cannot hold: {exc}"
            return failed(MCP_TOOL_ERROR, message, elapsed)
        return ExecutionResult(
            success=True, result=parse(msgspec.Raw(encoded)), execution_time=elapsed
        )

    async def close(self) -> None:
        """Close every session (stdio servers end) and stop the sessions thread."""
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop, self._thread = None, None
            self._closing = True
        if loop is None or thread is None:
            return
        done = asyncio.run_coroutine_threadsafe(self._close_all(), loop)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.wrap_future(done), 15)
        loop.call_soon_threadsafe(loop.stop)
        await asyncio.to_thread(thread.join, 15)

    # -- on the sessions loop ---------------------------------------------------

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=self._run, args=(loop,), name="qasdk-mcp-sessions", daemon=True
                )
                thread.start()
                self._loop, self._thread = loop, thread
                asyncio.run_coroutine_threadsafe(self._reap(), loop)
            return self._loop

    async def _reap(self) -> None:
        """Close sessions nobody used for :data:`IDLE_CLOSE` seconds, whether calls come or not."""
        while True:
            await asyncio.sleep(IDLE_CLOSE / 4)
            await self._close_idle()

    @staticmethod
    def _run(loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
        finally:
            loop.close()

    async def _call(
        self, endpoint: McpEndpoint, arguments: dict[str, Any], limit: float
    ) -> CallOutcome:
        deadline = asyncio.get_running_loop().time() + limit
        try:
            client = await asyncio.wait_for(self._client(endpoint), limit)
        except asyncio.TimeoutError:
            raise RemoteError(
                f"{endpoint.where}: no answer to connecting within {round(limit, 3)} s",
                timed_out=True,
            ) from None
        except (RemoteError, ConfigurationError):
            raise
        except Exception as exc:
            raise RemoteError(f"{endpoint.where}: connecting failed: {reason(exc)}") from None
        remaining = max(0.001, deadline - asyncio.get_running_loop().time())
        key = _key(endpoint)
        try:
            answer = await asyncio.wait_for(client.call_tool(endpoint.tool, arguments), remaining)
        except asyncio.TimeoutError:
            await self._drop(key)  # a server that hangs a call is not trusted with the next
            raise RemoteError(
                f"{endpoint.where}: no answer to calling tool {endpoint.tool!r} within "
                f"{round(limit, 3)} s",
                timed_out=True,
            ) from None
        except Exception as exc:
            await self._drop(key)
            raise RemoteError(
                f"{endpoint.where}: calling tool {endpoint.tool!r} failed: {reason(exc)}"
            ) from None
        held = self._held.get(key)
        if held is not None:
            held.used = time.monotonic()
        return outcome_of(answer)

    async def _client(self, endpoint: McpEndpoint) -> Any:
        """The open session to ``endpoint``'s server: shared and answering a ping, or new."""
        key = _key(endpoint)
        held = self._held.get(key)
        if held is not None and held.ready.done():
            broken = held.ready.cancelled() or held.ready.exception() is not None
            if not broken and _stateful(held.ready.result()):
                try:
                    await asyncio.wait_for(held.ready.result().session.send_ping(), 5)
                except Exception:
                    broken = True
            if broken or held.task is None or held.task.done():
                await self._drop(key)
                held = None
        if held is None:
            held = _Held(endpoint)
            held.task = asyncio.get_running_loop().create_task(held.hold())
            self._held[key] = held
        try:
            client = await asyncio.shield(held.ready)
        except BaseException:
            if self._held.get(key) is held:
                await self._drop(key)
            raise
        held.used = time.monotonic()
        return client

    async def _drop(self, key: bytes) -> None:
        held = self._held.pop(key, None)
        if held is not None:
            await held.close()

    async def _close_idle(self) -> None:
        now = time.monotonic()
        for key, held in list(self._held.items()):
            if held.ready.done() and now - held.used > IDLE_CLOSE:
                await self._drop(key)

    async def _close_all(self) -> None:
        """Close each session (a call in flight on it fails), then end what is left (the reaper)."""
        for key in list(self._held):
            await self._drop(key)
        others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)


def _stateful(client: Any) -> bool:
    """Whether the session is one a server can forget (the handshake protocols, with ping).

    From protocol 2026-07-28 on, each request stands alone: nothing to check.
    """
    from mcp_types.version import MODERN_PROTOCOL_VERSIONS

    return client.protocol_version not in MODERN_PROTOCOL_VERSIONS


def _key(endpoint: McpEndpoint) -> bytes:
    """What one session serves: the endpoint without the tool name."""
    return msgspec.json.encode(msgspec.structs.replace(endpoint, tool=""), order="sorted")
