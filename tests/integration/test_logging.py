"""DEBUG says more than INFO about the same work (Property 29), through the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.strategies import method_dicts

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


def sync(folder: Path, url: str, level: str, log: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QASDK_")}
    env.update(
        QASDK_DATABASE_URL=url,
        QASDK_LOGGING_LEVEL=level,
        QASDK_LOGGING_FILE=str(log),
        QASDK_LOGGING_FORMAT="json",
    )
    result = subprocess.run(
        [sys.executable, "-m", "qasdk", "sync", str(folder), "--dry-run"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


# Property 29: Debug logging verbosity
@settings(max_examples=5, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(method_dicts(), min_size=0, max_size=4, unique_by=lambda m: m["name"]))
async def test_debug_logs_more_than_info_for_the_same_sync(
    tmp_path_factory: Any, pg_url: str, methods: list[dict[str, Any]]
) -> None:
    folder = tmp_path_factory.mktemp("verbosity")
    (folder / "methods.yaml").write_text(yaml.safe_dump({"methods": methods}))
    # The modules are made up: declared as packages deployed elsewhere (a warning, not an error).
    packages = sorted({m["module_path"].split(".")[0] for m in methods})
    config = {"registry": {"allowed_packages": packages}}
    (folder / "model_config.yaml").write_text(yaml.safe_dump(config))
    counts = {}
    for level in ("INFO", "DEBUG"):
        log = folder / f"{level}.log"
        sync(folder, pg_url, level, log)
        counts[level] = len(log.read_text().splitlines())
    assert counts["INFO"] >= 1
    assert counts["DEBUG"] > counts["INFO"]


# Property 29: Debug logging verbosity (a running server doing the same tasks)
async def test_debug_logs_more_than_info_in_the_server(
    tmp_path: Path, session_model: Any, fresh_database: str
) -> None:
    from tests.integration.harness import Server, make_project, qasdk

    counts = {}
    for level in ("INFO", "DEBUG"):
        project = make_project(tmp_path / level, session_model.url)
        data = yaml.safe_load((project / "model_config.yaml").read_text())
        data["logging"]["level"] = level
        (project / "model_config.yaml").write_text(yaml.safe_dump(data))
        assert qasdk(project, fresh_database, "sync", "tools").returncode == 0
        server = Server(project, fresh_database)
        try:
            for i in range(3):
                assert server.run(method="add", params={"a": i, "b": 1})["status"] == "completed"
            assert server.run(method="fail", params={"message": "x"})["status"] == "failed"
        finally:
            assert server.stop() == 0
        # The first run on the database also applies its migrations: not what is compared.
        lines = (project / "qasdk.log").read_text().splitlines()
        counts[level] = sum(1 for line in lines if '"applied migration' not in line)
    assert counts["DEBUG"] > counts["INFO"] > 0
