"""The result cache, retries and redaction (issue 11), through a real server and its worker.

Side-effect files count the tools' real runs: a cached call never runs the
tool, a retried one runs it again.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from qasdk.testing import ScriptedModel, reply
from tests.conftest import scratch_database
from tests.integration.harness import Server, make_project, qasdk

pytestmark = [pytest.mark.integration]

POLICIES = '''
import os
from pathlib import Path

from qasdk import tool

HERE = Path(os.environ["QASDK_TEST_RUNS"]).parent


def _count(name: str) -> int:
    path = HERE / name
    with open(path, "a") as out:
        out.write("run\\n")
    return len(path.read_text().splitlines())


@tool(cache_ttl=3600)
def lookup(key: str) -> dict:
    """Look a key up (slowly, deterministically).

    Args:
        key: What to look up.
    """
    return {"key": key.upper(), "run": _count("lookup-runs")}


@tool(retries=2, retry_on=["ConnectionError"])
def wobbly(tag: str) -> str:
    """Fail twice with a connection error, then work.

    Args:
        tag: Which counter to use.
    """
    attempt = _count(f"wobbly-{tag}")
    if attempt <= 2:
        raise ConnectionError(f"attempt {attempt}: the backend hung up")
    return f"ok after {attempt}"


@tool(redact=["password", "token"])
def login(user: str, password: str) -> dict:
    """Log in; the password and the token must not be kept anywhere.

    Args:
        user: Who.
        password: Their password.
    """
    if password != "hunter2-secret":
        raise PermissionError(f"wrong password for {user}")
    return {"user": user, "token": "tok-5e3f-secret"}


@tool(retries=3)
def stubborn(tag: str) -> str:
    """Always fail with an error that is not worth a retry.

    Args:
        tag: Which counter to use.
    """
    _count(f"stubborn-{tag}")
    raise ValueError("that is simply wrong")
'''


class Project:
    def __init__(self, folder: Path, server: Server) -> None:
        self.folder, self.server = folder, server

    def runs(self, name: str) -> int:
        path = self.folder / name
        return len(path.read_text().splitlines()) if path.exists() else 0


@pytest.fixture(scope="module")
def project(
    tmp_path_factory: pytest.TempPathFactory,
    session_model: ScriptedModel,
    pg_data: Path,
    pg_url: str,
) -> Iterator[Project]:
    folder = make_project(tmp_path_factory.mktemp("policies"), session_model.url)
    (folder / "tools" / "policies.py").write_text(POLICIES)
    with scratch_database(pg_data, pg_url, "policies") as url:
        synced = qasdk(folder, url, "sync", "tools")
        assert synced.returncode == 0, synced.stderr
        server = Server(folder, url)
        try:
            yield Project(folder, server)
        finally:
            assert server.stop() == 0, server.output


def tool_step(project: Project, task_id: str) -> dict[str, object]:
    (step,) = [s for s in project.server.trace(task_id) if s["kind"] == "tool"]
    return step


def test_the_policy_is_registered(project: Project) -> None:
    methods = {m["name"]: m for m in project.server.methods()["methods"]}
    assert methods["lookup"]["policy"] == {"cache_ttl": 3600.0}
    assert methods["wobbly"]["policy"] == {"retries": 2, "retry_on": ["ConnectionError"]}
    assert "policy" not in methods["echo"]


def test_a_cached_result_is_reused_by_the_next_task_and_the_model(
    project: Project, model: ScriptedModel
) -> None:
    first = project.server.run(method="lookup", params={"key": "a"})
    second = project.server.run(method="lookup", params={"key": "a"})
    assert first["status"] == second["status"] == "completed"
    assert first["result"] == second["result"] == {"key": "A", "run": 1}
    assert project.runs("lookup-runs") == 1  # one execution for two tasks
    assert tool_step(project, first["task_id"]).get("cached") is None  # false: omitted
    assert tool_step(project, second["task_id"])["cached"] is True
    model.push(reply.tool_call("lookup", {"key": "a"}), reply.text("A"))
    told = project.server.run(task_description="look a up")
    assert told["status"] == "completed", told
    assert tool_step(project, told["task_id"])["cached"] is True
    assert project.runs("lookup-runs") == 1
    # Other arguments are another entry.
    other = project.server.run(method="lookup", params={"key": "b"})
    assert other["result"] == {"key": "B", "run": 2}


def test_a_change_of_the_tool_s_code_misses(project: Project) -> None:
    warm = project.server.run(method="lookup", params={"key": "c"})
    runs = project.runs("lookup-runs")
    assert project.server.run(method="lookup", params={"key": "c"})["result"] == warm["result"]
    assert project.runs("lookup-runs") == runs
    module = project.folder / "tools" / "policies.py"
    module.write_text(module.read_text() + "\n# edited\n")
    again = project.server.run(method="lookup", params={"key": "c"})
    assert again["status"] == "completed"
    assert project.runs("lookup-runs") == runs + 1
    assert tool_step(project, again["task_id"]).get("cached") is None


def test_a_tool_safe_to_repeat_is_retried_on_the_errors_it_names(project: Project) -> None:
    task = project.server.run(method="wobbly", params={"tag": "one"})
    assert task["status"] == "completed", task
    assert task["result"] == "ok after 3"
    assert project.runs("wobbly-one") == 3
    assert tool_step(project, task["task_id"])["retries"] == 2


def test_other_errors_are_not_retried(project: Project) -> None:
    task = project.server.run(method="stubborn", params={"tag": "one"})
    assert task["status"] == "failed"
    assert task["error"]["type"] == "ValueError"
    assert project.runs("stubborn-one") == 1
    assert tool_step(project, task["task_id"]).get("retries") is None


def test_redacted_fields_stay_out_of_traces_and_logs(
    project: Project, model: ScriptedModel
) -> None:
    direct = project.server.run(
        method="login", params={"user": "ann", "password": "hunter2-secret"}
    )
    assert direct["status"] == "completed", direct
    assert direct["result"]["token"] == "tok-5e3f-secret"  # the caller gets what it asked for
    step = tool_step(project, direct["task_id"])
    assert step["arguments"] == {"user": "ann", "password": "****"}
    assert step["result"] == {"user": "ann", "token": "****"}
    model.push(
        reply.tool_call("login", {"user": "bob", "password": "wrong-secret-pw"}), reply.text("no")
    )
    told = project.server.run(task_description="log bob in")
    trace = project.server.trace(told["task_id"])
    text = json.dumps(trace)
    assert "wrong-secret-pw" not in text, trace
    assert "****" in text
    logs = (project.folder / "qasdk.log").read_text()
    assert "PermissionError" in logs  # the failure was logged...
    assert "wrong-secret-pw" not in logs and "hunter2-secret" not in logs  # ...masked
