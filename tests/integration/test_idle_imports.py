"""An idle `qasdk serve` leaves qwen-agent, the MCP SDK and griffe unloaded until first use.

They are most of its memory (issue 16: 227 MB idle with 1,000 tools, 80 MB
without them; ``bench/memory.py``). The server runs as a user runs it; a
``sitecustomize`` of the test's lists the modules the process holds when asked.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from qasdk.testing import ScriptedModel, reply
from tests.integration.harness import Server, make_project, qasdk

pytestmark = pytest.mark.integration

#: Loaded on first use only: by a task that needs the model, a request to /mcp, --watch.
LAZY = ("qwen_agent", "openai", "numpy", "dashscope", "mcp", "griffe")

#: Lists ``sys.modules`` into ``<folder>/<pid>-<name>.json`` for each ``<folder>/<name>``
#: the test creates (polled by a daemon thread: the server's loop is left alone).
SITECUSTOMIZE = """
import json, os, sys, threading, time

def _answer(folder):
    done = set()
    while True:
        for name in sorted(os.listdir(folder)):
            if name.endswith(".json") or name in done:
                continue
            done.add(name)
            target = os.path.join(folder, f"{os.getpid()}-{name}.json")
            with open(target + ".tmp", "w") as out:
                json.dump(sorted(sys.modules), out)
            os.replace(target + ".tmp", target)
        time.sleep(0.05)

if os.environ.get("MODULES_DUMP_DIR"):
    threading.Thread(target=_answer, args=(os.environ["MODULES_DUMP_DIR"],), daemon=True).start()
"""


def serve_project(tmp_path: Path, model: ScriptedModel, url: str, **worker: object) -> Server:
    """`qasdk serve` of a fresh project, with the module-listing hook installed."""
    project = make_project(tmp_path / "p", model.url, worker=worker)
    assert qasdk(project, url, "sync", "tools").returncode == 0
    hook = tmp_path / "hook"
    hook.mkdir()
    (tmp_path / "dumps").mkdir()
    (hook / "sitecustomize.py").write_text(SITECUSTOMIZE)
    env = {"PYTHONPATH": str(hook), "MODULES_DUMP_DIR": str(tmp_path / "dumps")}
    return Server(project, url, env=env)


def loaded(server: Server, folder: Path, name: str) -> set[str]:
    """The top-level packages the server's main process holds now."""
    (folder / name).touch()
    answer = folder / f"{server.proc.pid}-{name}.json"
    deadline = time.monotonic() + 30
    while not answer.exists():
        assert time.monotonic() < deadline, f"no module list from the server:\n{server.output}"
        time.sleep(0.05)
    return {m.split(".")[0] for m in json.loads(answer.read_text())}


def test_idle_serve_loads_the_model_and_mcp_packages_on_first_use(
    tmp_path: Path, model: ScriptedModel, fresh_database: str
) -> None:
    server = serve_project(tmp_path, model, fresh_database)
    dumps = tmp_path / "dumps"
    try:
        assert server.http.get("/health").status_code == 200
        direct = server.run(method="add", params={"a": 2, "b": 40})
        assert direct["status"] == "completed" and direct["result"] == 42, direct
        idle = loaded(server, dumps, "idle")
        assert "litestar" in idle and "procrastinate" in idle  # the hook sees the server
        assert sorted(idle & set(LAZY)) == []

        # First uses still work, and load what they need.
        model.push(reply.tool_call("add", {"a": 1, "b": 2}), reply.text("The sum is 3."))
        described = server.run(task_description="What is 1 + 2?")
        assert described["status"] == "completed", described
        assert described["result"] == "The sum is 3."
        initialize = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "test", "version": "0"},
            },
        }
        answer = server.http.post(
            "/mcp",
            json=initialize,
            headers={"Accept": "application/json, text/event-stream"},
        )
        assert answer.status_code == 200, answer.text
        assert '"serverInfo"' in answer.text
        used = loaded(server, dumps, "used")
        assert {"qwen_agent", "openai", "mcp"} <= used
    finally:
        code = server.stop()
    assert code == 0, server.output


def test_worker_warm_up_loads_qwen_agent_at_start(
    tmp_path: Path, model: ScriptedModel, fresh_database: str
) -> None:
    server = serve_project(tmp_path, model, fresh_database, warm_up=True)
    try:
        deadline = time.monotonic() + 60
        n = 0
        while "qwen_agent" not in loaded(server, tmp_path / "dumps", f"poll{n}"):
            assert time.monotonic() < deadline, "worker.warm_up: qwen-agent was never loaded"
            n += 1
            time.sleep(0.2)
        model.push(reply.text("ready"))
        described = server.run(task_description="Are you there?")
        assert described["status"] == "completed" and described["result"] == "ready", described
    finally:
        code = server.stop()
    assert code == 0, server.output
