"""What every command shares: options before or after the subcommand, help, exit statuses."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from qasdk.cli import cli

TOOL = '''
from qasdk import tool

@tool
def shout(text: str) -> str:
    """Shout a text.

    Args:
        text: What to shout.
    """
    return text.upper()
'''


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "tools").mkdir()
    (tmp_path / "tools" / "loud.py").write_text(textwrap.dedent(TOOL))
    monkeypatch.chdir(tmp_path)
    for name in ("QASDK_CONFIG", "QASDK_LOGGING_LEVEL", "QASDK_LOGGING_FILE"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


@pytest.mark.parametrize(
    "args",
    [
        ["check", "tools", "-v"],
        ["check", "-vv", "tools"],
        ["-v", "check", "tools"],
        ["check", "tools", "--verbose"],
    ],
)
def test_verbosity_is_accepted_before_and_after_the_subcommand(
    project: Path, args: list[str]
) -> None:
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "1 tools OK: shout" in result.output


def test_config_is_accepted_after_the_subcommand(project: Path) -> None:
    (project / "custom.yaml").write_text("model:\n  name: [unclosed\n")
    result = CliRunner().invoke(cli, ["check", "tools", "--config", "custom.yaml"])
    assert result.exit_code == 1
    assert "custom.yaml:3: invalid YAML" in result.output


def test_the_command_list_is_not_cut_short() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for line in (
        "Serve the REST API (docs at /schema) and an embedded worker.",
        "Run queued tasks, on any machine that reaches the database.",
        "Scan, validate and sync tools into the registry.",
    ):
        assert line in result.output
    commands = result.output.split("Commands:", 1)[1]
    assert "..." not in commands


def test_read_only_commands_say_nothing_was_written(project: Path) -> None:
    result = CliRunner().invoke(cli, ["check", "nowhere"])
    assert result.exit_code == 1
    assert result.output.splitlines()[-1] == "1 problem found; nothing was written."
