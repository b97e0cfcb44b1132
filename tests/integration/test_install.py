"""Installation shapes users have: their own ``server/`` package, the SDK without the server.

Real processes from a user's project folder, a real database: what a user
would type, with what they would have installed.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import psycopg
import pytest

from tests.integration.harness import ANNOUNCE, Process, environment, make_project, qasdk

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

#: A startup file that makes the named top-level packages unimportable, as if not installed.
HIDE = """
import sys
for name in {names!r}:
    sys.modules[name] = None  # what Python does for a package that is not there: import fails
"""
SERVER_EXTRA = ("litestar", "uvicorn", "procrastinate", "qwen_agent", "prometheus_client")


def _hiding(project: Path, names: tuple[str, ...]) -> dict[str, str]:
    """Environment variables that hide ``names`` from every Python started with them."""
    site = project / ".hide"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(HIDE.format(names=set(names)))
    return {"PYTHONPATH": str(site)}


def _user_server_package(project: Path) -> None:
    """The user's own ``server`` package, a very common name."""
    package = project / "server"
    package.mkdir()
    (package / "__init__.py").write_text('WHOSE = "the user\'s"\n')
    (package / "serve.py").write_text("def main():\n    return 'user code'\n")


@pytest.mark.parametrize(
    "command", [[sys.executable, "-m", "qasdk"], [str(Path(sys.executable).with_name("qasdk"))]]
)
def test_a_project_with_its_own_server_package_serves(
    tmp_path: Path, pg_url: str, command: list[str]
) -> None:
    project = make_project(tmp_path, "http://127.0.0.1:9")
    _user_server_package(project)
    assert qasdk(project, pg_url, "sync", "tools").returncode == 0
    serving = subprocess.Popen(
        [*command, "serve", "--port", "0", "--no-worker"],
        cwd=project,
        env=environment(project, pg_url),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert serving.stdout is not None
        first = ""
        for line in serving.stdout:
            first = line
            if ANNOUNCE.search(line) or "Error" in line:
                break
        assert ANNOUNCE.search(first), first
    finally:
        serving.send_signal(signal.SIGTERM)
        output = serving.communicate(timeout=30)[0]
    assert serving.returncode == 0, output
    # The user's package is the one `server` means there, and qasdk's code is under its own name.
    whose = subprocess.run(
        [sys.executable, "-c", "import server, qasdk_server; print(server.WHOSE)"],
        cwd=project,
        capture_output=True,
        text=True,
        check=True,
    )
    assert whose.stdout.strip() == "the user's"


def test_nothing_qasdk_installs_is_importable_under_a_generic_name(tmp_path: Path) -> None:
    for name in ("server", "sample_tools", "tests", "bench"):
        found = subprocess.run(
            [
                sys.executable,
                "-c",
                f"import importlib.util; print(importlib.util.find_spec({name!r}))",
            ],
            cwd=tmp_path,  # an empty folder: only what is installed can be found
            capture_output=True,
            text=True,
            check=True,
        )
        assert found.stdout.strip() == "None", f"{name}: {found.stdout}"


def test_the_sdk_alone_syncs_and_says_what_serving_needs(
    tmp_path: Path, fresh_database: str
) -> None:
    project = make_project(tmp_path, "http://127.0.0.1:9")
    env = {**environment(project, fresh_database), **_hiding(project, SERVER_EXTRA)}
    run = subprocess.run(
        [sys.executable, "-m", "qasdk", "sync", "tools"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert "created" in run.stdout
    with psycopg.connect(fresh_database) as conn:
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables").fetchall()}
    assert "registered_methods" in tables
    assert "tasks" not in tables  # the queue's tables come with the server

    serve = subprocess.run(
        [sys.executable, "-m", "qasdk", "serve"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert serve.returncode == 4
    assert serve.stderr.strip() == (
        "error: the task server needs the 'server' extra (missing: litestar, uvicorn, "
        "procrastinate, qwen_agent, prometheus_client); install it with: "
        "pip install 'qasdk[server]'"
    )

    # Installed later, the server adds the queue's tables to the same database.
    worker = Process(project, fresh_database, "worker")
    try:
        worker.wait_for("worker .* running")
    finally:
        assert worker.stop() == 0
    with psycopg.connect(fresh_database) as conn:
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables").fetchall()}
    assert {"tasks", "task_steps", "procrastinate_jobs"} <= tables


def test_a_taken_port_is_one_line_and_its_own_exit_status(tmp_path: Path, pg_url: str) -> None:
    project = make_project(tmp_path, "http://127.0.0.1:9")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = qasdk(project, pg_url, "serve", "--port", str(port))
    assert result.returncode == 4, result.stdout + result.stderr
    assert result.stderr.strip() == (
        f"error: cannot listen on 127.0.0.1:{port}: Address already in use; stop the other "
        "server or choose another --port (0 picks a free one)"
    )
    assert "Traceback" not in result.stdout + result.stderr


def test_an_unexpected_error_is_one_line_unless_asked(tmp_path: Path) -> None:
    # A bug planted in the pipeline stands in for any bug.
    project = make_project(tmp_path, "http://127.0.0.1:9")
    script = textwrap.dedent(
        """
        import sys
        import qasdk.registration.collect as collect
        def broken(*args, **kwargs):
            raise RuntimeError("boom")
        collect.collect = broken
        from qasdk.cli import main
        main(sys.argv[1:])
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("QASDK_")}
    quiet = subprocess.run(
        [sys.executable, "-c", script, "check", "tools"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
    )
    assert quiet.returncode == 70
    assert quiet.stderr.strip() == (
        "error: internal error: RuntimeError: boom (-vv shows the traceback)"
    )
    loud = subprocess.run(
        [sys.executable, "-c", script, "check", "tools", "-vv"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
    )
    assert loud.returncode == 1 and "Traceback" in loud.stderr
