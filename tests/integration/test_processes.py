"""``--processes N``: one serve or worker runs N worker processes, and they end with it.

Real processes on one database: the extra processes register as workers of
their own and run tasks (tools synced meanwhile included); one killed is
started again by its parent; the parent killed, they stop by themselves.
"""

from __future__ import annotations

import json
import os
import re
import signal
import textwrap
from pathlib import Path

import psycopg
import pytest

from qasdk.testing import ScriptedModel
from tests.integration.harness import Process, Server, make_project, qasdk, until

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

#: The start line of each worker process: ``qasdk: worker host:pid running up to ...``.
RUNNING = re.compile(r"worker \S+:(\d+) running up to (.*?) \(")

SLEEPY = '''
import time

from qasdk import tool


@tool
def sleepy(tag: str) -> str:
    """Sleep a moment (synced while the workers run).

    Args:
        tag: Anything, to tell calls apart.
    """
    time.sleep(0.2)
    return tag
'''


@pytest.fixture
def project(tmp_path: Path, session_model: ScriptedModel, fresh_database: str) -> Path:
    project = make_project(tmp_path / "project", session_model.url)
    synced = qasdk(project, fresh_database, "sync", "tools")
    assert synced.returncode == 0, synced.stdout + synced.stderr
    return project


def started(process: Process) -> dict[int, str]:
    """``{pid: capacity}`` of every worker start line printed so far (children's included)."""
    found = {}
    for line in list(process.lines):
        match = RUNNING.search(line)
        if match:
            found[int(match.group(1))] = match.group(2)
    return found


def alive_workers(project: Path, url: str) -> set[int]:
    listed = qasdk(project, url, "workers", "--json")
    assert listed.returncode == 0, listed.stderr
    return {w["pid"] for w in json.loads(listed.stdout)["workers"] if w["alive"]}


def gone(pid: int) -> bool:
    """Exited: no such process, or a zombie nobody reaped yet (its parent was killed)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return re.search(r"^State:\s+Z", status, re.MULTILINE) is not None


def workers_of(url: str, task_ids: list[str]) -> set[str]:
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT DISTINCT worker FROM tasks WHERE id = ANY(%s::uuid[])", (task_ids,)
        ).fetchall()
    return {row[0] for row in rows}


async def test_serve_with_two_processes_runs_tasks_in_both(
    project: Path, fresh_database: str
) -> None:
    server = Server(project, fresh_database, "--processes", "2", "--concurrency", "1")
    try:
        assert "embedded worker: 2 processes x 1 tasks at a time" in server.output
        # The serve's own worker has its banner; the child prints a worker's start line.
        until(lambda: started(server), "the extra worker process never started", within=60)
        ((child, capacity),) = started(server).items()
        assert child != server.proc.pid
        assert capacity == "1 tasks"  # a child runs one worker, no grandchildren
        until(
            lambda: alive_workers(project, fresh_database) == {server.proc.pid, child},
            "two workers never registered",
            within=60,
        )

        ids = [
            server.submit(method="slow_add", params={"a": i, "b": 1, "delay": 0.2})["task_id"]
            for i in range(20)
        ]
        for i, task_id in enumerate(ids):
            task = server.finished(task_id, within=90)
            assert (task["status"], task["result"]) == ("completed", i + 1), task
        assert len(workers_of(fresh_database, ids)) == 2

        # A tool synced now reaches the extra process too (database notifications).
        (project / "tools" / "sleepy.py").write_text(textwrap.dedent(SLEEPY))
        synced = qasdk(project, fresh_database, "sync", "tools")
        assert synced.returncode == 0, synced.stdout + synced.stderr
        until(lambda: "sleepy" in {m["name"] for m in server.methods()["methods"]})
        ids = [
            server.submit(method="sleepy", params={"tag": f"t{i}"})["task_id"] for i in range(10)
        ]
        for i, task_id in enumerate(ids):
            task = server.finished(task_id, within=90)
            assert (task["status"], task["result"]) == ("completed", f"t{i}"), task
        assert len(workers_of(fresh_database, ids)) == 2
    finally:
        code = server.stop()
    assert code == 0, server.output
    until(lambda: gone(child), "the extra worker process outlived its serve", within=30)
    assert "Traceback" not in server.output


async def test_a_killed_process_is_started_again_and_none_outlives_its_parent(
    project: Path, fresh_database: str
) -> None:
    worker = Process(project, fresh_database, "worker", "--processes", "2")
    try:
        until(lambda: len(started(worker)) == 2, "the extra worker process never started", 60)
        assert started(worker)[worker.proc.pid] == "2 processes x 4 tasks"
        (first,) = set(started(worker)) - {worker.proc.pid}

        # A child killed: its parent says why and starts another.
        os.kill(first, signal.SIGKILL)
        worker.wait_for(rf"worker process 1: pid {first} was killed by SIGKILL; starting again")
        until(lambda: len(started(worker)) == 3, "the killed process was not started again", 60)
        (second,) = set(started(worker)) - {worker.proc.pid, first}
        until(
            lambda: {worker.proc.pid, second} <= alive_workers(project, fresh_database),
            "the new process never registered",
            within=60,
        )

        # The parent killed: the child sees its stdin close and stops by itself.
        worker.stop(signal.SIGKILL)
        until(lambda: gone(second), "the extra process outlived its killed parent", within=30)
    finally:
        worker.kill()
