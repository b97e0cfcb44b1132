"""Extra worker processes: what a child is sent, how it fails, and that it is started again."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import msgspec
import pytest

from qasdk.config import Config, DatabaseConfig, ModelConfig, WorkerConfig
from qasdk_server.tasks.processes import Start, WorkerProcesses, child_config

pytestmark = pytest.mark.anyio

#: A database nobody listens on: the child fails to start, quickly.
UNREACHABLE = DatabaseConfig(url="postgresql://u:sekrit@127.0.0.1:1/x", connect_timeout=1)


def test_the_child_gets_the_whole_configuration_but_one_worker_and_no_port() -> None:
    config = Config(
        model=ModelConfig(api_key="key-123"),
        database=UNREACHABLE,
        worker=WorkerConfig(processes=3, concurrency=7, metrics_port=9108, pools=("gpu",)),
    )
    sent = msgspec.json.decode(
        msgspec.json.encode(Start(config=child_config(config), console_level=20)), type=Start
    )
    assert sent.console_level == 20
    assert (sent.config.worker.processes, sent.config.worker.metrics_port) == (1, None)
    assert sent.config.worker.concurrency == 7 and sent.config.worker.pools == ("gpu",)
    assert sent.config.model.api_key == "key-123"
    assert msgspec.structs.replace(sent.config, worker=config.worker) == config


def child(stdin: bytes) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "qasdk_server.tasks.processes"],
        input=stdin.decode(),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_child_says_why_it_cannot_start_on_its_stderr() -> None:
    ended = child(msgspec.json.encode(Start(config=Config(database=UNREACHABLE))) + b"\n")
    assert ended.returncode == 3, ended.stderr  # as `qasdk worker`'s database error
    assert "cannot connect to PostgreSQL at 127.0.0.1:1" in ended.stderr
    assert "sekrit" not in ended.stderr + ended.stdout


def test_a_child_whose_parent_sent_nothing_just_exits() -> None:
    ended = child(b"")
    assert (ended.returncode, ended.stdout, ended.stderr) == (0, "", "")


async def test_a_child_that_exits_is_started_again_until_stopped() -> None:
    processes = WorkerProcesses(Config(database=UNREACHABLE), 1)
    processes.start()
    try:
        for _ in range(600):
            if processes.restarts >= 2:
                break
            await asyncio.sleep(0.1)
        assert processes.restarts >= 2
    finally:
        await asyncio.wait_for(processes.stop(), 60)
    assert processes.pids == []


def test_the_option_overrides_the_setting_and_needs_a_worker() -> None:
    from click.testing import CliRunner

    from qasdk.cli import cli
    from qasdk_server.cli import _service_config

    config = _service_config(Config(), None, None, None, processes=3)
    assert config.worker.processes == 3
    assert _service_config(config, None, None, 2).worker.processes == 3  # unset: unchanged
    refused = CliRunner().invoke(cli, ["serve", "--no-worker", "--processes", "2"])
    assert refused.exit_code == 2
    assert "--processes needs a worker" in refused.output
