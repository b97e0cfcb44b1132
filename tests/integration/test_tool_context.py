"""``qasdk.ToolContext`` through a real server: the task, progress over SSE, cancellation.

On a database of its own: the session server's workers must not pick these
tasks up (their project has no such tools).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from qasdk.testing import ScriptedModel, reply
from tests.conftest import scratch_database
from tests.integration.harness import Server, make_project, qasdk, until

pytestmark = [pytest.mark.integration]

CONTEXTUAL = '''
import time
from pathlib import Path

from qasdk import ToolContext, tool


@tool
def steps(n: int, ctx: ToolContext, pause: float = 0.2) -> dict:
    """Report progress n times.

    Args:
        n: How many steps.
        pause: Seconds between steps.
    """
    for i in range(1, n + 1):
        time.sleep(pause)
        ctx.report_progress(i / n, f"step {i} of {n}")
    ctx.logger.info("did %d steps", n)
    return {"task_id": ctx.task_id, "attempt": ctx.attempt, "tool": ctx.tool,
            "remaining": ctx.remaining()}


@tool
def patient(marker: str, ctx: ToolContext) -> str:
    """Wait until cancelled, then say so in a file.

    Args:
        marker: The file to write.
    """
    Path(marker).write_text("started")
    while not ctx.cancelled:
        time.sleep(0.01)
    Path(marker).write_text("saw the cancellation")
    return "stopped"
'''


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory,
    session_model: ScriptedModel,
    pg_data: Path,
    pg_url: str,
) -> Iterator[Server]:
    # A generous grace: the tool must see the warning even on a busy machine.
    project = make_project(
        tmp_path_factory.mktemp("context"), session_model.url, worker={"cancel_grace": 20}
    )
    (project / "tools" / "contextual.py").write_text(CONTEXTUAL)
    with scratch_database(pg_data, pg_url, "context") as url:
        synced = qasdk(project, url, "sync", "tools")
        assert synced.returncode == 0, synced.stderr
        running = Server(project, url)
        try:
            yield running
        finally:
            assert running.stop() == 0, running.output


def follow(base: str, task_id: str, out: list[tuple[str, dict[str, Any]]]) -> None:
    with (
        httpx.Client(base_url=base, timeout=30) as client,
        client.stream("GET", f"/api/tasks/{task_id}/events") as response,
    ):
        assert response.status_code == 200
        event = None
        for line in response.iter_lines():
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and event:
                out.append((event, json.loads(line.split(":", 1)[1])))


def test_the_context_is_not_a_parameter(server: Server) -> None:
    methods = {m["name"]: m for m in server.methods()["methods"]}
    assert [p["name"] for p in methods["steps"]["parameters"]] == ["n", "pause"]
    assert [p["name"] for p in methods["patient"]["parameters"]] == ["marker"]
    refused = server.http.post(
        "/api/tasks", json={"method": "steps", "params": {"n": 1, "ctx": {"task_id": "x"}}}
    )
    assert refused.status_code == 400, refused.text
    assert "ctx" in refused.text


def test_a_direct_task_reports_progress_over_sse(server: Server) -> None:
    task_id = server.submit(method="steps", params={"n": 3, "pause": 0.3}, timeout=60)["task_id"]
    events: list[tuple[str, dict[str, Any]]] = []
    reader = threading.Thread(target=follow, args=(server.base, task_id, events))
    reader.start()
    reader.join(60)
    assert not reader.is_alive(), "the stream did not end with the task"
    progress = [data for kind, data in events if kind == "progress"]
    assert progress, events
    assert progress[-1] == {"tool": "steps", "fraction": 1.0, "message": "step 3 of 3"}
    assert all(0 < p["fraction"] <= 1 for p in progress)
    task = server.get(task_id)
    assert task["status"] == "completed", task
    result = task["result"]
    assert (result["task_id"], result["attempt"], result["tool"]) == (task_id, 1, "steps")
    assert 0 < result["remaining"] <= 60
    (step,) = server.trace(task_id)
    assert step["content"] == "progress 100%: step 3 of 3"  # the trace keeps the last report
    lines = [r for r in server.log_records() if "did 3 steps" in r.get("message", "")]
    assert lines, "the context's logger did not reach the worker's log"


def test_the_model_s_calls_get_a_context_too(server: Server, model: ScriptedModel) -> None:
    model.push(reply.tool_call("steps", {"n": 1, "pause": 0}), reply.text("done"))
    task = server.run(task_description="do one step", within=60)
    assert task["status"] == "completed", task
    (tool_step,) = [s for s in server.trace(task["task_id"]) if s["kind"] == "tool"]
    assert tool_step["result"]["task_id"] == task["task_id"]
    assert tool_step["result"]["remaining"] is None  # the task has no timeout


def test_a_cancelled_tool_sees_it_and_stops(server: Server, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    task_id = server.submit(method="patient", params={"marker": str(marker)})["task_id"]
    until(marker.exists, "the tool never started", within=60)
    cancelled = server.http.post(f"/api/tasks/{task_id}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    until(
        lambda: marker.read_text() == "saw the cancellation",
        "the tool never saw ctx.cancelled",
        within=20,
    )
