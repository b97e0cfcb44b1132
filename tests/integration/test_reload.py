"""Hot reload (Properties 30, 31, 32): valid changes apply, invalid ones change nothing."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qasdk.config import load_config
from qasdk.store.methods import get_method
from qasdk.testing import ScriptedModel, reply
from qasdk_server.events import TaskEvents
from qasdk_server.registry import MethodRegistry
from qasdk_server.reload import Reloader
from qasdk_server.serve import open_pool
from qasdk_server.state import ServerState
from tests.integration.harness import Server, make_project, qasdk
from tests.strategies import identifiers

pytestmark = [pytest.mark.integration, pytest.mark.anyio]
EXAMPLES = settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=100)

TYPES = {"str": "string", "int": "int", "float": "float", "bool": "bool"}


def tool_source(name: str, params: list[tuple[str, str]], doc: str) -> str:
    signature = ", ".join(f"{p}: {t}" for p, t in params)
    lines = ["from qasdk import tool", "", "", "@tool", f"def {name}({signature}) -> str:"]
    lines.append(f'    """{doc.strip()}')
    if params:
        lines += ["", "    Args:"] + [f"        {p}: The {p}." for p, _ in params]
    lines += ['    """', '    return "ok"', ""]
    return "\n".join(lines)


class World:
    """A server's state (config file, tools folder, registry) with its reloader."""

    def __init__(self, folder: Path, state: ServerState, reloader: Reloader) -> None:
        self.folder, self.state, self.reloader = folder, state, reloader

    @property
    def config_file(self) -> Path:
        return self.folder / "model_config.yaml"

    @property
    def tools(self) -> Path:
        return self.folder / "tools"


@pytest.fixture
async def world(pg_url: str) -> AsyncIterator[World]:
    folder = Path(tempfile.mkdtemp(prefix="qasdk-reload-"))
    (folder / "tools").mkdir()
    (folder / "model_config.yaml").write_text(yaml.safe_dump({"model": {"name": "first"}}))
    config = load_config(folder / "model_config.yaml", environ={})
    pool = await open_pool(pg_url, config)
    registry = MethodRegistry(pool, refresh_interval=0)
    await registry.load()
    state = ServerState(
        config=config, url=pg_url, pool=pool, registry=registry, events=TaskEvents(pg_url)
    )
    reloader = Reloader(state, watch=[folder / "tools"], module_root=folder)
    try:
        yield World(folder, state, reloader)
    finally:
        await pool.close()
        shutil.rmtree(folder, ignore_errors=True)


model_changes = st.fixed_dictionaries(
    {
        "name": st.text(
            st.characters(min_codepoint=97, max_codepoint=122), min_size=1, max_size=12
        ),
        "temperature": st.floats(min_value=0, max_value=2, allow_nan=False),
        "max_tokens": st.integers(1, 10_000),
    }
)
tool_params = st.lists(
    st.tuples(identifiers, st.sampled_from(sorted(TYPES))), max_size=3, unique_by=lambda p: p[0]
)
docs = st.text(
    st.characters(min_codepoint=65, max_codepoint=122, blacklist_characters='\\"`'),
    min_size=1,
    max_size=40,
).filter(lambda s: s.strip())


# Property 30: Hot reload configuration refresh
# Property 32: Hot reload database update
@EXAMPLES
@given(model=model_changes, name=identifiers, params=tool_params, doc=docs)
async def test_a_valid_change_is_applied_everywhere(
    conn: Any,
    world: World,
    model: dict[str, Any],
    name: str,
    params: list[tuple[str, str]],
    doc: str,
) -> None:
    name = f"hot_{name}"[:60]
    world.config_file.write_text(yaml.safe_dump({"model": model}))
    (world.tools / "mod.py").write_text(tool_source(name, params, doc))
    outcome = await world.reloader.reload("test")
    assert outcome.outcome in {"applied", "unchanged"}, outcome.problems
    # Property 30: what follows uses the new configuration.
    assert world.state.config.model.name == model["name"]
    assert world.state.config.model.temperature == model["temperature"]
    assert world.state.config.model.max_tokens == model["max_tokens"]
    # Property 32: the database holds the new definition, and so does the running registry.
    stored = await get_method(conn, name)
    await conn.commit()
    assert stored is not None
    assert stored.description == " ".join(doc.split())
    assert [(p.name, p.type) for p in stored.parameters] == [(p, TYPES[t]) for p, t in params]
    assert world.state.registry.get(name) == stored


async def test_a_change_of_permissions_is_an_update_of_the_tool(conn: Any, world: World) -> None:
    name = f"hot_needs_{uuid.uuid4().hex[:8]}"
    source = tool_source(name, [("url", "str")], "Fetch a page.")
    for needs, change in ((["network"], "created"), (["network", "env"], "updated")):
        decorated = source.replace("@tool", f"@tool(permissions={needs!r})")
        (world.tools / "mod.py").write_text(decorated)
        outcome = await world.reloader.reload("test")
        assert outcome.outcome == "applied", outcome.problems
        assert outcome.tools is not None and getattr(outcome.tools, change) == [name]
        stored = world.state.registry.get(name)
        assert stored is not None and stored.permissions == tuple(sorted(needs))
    await conn.commit()


BAD_CONFIGS = [
    "model: [unclosed\n",
    "model:\n  temperature: hot\n",
    "model:\n  max_tokens: 0\n",
    "modle:\n  name: x\n",
    "logging:\n  level: LOUD\n",
]
BAD_TOOLS = [
    "def broken(:\n",
    "from qasdk import tool\n\n@tool\ndef undocumented(x: int) -> int:\n    return x\n",
    "from qasdk import tool\n\n@tool\ndef 'x'(): pass\n",
    'from qasdk import tool\n\n@tool(name="bad name")\ndef fine(x: int) -> int:\n    """Fine.\n\n    Args:\n        x: X.\n    """\n',
]


# Property 31: Hot reload failure safety
@EXAMPLES
@given(
    bad_config=st.one_of(st.none(), st.sampled_from(BAD_CONFIGS)),
    bad_tool=st.one_of(st.none(), st.sampled_from(BAD_TOOLS)),
    name=identifiers,
)
async def test_an_invalid_change_changes_nothing(
    conn: Any, world: World, bad_config: str | None, bad_tool: str | None, name: str
) -> None:
    if bad_config is None and bad_tool is None:
        bad_tool = BAD_TOOLS[0]
    name = f"kept_{name}"[:60]
    world.config_file.write_text(yaml.safe_dump({"model": {"name": "good"}}))
    (world.tools / "mod.py").write_text(tool_source(name, [("x", "int")], "A good tool."))
    for leftover in world.tools.glob("bad*.py"):
        leftover.unlink()
    assert (await world.reloader.reload("good")).outcome in {"applied", "unchanged"}
    config_before = world.state.config
    registry_before = dict(world.state.registry.methods)
    stored_before = await get_method(conn, name)
    await conn.commit()

    if bad_config is not None:
        world.config_file.write_text(bad_config)
    if bad_tool is not None:
        (world.tools / "bad.py").write_text(bad_tool)
        (world.tools / "mod.py").write_text(tool_source(name, [("y", "str")], "Changed too."))
    outcome = await world.reloader.reload("bad")
    assert outcome.outcome == "rejected"
    assert outcome.problems and all(p.reason for p in outcome.problems)
    assert all(p.source is not None and p.source.path for p in outcome.problems)
    assert world.state.config is config_before
    assert dict(world.state.registry.methods) == registry_before
    assert await get_method(conn, name) == stored_before  # the valid half was not synced either
    await conn.commit()
    assert world.reloader.last is outcome


# Property 30: Hot reload configuration refresh (a running server, files edited under it)
async def test_serve_watch_picks_up_edits_and_refuses_broken_ones(
    tmp_path: Path, session_model: ScriptedModel, model: ScriptedModel, fresh_database: str
) -> None:
    project = make_project(tmp_path / "project", session_model.url)
    assert qasdk(project, fresh_database, "sync", "tools").returncode == 0
    server = Server(project, fresh_database, "--watch", "tools")
    try:
        config = server.http.get("/api/config").json()
        assert config["watching"] == ["tools", "model_config.yaml"]
        assert config["config"]["model"]["name"] == "qwen3:4b"

        # A new tool: usable without a restart.
        (project / "tools" / "extra.py").write_text(
            tool_source("triple_it", [("x", "int")], "Triple it.")
        )
        deadline = time.monotonic() + 10
        while (
            server.http.get("/api/methods/triple_it").status_code != 200
            and time.monotonic() < deadline
        ):
            time.sleep(0.05)
        first = server.run(method="triple_it", params={"x": 1})
        assert first["status"] == "completed"
        (before,) = server.trace(first["task_id"])

        # A broken edit: rejected with the file and line, everything keeps working.
        (project / "tools" / "extra.py").write_text("def broken(:\n")
        deadline = time.monotonic() + 10
        while (server.http.get("/api/config").json()["last_reload"] or {}).get(
            "outcome"
        ) != "rejected":
            assert time.monotonic() < deadline, server.output
            time.sleep(0.05)
        last = server.http.get("/api/config").json()["last_reload"]
        assert last["problems"][0]["source"] == {"path": "tools/extra.py", "line": 1}
        assert "syntax error" in last["problems"][0]["reason"]
        still = server.run(method="triple_it", params={"x": 2})
        assert still["status"] == "completed", still["error"]
        errors = [
            r
            for r in server.log_records()
            if r.get("logger") == "qasdk.reload" and r["level"] == "ERROR"
        ]
        assert errors and errors[-1]["path"] == "tools/extra.py" and errors[-1]["line"] == 1

        # A change of the function's body alone: the next task runs the new code.
        edited = tool_source("triple_it", [("x", "int")], "Triple it.")
        (project / "tools" / "extra.py").write_text(edited.replace('return "ok"', 'return "new"'))
        deadline = time.monotonic() + 10
        while not (server.http.get("/api/config").json()["last_reload"] or {}).get("code"):
            assert time.monotonic() < deadline, server.output
            time.sleep(0.05)
        last = server.http.get("/api/config").json()["last_reload"]
        assert last["outcome"] == "applied" and last["tools"] == {}  # no registration changed
        after = server.run(method="triple_it", params={"x": 3})
        assert after["result"] == "new"
        # The trace says which version of the code ran each call.
        (step,) = server.trace(after["task_id"])
        assert before["code_version"] and step["code_version"]
        assert step["code_version"] != before["code_version"]

        # The configuration: a new model name reaches the model with the next task.
        (project / "tools" / "extra.py").unlink()
        settings_file = project / "model_config.yaml"
        data = yaml.safe_load(settings_file.read_text())
        data["model"]["name"] = "qwen3:8b"
        data["database"] = {"pool_size": 9}
        data["limits"] = {"json_depth": 8, "request_body": 4096}
        settings_file.write_text(yaml.safe_dump(data))
        response = server.http.post("/api/config/reload")
        assert response.status_code == 200, response.text
        outcome = response.json()
        assert {"model.name", "limits.json_depth"} <= set(outcome["settings"])
        # Litestar reads the body limit once, when the app is built.
        assert outcome["needs_restart"] == ["database.pool_size", "limits.request_body"]
        deep = server.http.post(
            "/api/tasks", json={"task_description": "x", "params": [[[[[[[[1]]]]]]]]}
        )
        assert "deeper than 8 levels" in deep.json()["error"]["message"], deep.text
        model.push(reply.text("hi"))
        assert server.run(task_description="hello")["status"] == "completed"
        assert model.requests[-1]["model"] == "qwen3:8b"
        assert server.http.get("/api/config").json()["config"]["model"]["name"] == "qwen3:8b"

        # A broken config: 422, and the previous one stays.
        settings_file.write_text("model:\n  temperature: hot\n")
        response = server.http.post("/api/config/reload")
        assert response.status_code == 422
        problem = response.json()["problems"][0]
        assert (problem["field"], problem["source"]["path"]) == (
            "model.temperature",
            "model_config.yaml",
        )
        assert server.http.get("/api/config").json()["config"]["model"]["name"] == "qwen3:8b"
    finally:
        assert server.stop() == 0


async def test_secrets_are_masked_in_the_active_config(
    tmp_path: Path, session_model: ScriptedModel, fresh_database: str
) -> None:
    project = make_project(tmp_path / "project", session_model.url)
    data = yaml.safe_load((project / "model_config.yaml").read_text())
    data["model"]["api_key"] = "sk-very-secret-key"
    (project / "model_config.yaml").write_text(yaml.safe_dump(data))
    url = fresh_database
    server = Server(project, url)
    try:
        text = server.http.get("/api/config").text
        assert "sk-very-secret-key" not in text
        body = json.loads(text)
        assert body["config"]["model"]["api_key"] == "****"
    finally:
        assert server.stop() == 0
    assert "sk-very-secret-key" not in (project / "qasdk.log").read_text()
