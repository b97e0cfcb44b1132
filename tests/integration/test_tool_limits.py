"""Per-tool limits (issue 11): ``max_concurrency`` and ``rate`` hold across two servers'
workers; a call over a limit waits its turn instead of failing."""

from __future__ import annotations

import concurrent.futures
import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from qasdk.testing import ScriptedModel
from tests.conftest import scratch_database
from tests.integration.harness import Server, make_project, qasdk, until

pytestmark = [pytest.mark.integration]

LIMITED = '''
import json
import os
import time
from pathlib import Path

from qasdk import tool

HERE = Path(os.environ["QASDK_TEST_RUNS"]).parent


def _note(name: str, **entry) -> None:
    with open(HERE / name, "a") as out:
        out.write(json.dumps({**entry, "at": time.time()}) + "\\n")


@tool(max_concurrency=1)
def exclusive(tag: str, seconds: float = 0.2) -> str:
    """Hold the only slot for a while.

    Args:
        tag: Which call this is.
        seconds: How long to hold it.
    """
    _note("exclusive", tag=tag, event="start")
    time.sleep(seconds)
    _note("exclusive", tag=tag, event="end")
    return tag


@tool(rate="2/s")
def paced(tag: str) -> str:
    """Start at most two calls a second.

    Args:
        tag: Which call this is.
    """
    _note("paced", tag=tag, event="start")
    return tag
'''


class Cluster:
    def __init__(self, folder: Path, servers: list[Server]) -> None:
        self.folder, self.servers = folder, servers

    def notes(self, name: str) -> list[dict[str, Any]]:
        path = self.folder / name
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines()]

    def run_all(self, bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Submit every body at once, alternating servers; wait for all outcomes."""
        with concurrent.futures.ThreadPoolExecutor(len(bodies)) as pool:
            futures = [
                pool.submit(self.servers[i % len(self.servers)].run, 60, **body)
                for i, body in enumerate(bodies)
            ]
            return [f.result() for f in futures]


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory,
    session_model: ScriptedModel,
    pg_data: Path,
    pg_url: str,
) -> Iterator[Cluster]:
    folder = make_project(tmp_path_factory.mktemp("limits"), session_model.url)
    (folder / "tools" / "limited.py").write_text(LIMITED)
    with scratch_database(pg_data, pg_url, "toollimits") as url:
        synced = qasdk(folder, url, "sync", "tools")
        assert synced.returncode == 0, synced.stderr
        servers = [Server(folder, url), Server(folder, url)]
        try:
            yield Cluster(folder, servers)
        finally:
            for server in servers:
                assert server.stop() == 0, server.output


def test_max_concurrency_holds_across_workers(cluster: Cluster) -> None:
    bodies = [{"method": "exclusive", "params": {"tag": f"c{i}"}} for i in range(6)]
    outcomes = cluster.run_all(bodies)
    assert [o["status"] for o in outcomes] == ["completed"] * 6, outcomes
    notes = cluster.notes("exclusive")
    assert len(notes) == 12
    # One at a time: each call starts after the one before it ended.
    spans: dict[str, dict[str, float]] = {}
    for note in notes:
        spans.setdefault(note["tag"], {})[note["event"]] = note["at"]
    ordered = sorted(spans.values(), key=lambda s: s["start"])
    for before, after in itertools.pairwise(ordered):
        assert after["start"] >= before["end"], ordered


def test_a_rate_makes_calls_wait_their_turn(cluster: Cluster) -> None:
    outcomes = cluster.run_all([{"method": "paced", "params": {"tag": f"r{i}"}} for i in range(6)])
    assert [o["status"] for o in outcomes] == ["completed"] * 6, outcomes
    starts = sorted(n["at"] for n in cluster.notes("paced"))
    # A burst of two, then one every half second: six calls span at least two seconds
    # (a busy machine only stretches it).
    assert starts[-1] - starts[0] >= 1.9, starts


def test_a_call_whose_turn_comes_too_late_fails_clearly(cluster: Cluster) -> None:
    server = cluster.servers[0]
    holder = server.submit(method="exclusive", params={"tag": "long", "seconds": 5})
    until(
        lambda: any(n["tag"] == "long" for n in cluster.notes("exclusive")),
        "the long call never started",
        within=30,
    )
    try:
        waiting = server.run(method="exclusive", params={"tag": "late"}, timeout=1)
        assert waiting["status"] == "failed", waiting
        assert waiting["error"]["type"] in {"ToolBusy", "TimeoutError"}, waiting
        if waiting["error"]["type"] == "ToolBusy":
            assert "max_concurrency" in waiting["error"]["message"]
    finally:
        server.finished(holder["task_id"], within=30)
