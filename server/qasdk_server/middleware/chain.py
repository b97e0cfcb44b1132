"""The ordered chain of middleware around every tool call, and who it applies to."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

from qasdk.models import ExecutionResult
from qasdk_server.middleware.base import Middleware, Suspend, ToolCall, ToolError, ToolRefused

__all__ = ["Chain", "Link"]

logger = logging.getLogger("qasdk.middleware")

Execute = Callable[[ToolCall], Awaitable[ExecutionResult]]


class Link:
    """One configured middleware and the tools (by name or tag) it applies to."""

    __slots__ = ("middleware", "name", "tags", "tools")

    def __init__(
        self,
        name: str,
        middleware: Middleware,
        tools: Sequence[str] = (),
        tags: Sequence[str] = (),
    ) -> None:
        self.name = name
        self.middleware = middleware
        self.tools = frozenset(tools)
        self.tags = frozenset(tags)

    def applies(self, call: ToolCall) -> bool:
        if not self.tools and not self.tags:
            return True
        return call.tool in self.tools or not self.tags.isdisjoint(call.tags)


def _failure(error_type: str, message: str, call: ToolCall) -> ExecutionResult:
    return ExecutionResult(success=False, error_type=error_type, error=message)


class Chain:
    """Runs a call through its links (see :mod:`qasdk_server.middleware.base`)."""

    def __init__(self, links: Sequence[Link] = ()) -> None:
        self.links = tuple(links)

    @property
    def names(self) -> list[str]:
        return [link.name for link in self.links]

    async def run(self, call: ToolCall, execute: Execute) -> ExecutionResult:
        ran: list[Link] = []
        try:
            return await self._run(call, execute, ran)
        finally:
            for link in reversed(ran):
                try:
                    await link.middleware.done(call)
                except Exception:
                    logger.exception("middleware %r failed in done()", link.name)

    async def _run(self, call: ToolCall, execute: Execute, ran: list[Link]) -> ExecutionResult:
        result: ExecutionResult | None = None
        for link in self.links:
            if not link.applies(call):
                continue
            try:
                answered = await link.middleware.before(call)
            except ToolRefused as refusal:
                result = _failure(refusal.error_type, str(refusal), call)
                break
            except Suspend:
                raise  # the task pauses; done() still runs for the links before it
            except Exception as exc:
                result = self._crashed(link, "before", exc, call)
                break
            if answered is not None:
                result = answered
                break
            ran.append(link)
        if result is None:
            result = await execute(call)
        for link in reversed(ran):
            try:
                if result.success:
                    result = await link.middleware.after(call, result)
                else:
                    replacement = await link.middleware.on_error(call, ToolError(result))
                    if replacement is not None:
                        result = replacement
            except Exception as exc:
                hook = "after" if result.success else "on_error"
                result = self._crashed(link, hook, exc, call)
        return result

    def _crashed(self, link: Link, hook: str, exc: Exception, call: ToolCall) -> ExecutionResult:
        logger.exception("middleware %r failed in %s() for tool %r", link.name, hook, call.tool)
        message = f"middleware {link.name!r} failed in {hook}(): {type(exc).__name__}: {exc}"
        return _failure("MiddlewareError", message, call)

    async def close(self) -> None:
        for link in self.links:
            try:
                await link.middleware.close()
            except Exception:
                logger.exception("middleware %r failed to close", link.name)
