"""Fixtures that start real services: a scripted model and a running `qasdk serve`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from qasdk.testing import ScriptedModel
from tests.integration.harness import Server, make_project, qasdk


@pytest.fixture(scope="session")
def session_model() -> Iterator[ScriptedModel]:
    with ScriptedModel() as model:
        yield model


@pytest.fixture
def model(session_model: ScriptedModel) -> Iterator[ScriptedModel]:
    """The shared scripted model, blank for this test."""
    session_model.reset()
    yield session_model
    session_model.reset()


@pytest.fixture(scope="session")
def served_project(
    tmp_path_factory: pytest.TempPathFactory, session_model: ScriptedModel, pg_url: str
) -> Path:
    project = make_project(tmp_path_factory.mktemp("served"), session_model.url)
    synced = qasdk(project, pg_url, "sync", "tools")
    assert synced.returncode == 0, synced.stderr
    return project


@pytest.fixture(scope="session")
def served(served_project: Path, pg_url: str) -> Iterator[Server]:
    """`qasdk serve` from the project folder, shared by the tests of a session."""
    server = Server(served_project, pg_url)
    try:
        yield server
    finally:
        code = server.stop()
        assert code == 0, f"qasdk serve exited with {code}:\n{server.output}"
