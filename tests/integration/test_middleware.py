"""The middleware chain around every tool call, through a real server (issue 11).

A user middleware under the module root records each hook to a file, rewrites
arguments and refuses some calls; it sees direct tasks and the model's calls
alike, is listed by ``GET /api/config``, and a reload swaps the chain, or
changes nothing when the new chain does not build.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from qasdk.testing import ScriptedModel, reply
from tests.conftest import scratch_database
from tests.integration.harness import Server, make_project, qasdk

pytestmark = [pytest.mark.integration]

MIDDLEWARE = """
import json
import os

from qasdk.models import ExecutionResult
from qasdk_server.middleware import Middleware, ToolRefused


class Journal(Middleware):
    name = "journal"

    def __init__(self, path, add=0):
        self.path = path
        self.add = add

    def note(self, **entry):
        with open(self.path, "a") as out:
            out.write(json.dumps(entry) + "\\n")

    async def before(self, call):
        self.note(hook="before", tool=call.tool, source=call.source,
                  task_id=str(call.task_id), arguments=call.arguments)
        if call.arguments.get("a") == 13:
            raise ToolRefused("13 is unlucky here")
        if call.arguments.get("a") == 99:
            return ExecutionResult(success=True, result="answered by middleware")
        if self.add and "a" in call.arguments:
            call.arguments = {**call.arguments, "a": call.arguments["a"] + self.add}
        return None

    async def after(self, call, result):
        self.note(hook="after", tool=call.tool, result=result.result)
        return result

    async def on_error(self, call, error):
        self.note(hook="on_error", tool=call.tool, error_type=error.error_type)
        return None
"""


CACHED = '''
from qasdk import tool


@tool(cache_ttl=60)
def cached_upper(text: str) -> str:
    """Upper-case a text (cacheable).

    Args:
        text: The text.
    """
    return text.upper()
'''


def configure(project: Path, middleware: list[dict[str, Any]]) -> None:
    path = project / "model_config.yaml"
    config = yaml.safe_load(path.read_text())
    config["middleware"] = middleware
    path.write_text(yaml.safe_dump(config))


def journal(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


class World:
    def __init__(self, server: Server, project: Path, notes: Path) -> None:
        self.server, self.project, self.notes = server, project, notes


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory,
    session_model: ScriptedModel,
    pg_data: Path,
    pg_url: str,
) -> Iterator[World]:
    project = make_project(tmp_path_factory.mktemp("middleware"), session_model.url)
    (project / "tools" / "cached.py").write_text(CACHED)
    (project / "mwlib").mkdir()
    (project / "mwlib" / "journal.py").write_text(MIDDLEWARE)
    notes = project / "journal.jsonl"
    configure(
        project,
        [
            {"name": "metrics"},
            {"name": "mwlib.journal:Journal", "options": {"path": str(notes)}, "tools": ["add"]},
            {"name": "logging", "enabled": False},
        ],
    )
    with scratch_database(pg_data, pg_url, "middleware") as url:
        synced = qasdk(project, url, "sync", "tools")
        assert synced.returncode == 0, synced.stderr
        server = Server(project, url)
        try:
            yield World(server, project, notes)
        finally:
            assert server.stop() == 0, server.output


def test_a_direct_call_goes_through_the_chain(world: World) -> None:
    before = len(journal(world.notes))
    task = world.server.run(method="add", params={"a": 2, "b": 3})
    assert task["status"] == "completed" and task["result"] == 5, task
    hooks = journal(world.notes)[before:]
    assert [h["hook"] for h in hooks] == ["before", "after"]
    assert hooks[0]["source"] == "direct" and hooks[0]["task_id"] == task["task_id"]
    assert hooks[1]["result"] == 5
    # Only the tools it applies to.
    echoed = world.server.run(method="echo", params={"text": "hi"})
    assert echoed["status"] == "completed"
    assert len(journal(world.notes)) == before + 2


def test_a_refusal_fails_a_direct_task_and_answers_the_model(
    world: World, model: ScriptedModel
) -> None:
    refused = world.server.run(method="add", params={"a": 13, "b": 1})
    assert refused["status"] == "failed"
    assert refused["error"] == {"type": "ToolRefused", "message": "13 is unlucky here"}
    model.push(reply.tool_call("add", {"a": 13, "b": 2}), reply.text("it was refused"))
    task = world.server.run(task_description="add 13 and 2")
    assert task["status"] == "completed", task
    (step,) = [s for s in world.server.trace(task["task_id"]) if s["kind"] == "tool"]
    assert step["error"]["type"] == "ToolRefused"
    # The model got the refusal as the tool's result (in the prompt's tool response).
    assert "ToolRefused: 13 is unlucky here" in json.dumps(model.requests[-1]["messages"][-1])
    sources = {h.get("source") for h in journal(world.notes) if h["hook"] == "before"}
    assert "model" in sources


def test_a_middleware_may_answer_instead_of_the_tool(world: World) -> None:
    task = world.server.run(method="add", params={"a": 99, "b": 1})
    assert task["status"] == "completed" and task["result"] == "answered by middleware"


def test_a_policy_the_chain_cannot_serve_is_logged(world: World) -> None:
    for _ in range(2):
        task = world.server.run(method="cached_upper", params={"text": "hi"})
        assert task["status"] == "completed" and task["result"] == "HI"
    warned = [
        r for r in world.server.log_records() if "has no 'cache' entry" in r.get("message", "")
    ]
    assert len(warned) == 1, warned  # once, not per call
    assert "cache_ttl" in warned[0]["message"]


def test_the_chain_is_in_the_config_and_a_reload_swaps_it(world: World) -> None:
    shown = world.server.http.get("/api/config").json()["config"]["middleware"]
    assert [m["name"] for m in shown] == ["metrics", "mwlib.journal:Journal", "logging"]
    # A chain that does not build is refused, and the running one stays.
    configure(world.project, [{"name": "metrcs"}, {"name": "slow_calls", "options": {"x": 1}}])
    bad = world.server.http.post("/api/config/reload")
    assert bad.status_code == 422, bad.text
    problems = {p["field"]: p for p in bad.json()["problems"]}
    assert "did you mean 'metrics'" in problems["middleware[0].name"]["reason"]
    lines = (world.project / "model_config.yaml").read_text().splitlines()
    written = next(i for i, line in enumerate(lines, start=1) if "metrcs" in line)
    assert problems["middleware[0].name"]["source"]["line"] == written
    assert "x" in problems["middleware[1].options"]["reason"]
    before = len(journal(world.notes))
    assert world.server.run(method="add", params={"a": 1, "b": 1})["result"] == 2
    assert len(journal(world.notes)) == before + 2
    # A good one applies from the next call on: now it adds 10 to a.
    configure(
        world.project,
        [{"name": "mwlib.journal:Journal", "options": {"path": str(world.notes), "add": 10}}],
    )
    good = world.server.http.post("/api/config/reload")
    assert good.status_code == 200, good.text
    assert "middleware" in good.json()["settings"]
    assert world.server.run(method="add", params={"a": 1, "b": 1})["result"] == 12
