"""A small MCP server for the tests, built with the mcp SDK's MCPServer.

``python remote_server.py http PORT [VARIANT]`` serves streamable HTTP on
127.0.0.1:PORT; ``python remote_server.py stdio [VARIANT]`` talks over stdio.
Variant 2 is the same server after a remote change: ``add`` takes a third
parameter, ``shout`` is gone and ``echo`` is new.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Annotated

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field


def build(variant: int) -> MCPServer:
    server = MCPServer("qasdk-test-remote", log_level="WARNING")

    if variant == 1:

        @server.tool(description="Add two integers.")
        def add(
            a: Annotated[int, Field(description="The first number")],
            b: Annotated[int, Field(description="The second number")],
        ) -> int:
            return a + b

        @server.tool(description="Shout a text back in capitals.")
        def shout(text: Annotated[str, Field(description="What to shout")]) -> str:
            return text.upper() + "!"

    else:

        @server.tool(description="Add three integers.")
        def add(
            a: Annotated[int, Field(description="The first number")],
            b: Annotated[int, Field(description="The second number")],
            c: Annotated[int, Field(description="The third number")] = 0,
        ) -> int:
            return a + b + c

        @server.tool(description="Echo a text back.")
        def echo(text: Annotated[str, Field(description="What to echo")]) -> str:
            return text

    @server.tool(description="Always fails with the reason it is given.")
    def broken(reason: Annotated[str, Field(description="Why it fails")]) -> str:
        raise ToolError(f"broken on purpose: {reason}")

    @server.tool(description="Return a text of the given size in bytes.")
    def huge(size: Annotated[int, Field(description="How many bytes")]) -> str:
        return "x" * size

    @server.tool(description="Sleep for a while, then answer.")
    def slow(seconds: Annotated[float, Field(description="How long to sleep")]) -> str:
        time.sleep(seconds)
        return "slept"

    @server.tool(description="Say which token the request carried, and the test variable.")
    def whoami(ctx: Context) -> dict[str, str]:
        request = ctx.request_context.request
        headers = getattr(request, "headers", None) or {}
        return {
            "authorization": str(headers.get("authorization", "")),
            "variable": os.environ.get("QASDK_TEST_REMOTE_VAR", ""),
            # What of the worker's environment reached this process (a stdio server).
            "database": ",".join(k for k in os.environ if "DATABASE" in k),
            "pid": str(os.getpid()),
        }

    return server


def main() -> None:
    transport = sys.argv[1]
    if transport == "http":
        port = int(sys.argv[2])
        variant = int(sys.argv[3]) if len(sys.argv) > 3 else 1
        build(variant).run("streamable-http", host="127.0.0.1", port=port)
    else:
        variant = int(sys.argv[2]) if len(sys.argv) > 2 else 1
        build(variant).run("stdio")


if __name__ == "__main__":
    main()
