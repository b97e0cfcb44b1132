"""Live task events (SSE) and Prometheus metrics, over HTTP."""

from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from qasdk.testing import ScriptedModel, reply
from tests.integration.harness import Process, Server, make_project, qasdk

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


def follow(
    base: str,
    task_id: str,
    out: list[tuple[str, dict[str, Any]]],
    timeout: float = 20,
    arrivals: list[float] | None = None,
) -> None:
    """Read a task's event stream to its end, noting when each event arrived."""
    with (
        httpx.Client(base_url=base, timeout=timeout) as client,
        client.stream("GET", f"/api/tasks/{task_id}/events") as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        event = None
        for line in response.iter_lines():
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and event:
                out.append((event, json.loads(line.split(":", 1)[1])))
                if arrivals is not None:
                    arrivals.append(time.monotonic())


def check_stream(events: list[tuple[str, dict[str, Any]]]) -> None:
    kinds = [e for e, _ in events]
    statuses = [d["status"] for e, d in events if e == "status"]
    steps = [d for e, d in events if e == "step"]
    assert statuses[-1] == "completed", events
    assert kinds[-1] == "status"  # the stream ends with the outcome
    assert statuses == sorted(set(statuses), key=statuses.index)  # each status once, in order
    assert [s["seq"] for s in steps] == [1, 2, 3]
    assert [s["kind"] for s in steps] == ["model", "tool", "model"]
    assert steps[1]["result"] == 5


async def test_events_stream_steps_and_status_as_they_happen(
    served: Server, model: ScriptedModel, conn: Any
) -> None:
    model.push(reply.tool_call("add", {"a": 2, "b": 3}, delay=0.3), reply.text("5", delay=0.3))
    task_id = served.submit(task_description="add 2 and 3")["task_id"]
    events: list[tuple[str, dict[str, Any]]] = []
    arrivals: list[float] = []
    reader = threading.Thread(target=follow, args=(served.base, task_id, events, 20, arrivals))
    reader.start()
    reader.join(20)
    assert not reader.is_alive(), "the stream did not end with the task"
    check_stream(events)
    # Live, not all at the end: the first model turn arrived well before the outcome
    # (the model takes 0.3 s per reply).
    first_step = next(i for i, (e, _) in enumerate(events) if e == "step")
    assert arrivals[-1] - arrivals[first_step] >= 0.2


async def test_events_of_a_finished_task_replay_and_close(
    served: Server, model: ScriptedModel, conn: Any
) -> None:
    model.push(reply.tool_call("add", {"a": 1, "b": 4}), reply.text("5"))
    task = served.run(task_description="add 1 and 4")
    events: list[tuple[str, dict[str, Any]]] = []
    follow(served.base, task["task_id"], events)
    assert [e for e, _ in events] == ["status", "step", "step", "step"]
    assert events[0][1]["status"] == "completed"
    assert (
        served.http.get("/api/tasks/00000000-0000-0000-0000-000000000000/events").status_code == 404
    )


async def test_events_reach_the_api_when_another_process_runs_the_task(
    tmp_path: Path, session_model: ScriptedModel, model: ScriptedModel, fresh_database: str
) -> None:
    project = make_project(tmp_path / "project", session_model.url)
    assert qasdk(project, fresh_database, "sync", "tools").returncode == 0
    server = Server(project, fresh_database, "--no-worker")
    worker = Process(project, fresh_database, "worker")
    try:
        worker.wait_for("running up to")
        model.push(reply.tool_call("add", {"a": 2, "b": 3}, delay=0.2), reply.text("5", delay=0.2))
        task_id = server.submit(task_description="add")["task_id"]
        events: list[tuple[str, dict[str, Any]]] = []
        follow(server.base, task_id, events)
        check_stream(events)
    finally:
        assert worker.stop() == 0
        assert server.stop() == 0


SAMPLE = re.compile(r'^[a-z_]+(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? -?[0-9.e+]+|\+Inf$')


LABEL = re.compile(r'([a-z_]+)="([^"]*)"')


def canonical(sample: str) -> str:
    """``name{b="2",a="1"}`` as ``name{a="1",b="2"}``: label order carries no meaning."""
    name, _, labels = sample.partition("{")
    pairs = sorted(LABEL.findall(labels))
    return name + ("{" + ",".join(f'{k}="{v}"' for k, v in pairs) + "}" if pairs else "")


class Samples(dict[str, float]):
    def __getitem__(self, sample: str) -> float:
        return super().__getitem__(canonical(sample))

    def get(self, sample: str, default: float = 0) -> float:  # type: ignore[override]
        return super().get(canonical(sample), default)

    def __contains__(self, sample: object) -> bool:
        return super().__contains__(canonical(str(sample)))


def parse_metrics(text: str) -> Samples:
    values = Samples()
    for line in text.splitlines():
        if line.startswith("#") or not line:
            continue
        assert SAMPLE.match(line), line
        name, value = line.rsplit(" ", 1)
        values[canonical(name)] = float(value)
    return values


async def test_metrics(served: Server, model: ScriptedModel, conn: Any) -> None:
    before = parse_metrics(served.http.get("/metrics").text)
    model.push(reply.tool_call("add", {"a": 1, "b": 1}), reply.text("2"))
    assert served.run(task_description="1+1")["status"] == "completed"
    assert served.run(method="fail", params={"message": "x"})["status"] == "failed"
    assert served.run(method="hang", params={"seconds": 5})["status"] == "failed"
    response = served.http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    after = parse_metrics(response.text)

    def grew(name: str, by: float = 1) -> bool:
        return after.get(name, 0) - before.get(name, 0) >= by

    assert after["qasdk_database_up"] == 1
    assert after['qasdk_tasks{status="completed"}'] >= 1
    assert after['qasdk_tasks{status="failed"}'] >= 2
    assert after["qasdk_workers"] >= 1
    assert "qasdk_queue_depth" in after
    assert grew('qasdk_tool_calls_total{tool="add",outcome="success"}')
    assert grew('qasdk_tool_calls_total{tool="fail",outcome="error"}')
    assert grew('qasdk_tool_calls_total{tool="hang",outcome="timeout"}')
    assert grew('qasdk_model_calls_total{outcome="success"}', 2)
    assert grew('qasdk_tasks_finished_total{kind="direct",status="failed"}', 2)
    assert grew('qasdk_task_duration_seconds_count{kind="described",status="completed"}')
    assert after['qasdk_tool_call_duration_seconds_bucket{tool="hang",le="+Inf"}'] >= 1
    assert (
        after['qasdk_tool_call_duration_seconds_bucket{tool="hang",le="0.5"}']
        < after['qasdk_tool_call_duration_seconds_bucket{tool="hang",le="+Inf"}']
    )
