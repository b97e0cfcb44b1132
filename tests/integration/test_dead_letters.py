"""Task retries and dead letters (issue 13), through a real server, its worker and qwen-agent.

A retryable failure (a tool's declared ``retry_on`` error, a tool timeout, the
model unavailable) queues the task again with backoff; after
``worker.max_attempts`` it is ``blocked`` with its attempt history, until an
operator retries it (``POST /api/tasks/{id}/retry``) or discards it
(``/discard``). The ``flaky`` tool fails until its ``ok`` param says otherwise.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from qasdk.testing import ScriptedModel, reply
from tests.conftest import scratch_database
from tests.integration.harness import Server, make_project, qasdk, until

pytestmark = [pytest.mark.integration]

ATTEMPTS = 3
#: Generous: each retry waits for its backoff and, at worst, the queue's 5 s fetch poll.
BLOCKED_WITHIN = 90.0

FLAKY = '''
import os
from pathlib import Path

from qasdk import tool

HERE = Path(os.environ["QASDK_TEST_RUNS"]).parent


@tool(retries=1, retry_on=["ConnectionError"])
def flaky(tag: str, ok: bool = False) -> str:
    """Fail with a connection error unless told it will work.

    Args:
        tag: Which counter to use.
        ok: Whether the backend is back.
    """
    path = HERE / f"flaky-{tag}"
    with open(path, "a") as out:
        out.write("run\\n")
    if not ok:
        raise ConnectionError(f"{tag}: the backend hung up")
    return f"{tag} ok"
'''


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory,
    session_model: ScriptedModel,
    pg_data: Path,
    pg_url: str,
) -> Iterator[Server]:
    folder = make_project(
        tmp_path_factory.mktemp("dead-letters"),
        session_model.url,
        worker={"max_attempts": ATTEMPTS, "retry_backoff": 0.05, "model_retries": 0},
    )
    (folder / "tools" / "flaky.py").write_text(FLAKY)
    with scratch_database(pg_data, pg_url, "deadletters") as url:
        synced = qasdk(folder, url, "sync", "tools")
        assert synced.returncode == 0, synced.stderr
        served = Server(folder, url)
        try:
            yield served
        finally:
            assert served.stop() == 0, served.output


def blocked(server: Server, task_id: str) -> dict[str, Any]:
    """The task once it is blocked (it must not end any other way meanwhile)."""
    seen: dict[str, Any] = {}

    def check() -> bool:
        seen.update(server.get(task_id))
        assert seen["status"] in {"pending", "running", "blocked"}, seen
        return seen["status"] == "blocked"

    until(check, f"task {task_id} never became blocked: {seen}", within=BLOCKED_WITHIN)
    return seen


def post(server: Server, path: str, expect: int, **body: Any) -> dict[str, Any]:
    response = server.http.post(path, json=body or None)
    assert response.status_code == expect, response.text
    result: dict[str, Any] = response.json()
    return result


def runs(server: Server, tag: str) -> int:
    path = server.project / f"flaky-{tag}"
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_a_declared_retryable_error_is_retried_into_blocked_then_retried_to_success(
    server: Server,
) -> None:
    task_id = server.submit(method="flaky", params={"tag": "one"})["task_id"]
    task = blocked(server, task_id)
    assert task["error"]["type"] == "ConnectionError"
    assert task["failures"] == ATTEMPTS and task["next_attempt_at"] is None
    history = task["attempt_history"]
    assert [h["attempt"] for h in history] == [1, 2, 3]
    assert all(h["error"]["type"] == "ConnectionError" for h in history)
    assert [h["retry_at"] is not None for h in history] == [True, True, False]
    assert runs(server, "one") == ATTEMPTS * 2  # each attempt: the call and its one retry
    listed = server.http.get("/api/tasks", params={"status": "blocked"}).json()["tasks"]
    assert task_id in [t["task_id"] for t in listed]

    # New params are checked as a submit's: the task stays blocked.
    refused = post(server, f"/api/tasks/{task_id}/retry", 400, params={"ok": True})
    assert refused["error"]["type"] == "invalid_params", refused
    assert server.get(task_id)["status"] == "blocked"
    refused = post(server, f"/api/tasks/{task_id}/retry", 400, task_description="try again")
    assert "task_description" in refused["error"]["message"]
    refused = post(server, f"/api/tasks/{task_id}/retry", 400, priority=9)
    assert "priority" in refused["error"]["message"], refused

    retried = post(server, f"/api/tasks/{task_id}/retry", 200, params={"tag": "one", "ok": True})
    assert retried["status"] in {"pending", "running", "completed"}
    done = server.finished(task_id, within=60)
    assert done["status"] == "completed", done
    assert done["result"] == "one ok"
    assert done["failures"] == 0 and len(done["attempt_history"]) == ATTEMPTS  # history kept

    # Only a blocked task can be retried or discarded.
    again = post(server, f"/api/tasks/{task_id}/retry", 409)
    assert "completed, not blocked" in again["error"]["message"]
    post(server, f"/api/tasks/{task_id}/discard", 409)
    post(server, "/api/tasks/00000000-0000-4000-8000-000000000000/retry", 404)

    entries = server.http.get("/api/audit", params={"target": task_id}).json()["entries"]
    assert "task.retry" in {e["action"] for e in entries}
    metrics = server.http.get("/metrics").text
    assert "qasdk_tasks_blocked " in metrics
    assert 'qasdk_task_retries_total{kind="direct"}' in metrics


def test_a_tool_timeout_blocks_the_task_and_discard_fails_it(server: Server) -> None:
    task_id = server.submit(method="hang", params={"seconds": 30})["task_id"]
    task = blocked(server, task_id)
    assert task["error"]["type"] == "TimeoutError"
    assert len(task["attempt_history"]) == ATTEMPTS
    discarded = post(server, f"/api/tasks/{task_id}/discard", 200)
    assert discarded["status"] == "failed"
    assert discarded["error"]["type"] == "Discarded"
    assert "TimeoutError" in discarded["error"]["message"]  # the last error, kept
    post(server, f"/api/tasks/{task_id}/discard", 409)
    entries = server.http.get("/api/audit", params={"target": task_id}).json()["entries"]
    assert "task.discard" in {e["action"] for e in entries}


def test_an_error_not_declared_retryable_fails_at_once(server: Server) -> None:
    task = server.run(method="fail", params={"message": "no"})
    assert task["status"] == "failed", task
    assert task["attempt_history"] == [] and task["failures"] == 0


def test_a_blocked_sub_task_keeps_its_graph_open_until_retried_or_discarded(
    server: Server,
) -> None:
    kept = server.submit(
        subtasks=[
            {"id": "a", "method": "flaky", "params": {"tag": "ga"}},
            {
                "id": "b",
                "method": "echo",
                "params": {"text": {"$ref": "a.result"}},
                "depends_on": ["a"],
            },
            {"id": "c", "method": "add", "params": {"a": 1, "b": 2}},
        ]
    )["task_id"]
    given_up = server.submit(
        subtasks=[
            {"id": "a", "method": "flaky", "params": {"tag": "gd"}},
            {"id": "c", "method": "add", "params": {"a": 1, "b": 2}},
        ]
    )["task_id"]
    graphs = {}
    for parent in (kept, given_up):
        listed = server.http.get("/api/tasks", params={"parent_id": parent}).json()["tasks"]
        graphs[parent] = {t["subtask_id"]: t["task_id"] for t in listed}
    blocked(server, graphs[kept]["a"])
    blocked(server, graphs[given_up]["a"])
    until(lambda: server.get(graphs[kept]["c"])["status"] == "completed", "c never completed")
    # Not a failure under fail_fast: the graph waits, its siblings were not cancelled.
    assert server.get(kept)["status"] == "running"
    assert server.get(graphs[kept]["b"])["status"] == "pending"
    assert server.get(given_up)["status"] == "running"

    post(server, f"/api/tasks/{graphs[kept]['a']}/retry", 200, params={"tag": "ga", "ok": True})
    done = server.finished(kept, within=60)
    assert done["status"] == "completed", done
    assert done["result"]["b"]["result"] == "ga ok"

    post(server, f"/api/tasks/{graphs[given_up]['a']}/discard", 200)
    failed = server.finished(given_up, within=60)
    assert failed["status"] == "failed", failed
    assert failed["result"]["a"]["error"]["type"] == "Discarded"


def test_an_unavailable_model_is_retried_into_blocked_then_retried(
    server: Server, model: ScriptedModel
) -> None:
    model.push(*[reply.error(503, "overloaded", should_retry=False) for _ in range(ATTEMPTS)])
    task_id = server.submit(task_description="anyone there?")["task_id"]
    task = blocked(server, task_id)
    assert task["error"]["type"] == "ModelUnavailable", task
    assert [h["error"]["type"] for h in task["attempt_history"]] == ["ModelUnavailable"] * 3
    model.push(reply.text("Here now."))
    post(server, f"/api/tasks/{task_id}/retry", 200)
    done = server.finished(task_id, within=60)
    assert done["status"] == "completed", done
    assert done["result"] == "Here now."
