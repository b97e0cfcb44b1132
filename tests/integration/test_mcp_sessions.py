"""The worker's MCP sessions: kept per server, dropped when broken, closed when idle.

Against the real stdio test server (``mcp_remote/remote_server.py``), in process: the
executor's :class:`RemoteSessions` as the worker uses it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any

import msgspec
import pytest

from qasdk.models import ExecutionResult, McpEndpoint
from qasdk_server.executor import remote
from qasdk_server.executor.remote import RemoteSessions

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

SERVER = Path(__file__).parent / "mcp_remote" / "remote_server.py"
ENDPOINT = McpEndpoint(
    server="local", tool="whoami", command=sys.executable, args=(str(SERVER), "stdio")
)


def failed(kind: str, message: str, elapsed: float) -> ExecutionResult:
    return ExecutionResult(success=False, error=message, error_type=kind, execution_time=elapsed)


def parse(raw: msgspec.Raw) -> Any:
    return msgspec.json.decode(raw)


async def whoami(sessions: RemoteSessions) -> ExecutionResult:
    return await sessions.call("io_whoami", ENDPOINT, {}, 60, failed=failed, parse=parse)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def until(condition: Any, what: str, within: float = 30) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not condition():
        assert loop.time() < deadline, what
        await asyncio.sleep(0.05)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_calls_share_one_server_process_and_close_ends_it() -> None:
    sessions = RemoteSessions()
    try:
        first, second = await whoami(sessions), await whoami(sessions)
        assert first.success, first
        assert first.result["pid"] == second.result["pid"]
        pid = int(first.result["pid"])
    finally:
        await sessions.close()
    await until(lambda: not alive(pid), "the stdio server outlived close()")


async def test_a_server_that_died_fails_one_call_clearly_then_is_started_again() -> None:
    sessions = RemoteSessions()
    try:
        first = await whoami(sessions)
        pid = int(first.result["pid"])
        os.kill(pid, signal.SIGKILL)
        await until(lambda: not alive(pid), "the stdio server did not die")
        broken = await whoami(sessions)
        if not broken.success:  # the call that finds it dead fails, naming the server
            assert broken.error_type == remote.MCP_UNAVAILABLE
            assert "mcp server 'local'" in (broken.error or "")
        again = await whoami(sessions)
        assert again.success, again
        assert int(again.result["pid"]) != pid
    finally:
        await sessions.close()


async def test_an_idle_session_is_closed_without_a_call(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(remote, "IDLE_CLOSE", 0.4)
    sessions = RemoteSessions()
    try:
        pid = int((await whoami(sessions)).result["pid"])
        await until(lambda: not alive(pid), "an idle stdio server was kept")
    finally:
        await sessions.close()


async def test_closing_fails_a_call_in_flight_and_ends_its_server() -> None:
    sessions = RemoteSessions()
    slow = McpEndpoint(server="local", tool="slow", command=ENDPOINT.command, args=ENDPOINT.args)
    first = await whoami(sessions)
    pid = int(first.result["pid"])
    call = asyncio.ensure_future(
        sessions.call("io_slow", slow, {"seconds": 30}, 60, failed=failed, parse=parse)
    )
    await asyncio.sleep(0.5)  # the call is out (or about to be): either way it must end now
    await sessions.close()
    outcome = await asyncio.wait_for(call, 30)
    assert not outcome.success
    assert outcome.error_type == remote.MCP_UNAVAILABLE
    assert "mcp server 'local'" in (outcome.error or "")
    await until(lambda: not alive(pid), "the stdio server outlived close()")
