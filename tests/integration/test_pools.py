"""Worker pools and the workers view, with real worker processes on one database.

A pooled tool's task runs only on a worker serving its pool; while none does it
waits, pending and visibly so, and runs once one starts. Workers register with
their pools and counts, go dead when killed, and each serves its own metrics.
"""

from __future__ import annotations

import json
import signal
import textwrap
from pathlib import Path
from typing import Any

import httpx
import pytest

from qasdk.testing import ScriptedModel, reply
from tests.integration.harness import Process, Server, make_project, qasdk, until
from tests.integration.test_observability import parse_metrics

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

#: Tools that say which worker ran them: a tool process is its worker's child.
POOLED = '''
import os

from qasdk import tool


@tool(pool="gpu")
def gpu_where(tag: str) -> int:
    """The pid of the worker that ran it (a gpu-pool tool).

    Args:
        tag: Anything, to tell calls apart.
    """
    return os.getppid()


@tool(pool="gpu", requires_approval=True)
def gpu_guarded(tag: str) -> int:
    """The pid of the worker that ran it, once a person approved (a gpu-pool tool).

    Args:
        tag: Anything, to tell calls apart.
    """
    return os.getppid()


@tool
def default_where(tag: str) -> int:
    """The pid of the worker that ran it (a default-pool tool).

    Args:
        tag: Anything, to tell calls apart.
    """
    return os.getppid()
'''


@pytest.fixture
def project(tmp_path: Path, session_model: ScriptedModel, fresh_database: str) -> Path:
    project = make_project(tmp_path / "project", session_model.url)
    (project / "tools" / "pooled.py").write_text(textwrap.dedent(POOLED))
    synced = qasdk(project, fresh_database, "sync", "tools")
    assert synced.returncode == 0, synced.stdout + synced.stderr
    return project


def workers(server: Server) -> dict[int, dict[str, Any]]:
    response = server.http.get("/api/workers")
    assert response.status_code == 200, response.text
    return {w["pid"]: w for w in response.json()["workers"]}


def metrics(server: Server) -> Any:
    return parse_metrics(server.http.get("/metrics").text)


async def test_a_pooled_task_waits_for_its_pool_and_runs_only_there(
    project: Path, fresh_database: str, model: ScriptedModel
) -> None:
    server = Server(project, fresh_database, "--no-worker")
    default = Process(project, fresh_database, "worker")
    gpu: Process | None = None
    try:
        default.wait_for(r"running up to .*pools: default\)")
        waiting = server.submit(method="gpu_where", params={"tag": "first"})
        assert server.get(waiting["task_id"])["pool"] == "gpu"
        # The default worker is idle and runs its own pool's tasks, never the gpu one.
        done = server.run(method="default_where", params={"tag": "d"})
        assert (done["status"], done["result"], done["pool"]) == (
            "completed",
            default.proc.pid,
            "default",
        )
        until(lambda: default.proc.pid in workers(server), "the default worker never registered")
        task = server.get(waiting["task_id"])
        assert (task["status"], task["waiting_for_pool"]) == ("pending", True), task
        assert metrics(server)['qasdk_pool_queue_depth{pool="gpu"}'] == 1

        # A model task runs in the default pool: its call of a gpu tool fails, saying why.
        model.push(reply.tool_call("gpu_where", {"tag": "m"}), reply.text("no gpu here"))
        described = server.run(task_description="where does the gpu tool run?")
        assert described["status"] == "completed", described
        (call,) = [s for s in server.trace(described["task_id"]) if s["kind"] == "tool"]
        assert call["error"]["type"] == "PoolNotServed", call
        assert "worker pool 'gpu'" in call["error"]["message"]
        assert "--pool gpu" in call["error"]["message"]
        assert server.get(waiting["task_id"])["status"] == "pending"

        # A graph's sub-tasks are queued in their own tools' pools, when they become ready.
        graph = server.submit(
            subtasks=[
                {"id": "d", "method": "default_where", "params": {"tag": "gd"}},
                {"id": "g", "method": "gpu_where", "params": {"tag": "gg"}, "depends_on": ["d"]},
            ]
        )
        until(
            lambda: (
                server.get(graph["task_id"]).get("status") == "running"
                and metrics(server)['qasdk_pool_queue_depth{pool="gpu"}'] == 2
            ),
            "the graph's gpu sub-task was never queued in the gpu pool",
        )

        gpu = Process(project, fresh_database, "worker", "--pool", "gpu", "--metrics-port", "0")
        scrape = gpu.wait_for(r"pools: gpu\); metrics at (http://127\.0\.0\.1:\d+/metrics)")
        first = server.finished(waiting["task_id"], within=60)
        assert (first["status"], first["result"]) == ("completed", gpu.proc.pid), first
        assert server.get(first["task_id"]).get("waiting_for_pool") is None  # not pending now
        whole = server.finished(graph["task_id"], within=60)
        assert whole["status"] == "completed", whole
        assert whole["result"]["d"]["result"] == default.proc.pid
        assert whole["result"]["g"]["result"] == gpu.proc.pid
        again = server.run(method="gpu_where", params={"tag": "second"})
        assert again["result"] == gpu.proc.pid
        # A resume after approval is queued in the task's pool again.
        guarded = server.submit(method="gpu_guarded", params={"tag": "ok?"})["task_id"]
        until(
            lambda: server.get(guarded)["status"] == "awaiting_approval",
            "the guarded task never parked for approval",
            within=30,
        )
        (approval,) = server.http.get("/api/approvals", params={"task_id": guarded}).json()[
            "approvals"
        ]
        decided = server.http.post(
            f"/api/tasks/{guarded}/approvals/{approval['approval_id']}",
            json={"decision": "approve"},
        )
        assert decided.status_code == 200, decided.text
        resumed = server.finished(guarded, within=60)
        assert (resumed["status"], resumed["result"]) == ("completed", gpu.proc.pid), resumed
        # Priorities still hold within a pool; the default pool's tasks stay on its worker.
        assert server.run(method="default_where", params={"tag": "e"})["result"] == (
            default.proc.pid
        )

        # The workers view: both registered, with their pools and counts.
        until(
            lambda: (
                workers(server).get(gpu.proc.pid, {}).get("done", 0) >= 3
                and workers(server)[default.proc.pid]["done"] >= 4
            ),
            "the workers' done counts never reached what they ran",
        )
        seen = workers(server)
        for pid, pools in ((default.proc.pid, ["default"]), (gpu.proc.pid, ["gpu"])):
            row = seen[pid]
            assert row["pools"] == pools
            assert row["alive"] is True and row["stopped_at"] is None
            assert row["name"].endswith(f":{pid}") and row["host"]
            assert row["running"] == 0 and row["concurrency"] == 4
            assert {"id", "version", "started_at", "last_heartbeat"} <= set(row)
        samples = metrics(server)
        assert samples['qasdk_pool_workers{pool="gpu",state="alive"}'] == 1
        assert samples['qasdk_pool_workers{pool="default",state="alive"}'] == 1

        # The gpu worker's own metrics port has its tool counters (and no database gauges).
        own = parse_metrics(httpx.get(scrape.group(1), timeout=10).text)
        assert own['qasdk_tool_calls_total{tool="gpu_where",outcome="success"}'] == 3
        assert own['qasdk_tasks_finished_total{kind="direct",status="completed"}'] == 4
        assert "qasdk_database_up" not in own

        # Killed: presumed dead after worker.stalled_after (2 s here), never pruned at once.
        gpu.stop(signal.SIGKILL)
        until(
            lambda: workers(server)[gpu.proc.pid]["alive"] is False,
            "the killed worker never went dead",
            within=60,
        )
        assert metrics(server)['qasdk_pool_workers{pool="gpu",state="dead"}'] == 1
        late = server.submit(method="gpu_where", params={"tag": "late"})
        until(
            lambda: server.get(late["task_id"]).get("waiting_for_pool") is True,
            "a gpu task never showed it waits once its worker died",
        )

        listed = qasdk(project, fresh_database, "workers", "--json")
        assert listed.returncode == 0, listed.stderr
        body = json.loads(listed.stdout)
        states = {w["pid"]: w["alive"] for w in body["workers"]}
        assert states[default.proc.pid] is True and states[gpu.proc.pid] is False
        text = qasdk(project, fresh_database, "workers").stdout
        assert "dead" in text and "alive" in text and "gpu" in text
        assert "2 workers registered, 1 alive." in text
    finally:
        if gpu is not None:
            gpu.kill()
        assert default.stop() == 0
        assert server.stop() == 0
    # Stopped on purpose: at once not alive, and says it stopped.
    listed = json.loads(qasdk(project, fresh_database, "workers", "--json").stdout)
    row = {w["pid"]: w for w in listed["workers"]}[default.proc.pid]
    assert row["alive"] is False and row["stopped_at"] is not None
