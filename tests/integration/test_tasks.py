"""Tasks run by real workers: the model stand-in, tools in subprocesses, PostgreSQL."""

from __future__ import annotations

import itertools
import signal
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from qasdk.testing import ScriptedModel, reply
from tests.integration.harness import Process, Server, make_project, qasdk, runs

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


def tag() -> str:
    return uuid.uuid4().hex[:10]


# -- described tasks ------------------------------------------------------------------


async def test_described_task_calls_a_tool_and_keeps_thinking_out_of_the_result(
    served: Server, model: ScriptedModel, conn: Any
) -> None:
    model.push(
        reply.tool_call("add", {"a": 2, "b": 40}, thinking="I should add the numbers."),
        reply.text("The sum is 42.", thinking="The tool said 42."),
    )
    task = served.run(task_description="What is 2 + 40?")
    assert task["status"] == "completed", task
    assert task["result"] == "The sum is 42."
    assert task["kind"] == "described"
    steps = served.trace(task["task_id"])
    assert [(s["seq"], s["kind"], s["name"]) for s in steps] == [
        (1, "model", "qwen3:4b"),
        (2, "tool", "add"),
        (3, "model", "qwen3:4b"),
    ]
    assert steps[0]["thinking"] == "I should add the numbers."
    assert steps[0]["result"] == {"tool_calls": [{"name": "add", "arguments": '{"a": 2, "b": 40}'}]}
    assert steps[1]["arguments"] == {"a": 2, "b": 40}
    assert steps[1]["result"] == 42
    assert steps[2]["content"] == "The sum is 42."
    assert steps[2]["thinking"] == "The tool said 42."
    assert all(s["duration_ms"] >= 0 for s in steps)
    # The tool result went back to the model, and the model was asked with the tools.
    second = model.requests[1]
    assert any("42" in str(m.get("content")) for m in second["messages"])
    assert "add" in str(model.requests[0]["messages"][0]["content"])


# Property 2: Configuration parameter propagation
async def test_model_configuration_reaches_the_model_server(
    served: Server, model: ScriptedModel, conn: Any
) -> None:
    model.push(reply.text("fine"))
    served.run(task_description="hello")
    (request,) = model.requests
    assert request["model"] == "qwen3:4b"
    assert request["temperature"] == 0.7
    assert request["max_tokens"] == 2000


async def test_a_tool_error_goes_back_to_the_model(
    served: Server, model: ScriptedModel, conn: Any
) -> None:
    model.push(reply.tool_call("fail", {"message": "boom"}), reply.text("The tool failed: boom."))
    task = served.run(task_description="Try the failing tool")
    assert task["status"] == "completed"
    tool_step = served.trace(task["task_id"])[1]
    assert tool_step["error"] == {"type": "ValueError", "message": "boom"}
    assert "Error: ValueError: boom" in str(model.requests[1]["messages"])


async def test_transient_model_faults_are_retried_with_backoff(
    served: Server, model: ScriptedModel, conn: Any
) -> None:
    model.push(
        reply.error(503, "loading model"), reply.error(502, "bad gateway"), reply.text("recovered")
    )
    task = served.run(task_description="hi")
    assert (task["status"], task["result"]) == ("completed", "recovered")
    steps = served.trace(task["task_id"])
    assert [s.get("error", {}).get("type") for s in steps] == [
        "InternalServerError",
        "InternalServerError",
        None,
    ]
    assert len(model.requests) == 3  # no hidden retries inside the OpenAI client


async def test_an_unreachable_model_fails_clearly_after_three_retries(
    served: Server, model: ScriptedModel, conn: Any
) -> None:
    model.push(*[reply.error(503, "overloaded")] * 4)
    task = served.run(task_description="hi")
    assert task["status"] == "failed"
    assert task["error"]["type"] == "ModelUnavailable"
    assert "HTTP 503" in task["error"]["message"] and "after 4 attempts" in task["error"]["message"]
    assert len(model.requests) == 4


async def test_a_client_error_from_the_model_is_not_retried(
    served: Server, model: ScriptedModel, conn: Any
) -> None:
    model.push(reply.error(404, "model 'qwen3:4b' not found"))
    task = served.run(task_description="hi")
    assert task["status"] == "failed"
    assert task["error"]["type"] == "ModelError"
    assert "HTTP 404" in task["error"]["message"]
    assert len(model.requests) == 1


async def test_the_tool_loop_is_bounded(served: Server, model: ScriptedModel, conn: Any) -> None:
    calls = itertools.count()  # new arguments each time: not a repeated call
    model.rule = lambda body: reply.tool_call("echo", {"text": f"again {next(calls)}"})
    task = served.run(task_description="loop forever")
    assert task["status"] == "failed"
    assert task["error"]["type"] == "TooManyTurns"
    assert len(model.requests) == 4  # model.max_turns in the test project


async def test_auto_policy_round_trip(served: Server, model: ScriptedModel, conn: Any) -> None:
    from qasdk.testing import policies

    model.rule = policies.auto
    task = served.run(task_description='Please echo this: {"text": "hi", "times": 2}')
    assert task["status"] == "completed"
    assert task["result"] == "Result: hihi"


# -- direct tasks -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "params", "error_type", "message"),
    [
        ("fail", {"message": "nope"}, "ValueError", "nope"),
        ("crash", {"code": 7}, "ToolProcessExited", "exited with code 7"),
        ("unserializable", {}, "TypeError", "not JSON-serializable"),
        ("hang", {"seconds": 30}, "TimeoutError", "tool 'hang' timed out after 1.0 s"),
        (
            "allocate",
            {"mib": 4096},
            "ToolLimitExceeded",
            "tool 'allocate' exceeded its memory limit (worker.tool_limits.memory_mb = 2048)",
        ),
    ],
)
async def test_failing_tools(
    served: Server, conn: Any, method: str, params: dict[str, Any], error_type: str, message: str
) -> None:
    started = time.monotonic()
    task = served.run(method=method, params=params)
    assert task["status"] == "failed"
    assert task["error"]["type"] == error_type
    assert message in task["error"]["message"]
    assert time.monotonic() - started < 20  # "hang" would take 30 s
    # The worker survives every one of them.
    assert served.run(method="add", params={"a": 1, "b": 1})["result"] == 2


async def test_task_timeout_caps_the_tool(served: Server, conn: Any) -> None:
    task = served.run(method="slow_add", params={"a": 1, "b": 2, "delay": 5}, timeout=0.3)
    assert task["status"] == "failed"
    assert task["error"] == {
        "type": "TimeoutError",
        "message": "the task did not finish within its timeout of 0.3 s",
    }


async def test_direct_task_result_and_coercion(served: Server, conn: Any) -> None:
    task = served.run(method="add", params={"a": "40", "b": 2.0})
    assert (task["status"], task["result"], task["params"]) == ("completed", 42, {"a": 40, "b": 2})
    (step,) = served.trace(task["task_id"])
    assert (step["kind"], step["name"], step["result"]) == ("tool", "add", 42)


async def test_a_tool_synced_while_serving_is_usable_at_once(
    served: Server, served_project: Path, pg_url: str, conn: Any
) -> None:
    name = f"late_{tag()}"
    module = served_project / "tools" / f"{name}.py"
    module.write_text(
        f'from qasdk import tool\n\n@tool\ndef {name}(x: int) -> int:\n    """Double.\n\n    Args:\n        x: X.\n    """\n    return 2 * x\n'
    )
    try:
        assert qasdk(served_project, pg_url, "sync", "tools").returncode == 0
        task = served.run(method=name, params={"x": 21})
        assert (task["status"], task["result"]) == ("completed", 42)
    finally:
        module.unlink()  # its registry row goes with the test's cleanup


# -- cancellation -----------------------------------------------------------------------


async def test_cancel_a_running_task_interrupts_its_tool(
    served: Server, served_project: Path, conn: Any
) -> None:
    name = tag()
    task_id = served.submit(method="record", params={"tag": name, "seconds": 30})["task_id"]
    deadline = time.monotonic() + 10
    while not any(t == name for _, t, _, _ in runs(served_project)) and time.monotonic() < deadline:
        time.sleep(0.02)
    started = time.monotonic()
    response = served.http.post(f"/api/tasks/{task_id}/cancel")
    assert response.status_code == 200, response.text
    task = response.json()
    assert task["status"] == "cancelled"
    assert task["error"] == {"type": "Cancelled", "message": "cancelled by request"}
    assert time.monotonic() - started < 15  # the tool would run for 30 s
    time.sleep(0.2)
    assert [e for e, t, _, _ in runs(served_project) if t == name] == ["start"]  # never finished
    again = served.http.post(f"/api/tasks/{task_id}/cancel")
    assert again.status_code == 409
    # The interrupted call is in the trace, as a cancelled step.
    (step,) = served.trace(task_id)
    assert (step["kind"], step["name"]) == ("tool", "record")
    assert step["error"] == {
        "type": "Cancelled",
        "message": "the task was cancelled while the tool ran",
    }


async def test_a_wait_that_runs_out_answers_the_task_as_it_is_now(
    served: Server, served_project: Path, conn: Any
) -> None:
    """The wait reads the task again only for its end; when it runs out first, the answer
    still says ``running``, not the ``pending`` it read when it began."""
    name = tag()
    task_id = served.submit(method="record", params={"tag": name, "seconds": 30})["task_id"]
    try:
        task = served.get(task_id, wait=3)
        assert task["status"] == "running", task
        assert task["attempts"] == 1
    finally:
        served.http.post(f"/api/tasks/{task_id}/cancel")
        served.finished(task_id)


async def test_a_tool_call_the_model_asked_for_is_a_cancelled_step_when_cancelled(
    served: Server, served_project: Path, model: ScriptedModel, conn: Any
) -> None:
    name = tag()
    model.push(reply.tool_call("record", {"tag": name, "seconds": 30}), reply.text("done"))
    task_id = served.submit(task_description="record for a while")["task_id"]
    deadline = time.monotonic() + 10
    while not any(t == name for _, t, _, _ in runs(served_project)) and time.monotonic() < deadline:
        time.sleep(0.02)
    response = served.http.post(f"/api/tasks/{task_id}/cancel")
    assert response.json()["status"] == "cancelled"
    deadline = time.monotonic() + 10
    while len(served.trace(task_id)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    steps = served.trace(task_id)
    assert [(s["kind"], s.get("error")) for s in steps] == [
        ("model", None),
        ("tool", {"type": "Cancelled", "message": "the task was cancelled while the tool ran"}),
    ]


async def test_a_cancelled_pending_task_never_starts(
    served: Server, served_project: Path, conn: Any
) -> None:
    # Long enough that no slot frees up between the submits and the cancel, however busy
    # the machine.
    blockers = [
        served.submit(method="record", params={"tag": tag(), "seconds": 3})["task_id"]
        for _ in range(4)
    ]
    name = tag()
    waiting = served.submit(method="record", params={"tag": name}, priority=1)["task_id"]
    response = served.http.post(f"/api/tasks/{waiting}/cancel")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert response.json()["started_at"] is None
    for blocker in blockers:
        assert served.finished(blocker)["status"] == "completed"
    time.sleep(0.3)
    assert not [r for r in runs(served_project) if r[1] == name]
    assert served.get(waiting)["status"] == "cancelled"


# -- queue behaviour with dedicated processes and database -------------------------------


@pytest.fixture
def private_project(tmp_path: Path, session_model: ScriptedModel, fresh_database: str) -> Path:
    project = make_project(tmp_path / "project", session_model.url)
    assert qasdk(project, fresh_database, "sync", "tools").returncode == 0
    return project


async def test_priority_is_respected(private_project: Path, fresh_database: str) -> None:
    server = Server(private_project, fresh_database, "--no-worker")
    try:
        order = [("low", 1), ("mid", 5), ("high", 9), ("mid2", 5), ("top", 10)]
        ids = [
            server.submit(method="record", params={"tag": name}, priority=p)["task_id"]
            for name, p in order
        ]
        worker = Process(private_project, fresh_database, "worker", "--concurrency", "1")
        try:
            for task_id in ids:
                assert server.finished(task_id)["status"] == "completed"
        finally:
            assert worker.stop() == 0
        started = [t for e, t, _, _ in runs(private_project) if e == "start"]
        assert started == ["top", "high", "mid", "mid2", "low"]
    finally:
        assert server.stop() == 0


async def test_several_workers_never_run_a_task_twice(
    private_project: Path, fresh_database: str
) -> None:
    server = Server(private_project, fresh_database, "--no-worker")
    workers = [
        Process(private_project, fresh_database, "worker", "--concurrency", "3") for _ in range(3)
    ]
    try:
        for worker in workers:
            worker.wait_for("worker .* running up to 3 tasks")
        names = [f"t{i:03d}" for i in range(60)]
        ids = [
            server.submit(method="record", params={"tag": n, "seconds": 0.01})["task_id"]
            for n in names
        ]
        for task_id in ids:
            assert server.finished(task_id)["status"] == "completed"
        events = runs(private_project)
        assert sorted(t for e, t, _, _ in events if e == "start") == names
        assert sorted(t for e, t, _, _ in events if e == "end") == names
        assert (
            len({pid for *_, pid, _ in [(e, t, p, w) for e, t, p, w in events]}) > 1
        )  # spread over processes
    finally:
        for worker in workers:
            assert worker.stop() == 0
        assert server.stop() == 0


async def test_a_task_whose_worker_dies_runs_again_elsewhere(
    private_project: Path, fresh_database: str
) -> None:
    server = Server(private_project, fresh_database, "--no-worker")
    doomed = Process(private_project, fresh_database, "worker", "--concurrency", "1")
    try:
        doomed.wait_for("running up to 1 tasks")
        task_id = server.submit(method="record", params={"tag": "victim", "seconds": 1.5})[
            "task_id"
        ]
        deadline = time.monotonic() + 10
        while not runs(private_project) and time.monotonic() < deadline:
            time.sleep(0.02)
        first_pid = runs(private_project)[0][2]
        doomed.stop(signal.SIGKILL)
        rescuer = Process(private_project, fresh_database, "worker", "--concurrency", "1")
        try:
            task = server.finished(task_id, within=30)
        finally:
            assert rescuer.stop() == 0
        assert task["status"] == "completed", task
        assert task["attempts"] == 2
        events = [(e, pid) for e, t, pid, _ in runs(private_project) if t == "victim"]
        # The killed worker's tool process died with it: it never finished its run.
        assert ("end", first_pid) not in events
        assert [e for e, _ in events] == ["start", "start", "end"]
    finally:
        doomed.kill()
        assert server.stop() == 0


async def test_cancel_while_the_model_is_answering(
    served: Server, model: ScriptedModel, conn: Any
) -> None:
    model.push(reply.hang(30))
    task_id = served.submit(task_description="think long")["task_id"]
    deadline = time.monotonic() + 5
    while served.get(task_id)["status"] != "running" and time.monotonic() < deadline:
        time.sleep(0.02)
    started = time.monotonic()
    response = served.http.post(f"/api/tasks/{task_id}/cancel")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert time.monotonic() - started < 15  # the model would answer after 30 s


async def test_task_timeout_while_the_model_is_slow(
    served: Server, model: ScriptedModel, conn: Any
) -> None:
    model.push(reply.hang(30))
    started = time.monotonic()
    task = served.run(task_description="slow", timeout=0.5)
    assert task["status"] == "failed"
    assert task["error"]["type"] == "TimeoutError"
    assert time.monotonic() - started < 15  # the model would answer after 30 s
