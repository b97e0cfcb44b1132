"""Human approval of tool calls (issue 11): a call that needs approval parks its task,
holding no worker; the task survives its server's restart, resumes on another one once
approved without repeating its model turns, and a rejection reaches the model."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from qasdk.testing import ScriptedModel, reply
from tests.conftest import scratch_database
from tests.integration.harness import Server, make_project, qasdk, until

pytestmark = [pytest.mark.integration]

GUARDED = '''
import os
from pathlib import Path

from qasdk import tool

HERE = Path(os.environ["QASDK_TEST_RUNS"]).parent


@tool
def transfer(amount: int) -> str:
    """Move money (a person must agree first).

    Args:
        amount: How much.
    """
    with open(HERE / "transfers", "a") as out:
        out.write(f"{amount}\\n")
    return f"moved {amount}"


@tool(requires_approval=True)
def wipe(target: str) -> str:
    """Wipe something (the tool itself says a person must agree).

    Args:
        target: What.
    """
    with open(HERE / "transfers", "a") as out:
        out.write("0\\n")
    return f"wiped {target}"
'''


class World:
    def __init__(self, project: Path, url: str) -> None:
        self.project, self.url = project, url

    def transfers(self) -> list[int]:
        path = self.project / "transfers"
        return [int(x) for x in path.read_text().split()] if path.exists() else []


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory,
    session_model: ScriptedModel,
    pg_data: Path,
    pg_url: str,
) -> Iterator[World]:
    project = make_project(tmp_path_factory.mktemp("approvals"), session_model.url)
    (project / "tools" / "guarded.py").write_text(GUARDED)
    config_file = project / "model_config.yaml"
    config = yaml.safe_load(config_file.read_text())
    config["middleware"] = [
        {"name": "metrics"},
        {"name": "approval", "tools": ["transfer"], "options": {"expires_after": 3600}},
        {"name": "approval"},  # for tools that say requires_approval=True
    ]
    config_file.write_text(yaml.safe_dump(config))
    with scratch_database(pg_data, pg_url, "approvals") as url:
        synced = qasdk(project, url, "sync", "tools")
        assert synced.returncode == 0, synced.stderr
        yield World(project, url)


def waiting(server: Server, task_id: str) -> dict[str, Any]:
    until(
        lambda: server.get(task_id)["status"] == "awaiting_approval",
        "the task never parked for approval",
        within=30,
    )
    found = server.http.get("/api/approvals", params={"task_id": task_id}).json()["approvals"]
    assert len(found) == 1, found
    approval: dict[str, Any] = found[0]
    return approval


def decide(server: Server, task_id: str, approval_id: str, **body: Any) -> dict[str, Any]:
    response = server.http.post(f"/api/tasks/{task_id}/approvals/{approval_id}", json=body)
    assert response.status_code == 200, response.text
    decided: dict[str, Any] = response.json()
    return decided


def test_an_approved_call_resumes_on_another_server_without_repeating_turns(
    world: World, model: ScriptedModel
) -> None:
    model.push(reply.tool_call("transfer", {"amount": 5}), reply.text("moved five"))
    first = Server(world.project, world.url)
    try:
        task_id = first.submit(task_description="move 5")["task_id"]
        approval = waiting(first, task_id)
        assert (approval["tool"], approval["arguments"], approval["status"]) == (
            "transfer",
            {"amount": 5},
            "pending",
        )
        assert world.transfers() == []  # it did not run
        assert len(model.requests) == 1
    finally:
        assert first.stop() == 0, first.output  # no worker holds it: nothing to hand back

    second = Server(world.project, world.url)
    try:
        assert second.get(task_id)["status"] == "awaiting_approval"
        decided = decide(second, task_id, approval["approval_id"], decision="approve")
        assert decided["status"] == "approved"
        task = second.finished(task_id, within=30)
        assert task["status"] == "completed", task
        assert task["result"] == "moved five"
        assert world.transfers() == [5]
        assert len(model.requests) == 2  # the first turn was not asked again
        assert "moved 5" in json.dumps(model.requests[-1]["messages"])
        tools = [s for s in second.trace(task_id) if s["kind"] == "tool"]
        assert [s.get("error", {}).get("type") for s in tools] == ["AwaitingApproval", None]
        again = second.http.post(
            f"/api/tasks/{task_id}/approvals/{approval['approval_id']}", json={"decision": "reject"}
        )
        assert again.status_code == 409, again.text
        audit = second.http.get("/api/audit", params={"action": "approval.decide"})
        assert any(e["target"] == task_id for e in audit.json()["entries"])
    finally:
        assert second.stop() == 0, second.output


def test_a_rejection_is_the_tool_s_result_for_the_model(world: World, model: ScriptedModel) -> None:
    model.push(reply.tool_call("transfer", {"amount": 700}), reply.text("it was refused"))
    server = Server(world.project, world.url)
    try:
        task_id = server.submit(task_description="move 700")["task_id"]
        approval = waiting(server, task_id)
        decide(server, task_id, approval["approval_id"], decision="reject", reason="too much")
        task = server.finished(task_id, within=30)
        assert task["status"] == "completed", task
        assert 700 not in world.transfers()
        told = json.dumps(model.requests[-1]["messages"])
        assert "ApprovalRejected" in told and "too much" in told
        # A direct call waits too, and runs once approved.
        direct = server.submit(method="transfer", params={"amount": 3})["task_id"]
        approval = waiting(server, direct)
        decide(server, direct, approval["approval_id"], decision="approve")
        assert server.finished(direct, within=30)["result"] == "moved 3"
        # A task waiting for approval can be cancelled.
        parked = server.submit(method="transfer", params={"amount": 9})["task_id"]
        waiting(server, parked)
        cancelled = server.http.post(f"/api/tasks/{parked}/cancel")
        assert cancelled.status_code == 200, cancelled.text
        assert server.get(parked)["status"] == "cancelled"
        assert 9 not in world.transfers()
        (left,) = server.http.get(
            "/api/approvals", params={"task_id": parked, "status": "all"}
        ).json()["approvals"]
        assert (left["status"], left["reason"]) == ("expired", "the task was cancelled")
    finally:
        assert server.stop() == 0, server.output


def test_a_tool_may_require_approval_itself(world: World) -> None:
    server = Server(world.project, world.url)
    try:
        methods = {m["name"]: m for m in server.methods()["methods"]}
        assert methods["wipe"]["policy"] == {"requires_approval": True}
        task_id = server.submit(method="wipe", params={"target": "disk"})["task_id"]
        approval = waiting(server, task_id)
        assert approval["tool"] == "wipe"
        decide(server, task_id, approval["approval_id"], decision="reject", reason="no")
        task = server.finished(task_id, within=30)
        assert task["status"] == "failed"
        assert task["error"]["type"] == "ApprovalRejected"
        assert "rejected" in task["error"]["message"] and "no" in task["error"]["message"]
        assert 0 not in world.transfers()
    finally:
        assert server.stop() == 0, server.output
