"""What a ``tools/call`` answers → a tool result or a tool error (no network here)."""

from __future__ import annotations

import asyncio
import socket

import mcp_types as types
import pytest

from qasdk.errors import ConfigurationError
from qasdk.models import McpEndpoint
from qasdk.remote.client import RemoteError, call_tool, outcome_of


def answer(*content: types.ContentBlock, **fields: object) -> types.CallToolResult:
    return types.CallToolResult(content=list(content), **fields)  # type: ignore[arg-type]


def text(value: str) -> types.TextContent:
    return types.TextContent(type="text", text=value)


def test_structured_content_wins_over_its_text_rendering() -> None:
    outcome = outcome_of(answer(text('{"result": 3}'), structured_content={"result": 3}))
    assert (outcome.ok, outcome.result) == (True, {"result": 3})


def test_text_is_the_result_and_several_blocks_a_list() -> None:
    assert outcome_of(answer(text("hi"))).result == "hi"
    assert outcome_of(answer(text("a"), text("b"))).result == ["a", "b"]
    assert outcome_of(answer()).result is None


def test_binary_content_is_described_not_carried() -> None:
    image = types.ImageContent(type="image", data="QUJD" * 1000, mime_type="image/png")
    (shown,) = [outcome_of(answer(image)).result]
    assert shown["type"] == "image"
    assert shown["size"] == 3000
    assert "data" not in shown


def test_is_error_is_a_tool_error_with_the_remote_message() -> None:
    outcome = outcome_of(answer(text("no such repo"), is_error=True))
    assert (outcome.ok, outcome.error) == (False, "no such repo")
    assert "no message" in (outcome_of(answer(is_error=True)).error or "")


def closed_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/mcp"


def test_an_unreachable_server_is_named_and_its_headers_are_not() -> None:
    url = closed_url()
    endpoint = McpEndpoint(
        server="calc",
        tool="add",
        url=url,
        headers={"Authorization": "Bearer ${QASDK_TEST_SECRET}"},
    )
    with pytest.raises(RemoteError) as raised:
        asyncio.run(
            call_tool(endpoint, {}, timeout=10, environ={"QASDK_TEST_SECRET": "hunter2-secret"})
        )
    message = str(raised.value)
    assert message.startswith(f"mcp server 'calc' ({url}): calling tool 'add'")
    assert "hunter2" not in message
    assert not raised.value.timed_out


def test_a_header_variable_unset_where_the_call_is_made_is_named() -> None:
    endpoint = McpEndpoint(
        server="calc", tool="add", url=closed_url(), headers={"Authorization": "Bearer ${NOPE}"}
    )
    with pytest.raises(ConfigurationError, match=r"mcp_servers\.calc\.headers\.Authorization") as e:
        asyncio.run(call_tool(endpoint, {}, timeout=10, environ={}))
    assert "'NOPE' is not set" in str(e.value)
