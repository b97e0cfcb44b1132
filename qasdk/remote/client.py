"""An MCP client for one endpoint: list its tools, call one, each on a fresh connection.

A connection per call keeps a worker simple and robust (a remote that restarts,
a stdio server that dies, a session the server expired): nothing to keep alive or
repair between calls. Header and env templates are expanded here, from the
environment of the process making the call, and only for that call.

Every failure comes back as :class:`RemoteError` naming the server, never with a
header value in it; ``mcp`` (the ``qasdk[mcp]`` extra) is imported on first use.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import msgspec

from qasdk.errors import ConfigurationError
from qasdk.models import McpEndpoint, Problem, Source
from qasdk.remote.templates import expand_all

__all__ = [
    "INSTALL_HINT",
    "CallOutcome",
    "RemoteError",
    "RemoteTool",
    "call_tool",
    "list_tools",
    "mcp_available",
    "open_session",
    "outcome_of",
    "reason",
    "require_mcp",
]

INSTALL_HINT = "MCP servers need the mcp package: pip install 'qasdk[mcp]'"
#: A listing that never ends (a hostile cursor) stops here.
MAX_PAGES = 50
MAX_TOOLS = 1000
#: Bytes one answer (a JSON body, an SSE event) may have: a hostile server cannot make the
#: client hold more; what is kept of a result is bounded further by ``limits.result``.
MAX_ANSWER = 32 * 1024 * 1024


class RemoteError(Exception):
    """The MCP server could not be reached, or did not answer (in time, or as MCP servers do)."""

    def __init__(self, message: str, *, timed_out: bool = False) -> None:
        super().__init__(message)
        self.timed_out = timed_out


class RemoteTool(msgspec.Struct, frozen=True, kw_only=True):
    """One tool as an MCP server lists it."""

    name: str
    description: str | None = None
    input_schema: dict[str, Any] = {}


class CallOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """What a ``tools/call`` answered: a result, or the remote's error (``isError``)."""

    ok: bool
    result: Any = None
    error: str | None = None


def mcp_available() -> bool:
    return importlib.util.find_spec("mcp") is not None


def require_mcp(source: Source | None = None) -> None:
    """Raise a :class:`ConfigurationError` saying what to install when ``mcp`` is missing."""
    if not mcp_available():
        raise ConfigurationError(
            problems=[Problem(source=source, field="mcp_servers", reason=INSTALL_HINT)]
        )


@asynccontextmanager
async def open_session(
    endpoint: McpEndpoint, environ: Mapping[str, str], timeout: float | None
) -> AsyncIterator[Any]:
    """A connected ``mcp.Client`` (``timeout``: of each request; ``None``: the caller bounds)."""
    from mcp import Client, StdioServerParameters

    what = f"mcp_servers.{endpoint.server}"
    if endpoint.url is not None:
        import httpx2
        from mcp.client.streamable_http import streamable_http_client

        headers = expand_all(endpoint.headers, environ, what=f"{what}.headers")

        async def bounded(response: httpx2.Response) -> None:
            size = response.headers.get("content-length")
            if size is not None and size.isdigit() and int(size) > MAX_ANSWER:
                raise RemoteError(f"answered {size} bytes, more than {MAX_ANSWER}")

        http = httpx2.AsyncClient(
            headers=headers,
            timeout=httpx2.Timeout(timeout if timeout is not None else 300.0),
            event_hooks={"response": [bounded]},
        )
        async with http:
            transport = streamable_http_client(
                endpoint.url, http_client=http, max_sse_event_size=MAX_ANSWER
            )
            async with Client(transport, cache=None, read_timeout_seconds=timeout) as client:
                yield client
        return
    env = expand_all(endpoint.env, environ, what=f"{what}.env")
    params = StdioServerParameters(
        command=endpoint.command or "", args=list(endpoint.args), env=env or None
    )
    async with Client(params, cache=None, read_timeout_seconds=timeout) as client:
        yield client


def reason(exc: BaseException) -> str:
    """The innermost cause of ``exc`` (task groups wrap it), in a few words."""
    while True:
        inner = getattr(exc, "exceptions", None)
        if inner:
            exc = inner[0]
            continue
        break
    text = str(exc).strip() or type(exc).__name__
    if len(text) > 300:
        text = text[:297] + "..."
    return f"{type(exc).__name__}: {text}" if type(exc).__name__ not in text else text


async def _bounded(endpoint: McpEndpoint, timeout: float, work: Any, doing: str) -> Any:
    try:
        return await asyncio.wait_for(work, timeout)
    except asyncio.TimeoutError:
        raise RemoteError(
            f"{endpoint.where}: no answer to {doing} within {round(timeout, 3)} s", timed_out=True
        ) from None
    except ConfigurationError:
        raise
    except Exception as exc:
        raise RemoteError(f"{endpoint.where}: {doing} failed: {reason(exc)}") from None


async def list_tools(
    endpoint: McpEndpoint, *, timeout: float, environ: Mapping[str, str] | None = None
) -> list[RemoteTool]:
    """Every tool the server lists (all pages), within ``timeout`` seconds in all."""
    env = os.environ if environ is None else environ

    async def work() -> list[RemoteTool]:
        found: list[RemoteTool] = []
        async with open_session(endpoint, env, timeout) as client:
            cursor: str | None = None
            for _ in range(MAX_PAGES):
                page = await client.list_tools(cursor=cursor)
                for tool in page.tools:
                    found.append(
                        RemoteTool(
                            name=tool.name,
                            description=tool.description,
                            input_schema=dict(tool.input_schema or {}),
                        )
                    )
                cursor = page.next_cursor
                if cursor is None or len(found) >= MAX_TOOLS:
                    break
        return found[:MAX_TOOLS]

    tools: list[RemoteTool] = await _bounded(endpoint, timeout, work(), "listing its tools")
    return tools


async def call_tool(
    endpoint: McpEndpoint,
    arguments: Mapping[str, Any],
    *,
    timeout: float,
    environ: Mapping[str, str] | None = None,
) -> CallOutcome:
    """``tools/call`` of the endpoint's tool: all of it, connecting included, within ``timeout``."""
    env = os.environ if environ is None else environ

    async def work() -> CallOutcome:
        async with open_session(endpoint, env, timeout) as client:
            answer = await client.call_tool(endpoint.tool, dict(arguments))
        return outcome_of(answer)

    outcome: CallOutcome = await _bounded(
        endpoint, timeout, work(), f"calling tool {endpoint.tool!r}"
    )
    return outcome


def outcome_of(answer: Any) -> CallOutcome:
    """Text and structured content → a result; ``isError`` → the remote's message."""
    texts: list[str] = []
    others: list[dict[str, Any]] = []
    for block in answer.content:
        if getattr(block, "type", None) == "text":
            texts.append(block.text)
            continue
        shown = block.model_dump(mode="json", exclude_none=True, by_alias=True)
        data = shown.pop("data", None)
        if isinstance(data, str):
            shown["size"] = len(data) * 3 // 4  # base64: what the content weighs, not itself
        others.append(shown)
    if answer.is_error:
        message = "\n".join(texts) or "the remote tool reported an error and no message"
        return CallOutcome(ok=False, error=message)
    if answer.structured_content is not None:
        return CallOutcome(ok=True, result=answer.structured_content)
    parts: list[Any] = [*texts, *others]
    if not parts:
        return CallOutcome(ok=True, result=None)
    return CallOutcome(ok=True, result=parts[0] if len(parts) == 1 else parts)
