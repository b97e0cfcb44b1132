"""The circuit breaker (issue 11): it opens after failures, is shared through PostgreSQL by
every worker, fails calls at once while open, and closes after a good probe.

A side-effect file counts the tool's real runs: calls refused by an open
breaker never reach it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from qasdk.testing import ScriptedModel, reply
from tests.conftest import scratch_database
from tests.integration.harness import Server, make_project, qasdk, until

pytestmark = [pytest.mark.integration]

FLAKY = '''
import os
from pathlib import Path

from qasdk import tool

HERE = Path(os.environ["QASDK_TEST_RUNS"]).parent


@tool
def flaky(value: int) -> int:
    """Fail while the switch file exists.

    Args:
        value: Returned as it is.
    """
    with open(HERE / "flaky-runs", "a") as runs:
        runs.write("run\\n")
    if (HERE / "switch").exists():
        raise RuntimeError("the backend is down")
    return value
'''


class Project:
    def __init__(self, folder: Path, url: str) -> None:
        self.folder, self.url = folder, url
        self.switch = folder / "switch"

    def runs(self) -> int:
        runs = self.folder / "flaky-runs"
        return len(runs.read_text().splitlines()) if runs.exists() else 0


@pytest.fixture(scope="module")
def project(
    tmp_path_factory: pytest.TempPathFactory,
    session_model: ScriptedModel,
    pg_data: Path,
    pg_url: str,
) -> Iterator[Project]:
    folder = make_project(tmp_path_factory.mktemp("breaker"), session_model.url)
    (folder / "tools" / "flaky.py").write_text(FLAKY)
    config_file = folder / "model_config.yaml"
    config = yaml.safe_load(config_file.read_text())
    config["middleware"] = [
        {"name": "metrics"},
        {"name": "breaker", "options": {"failures": 2, "window": 4, "cool_down": 1.0}},
    ]
    config_file.write_text(yaml.safe_dump(config))
    with scratch_database(pg_data, pg_url, "breaker") as url:
        synced = qasdk(folder, url, "sync", "tools")
        assert synced.returncode == 0, synced.stderr
        yield Project(folder, url)


def breaker(server: Server) -> dict[str, Any] | None:
    shown = server.http.get("/api/methods/flaky")
    assert shown.status_code == 200, shown.text
    found: dict[str, Any] | None = shown.json().get("breaker")
    return found


def test_the_breaker_opens_is_shared_and_closes_after_a_good_probe(
    project: Project, model: ScriptedModel
) -> None:
    project.switch.write_text("on")
    first = Server(project.folder, project.url)
    try:
        for value in (1, 2):
            task = first.run(method="flaky", params={"value": value})
            assert task["error"]["type"] == "RuntimeError", task
        assert project.runs() == 2
        shown = breaker(first)
        assert shown is not None and shown["state"] == "open"
        assert (shown["failures"], shown["calls"]) == (2, 2)
        listed = first.http.get("/api/breakers")
        assert listed.status_code == 200, listed.text
        assert listed.json()["open"] == 1
        assert [(b["tool"], b["state"]) for b in listed.json()["breakers"]] == [("flaky", "open")]
        metrics = first.http.get("/metrics").text
        assert re.search(r'qasdk_breaker_transitions_total\{state="open",tool="flaky"\} 1', metrics)
    finally:
        assert first.stop() == 0, first.output

    # Another process, nothing in memory: the state is in PostgreSQL.
    project.switch.unlink()
    second = Server(project.folder, project.url)
    ran = 2  # calls that reached the tool
    try:
        refused = second.run(method="flaky", params={"value": 3})
        if refused["status"] == "completed":  # the cool-down was over already (a slow machine)
            ran += 1
        else:
            assert refused["error"]["type"] == "CircuitOpen", refused
            assert re.fullmatch(
                r"tool 'flaky' is failing \(2 of the last 2 calls\); "
                r"(retry after \d+ s|a probe call is checking it now)",
                refused["error"]["message"],
            ), refused
            # The model is told the same, as the tool's result.
            model.push(reply.tool_call("flaky", {"value": 4}), reply.text("it is down"))
            told = second.run(task_description="call flaky")
            (step,) = [s for s in second.trace(told["task_id"]) if s["kind"] == "tool"]
            if step.get("error") is None:
                ran += 1  # it was the probe
            else:
                assert step["error"]["type"] == "CircuitOpen", step
        # After the cool-down one call probes the tool; it works, and the breaker closes.
        outcomes: list[dict[str, Any]] = []

        def closed() -> bool:
            outcomes.append(second.run(method="flaky", params={"value": 5}))
            return outcomes[-1]["status"] == "completed"

        until(closed, "the breaker never let a probe through", within=30)
        assert outcomes[-1]["result"] == 5
        assert all(o["error"]["type"] == "CircuitOpen" for o in outcomes[:-1]), outcomes
        shown = breaker(second)
        assert shown is not None and shown["state"] == "closed" and shown["calls"] == 0
        assert second.http.get("/api/breakers").json() == {"breakers": [], "open": 0}
        assert project.runs() == ran + 1  # refused calls never ran the tool
    finally:
        assert second.stop() == 0, second.output
