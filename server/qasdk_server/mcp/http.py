"""MCP over streamable HTTP at ``/mcp`` of ``qasdk serve``, behind the API's keys.

The route is a Litestar ASGI mount, so the API's guard (``read`` scope), host
and origin checks, and denial audit apply to every MCP request as to any
route; ``tools/call`` also needs ``submit`` (checked per call). A session is
bound to the key that opened it: another key (or none) gets 404 for it, as if
it did not exist. The SDK (~30 MB of imports: pydantic, starlette, ...) loads
with the first request to ``/mcp``, and its session manager then runs until
the app stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, cast

from litestar import Litestar, Request, asgi
from litestar.handlers import ASGIRouteHandler
from litestar.types import Receive, Scope, Send

from qasdk_server.auth import OPEN, Principal, Refused, current_actor
from qasdk_server.denials import Denials
from qasdk_server.state import ServerState

if TYPE_CHECKING:
    from mcp.server.context import ServerRequestContext
    from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

    from qasdk_server.mcp.tools import Caller, McpTools

__all__ = ["MCP_PATH", "McpHttp"]

MCP_PATH = "/mcp"
#: Where the mount leaves the caller for the handlers (the scope is the request's own).
_CALLER = "qasdk.mcp.caller"
#: Seconds a session with no request in flight (and no open GET stream) is kept.
IDLE_SESSION = 30 * 60.0


class McpHttp:
    """The ``/mcp`` route and the session manager it needs running (both built on first use)."""

    def __init__(self, state: ServerState, denials: Denials | None, *, version: str = "") -> None:
        self.state = state
        self.denials = denials
        self.version = version
        #: The MCP server and its session manager, from the first request to ``/mcp`` on.
        self.tools: McpTools | None = None
        self._manager: StreamableHTTPSessionManager | None = None
        self._starting = asyncio.Lock()
        self._closed = asyncio.Event()
        self._running: asyncio.Task[None] | None = None

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Litestar) -> AsyncIterator[None]:
        """Stop the session manager (if a request started it) when the app stops."""
        try:
            yield
        finally:
            await self.close()

    async def manager(self) -> StreamableHTTPSessionManager:
        """The running session manager: imported, built and started by the first request."""
        if self._manager is not None:
            return self._manager
        async with self._starting:
            if self._manager is not None:
                return self._manager
            if self._closed.is_set():
                raise RuntimeError("the MCP endpoint is closed: the server is stopping")
            from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

            from qasdk_server.mcp.tools import McpTools

            tools = McpTools(self.state, _http_caller, version=self.version)
            manager = StreamableHTTPSessionManager(
                app=tools.server,
                # The app's SiteGuard already checks Host and Origin for every route.
                security_settings=None,
                max_request_body_size=self.state.config.limits.request_body,
                session_idle_timeout=IDLE_SESSION,
            )
            # It logs every chunk it streams (tool results included) at DEBUG: not ours to keep.
            chunks = logging.getLogger("sse_starlette")
            if chunks.level == logging.NOTSET:
                chunks.setLevel(logging.INFO)
            started = asyncio.Event()

            async def run() -> None:
                async with manager.run():
                    started.set()
                    await self._closed.wait()

            # A task of its own, so :meth:`close` can end it before the HTTP server stops.
            self._running = asyncio.create_task(run(), name="qasdk mcp sessions")
            waiting = asyncio.create_task(started.wait())
            await asyncio.wait([self._running, waiting], return_when=asyncio.FIRST_COMPLETED)
            waiting.cancel()
            if self._running.done():
                self._running.result()  # it failed to start: say why
            self.tools, self._manager = tools, manager
            return manager

    async def close(self) -> None:
        """End every session, before the HTTP server waits for its connections to close.

        An open GET stream (or a call waiting for its task) would hold the
        server's stop for ever. Calls cut short this way leave their tasks
        alone: durable, they finish (or go back to the queue) as any task does.
        """
        if self.tools is not None:
            self.tools.closing = True
        self._closed.set()
        if self._running is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._running

    def route(self) -> ASGIRouteHandler:
        denials = self.denials

        @asgi(
            MCP_PATH,
            is_mount=True,
            copy_scope=True,
            opt={"scope": "read"},
            include_in_schema=False,
        )
        async def mcp_endpoint(scope: Scope, receive: Receive, send: Send) -> None:
            """MCP (streamable HTTP): tools/list and tools/call, with the API's keys."""
            from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
            from mcp.server.auth.provider import AccessToken

            from qasdk_server.mcp.tools import Caller

            manager = await self.manager()
            request: Request[Any, Any, Any] = Request(scope)
            principal: Principal = getattr(request.state, "principal", OPEN)

            async def deny(refused: Refused) -> None:
                if denials is not None:  # the path as the client sent it, not the mount's rest
                    await denials.note(refused, Request(cast("Scope", {**scope, "path": MCP_PATH})))

            caller = Caller(principal, current_actor(request), deny)
            raw: dict[str, Any] = scope  # type: ignore[assignment]
            raw[_CALLER] = caller
            if principal.key is not None:
                # What the SDK binds a session to: requests for it must come with this key.
                raw["user"] = AuthenticatedUser(
                    AccessToken(
                        token="", client_id=str(principal.key.id), scopes=list(principal.key.scopes)
                    )
                )
            await manager.handle_request(raw, receive, send)  # type: ignore[arg-type]

        return mcp_endpoint


def _http_caller(ctx: ServerRequestContext[Any, Any]) -> Caller:
    """The caller the mount left in the scope of the POST that carried this request."""
    from qasdk_server.mcp.tools import Caller

    request = ctx.request
    caller = None if request is None else request.scope.get(_CALLER)
    if not isinstance(caller, Caller):  # cannot happen behind the mount; closed if it does
        raise RuntimeError("an MCP request reached the handlers without passing the API guard")
    return caller
