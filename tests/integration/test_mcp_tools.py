"""Tools on MCP servers: declared in methods.yaml, listed by `qasdk sync`, run by workers.

The MCP servers are real (``mcp_remote/remote_server.py``, built with the mcp SDK), over
streamable HTTP on a free port and over stdio; `qasdk sync` and `qasdk serve` are
real processes; only the model is scripted.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from qasdk.testing import ScriptedModel, reply
from tests.integration.harness import Server, environment, make_project, qasdk, until

pytestmark = pytest.mark.integration

REMOTE = Path(__file__).parent / "mcp_remote" / "remote_server.py"
TOKEN = "s3cret-token-for-the-remote"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RemoteServer:
    """``remote_server.py http PORT VARIANT`` as a child process."""

    def __init__(self, port: int, variant: int = 1) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}/mcp"
        self.proc = subprocess.Popen(
            [sys.executable, str(REMOTE), "http", str(port), str(variant)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        until(self.answers, f"the MCP server on port {port} never answered", within=60)

    def answers(self) -> bool:
        assert self.proc.poll() is None, "the MCP server exited"
        try:
            httpx.get(self.url, timeout=2)
        except httpx.TransportError:
            return False
        return True

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="module")
def remote() -> Iterator[RemoteServer]:
    server = RemoteServer(free_port())
    yield server
    server.stop()


def project_with(
    root: Path, model_url: str, servers: list[dict[str, Any]], *, result_limit: int = 4000
) -> Path:
    project = make_project(root, model_url)
    config = yaml.safe_load((project / "model_config.yaml").read_text())
    config["limits"] = {"result": result_limit}
    (project / "model_config.yaml").write_text(yaml.safe_dump(config))
    (project / "tools" / "methods.yaml").write_text(yaml.safe_dump({"mcp_servers": servers}))
    return project


def http_servers(remote: RemoteServer) -> list[dict[str, Any]]:
    return [
        {
            "name": "calc",
            "url": remote.url,
            "headers": {"Authorization": "Bearer ${MCP_TEST_TOKEN}"},
            "tools": ["add", "broken", "huge", "whoami"],
            "prefix": "r_",
        },
        {"name": "sleepy", "url": remote.url, "tools": ["slow"], "prefix": "s_", "timeout": 1},
    ]


def test_remote_tools_sync_and_run_through_a_real_server(
    tmp_path: Path,
    remote: RemoteServer,
    model: ScriptedModel,
    fresh_database: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MCP_TEST_TOKEN", TOKEN)
    project = project_with(tmp_path / "p", model.url, http_servers(remote))
    synced = qasdk(project, fresh_database, "sync", "tools")
    assert synced.returncode == 0, synced.stderr
    assert "1 methods file and 2 MCP servers" in synced.stdout
    assert "+ r_add" in synced.stdout
    assert "created (mcp server 'calc')" in synced.stdout
    assert "+ s_slow" in synced.stdout
    assert TOKEN not in synced.stdout + synced.stderr

    server = Server(project, fresh_database)
    try:
        methods = {m["name"]: m for m in server.methods()["methods"]}
        assert {"r_add", "r_broken", "r_huge", "r_whoami", "s_slow", "add"} <= set(methods)
        remote_add = methods["r_add"]
        assert remote_add["type"] == "mcp"
        assert remote_add["endpoint"]["tool"] == "add"
        assert remote_add["endpoint"]["headers"] == {"Authorization": "Bearer ${MCP_TEST_TOKEN}"}
        assert [p["name"] for p in remote_add["parameters"]] == ["a", "b"]
        assert methods["add"].get("type", "python") == "python"
        assert TOKEN not in str(methods)

        # A direct task: the remote's structured result.
        task = server.run(method="r_add", params={"a": 2, "b": 40})
        assert task["status"] == "completed", task
        assert task["result"] == {"result": 42}
        # Arguments are checked against the listed schema before anything is sent.
        refused = server.http.post(
            "/api/tasks", json={"method": "r_add", "params": {"a": "two", "b": 40}}
        )
        assert refused.status_code == 400
        assert "params.a" in refused.text
        # The header template is expanded where the call is made, from the environment.
        task = server.run(method="r_whoami", params={})
        assert task["status"] == "completed", task
        assert task["result"]["authorization"] == f"Bearer {TOKEN}"
        # isError: a tool error carrying the remote's message.
        task = server.run(method="r_broken", params={"reason": "on purpose"})
        assert task["status"] == "failed"
        assert task["error"]["type"] == "McpToolError"
        assert "broken on purpose: on purpose" in task["error"]["message"]
        # A result over limits.result comes back as a marker with a preview.
        task = server.run(method="r_huge", params={"size": 50_000})
        assert task["status"] == "completed", task
        assert task["result"]["truncated"] is True
        assert task["result"]["limit"] == 4000
        # The server's timeout (1 s) bounds the call.
        task = server.run(method="s_slow", params={"seconds": 20}, within=40)
        assert task["status"] == "failed"
        assert task["error"]["type"] == "TimeoutError"
        assert "timed out after 1" in task["error"]["message"]

        # A model task: the scripted model calls the remote tool like any other.
        model.push(reply.tool_call("r_add", {"a": 20, "b": 22}), reply.text("It is 42."))
        task = server.run(task_description="What is 20 + 22?")
        assert (task["status"], task["result"]) == ("completed", "It is 42."), task
        steps = server.trace(task["task_id"])
        assert [(s["kind"], s["name"]) for s in steps][1] == ("tool", "r_add")
        assert steps[1]["result"] == {"result": 42}
        tools = {t["function"]["name"] for t in model.requests[0].get("tools") or []}
        prompt = str(model.requests[0]["messages"])
        assert "r_add" in tools or "r_add" in prompt
        assert TOKEN not in (project / "qasdk.log").read_text()
    finally:
        assert server.stop() == 0, server.output


def test_a_stdio_server_is_started_per_call_with_its_env(
    tmp_path: Path, model: ScriptedModel, fresh_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MCP_TEST_VALUE", "from-the-environment")
    servers = [
        {
            "name": "local",
            "command": sys.executable,
            "args": [str(REMOTE), "stdio"],
            "env": {"QASDK_TEST_REMOTE_VAR": "${MCP_TEST_VALUE}"},
            "tools": ["shout", "whoami"],
            "prefix": "io_",
        }
    ]
    project = project_with(tmp_path / "p", model.url, servers)
    synced = qasdk(project, fresh_database, "sync", "tools")
    assert synced.returncode == 0, synced.stderr
    server = Server(project, fresh_database)
    try:
        task = server.run(method="io_shout", params={"text": "hello"}, within=60)
        assert (task["status"], task["result"]) == ("completed", {"result": "HELLO!"}), task
        task = server.run(method="io_whoami", params={}, within=60)
        assert task["status"] == "completed", task
        assert task["result"]["variable"] == "from-the-environment"
        # Only its env: reaches it: not the database URL the worker has (twice, see harness).
        assert task["result"]["database"] == ""
        # The server process is kept for the next call, not started again.
        again = server.run(method="io_whoami", params={}, within=60)
        assert again["result"]["pid"] == task["result"]["pid"]
        methods = {m["name"]: m for m in server.methods()["methods"]}
        assert methods["io_whoami"]["endpoint"]["env"] == {
            "QASDK_TEST_REMOTE_VAR": "${MCP_TEST_VALUE}"
        }
    finally:
        assert server.stop() == 0, server.output


def test_a_resync_reports_what_changed_on_the_remote_side(
    tmp_path: Path, model: ScriptedModel, fresh_database: str
) -> None:
    port = free_port()
    servers = [{"name": "calc", "url": f"http://127.0.0.1:{port}/mcp", "prefix": "r_"}]
    project = project_with(tmp_path / "p", model.url, servers)
    first = RemoteServer(port, variant=1)
    try:
        synced = qasdk(project, fresh_database, "sync", "tools")
        assert synced.returncode == 0, synced.stderr
        again = qasdk(project, fresh_database, "sync", "tools")
        assert again.returncode == 0, again.stderr
        assert "0 created, 0 updated" in again.stdout  # nothing changed: nothing written
        server = Server(project, fresh_database)
        task = server.run(method="r_add", params={"a": 1, "b": 2})
        assert (task["status"], task["result"]) == ("completed", {"result": 3}), task
    finally:
        first.stop()
    second = RemoteServer(port, variant=2)
    try:
        # The worker's session to the first server is stale: it reconnects to the new one.
        task = server.run(method="r_add", params={"a": 1, "b": 2})
        assert (task["status"], task["result"]) == ("completed", {"result": 3}), task
        assert server.stop() == 0, server.output
        changed = qasdk(project, fresh_database, "sync", "tools", "--json")
        assert changed.returncode == 0, changed.stderr
        import json

        report = json.loads(changed.stdout)
        assert report["created"] == ["r_echo"]
        assert report["updated"] == {"r_add": ["description", "parameters"]}
        assert report["stale"] == ["r_shout"]
        assert report["servers"]["r_shout"] == "calc"
        # The text report of the same change, then --prune removes the tool gone remotely.
        text = qasdk(project, fresh_database, "sync", "tools", "--dry-run", "--prune")
        assert "- r_shout" in text.stdout
        assert "deleted (mcp server 'calc')" in text.stdout
        pruned = qasdk(project, fresh_database, "sync", "tools", "--prune")
        assert pruned.returncode == 0, pruned.stderr
        listed = qasdk(project, fresh_database, "methods", "--json")
        names = {m["name"] for m in json.loads(listed.stdout)}
        assert "r_shout" not in names
        assert {"r_add", "r_echo"} <= names
    finally:
        second.stop()

    # The server is gone now: a call fails clearly, naming it.
    server = Server(project, fresh_database)
    try:
        task = server.run(method="r_echo", params={"text": "anyone?"}, within=60)
        assert task["status"] == "failed", task
        assert task["error"]["type"] == "McpUnavailable"
        assert f"mcp server 'calc' (http://127.0.0.1:{port}/mcp)" in task["error"]["message"]
    finally:
        assert server.stop() == 0, server.output


def test_an_unreachable_server_fails_the_sync_and_changes_nothing(
    tmp_path: Path, model: ScriptedModel, fresh_database: str
) -> None:
    project = make_project(tmp_path / "p", model.url)
    synced = qasdk(project, fresh_database, "sync", "tools")
    assert synced.returncode == 0, synced.stderr
    before = qasdk(project, fresh_database, "methods", "--json").stdout

    url = f"http://127.0.0.1:{free_port()}/mcp"
    servers = [{"name": "gone", "url": url, "timeout": 5}]
    (project / "tools" / "methods.yaml").write_text(yaml.safe_dump({"mcp_servers": servers}))
    failed = qasdk(project, fresh_database, "sync", "tools", "--prune")
    assert failed.returncode != 0
    assert "tools/methods.yaml:" in failed.stderr
    assert "mcp server 'gone'" in failed.stderr
    assert "cannot list its tools" in failed.stderr
    assert "Traceback" not in failed.stderr
    assert qasdk(project, fresh_database, "methods", "--json").stdout == before


def test_a_remote_tool_named_like_a_native_one_is_an_error_naming_both(
    tmp_path: Path, remote: RemoteServer, model: ScriptedModel
) -> None:
    project = make_project(tmp_path / "p", model.url)
    servers = [{"name": "calc", "url": remote.url, "tools": ["add"]}]
    (project / "tools" / "methods.yaml").write_text(yaml.safe_dump({"mcp_servers": servers}))
    checked = qasdk(project, "postgresql://unused", "check", "tools")
    assert checked.returncode != 0
    assert "duplicate tool name" in checked.stderr
    assert "tools/basic.py:" in checked.stderr
    assert "tool 'add' of mcp server 'calc'" in checked.stderr
    assert "prefix" in checked.stderr


def test_without_the_mcp_extra_sync_says_what_to_install(
    tmp_path: Path, model: ScriptedModel, fresh_database: str
) -> None:
    project = make_project(tmp_path / "p", model.url)
    servers = [{"name": "calc", "url": "http://127.0.0.1:1/mcp"}]
    (project / "tools" / "methods.yaml").write_text(yaml.safe_dump({"mcp_servers": servers}))
    hide = project / ".hide"
    hide.mkdir()
    # As if the mcp package were not installed: importing it fails.
    (hide / "sitecustomize.py").write_text("import sys\nsys.modules['mcp'] = None\n")
    run = subprocess.run(
        [sys.executable, "-m", "qasdk", "sync", "tools"],
        cwd=project,
        env={**environment(project, fresh_database), "PYTHONPATH": str(hide)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 1
    assert (
        "tools/methods.yaml:2: mcp_servers.calc: MCP servers need the mcp package: " in run.stderr
    )
    assert "pip install 'qasdk[mcp]'" in run.stderr
    assert "Traceback" not in run.stderr


def test_the_breaker_opens_on_a_remote_server_that_is_down(
    tmp_path: Path, model: ScriptedModel, fresh_database: str
) -> None:
    port = free_port()
    servers = [{"name": "calc", "url": f"http://127.0.0.1:{port}/mcp", "tools": ["add"]}]
    project = project_with(tmp_path / "p", model.url, servers)
    (project / "tools" / "basic.py").unlink()  # only the remote tool: its name is free
    config = yaml.safe_load((project / "model_config.yaml").read_text())
    config["middleware"] = [
        {"name": "breaker", "options": {"failures": 2, "window": 4, "cool_down": 600}}
    ]
    (project / "model_config.yaml").write_text(yaml.safe_dump(config))
    up = RemoteServer(port)
    try:
        synced = qasdk(project, fresh_database, "sync", "tools")
        assert synced.returncode == 0, synced.stderr
    finally:
        up.stop()
    server = Server(project, fresh_database)
    try:
        for _ in range(2):
            task = server.run(method="add", params={"a": 1, "b": 2})
            assert task["error"]["type"] == "McpUnavailable", task
        refused = server.run(method="add", params={"a": 1, "b": 2})
        assert refused["error"]["type"] == "CircuitOpen", refused
        shown = server.http.get("/api/methods/add").json()
        assert shown["breaker"]["state"] == "open"
    finally:
        assert server.stop() == 0, server.output
