"""qasdk as an MCP server (issue 14), through the ``mcp`` SDK's own client.

Streamable HTTP against a real ``qasdk serve`` (``/mcp``, API keys in force)
and stdio against a real ``qasdk mcp``, on a database of their own: the
registry as tools, a call as a durable direct task (result, tool error,
unknown tool), keys (401, scopes, tool filter), cancellation, progress from
the task event bus, and ``list_changed`` when the registry changes.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import httpx2
import mcp_types as types
import psycopg
import pytest
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from qasdk.testing import ScriptedModel
from tests.conftest import scratch_database
from tests.integration.harness import Server, environment, make_project, qasdk, until

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

LATER_TOOL = '''
from qasdk import tool


@tool
def shout(text: str) -> str:
    """Say it louder.

    Args:
        text: What to say.
    """
    return text.upper()
'''

#: How long a call that is meant to be cancelled would run (it never gets that far).
FOREVER = 600
#: What the SDK warns about because a test made it happen: a session used with another key,
#: and the answer to a call that a stopping server could no longer send.
EXPECTED_WARNINGS = ("Rejecting request for session", "shutdown error response for request")


class Site:
    """The server, its database, and keys by name (each with an httpx client)."""

    def __init__(self, server: Server, project: Path, url: str) -> None:
        self.server, self.project, self.url = server, project, url
        self.keys: dict[str, str] = {}
        self.clients: dict[str, httpx.Client] = {}

    def create(self, name: str, **fields: Any) -> str:
        made = self.clients["admin"].post("/api/keys", json={"name": name, **fields})
        assert made.status_code == 201, made.text
        return self.add(name, made.json()["key"])

    def add(self, name: str, key: str) -> str:
        self.keys[name] = key
        self.clients[name] = httpx.Client(
            base_url=self.server.base, timeout=30, headers={"Authorization": f"Bearer {key}"}
        )
        return key

    def __getitem__(self, name: str) -> httpx.Client:
        return self.clients[name]

    def task(self, task_id: str) -> dict[str, Any]:
        response = self["admin"].get(f"/api/tasks/{task_id}")
        assert response.status_code == 200, response.text
        found: dict[str, Any] = response.json()
        return found

    def running(self, method: str) -> list[dict[str, Any]]:
        response = self["admin"].get("/api/tasks", params={"method": method, "status": "running"})
        assert response.status_code == 200, response.text
        tasks: list[dict[str, Any]] = response.json()["tasks"]
        return tasks


@pytest.fixture(scope="module")
def site(
    tmp_path_factory: pytest.TempPathFactory,
    session_model: ScriptedModel,
    pg_data: Path,
    pg_url: str,
) -> Iterator[Site]:
    project = make_project(tmp_path_factory.mktemp("mcp"), session_model.url)
    (project / "tools" / "progressive.py").write_text(PROGRESSIVE_TOOL)
    with scratch_database(pg_data, pg_url, "mcp") as url:
        assert qasdk(project, url, "sync", "tools").returncode == 0
        made = qasdk(project, url, "keys", "create", "ops", "--scope", "admin")
        assert made.returncode == 0, made.stderr
        server = Server(project, url)
        site = Site(server, project, url)
        try:
            site.add("admin", made.stdout.strip())
            site.create("full", scopes=["read", "submit"])
            site.create("reader", scopes=["read"])
            site.create("calc", scopes=["read", "submit"], tools=["add"])
            until(lambda: server.http.get("/api/methods").status_code == 401, "keys never applied")
            yield site
        finally:
            for client in site.clients.values():
                client.close()
            assert server.stop() == 0, server.output
            # Nothing went wrong in MCP's machinery (the log file is every process's of the
            # project: the failing tool's errors are in it, as they should be).
            troubles = [
                r
                for r in server.log_records()
                if r["level"] in ("ERROR", "CRITICAL", "WARNING")
                and r["logger"].split(".")[0] in ("mcp", "sse_starlette", "starlette", "uvicorn")
                and not r["message"].startswith(EXPECTED_WARNINGS)
                and not _closed_under_a_request(r)
            ]
            assert not troubles, json.dumps(troubles, indent=1)


def _closed_under_a_request(record: dict[str, Any]) -> bool:
    """The SDK's race when a session ends (a client's DELETE) while a POST of it is handled.

    The request's stream is closed under it; the SDK logs that, then tries to answer
    500 on a response already sent, which uvicorn logs too. Nothing is lost.
    """
    stack = record.get("stack_trace") or ""
    return "ClosedResourceError" in stack and "_handle_post_request" in stack


Notified = list[types.ServerNotification | Exception]


@contextlib.asynccontextmanager
async def over_http(
    site: Site, key: str | None = "full", notified: Notified | None = None
) -> AsyncIterator[ClientSession]:
    """An initialized MCP session with ``/mcp`` of the server, as ``key``."""
    headers = {"Authorization": f"Bearer {site.keys[key]}"} if key else {}

    async def handle(message: types.ServerNotification | Exception) -> None:
        if notified is not None:
            notified.append(message)

    async with (
        httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=300)) as http,
        streamable_http_client(f"{site.server.base}/mcp", http_client=http) as (read, write),
        ClientSession(read, write, message_handler=handle) as session,
    ):
        await session.initialize()
        yield session


async def eventually(condition: Callable[[], Any], what: str, within: float = 30.0) -> Any:
    """Poll ``condition`` without blocking the loop (generous: the machine may be busy)."""
    deadline = time.monotonic() + within
    while True:
        value = await anyio.to_thread.run_sync(condition)
        if value:
            return value
        assert time.monotonic() < deadline, what
        await anyio.sleep(0.05)


def _text(result: types.CallToolResult) -> str:
    return "".join(c.text for c in result.content if isinstance(c, types.TextContent))


def _task_id(result: types.CallToolResult) -> str:
    assert result.meta is not None
    task_id: str = result.meta["qasdk/task_id"]
    return task_id


# -- streamable HTTP ---------------------------------------------------------------


async def test_tools_list_is_the_registry_with_input_schemas(site: Site) -> None:
    async with over_http(site) as session:
        assert session.initialize_result is not None
        capabilities = session.initialize_result.capabilities
        assert capabilities.tools is not None and capabilities.tools.list_changed
        listed = await session.list_tools()
    registered = {m["name"]: m for m in site["full"].get("/api/methods").json()["methods"]}
    tools = {tool.name: tool for tool in listed.tools}
    assert set(tools) == set(registered)
    add = tools["add"]
    assert add.description == registered["add"]["description"]
    assert add.input_schema["type"] == "object"
    assert set(add.input_schema["properties"]) == {"a", "b"}
    assert add.input_schema["properties"]["a"]["type"] == "integer"
    assert sorted(add.input_schema["required"]) == ["a", "b"]
    echo = tools["echo"].input_schema
    assert echo["required"] == ["text"] and echo["properties"]["times"]["default"] == 1


async def test_a_call_runs_a_durable_direct_task_and_returns_its_result(site: Site) -> None:
    async with over_http(site) as session:
        result = await session.call_tool("add", {"a": 2, "b": 3})
        echoed = await session.call_tool("echo", {"text": "hi", "times": 2})
    assert not result.is_error, _text(result)
    assert _text(result) == "5"
    assert result.structured_content == {"result": 5}
    task = site.task(_task_id(result))
    assert (task["status"], task["kind"], task["method"]) == ("completed", "direct", "add")
    assert task["params"] == {"a": 2, "b": 3} and task["result"] == 5
    full_id = site["full"].get("/api/tasks/" + task["task_id"]).json()["owner"]
    assert full_id is not None  # owned by the key that called, like a REST submit
    audit = site["admin"].get(
        "/api/audit", params={"action": "task.submit", "target": task["task_id"]}
    )
    (entry,) = audit.json()["entries"]
    assert (entry["actor"], entry["key_id"]) == ("full", full_id)
    assert entry["detail"]["method"] == "add"
    trace = site["admin"].get(f"/api/tasks/{task['task_id']}/trace").json()["steps"]
    assert [(s["kind"], s["name"]) for s in trace] == [("tool", "add")]
    assert not echoed.is_error and _text(echoed) == "hihi"


async def test_a_failing_tool_or_bad_arguments_are_a_tool_error(site: Site) -> None:
    async with over_http(site) as session:
        failed = await session.call_tool("fail", {"message": "the disk is full"})
        invalid = await session.call_tool("add", {"a": "two", "b": 3})
        missing = await session.call_tool("add", {"a": 1})
    assert failed.is_error and "the disk is full" in _text(failed)
    assert site.task(_task_id(failed))["status"] == "failed"
    assert invalid.is_error and "params.a" in _text(invalid), _text(invalid)
    assert missing.is_error and "params.b" in _text(missing), _text(missing)


async def test_an_unknown_tool_is_a_protocol_error_that_names_it(site: Site) -> None:
    async with over_http(site) as session:
        with pytest.raises(MCPError) as raised:
            await session.call_tool("ad", {"a": 1, "b": 2})
    assert raised.value.code == types.INVALID_PARAMS
    assert "no registered tool named 'ad'" in raised.value.message
    assert "did you mean 'add'" in raised.value.message


async def test_keys_guard_mcp_like_the_rest_of_the_api(site: Site) -> None:
    anonymous = httpx.post(
        f"{site.server.base}/mcp",
        json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
        headers={"Accept": "application/json, text/event-stream"},
    )
    assert anonymous.status_code == 401, anonymous.text
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    with pytest.raises(Exception):  # noqa: B017, PT011 - the SDK's error for a 401 varies
        async with over_http(site, key=None):
            pass

    async with over_http(site, key="calc") as calc:
        assert [t.name for t in (await calc.list_tools()).tools] == ["add"]
        assert _text(await calc.call_tool("add", {"a": 1, "b": 1})) == "2"
        with pytest.raises(MCPError) as refused:
            await calc.call_tool("echo", {"text": "x"})
        assert "'calc' may not run tool 'echo'" in refused.value.message

    async with over_http(site, key="reader") as reader:
        assert "add" in {t.name for t in (await reader.list_tools()).tools}
        with pytest.raises(MCPError) as unscoped:
            await reader.call_tool("add", {"a": 1, "b": 1})
        assert "'reader' lacks the 'submit' scope" in unscoped.value.message
    denied = site["admin"].get("/api/audit", params={"action": "denied", "actor": "reader"})
    (entry,) = [e for e in denied.json()["entries"] if e["detail"]["reason"] == "scope:submit"]
    assert entry["detail"] == {"status": 403, "reason": "scope:submit", "paths": ["POST /mcp"]}


async def test_a_session_belongs_to_the_key_that_opened_it(site: Site) -> None:
    async with over_http(site) as session:
        await session.list_tools()
        with httpx.Client(base_url=site.server.base, timeout=30) as other:
            # Find the session id the SDK got: it is in no public place, so open one by hand.
            opened = other.post(
                "/mcp",
                headers={
                    "Authorization": f"Bearer {site.keys['full']}",
                    "Accept": "application/json, text/event-stream",
                },
                json={
                    "jsonrpc": "2.0",
                    "id": 1,
                    "method": "initialize",
                    "params": {
                        "protocolVersion": "2025-11-25",
                        "capabilities": {},
                        "clientInfo": {"name": "by-hand", "version": "1"},
                    },
                },
            )
            assert opened.status_code == 200, opened.text
            session_id = opened.headers["mcp-session-id"]
            stolen = other.post(
                "/mcp",
                headers={
                    "Authorization": f"Bearer {site.keys['calc']}",
                    "Accept": "application/json, text/event-stream",
                    "Mcp-Session-Id": session_id,
                    "MCP-Protocol-Version": "2025-11-25",
                },
                json={"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
            )
            assert stolen.status_code == 404, stolen.text


async def _cancelled_call(
    site: Site,
    session: ClientSession,
    *,
    while_running: Callable[[str], Awaitable[None]] | None = None,
    **kwargs: Any,
) -> str:
    """Call ``slow_add`` (for ever), do ``while_running(task_id)``, cancel the call; the task id."""
    before = {t["task_id"] for t in site.running("slow_add")}
    async with anyio.create_task_group() as group:

        async def call() -> None:
            await session.call_tool("slow_add", {"a": 1, "b": 2, "delay": FOREVER}, **kwargs)
            raise AssertionError("the call finished; it should have been cancelled")

        group.start_soon(call)
        started = await eventually(
            lambda: [t for t in site.running("slow_add") if t["task_id"] not in before],
            "the call's task never started running",
        )
        task_id: str = started[0]["task_id"]
        if while_running is not None:
            await while_running(task_id)
        group.cancel_scope.cancel()
    return task_id


async def test_cancelling_the_call_cancels_the_task(site: Site) -> None:
    async with over_http(site) as session:
        task_id = await _cancelled_call(site, session)
        await eventually(
            lambda: site.task(task_id)["status"] == "cancelled", "the task was not cancelled"
        )
        # The session goes on.
        assert _text(await session.call_tool("add", {"a": 4, "b": 4})) == "8"
    audit = site["admin"].get("/api/audit", params={"action": "task.cancel", "target": task_id})
    (entry,) = audit.json()["entries"]
    assert entry["actor"] == "full"


async def test_task_progress_events_become_progress_notifications(site: Site) -> None:
    seen: list[tuple[float, float | None, str | None]] = []

    async def progress(done: float, total: float | None, message: str | None) -> None:
        seen.append((done, total, message))

    async def report(task_id: str) -> None:
        def notify(fraction: float, message: str) -> None:
            event = {
                "task_id": task_id,
                "event": "progress",
                "tool": "slow_add",
                "fraction": fraction,
                "message": message,
            }
            with psycopg.connect(site.url, autocommit=True) as conn:
                conn.execute("SELECT pg_notify('qasdk_task_events', %s)", (json.dumps(event),))

        notify(0.25, "a quarter")
        await eventually(lambda: len(seen) >= 1, "no progress notification arrived")
        notify(0.1, "backwards: dropped")
        notify(0.5, "half")
        await eventually(lambda: len(seen) >= 2, "the second progress notification never came")

    async with over_http(site) as session:
        task_id = await _cancelled_call(
            site, session, while_running=report, progress_callback=progress
        )
        await eventually(lambda: site.task(task_id)["status"] == "cancelled", "not cancelled")
    assert seen == [(0.25, 1.0, "a quarter"), (0.5, 1.0, "half")]


PROGRESSIVE_TOOL = '''
import time

from qasdk import ToolContext, tool


@tool
def progressive(steps: int, ctx: ToolContext) -> str:
    """Report progress at each step.

    Args:
        steps: How many.
    """
    for i in range(1, steps + 1):
        time.sleep(0.3)
        ctx.report_progress(i / steps, f"step {i} of {steps}")
    return "done"
'''


async def test_a_tool_s_own_progress_reaches_the_mcp_client(site: Site) -> None:
    seen: list[tuple[float, float | None, str | None]] = []

    async def progress(done: float, total: float | None, message: str | None) -> None:
        seen.append((done, total, message))

    async with over_http(site) as session:
        result = await session.call_tool("progressive", {"steps": 3}, progress_callback=progress)
    assert _text(result) == "done"
    # The tool reports every 0.3 s: some reports arrive before the result (the last may
    # cross it), each with its message, in increasing order.
    assert seen, "no progress notification arrived"
    assert all(
        total == 1.0 and message == f"step {round(done * 3)} of 3" for done, total, message in seen
    )
    assert [done for done, _, _ in seen] == sorted({done for done, _, _ in seen})


async def test_list_changed_is_sent_when_the_registry_changes(site: Site) -> None:
    notified: Notified = []
    later = site.project / "tools" / "later.py"
    try:
        async with over_http(site, notified=notified) as session:
            before = {t.name for t in (await session.list_tools()).tools}
            assert "shout" not in before
            later.write_text(LATER_TOOL)
            synced = await anyio.to_thread.run_sync(
                lambda: qasdk(site.project, site.url, "sync", "tools")
            )
            assert synced.returncode == 0, synced.stderr
            await eventually(
                lambda: any(isinstance(n, types.ToolListChangedNotification) for n in notified),
                f"no tools/list_changed notification; got {notified}",
            )
            after = {t.name for t in (await session.list_tools()).tools}
            assert after == before | {"shout"}
            assert _text(await session.call_tool("shout", {"text": "hey"})) == "HEY"
    finally:
        later.unlink(missing_ok=True)
        pruned = qasdk(site.project, site.url, "sync", "tools", "--prune")
        assert pruned.returncode == 0, pruned.stderr


# -- stdio -------------------------------------------------------------------------


async def test_qasdk_mcp_serves_the_same_tools_over_stdio(site: Site, tmp_path: Path) -> None:
    notified: Notified = []

    async def handle(message: types.ServerNotification | Exception) -> None:
        notified.append(message)

    env = environment(site.project, site.url)
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "qasdk", "mcp"], cwd=site.project, env=env
    )
    stderr = tmp_path / "stderr.log"
    later = site.project / "tools" / "later.py"
    try:
        with stderr.open("w") as errlog:
            async with (
                stdio_client(params, errlog=errlog) as (read, write),
                ClientSession(read, write, message_handler=handle) as session,
            ):
                await session.initialize()
                tools = {t.name for t in (await session.list_tools()).tools}
                assert {"add", "echo", "slow_add"} <= tools and "shout" not in tools
                added = await session.call_tool("add", {"a": 20, "b": 22})
                assert not added.is_error and _text(added) == "42", _text(added)
                task = site.task(_task_id(added))
                assert (task["status"], task["owner"]) == ("completed", None)
                failed = await session.call_tool("fail", {"message": "nope"})
                assert failed.is_error and "nope" in _text(failed)
                with pytest.raises(MCPError):
                    await session.call_tool("missing_tool", {})

                later.write_text(LATER_TOOL)
                synced = await anyio.to_thread.run_sync(
                    lambda: qasdk(site.project, site.url, "sync", "tools")
                )
                assert synced.returncode == 0, synced.stderr
                await eventually(
                    lambda: any(isinstance(n, types.ToolListChangedNotification) for n in notified),
                    f"no tools/list_changed over stdio; got {notified}",
                )
                assert "shout" in {t.name for t in (await session.list_tools()).tools}
    finally:
        later.unlink(missing_ok=True)
        assert qasdk(site.project, site.url, "sync", "tools", "--prune").returncode == 0
    # Only MCP frames reached stdout: a line that was not one would have come as an Exception.
    assert not [n for n in notified if isinstance(n, Exception)], notified
    audit = site["admin"].get(
        "/api/audit", params={"action": "task.submit", "target": task["task_id"]}
    )
    (entry,) = audit.json()["entries"]
    assert entry["actor"].startswith("mcp:")
    log = stderr.read_text()
    assert "serving MCP on stdio" in log, log


async def test_the_server_stops_with_mcp_sessions_open_and_leaves_their_tasks(
    site: Site,
) -> None:
    server = Server(site.project, site.url)
    before = {t["task_id"] for t in site.running("slow_add")}
    ended: list[BaseException] = []
    try:
        headers = {"Authorization": f"Bearer {site.keys['full']}"}
        async with (
            httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=300)) as http,
            streamable_http_client(f"{server.base}/mcp", http_client=http) as (read, write),
            ClientSession(read, write) as session,
            anyio.create_task_group() as group,
        ):
            await session.initialize()
            added = await session.call_tool("add", {"a": 1, "b": 2})
            assert added.structured_content == {"result": 3}

            async def call() -> None:
                try:
                    await session.call_tool("slow_add", {"a": 1, "b": 2, "delay": FOREVER})
                except Exception as exc:  # the connection goes away with the server
                    ended.append(exc)

            group.start_soon(call)
            started = await eventually(
                lambda: [t for t in site.running("slow_add") if t["task_id"] not in before],
                "the call's task never started running",
            )
            # The client keeps its GET stream, the session and a call open while it stops.
            code = await anyio.to_thread.run_sync(server.stop)
            assert code == 0, server.output
            group.cancel_scope.cancel()
    finally:
        server.kill()
    task_id = started[0]["task_id"]
    # Durable: handed back to the queue (the other server may have it now), not cancelled.
    assert site.task(task_id)["status"] in ("pending", "running"), site.task(task_id)
    cancelled = site["admin"].post(f"/api/tasks/{task_id}/cancel", params={"wait": 10})
    assert cancelled.status_code in (200, 202), cancelled.text


def test_qasdk_mcp_says_why_it_cannot_start_on_stderr_only(site: Site) -> None:
    down = "postgresql://nobody@127.0.0.1:1/qasdk"
    started = subprocess.run(
        [sys.executable, "-m", "qasdk", "mcp"],
        cwd=site.project,
        env=environment(site.project, down),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert started.returncode == 3, started.stderr
    assert started.stdout == ""
    assert "cannot connect to PostgreSQL at 127.0.0.1:1" in started.stderr
