"""The container image and the compose stack, for real (issue 17).

Builds the image (and PostgreSQL's, from Debian's package, on a debootstrapped base
where no registry is reachable) from a copy of the repository, brings compose.yaml up
with two worker replicas and keys in force, then: a direct task submitted through the
API container's published port runs on a worker container; a slow task whose worker
container is killed (``docker kill``) mid-call finishes on the other one. Skipped, with
the reason, where this machine cannot run containers (.ci/run starts dockerd).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.deploy import engine

pytestmark = [pytest.mark.integration, pytest.mark.timeout(2400)]

REPO = Path(__file__).parents[2]
TOOLS = Path(__file__).parent / "tools" / "deploy_tools"
IMAGE = "qasdk:compose-test"
POSTGRES_IMAGE = "qasdk-postgres:compose-test"
#: What the build and compose need of the repository (the rest stays out of the copy).
PROJECT_FILES = ("pyproject.toml", "README.md", "Dockerfile", ".dockerignore", "compose.yaml")
PROJECT_FOLDERS = ("qasdk", "server", "deploy")
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".qasdk", "*.crt")


def until(condition: Callable[[], Any], what: str, within: float) -> Any:
    """Poll ``condition`` about once a second (each poll runs docker or HTTP) until truthy."""
    deadline = time.monotonic() + within
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what} (waited {within:.0f} s)"
        time.sleep(1.0)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Stack:
    """One compose project in a folder of its own: its commands, containers and logs."""

    def __init__(self, compose: list[str], folder: Path, name: str) -> None:
        self.compose, self.folder, self.name = compose, folder, name
        # Compose reads variables from the shell before .env: keep the suite's own out.
        self.env = {
            k: v for k, v in os.environ.items() if not k.startswith(("QASDK_", "POSTGRES_"))
        }

    def __call__(
        self, *args: str, check: bool = True, timeout: float = 600
    ) -> subprocess.CompletedProcess[str]:
        command = [*self.compose, "-p", self.name, "-f", "compose.yaml", "-f", "compose.test.yaml"]
        return engine.run(
            [*command, *args], cwd=self.folder, env=self.env, check=check, timeout=timeout
        )

    def containers(self, service: str) -> list[str]:
        return self("ps", "-a", "-q", service).stdout.split()

    def inspect(self, container: str, template: str) -> str:
        return engine.run(["docker", "inspect", "-f", template, container]).stdout.strip()

    def health(self, service: str) -> str:
        found = self.containers(service)
        return self.inspect(found[0], "{{.State.Health.Status}}") if found else "absent"

    def hostnames(self, service: str) -> dict[str, str]:
        """Container id by host name (what a tool in it sees as ``socket.gethostname()``)."""
        return {self.inspect(c, "{{.Config.Hostname}}"): c for c in self.containers(service)}


def build(context: Path) -> None:
    """Both images, timed (shown with -s): the first build fetches every wheel from PyPI."""
    for tag, folder in ((POSTGRES_IMAGE, context / "deploy" / "postgres"), (IMAGE, context)):
        started = time.monotonic()
        engine.run(["docker", "build", "-t", tag, str(folder)], cwd=context, timeout=1800)
        print(f"built {tag} in {time.monotonic() - started:.1f} s")


@pytest.fixture(scope="module")
def compose() -> list[str]:
    try:
        engine.engine()
        command = engine.compose_command()
        engine.package_index()
    except engine.Unusable as exc:
        pytest.skip(str(exc))
    return command


@pytest.fixture(scope="module")
def stack(compose: list[str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    folder = tmp_path_factory.mktemp("deploy") / "project"
    folder.mkdir()
    for name in PROJECT_FILES:
        shutil.copy2(REPO / name, folder / name)
    for name in PROJECT_FOLDERS:
        shutil.copytree(REPO / name, folder / name, ignore=IGNORED)
    for certificate in engine.proxy_certificates():
        shutil.copy2(certificate, folder / "deploy" / "ca-certificates" / certificate.name)
    build(folder)

    ledger = folder.parent / "ledger"
    ledger.mkdir()
    ledger.chmod(0o777)  # the containers' user (uid 10001) writes here
    (folder / ".env").write_text(
        "\n".join(
            [
                f"POSTGRES_PASSWORD={secrets.token_hex(16)}",
                f"QASDK_SIGNING_KEY={secrets.token_hex(32)}",
                "QASDK_SERVER_AUTH=keys",
                f"QASDK_API_PORT={free_port()}",
                f"QASDK_TOOLS_DIR={TOOLS}",
                "QASDK_TOOLS_PACKAGE=deploy_tools",
                "QASDK_WORKERS=2",
                "QASDK_WORKER_HEARTBEAT_INTERVAL=1",
                "QASDK_WORKER_STALLED_AFTER=5",
                "QASDK_WORKER_SHUTDOWN_GRACE=2",
                f"QASDK_IMAGE={IMAGE}",
                f"QASDK_POSTGRES_IMAGE={POSTGRES_IMAGE}",
                "",
            ]
        )
    )
    # The test's own additions: the ledger the tool writes, and a killed worker stays dead.
    (folder / "compose.test.yaml").write_text(
        'version: "2.4"\n'
        "services:\n"
        "  worker:\n"
        '    restart: "no"\n'
        "    volumes:\n"
        f"      - {ledger}:/app/ledger\n"
    )
    running = Stack(compose, folder, f"qasdktest{os.getpid()}")
    try:
        running("up", "-d", "--no-build", timeout=900)
        yield running
    finally:
        print(running("logs", "--no-color", "--tail", "150", check=False).stdout[-20000:])
        running("down", "-v", "--remove-orphans", check=False, timeout=300)


@pytest.fixture(scope="module")
def api(stack: Stack) -> Iterator[httpx.Client]:
    until(lambda: stack.health("api") == "healthy", "the api container never became healthy", 300)
    sync = stack.containers("sync")
    assert sync, "no sync container ran"
    assert stack.inspect(sync[0], "{{.State.ExitCode}}") == "0"
    created = stack(
        "run", "--rm", "-T", "--no-deps", "sync", "keys", "create", "deploy-test",
        "--scope", "admin", "--json",
    )  # fmt: skip
    key = json.loads(created.stdout.strip().splitlines()[-1])["key"]
    address = stack("port", "api", "8000").stdout.strip()
    with httpx.Client(
        base_url=f"http://{address}", headers={"Authorization": f"Bearer {key}"}, timeout=60
    ) as client:
        yield client


def submit(client: httpx.Client, token: str, seconds: float) -> str:
    response = client.post(
        "/api/tasks", json={"method": "mark", "params": {"token": token, "seconds": seconds}}
    )
    assert response.status_code == 201, response.text
    return str(response.json()["task_id"])


def finished(client: httpx.Client, task_id: str, within: float) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        task: dict[str, Any] = client.get(f"/api/tasks/{task_id}", params={"wait": 20}).json()
        return task if task["status"] in ("completed", "failed", "cancelled") else None

    task: dict[str, Any] = until(done, f"task {task_id} never finished", within)
    return task


def ledger(stack: Stack, token: str) -> list[str]:
    path = stack.folder.parent / "ledger" / f"{token}.log"
    return path.read_text().splitlines() if path.exists() else []


def test_the_api_container_is_closed_without_a_key(stack: Stack, api: httpx.Client) -> None:
    base = str(api.base_url).rstrip("/")
    health = httpx.get(f"{base}/health", timeout=30)
    assert health.status_code == 200, health.text
    assert health.json()["database"]["ok"] is True
    refused = httpx.get(f"{base}/api/tasks", timeout=30)
    assert refused.status_code == 401, refused.text


def test_a_direct_task_runs_on_a_worker_container(stack: Stack, api: httpx.Client) -> None:
    workers = stack.hostnames("worker")
    assert len(workers) == 2, workers
    task = finished(api, submit(api, "quick", 2), within=180)
    assert task["status"] == "completed", task
    host = task["result"]["host"]
    assert host in workers, (task, workers)
    assert ledger(stack, "quick") == [f"start {host}", f"end {host}"]


def test_a_killed_workers_task_finishes_on_another(stack: Stack, api: httpx.Client) -> None:
    workers = stack.hostnames("worker")
    task_id = submit(api, "slow", 20)
    started = until(lambda: ledger(stack, "slow"), "the slow task never started", 180)
    victim = started[0].split()[1]
    engine.run(["docker", "kill", workers[victim]])
    assert stack.inspect(workers[victim], "{{.State.Running}}") == "false"

    task = finished(api, task_id, within=300)
    assert task["status"] == "completed", task
    survivor = task["result"]["host"]
    assert survivor != victim and survivor in workers, (task, victim, workers)
    lines = ledger(stack, "slow")
    assert lines[0] == f"start {victim}", lines
    assert f"end {victim}" not in lines, lines
    assert lines[-2:] == [f"start {survivor}", f"end {survivor}"], lines
