"""Faults injected into real processes and a real PostgreSQL: nothing accepted is lost."""

from __future__ import annotations

import itertools
import shutil
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest
import yaml

from qasdk.store.embedded import ensure_embedded, stop_embedded
from qasdk.testing import ScriptedModel
from tests.integration.harness import Process, Server, make_project, qasdk, runs

pytestmark = [pytest.mark.integration]


def overlapping_runs(project: Path) -> list[str]:
    """Tags whose runs overlapped in time; a run killed mid-way ends at its last tick."""
    bounds: dict[tuple[str, int], list[float]] = {}
    for _, tag, pid, when in runs(project, ticks=True):
        span = bounds.setdefault((tag, pid), [when, when])
        span[1] = max(span[1], when)
    spans: dict[str, list[tuple[float, float]]] = {}
    for (tag, _), (began, ended) in bounds.items():
        spans.setdefault(tag, []).append((began, ended))
    twice = []
    for tag, intervals in spans.items():
        intervals.sort()
        if any(b[0] < a[1] for a, b in itertools.pairwise(intervals)):
            twice.append(tag)
    return twice


def configure(project: Path, **worker: Any) -> None:
    data = yaml.safe_load((project / "model_config.yaml").read_text())
    data["worker"].update(worker)
    (project / "model_config.yaml").write_text(yaml.safe_dump(data))


def wait_started(project: Path, tag: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not any(t == tag for _, t, _, _ in runs(project)):
        assert time.monotonic() < deadline, f"{tag} never started"
        time.sleep(0.02)


@pytest.fixture
def project(tmp_path: Path, session_model: ScriptedModel, fresh_database: str) -> Path:
    folder = make_project(tmp_path / "project", session_model.url)
    assert qasdk(folder, fresh_database, "sync", "tools").returncode == 0
    return folder


def test_sigterm_lets_a_running_task_finish(project: Path, fresh_database: str) -> None:
    server = Server(project, fresh_database)
    task_id = server.submit(method="record", params={"tag": "finishing", "seconds": 1.0})["task_id"]
    wait_started(project, "finishing")
    started = time.monotonic()
    assert server.stop(signal.SIGTERM) == 0
    assert time.monotonic() - started >= 0.5  # it waited for the task
    assert "stopping: running tasks get up to 5 s" in server.output
    again = Server(project, fresh_database, "--no-worker")
    try:
        task = again.get(task_id)
        assert (task["status"], task["attempts"]) == ("completed", 1)
    finally:
        assert again.stop() == 0


def test_sigint_hands_back_what_outlives_the_grace_period(
    project: Path, fresh_database: str
) -> None:
    configure(project, shutdown_grace=0.5)
    server = Server(project, fresh_database)
    task_id = server.submit(method="record", params={"tag": "long", "seconds": 10})["task_id"]
    wait_started(project, "long")
    started = time.monotonic()
    assert server.stop(signal.SIGINT) == 0  # Ctrl-C
    assert time.monotonic() - started < 8  # it did not wait for the task to end
    worker = Process(project, fresh_database, "worker")
    api = Server(project, fresh_database, "--no-worker")
    try:
        task = api.finished(task_id, within=30)
        assert (task["status"], task["attempts"]) == ("completed", 2)
    finally:
        assert worker.stop() == 0
        assert api.stop() == 0
    assert overlapping_runs(project) == []
    assert [e for e, t, _, _ in runs(project) if t == "long"] == ["start", "start", "end"]


def test_an_unreachable_model_endpoint_fails_the_task_clearly(
    project: Path, fresh_database: str
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    data = yaml.safe_load((project / "model_config.yaml").read_text())
    data["model"]["api_base"] = f"http://127.0.0.1:{closed_port}"
    (project / "model_config.yaml").write_text(yaml.safe_dump(data))
    server = Server(project, fresh_database)
    try:
        health = server.http.get("/health").json()
        assert health["status"] == "degraded" and health["model"]["ok"] is False
        started = time.monotonic()
        task = server.run(task_description="anyone there?")
        assert task["status"] == "failed"
        assert task["error"]["type"] == "ModelUnavailable"
        assert "cannot reach the model server" in task["error"]["message"]
        assert "after 4 attempts" in task["error"]["message"]
        assert time.monotonic() - started >= 0.05 * (1 + 2 + 4)  # exponential backoff
        attempts = [s for s in server.trace(task["task_id"]) if s["kind"] == "model"]
        assert len(attempts) == 4
        assert all(s["error"]["type"] == "APIConnectionError" for s in attempts)
        # The worker is fine: a direct task still runs.
        assert server.run(method="add", params={"a": 1, "b": 2})["result"] == 3
    finally:
        assert server.stop() == 0


@pytest.fixture
def private_cluster() -> Iterator[tuple[Path, str]]:
    """A PostgreSQL of its own, so stopping it leaves the other tests alone."""
    folder = Path(tempfile.mkdtemp(prefix="qasdk-restart-"))
    data = folder / "pg"
    try:
        yield data, ensure_embedded(data, database="restart")
    finally:
        stop_embedded(data)
        shutil.rmtree(folder, ignore_errors=True)


def test_postgres_restart_under_load(
    tmp_path: Path, session_model: ScriptedModel, private_cluster: tuple[Path, str]
) -> None:
    data, url = private_cluster
    project = make_project(tmp_path / "project", session_model.url)
    assert qasdk(project, url, "sync", "tools").returncode == 0
    server = Server(project, url)
    accepted: list[str] = []
    answers: list[int] = []
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(base_url=server.base, timeout=15) as client:
            n = 0
            while not stop.is_set():
                n += 1
                try:
                    response = client.post(
                        "/api/tasks",
                        json={"method": "record", "params": {"tag": f"r{n:04d}", "seconds": 0.05}},
                    )
                except httpx.HTTPError:
                    answers.append(-1)  # the server did not answer at all
                    continue
                answers.append(response.status_code)
                if response.status_code == 201:
                    accepted.append(response.json()["task_id"])
                time.sleep(0.02)

    thread = threading.Thread(target=load)
    thread.start()
    try:
        time.sleep(1.0)
        stop_embedded(data)
        time.sleep(2.5)
        down = server.http.get("/health")
        assert down.status_code == 503
        assert down.json()["status"] == "unavailable"
        ensure_embedded(data, database="restart")
        deadline = time.monotonic() + 30
        while server.http.get("/health").status_code != 200:
            assert time.monotonic() < deadline, server.output
            time.sleep(0.1)
        time.sleep(1.0)
    finally:
        stop.set()
        thread.join()
    try:
        assert server.proc.poll() is None, "the server died with the database"
        assert set(answers) <= {201, 503}, sorted(set(answers))
        assert 503 in answers and answers.count(201) > 10
        assert answers[-1] == 201  # it recovered on its own
        for task_id in accepted:
            task = server.finished(task_id, within=60)
            assert task["status"] == "completed", task
        assert overlapping_runs(project) == []
    finally:
        assert server.stop() == 0, server.output


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_a_database_outage_runs_no_tool_twice(
    tmp_path: Path,
    session_model: ScriptedModel,
    private_cluster: tuple[Path, str],
    mode: Literal["fast", "immediate"],
) -> None:
    # Tools in flight when the database goes away finish while it is away: their outcomes
    # are kept and stored when it is back, and no tool runs again (issue 9, defect 7);
    # after a clean stop and after a crash stop (no checkpoint, WAL recovery on start).
    data, url = private_cluster
    project = make_project(tmp_path / "project", session_model.url)
    assert qasdk(project, url, "sync", "tools").returncode == 0
    server = Server(project, url)
    try:
        tags = [f"outage{i}" for i in range(4)]
        ids = [
            server.submit(method="record", params={"tag": tag, "seconds": 1.5})["task_id"]
            for tag in tags
        ]
        for tag in tags:
            wait_started(project, tag)
        assert stop_embedded(data, mode=mode)
        deadline = time.monotonic() + 30
        while len([e for e, t, _, _ in runs(project) if e == "end" and t in tags]) < len(tags):
            assert time.monotonic() < deadline, "the tools never finished"
            time.sleep(0.05)
        time.sleep(2.0)  # the database stays away a while after the tools finished
        ensure_embedded(data, database="restart")
        for task_id in ids:
            task = server.finished(task_id, within=60)
            assert (task["status"], task["attempts"]) == ("completed", 1), task
        time.sleep(3.0)  # long enough for a wrongly recovered job to run again
        ledger = {tag: [e for e, t, _, _ in runs(project) if t == tag] for tag in tags}
        assert ledger == {tag: ["start", "end"] for tag in tags}, server.output
    finally:
        assert server.stop() == 0, server.output


def test_a_worker_stopped_with_sigterm_finishes_its_task(
    project: Path, fresh_database: str
) -> None:
    api = Server(project, fresh_database, "--no-worker")
    worker = Process(project, fresh_database, "worker")
    try:
        worker.wait_for("running up to")
        task_id = api.submit(method="record", params={"tag": "graceful", "seconds": 1.5})["task_id"]
        wait_started(project, "graceful")
        assert worker.stop(signal.SIGTERM) == 0
        task = api.get(task_id)
        assert (task["status"], task["attempts"]) == ("completed", 1), task
    finally:
        worker.kill()
        assert api.stop() == 0


def test_a_task_cancelled_while_its_worker_is_dead_ends_cancelled(
    project: Path, fresh_database: str
) -> None:
    api = Server(project, fresh_database, "--no-worker")
    frozen = Process(project, fresh_database, "worker")
    try:
        frozen.wait_for("running up to")
        task_id = api.submit(method="record", params={"tag": "frozen", "seconds": 30})["task_id"]
        wait_started(project, "frozen")
        frozen.proc.send_signal(signal.SIGSTOP)  # alive but silent: no heartbeat, no abort
        response = api.http.post(f"/api/tasks/{task_id}/cancel", params={"wait": 0})
        assert response.status_code == 202  # asked; the worker cannot answer
        frozen.kill()
        rescuer = Process(project, fresh_database, "worker")
        try:
            task = api.finished(task_id, within=30)
        finally:
            assert rescuer.stop() == 0
        assert task["status"] == "cancelled"
        assert [e for e, t, _, _ in runs(project) if t == "frozen"] == ["start"]
    finally:
        frozen.kill()
        assert api.stop() == 0
