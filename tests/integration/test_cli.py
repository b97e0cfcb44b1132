"""`qasdk` as a user runs it: real processes, a real database (Properties 26, 27)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import psycopg
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

QASDK = [sys.executable, "-m", "qasdk"]

GEO = '''
from enum import Enum
from qasdk import tool

class Unit(str, Enum):
    C = "celsius"
    F = "fahrenheit"

@tool(tags=["geo"], permissions=["network"])
def cli_weather(city: str, unit: Unit = Unit.C) -> dict:
    """Weather of a city.

    Args:
        city: The city.
        unit: The unit.
    """
    return {"city": city}
'''

CALC = '''
import qasdk

@qasdk.tool
def cli_calculate(expression: str) -> float:
    """Evaluate an expression.

    Parameters
    ----------
    expression : str
        The expression.
    """
    return 0.0
'''

TEXT = '''
from qasdk import tool as t

@t(timeout=3)
def cli_count(text: str, unique: bool = False) -> int:
    """Count words.

    :param text: The text.
    :param unique: Distinct only.
    """
    return 0
'''

METHODS = """
methods:
  - name: cli_legacy
    description: A declared tool.
    module_path: tools.legacy
    function_name: legacy
    parameters:
      - {name: x, type: int, description: X.}
    return_type: int
  - name: cli_count
    override: true
    description: Count words (overridden).
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    tools = tmp_path / "tools"
    tools.mkdir()
    for name, text in {
        "geo.py": GEO,
        "calc.py": CALC,
        "text.py": TEXT,
        "methods.yaml": METHODS,
    }.items():
        (tools / name).write_text(textwrap.dedent(text))
    (tools / "legacy.py").write_text("def legacy(x):\n    return x\n")
    return tmp_path


def qasdk(
    project: Path, *args: str, env: dict[str, str] | None = None, url: str | None = None
) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("QASDK_")}
    if url:
        environ["QASDK_DATABASE_URL"] = url
    environ.update(env or {})
    return subprocess.run(
        [*QASDK, *args], cwd=project, env=environ, capture_output=True, text=True, timeout=120
    )


async def test_sync_all_docstring_styles_and_methods_yaml(
    project: Path, fresh_database: str
) -> None:
    pg_url = fresh_database  # --prune deletes every tool not defined here: a database of its own
    first = qasdk(project, "sync", "tools", url=pg_url)
    assert first.returncode == 0, first.stderr
    assert "Scanned 4 Python files and 1 methods file: 4 tools." in first.stdout
    for name in ("cli_calculate", "cli_count", "cli_legacy", "cli_weather"):
        assert f"+ {name}" in first.stdout
    assert "(4 rows written)" in first.stdout
    assert "****" not in first.stdout and pg_url.split("?")[0] in first.stdout

    again = qasdk(project, "sync", "tools", "--json", url=pg_url)
    report = json.loads(again.stdout)
    assert report["rows_written"] == 0
    assert report["unchanged"] == ["cli_calculate", "cli_count", "cli_legacy", "cli_weather"]

    listed = json.loads(qasdk(project, "methods", "--json", url=pg_url).stdout)
    ours = {m["name"]: m for m in listed if m["name"].startswith("cli_")}
    assert ours["cli_weather"]["module_path"] == "tools.geo"
    assert ours["cli_weather"]["parameters"][1]["default"] == "celsius"
    assert ours["cli_count"]["description"] == "Count words (overridden)."
    assert ours["cli_count"]["timeout"] == 3.0
    assert ours["cli_legacy"]["function_name"] == "legacy"
    assert ours["cli_weather"]["permissions"] == ["network"]
    assert "permissions" not in ours["cli_legacy"]  # absent: none declared
    table = qasdk(project, "methods", url=pg_url).stdout
    (weather,) = [line for line in table.splitlines() if line.startswith("cli_weather ")]
    assert "tags geo; permissions network" in weather

    # A change of permissions is an update of the tool, in the plan and the table.
    geo = project / "tools" / "geo.py"
    geo.write_text(
        geo.read_text().replace('permissions=["network"]', 'permissions=["network", "env"]')
    )
    changed = qasdk(project, "sync", "tools", url=pg_url)
    (update,) = [line for line in changed.stdout.splitlines() if "~ cli_weather " in line]
    assert update.endswith("updated: permissions"), changed.stdout
    listed = json.loads(qasdk(project, "methods", "--json", url=pg_url).stdout)
    assert {m["name"]: m for m in listed}["cli_weather"]["permissions"] == ["env", "network"]

    (project / "tools" / "calc.py").unlink()
    dry = qasdk(project, "sync", "tools", "--prune", "--dry-run", url=pg_url)
    assert "- cli_calculate" in dry.stdout and "Nothing was written." in dry.stdout
    assert "cli_calculate" in qasdk(project, "methods", url=pg_url).stdout
    pruned = json.loads(qasdk(project, "sync", "tools", "--prune", "--json", url=pg_url).stdout)
    assert "cli_calculate" in pruned["deleted"]


async def test_bad_input_lists_every_problem_and_writes_nothing(
    project: Path, fresh_database: str
) -> None:
    pg_url = fresh_database
    (project / "tools" / "broken.py").write_text(
        "from qasdk import tool\n\n@tool\ndef cli_bad(x) -> int:\n    return 1\n"
    )
    (project / "tools" / "methods.yaml").write_text(
        "methods:\n  - name: cli_legacy\n    return_type: flaot\n"
    )
    result = qasdk(project, "sync", "tools", url=pg_url)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert "tools/broken.py:3: tool 'cli_bad': description: no description" in result.stderr
    assert "tools/broken.py:3: tool 'cli_bad': parameters.x.type: no type hint" in result.stderr
    assert (
        "tools/methods.yaml:2: tool 'cli_legacy': description: required field is missing"
        in result.stderr
    )
    assert (
        "tools/methods.yaml:3: tool 'cli_legacy': return_type: unknown type 'flaot' (did you mean 'float'?)"
        in result.stderr
    )
    assert lines[-1].endswith("problems found; nothing was written.")
    assert "Traceback" not in result.stderr
    listed = json.loads(qasdk(project, "methods", "--json", url=pg_url).stdout)
    assert listed == []


async def test_unreachable_database_is_one_line_without_the_password(
    project: Path, tmp_path: Path
) -> None:
    log = tmp_path / "qasdk.log"
    secret = "s3cret-Pa55word"
    url = f"postgresql://bob:{secret}@127.0.0.1:9/appdb"
    result = qasdk(
        project,
        "sync",
        "tools",
        url=url,
        env={"QASDK_LOGGING_FILE": str(log), "QASDK_LOGGING_LEVEL": "DEBUG"},
    )
    assert result.returncode == 3
    assert result.stderr.strip() == (
        "error: cannot connect to PostgreSQL at 127.0.0.1:9, database 'appdb', user 'bob': connection refused"
    )
    assert secret not in result.stdout + result.stderr
    assert log.exists() and "cannot connect" in log.read_text()
    assert secret not in log.read_text()
    shown = qasdk(project, "db", "url", url=url)
    assert shown.stdout.strip() == "postgresql://bob:****@127.0.0.1:9/appdb"


# Property 26: Configuration error logging detail
async def test_configuration_errors_are_logged_with_path_and_parse_error(
    project: Path, tmp_path: Path
) -> None:
    log = tmp_path / "qasdk.log"
    (project / "model_config.yaml").write_text("model:\n  name: [unclosed\n")
    result = qasdk(
        project, "methods", env={"QASDK_LOGGING_FILE": str(log), "QASDK_LOGGING_FORMAT": "json"}
    )
    assert result.returncode == 1
    assert result.stderr.startswith("model_config.yaml:3: invalid YAML")
    (record,) = [json.loads(line) for line in log.read_text().splitlines()]
    assert record["level"] == "ERROR"
    assert record["path"] == "model_config.yaml"
    assert record["parse_error"].startswith("invalid YAML")
    assert record["error_type"] == "ConfigurationError"
    assert "Traceback" in record["stack_trace"]
    assert record["timestamp"]


# Property 27: Database error logging detail
async def test_database_errors_are_logged_with_statement_and_sqlstate(
    project: Path, fresh_database: str, tmp_path: Path
) -> None:
    assert qasdk(project, "db", "migrate", url=fresh_database).returncode == 0
    with psycopg.connect(fresh_database, autocommit=True) as admin:
        admin.execute("ALTER TABLE registered_methods DROP COLUMN tags")
    log = tmp_path / "qasdk.log"
    result = qasdk(
        project,
        "methods",
        url=fresh_database,
        env={"QASDK_LOGGING_FILE": str(log), "QASDK_LOGGING_FORMAT": "json"},
    )
    assert result.returncode == 3
    assert (
        "query 'list_methods' failed: column \"tags\" does not exist (SQLSTATE 42703)"
        in result.stderr
    )
    records = [json.loads(line) for line in log.read_text().splitlines()]
    (record,) = [r for r in records if r["level"] == "ERROR"]
    assert record["sqlstate"] == "42703"
    assert "FROM registered_methods" in record["statement"]
    assert record["error_type"] == "DatabaseError"


async def test_check_needs_no_database(project: Path) -> None:
    result = qasdk(project, "check", "tools", url="postgresql://nobody@127.0.0.1:9/x")
    assert result.returncode == 0
    assert result.stdout.strip().splitlines() == [
        "4 tools OK: cli_calculate, cli_count, cli_legacy, cli_weather",
        "  cli_weather needs network",
    ]


async def test_embedded_database_by_default(project: Path) -> None:
    # Read-only commands create nothing in a folder without a database.
    listed = qasdk(project, "methods")
    assert listed.returncode == 0 and "no database in .qasdk/pgdata yet" in listed.stdout
    url = qasdk(project, "db", "url")
    assert url.returncode == 0 and "not created yet" in url.stderr
    assert not (project / ".qasdk").exists()
    try:
        first = qasdk(project, "sync", "tools")
        assert first.returncode == 0, first.stderr
        assert (project / ".qasdk" / "pgdata" / "PG_VERSION").exists()
        assert "started the embedded PostgreSQL in .qasdk/pgdata" in first.stderr
        assert "qasdk db stop" in first.stderr
        assert (project / ".qasdk" / ".gitignore").read_text().splitlines()[-1] == "*"
        assert f"host={project}/.qasdk/pgdata" in qasdk(project, "db", "url").stdout
        assert "running" in qasdk(project, "db", "status").stdout
        again = qasdk(project, "sync", "tools", "--json")
        second = json.loads(again.stdout)
        assert second["rows_written"] == 0  # the same server, reused
        assert "started" not in again.stderr  # said once, when it started
    finally:
        stop = qasdk(project, "db", "stop")
        assert stop.stdout.strip() in {"stopped", "not running"}, (stop.returncode, stop.stderr)
    assert "stopped" in qasdk(project, "db", "status").stdout


async def test_usage_errors(tmp_path: Path) -> None:
    result = subprocess.run([*QASDK, "sync"], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 2
    assert (
        "give the PATHS to read, set 'tools:' in model_config.yaml, or create ./tools"
        in result.stderr
    )


async def test_without_paths_check_reads_the_configured_tools_or_tools(project: Path) -> None:
    found = qasdk(project, "check")
    assert found.returncode == 0, found.stderr
    assert found.stderr.strip() == "reading ./tools (no PATH given)"
    assert found.stdout.startswith("4 tools OK")
    (project / "model_config.yaml").write_text("tools: [tools/geo.py]\n")
    configured = qasdk(project, "check")
    assert configured.returncode == 0, configured.stderr
    assert configured.stderr.strip() == "reading tools/geo.py (tools: in model_config.yaml)"
    assert configured.stdout.startswith("1 tools OK: cli_weather\n")


async def test_a_folder_outside_the_module_root_is_one_warning(project: Path) -> None:
    elsewhere = project / "elsewhere"
    (elsewhere / "lib").mkdir(parents=True)
    for name in ("a", "b", "c"):
        (elsewhere / "lib" / f"{name}.py").write_text(
            f"from qasdk import tool\n@tool\ndef t_{name}(x: int) -> int:\n"
            f'    """Do {name}.\n\n    Args:\n        x: X.\n    """\n'
        )
    result = qasdk(elsewhere / "lib", "check", ".", "--module-root", str(project / "tools"))
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1, warnings
    assert "and 2 more" in warnings[0] and "--module-root" in warnings[0]


FORBIDDEN = """
methods:
  - name: shell
    description: Run a shell command.
    module_path: os
    function_name: system
    parameters:
      - {name: command, type: string, description: The command.}
    return_type: int
  - name: wipe
    description: Remove a folder.
    module_path: shutil
    function_name: rmtree
    parameters:
      - {name: path, type: string, description: The folder.}
    return_type: string
"""


async def test_a_declared_tool_outside_the_allowed_roots_is_a_sync_error(tmp_path: Path) -> None:
    tools = tmp_path / "tools"
    tools.mkdir()
    (tools / "methods.yaml").write_text(FORBIDDEN)
    result = qasdk(tmp_path, "check", "tools", url="postgresql://nobody@127.0.0.1:9/x")
    assert result.returncode != 0, result.stdout
    lines = result.stderr.strip().splitlines()
    assert lines[:2] == [
        "tools/methods.yaml:5: tool 'shell': module_path: 'os' is not under the module root "
        "'.' nor an allowed package (registry.allowed_packages), it is a standard-library "
        "module; tools run only code from there",
        "tools/methods.yaml:12: tool 'wipe': module_path: 'shutil' is not under the module "
        "root '.' nor an allowed package (registry.allowed_packages), it is a "
        "standard-library module; tools run only code from there",
    ], result.stderr
