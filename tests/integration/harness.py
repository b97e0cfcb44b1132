"""Real processes for integration tests: `qasdk serve` and `qasdk worker`.

A project folder holds the tools (copied from ``server_tools/``) and a
``model_config.yaml`` pointing at a scripted model; processes run from it,
exactly as a user would run them, and talk to the test database.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

TOOLS = Path(__file__).parent / "server_tools"
ANNOUNCE = re.compile(r"serving (http://\S+) ")
TERMINAL = {"completed", "failed", "cancelled"}


def until(condition: Any, what: str = "the condition never held", within: float = 20.0) -> None:
    """Wait for ``condition()`` (polled; generous: the machine may be busy), else fail."""
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def make_project(root: Path, model_url: str, *, worker: dict[str, Any] | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    shutil.copytree(
        TOOLS, root / "tools", dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__")
    )
    config = {
        "model": {"api_base": model_url, "timeout": 5, "max_turns": 4},
        "worker": {
            "concurrency": 4,
            "retry_backoff": 0.05,
            # Task retries off: most tests expect a failure to be final (test_dead_letters.py
            # turns them on).
            "max_attempts": 0,
            "heartbeat_interval": 0.5,
            "stalled_after": 2.0,
            "shutdown_grace": 5,
            "tool_env": ["QASDK_TEST_RUNS"],
            **(worker or {}),
        },
        "logging": {"level": "DEBUG", "format": "json", "file": str(root / "qasdk.log")},
    }
    (root / "model_config.yaml").write_text(yaml.safe_dump(config))
    return root


def environment(project: Path, url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QASDK_")}
    if "QASDK_REGISTRY_SIGNING_KEY" in os.environ:  # the suite's one key (tests/conftest.py)
        env["QASDK_REGISTRY_SIGNING_KEY"] = os.environ["QASDK_REGISTRY_SIGNING_KEY"]
    env.update(
        QASDK_DATABASE_URL=url,
        QASDK_TEST_RUNS=str(project / "runs.log"),
        # The same secret under a name of the user's: tools must not get it either.
        APP_DATABASE_URL=url,
        PYTHONUNBUFFERED="1",
    )
    return env


def qasdk(project: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "qasdk", *args],
        cwd=project,
        env=environment(project, url),
        capture_output=True,
        text=True,
        timeout=120,
    )


class Process:
    """A `qasdk serve` or `qasdk worker` child, its output collected as it comes."""

    def __init__(
        self, project: Path, url: str, *args: str, env: dict[str, str] | None = None
    ) -> None:
        self.project = project
        self.args = args
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "qasdk", *args],
            cwd=project,
            env={**environment(project, url), **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, pattern: str, timeout: float = 30) -> re.Match[str]:
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                match = regex.search(line)
                if match:
                    return match
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        raise AssertionError(f"{self.args} never printed {pattern!r}; output:\n{self.output}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(
                f"{self.args} did not stop on {sig}; output:\n{self.output}"
            ) from None
        finally:
            self._close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self._close()

    def _close(self) -> None:
        self._reader.join(timeout=5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


class Server(Process):
    """`qasdk serve --port 0` and an HTTP client for it."""

    def __init__(
        self, project: Path, url: str, *args: str, env: dict[str, str] | None = None
    ) -> None:
        super().__init__(project, url, "serve", "--port", "0", *args, env=env)
        self.base = self.wait_for(ANNOUNCE.pattern).group(1)
        self.http = httpx.Client(base_url=self.base, timeout=30)

    def submit(self, **body: Any) -> dict[str, Any]:
        response = self.http.post("/api/tasks", json=body)
        assert response.status_code == 201, response.text
        return response.json()

    def get(self, task_id: str, wait: float = 0) -> dict[str, Any]:
        response = self.http.get(f"/api/tasks/{task_id}", params={"wait": wait} if wait else None)
        assert response.status_code == 200, response.text
        return response.json()

    def finished(self, task_id: str, within: float = 20) -> dict[str, Any]:
        deadline = time.monotonic() + within
        while True:
            task = self.get(task_id, wait=min(5.0, max(0.1, deadline - time.monotonic())))
            if task["status"] in TERMINAL or time.monotonic() > deadline:
                return task

    def run(self, within: float = 20, **body: Any) -> dict[str, Any]:
        """Submit ``body`` and return the task once finished (or after ``within`` seconds)."""
        return self.finished(self.submit(**body)["task_id"], within)

    def methods(self) -> dict[str, Any]:
        """``GET /api/methods``: the registry as this server holds it."""
        response = self.http.get("/api/methods")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def trace(self, task_id: str) -> list[dict[str, Any]]:
        response = self.http.get(f"/api/tasks/{task_id}/trace")
        assert response.status_code == 200, response.text
        steps: list[dict[str, Any]] = response.json()["steps"]
        return steps

    def log_records(self) -> list[dict[str, Any]]:
        import json

        log = self.project / "qasdk.log"
        return [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        self.http.close()
        return super().stop(sig, timeout)


def runs(project: Path, *, ticks: bool = False) -> list[tuple[str, str, int, float]]:
    """(event, tag, pid, time) lines the `record` tool wrote: start and end (and ticks)."""
    log = project / "runs.log"
    if not log.exists():
        return []
    found = []
    for line in log.read_text().splitlines():
        event, tag, pid, when = line.split()
        if event != "tick" or ticks:
            found.append((event, tag, int(pid), float(when)))
    return found
