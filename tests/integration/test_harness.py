"""Users test their tools in-process: run_tools and the qasdk_tools fixture (issue 8)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from qasdk.testing import ScriptedModel, reply
from qasdk_server.testing import run_tools

pytestmark = [pytest.mark.integration]
TOOLS = Path(__file__).parent / "server_tools"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copytree(TOOLS, tmp_path / "tools", ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_direct_and_described_tasks_run_in_process(project: Path) -> None:
    with ScriptedModel() as model, run_tools("tools", model=model) as tools:
        assert "add" in tools.names
        direct = tools.run(method="add", params={"a": 2, "b": "3"})
        assert (direct.status, direct.result) == ("completed", 5)
        assert [s.name for s in direct.tool_calls] == ["add"]

        model.push(reply.tool_call("add", {"a": 20, "b": 22}), reply.text("It is 42."))
        described = tools.run("What is 20 + 22?")
        assert (described.status, described.result) == ("completed", "It is 42.")
        assert [(s.kind, s.name) for s in described.trace] == [
            ("model", "qwen3:4b"),
            ("tool", "add"),
            ("model", "qwen3:4b"),
        ]
        assert described.tool_calls[0].result == 42

        failed = tools.run(method="fail", params={"message": "nope"})
        assert failed.status == "failed" and failed.error is not None
        assert (failed.error.type, failed.error.message) == ("ValueError", "nope")


USER_TEST = """
from qasdk.testing import reply


def test_add_through_the_model(qasdk_tools, scripted_model):
    scripted_model.push(reply.tool_call("add", {"a": 1, "b": 2}), reply.text("3"))
    run = qasdk_tools.run("What is 1 + 2?")
    assert run.result == "3"
    assert run.tool_calls[0].result == 3


def test_add_directly(qasdk_tools):
    assert qasdk_tools.run(method="add", params={"a": 1, "b": 2}).result == 3
"""


@pytest.mark.parametrize("command", [[sys.executable, "-m", "pytest"], ["pytest"]])
def test_a_users_own_test_file_runs_with_the_fixture(project: Path, command: list[str]) -> None:
    (project / "tests").mkdir()
    (project / "tests" / "test_my_tools.py").write_text(textwrap.dedent(USER_TEST))
    executable = (
        [str(Path(sys.executable).with_name(command[0]))] if command == ["pytest"] else command
    )
    result = subprocess.run(
        [*executable, "-q", "-p", "no:cacheprovider", "tests"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout
