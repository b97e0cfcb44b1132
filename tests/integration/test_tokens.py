"""Tokens (issue 11): each model turn's usage in the trace, the task's total, the metrics,
and ``model.max_tokens_per_task`` stopping a task that goes over it."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from qasdk.testing import ScriptedModel, reply
from tests.conftest import scratch_database
from tests.integration.harness import Server, make_project, qasdk, until

pytestmark = [pytest.mark.integration]


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory,
    session_model: ScriptedModel,
    pg_data: Path,
    pg_url: str,
) -> Iterator[tuple[Server, Path, str]]:
    project = make_project(tmp_path_factory.mktemp("tokens"), session_model.url)
    with scratch_database(pg_data, pg_url, "tokens") as url:
        synced = qasdk(project, url, "sync", "tools")
        assert synced.returncode == 0, synced.stderr
        server = Server(project, url)
        try:
            yield server, project, url
        finally:
            assert server.stop() == 0, server.output


def test_turns_and_tasks_show_their_tokens(
    world: tuple[Server, Path, str], model: ScriptedModel
) -> None:
    server, _, _ = world
    model.push(reply.tool_call("add", {"a": 2, "b": 3}), reply.text("the sum is 5"))
    task = server.run(task_description="add 2 and 3")
    assert task["status"] == "completed", task
    turns = [s for s in server.trace(task["task_id"]) if s["kind"] == "model"]
    assert len(turns) == 2
    for turn in turns:
        usage = turn["usage"]
        assert "estimated" not in usage  # the endpoint reported them
        assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0
        assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    # The scripted model counts words: "the sum is 5" is four.
    assert turns[1]["usage"]["completion_tokens"] == 4
    assert task["usage"] == {
        "prompt_tokens": sum(t["usage"]["prompt_tokens"] for t in turns),
        "completion_tokens": sum(t["usage"]["completion_tokens"] for t in turns),
        "total_tokens": sum(t["usage"]["total_tokens"] for t in turns),
        "turns": 2,
    }
    metrics = server.http.get("/metrics").text
    found = re.search(r'qasdk_model_tokens_total\{kind="completion",model="[^"]+"\} (\S+)', metrics)
    assert found is not None and float(found.group(1)) >= 4
    direct = server.run(method="add", params={"a": 1, "b": 1})
    assert direct["usage"] is None  # no model turn


def test_a_token_budget_stops_the_task(
    world: tuple[Server, Path, str], model: ScriptedModel
) -> None:
    server, project, _ = world
    config_file = project / "model_config.yaml"
    config = yaml.safe_load(config_file.read_text())
    config["model"]["max_tokens_per_task"] = 10
    config_file.write_text(yaml.safe_dump(config))
    reloaded = server.http.post("/api/config/reload")
    assert reloaded.status_code == 200, reloaded.text
    assert "model.max_tokens_per_task" in reloaded.json()["settings"]
    model.push(reply.tool_call("add", {"a": 2, "b": 3}), reply.text("the sum is 5"))
    task = server.run(task_description="add two and three, please, and tell me the sum")
    assert task["status"] == "failed", task
    assert task["error"]["type"] == "TokenBudgetExceeded"
    assert "model.max_tokens_per_task" in task["error"]["message"]
    assert task["usage"]["turns"] == 1  # it stopped after the turn that went over
    tools = [s for s in server.trace(task["task_id"]) if s["kind"] == "tool"]
    assert tools == []  # the call that turn asked for never ran


def test_a_key_s_budget_stops_its_tasks(
    world: tuple[Server, Path, str], model: ScriptedModel
) -> None:
    server, project, url = world
    config_file = project / "model_config.yaml"
    config = yaml.safe_load(config_file.read_text())
    config["model"].pop("max_tokens_per_task", None)
    config_file.write_text(yaml.safe_dump(config))
    assert server.http.post("/api/config/reload").status_code == 200
    made = qasdk(
        project, url, "keys", "create", "thrifty", "--scope", "admin",
        "--max-tokens-per-task", "10", "--json",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    created = json.loads(made.stdout)
    assert created["max_tokens_per_task"] == 10
    headers = {"Authorization": f"Bearer {created['key']}"}
    until(lambda: server.http.get("/api/methods").status_code == 401, "keys never applied")
    model.push(reply.tool_call("add", {"a": 2, "b": 3}), reply.text("the sum is 5"))
    submitted = server.http.post(
        "/api/tasks",
        json={"task_description": "add two and three, please, and tell me the sum"},
        headers=headers,
    )
    assert submitted.status_code == 201, submitted.text
    task_id = submitted.json()["task_id"]
    until(
        lambda: (
            server.http.get(f"/api/tasks/{task_id}", headers=headers).json()["status"] == "failed"
        ),
        "the task did not stop",
    )
    error = server.http.get(f"/api/tasks/{task_id}", headers=headers).json()["error"]
    assert error["type"] == "TokenBudgetExceeded"
    assert "its key's max_tokens_per_task" in error["message"]
