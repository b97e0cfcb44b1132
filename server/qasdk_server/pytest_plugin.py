"""The ``qasdk_tools`` fixture, registered as a ``pytest11`` entry point.

Import-light on purpose (pytest loads it in every session): the server loads
when a test asks for the fixture.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from qasdk.testing import ScriptedModel
    from qasdk_server.testing import Tools

__all__ = ["qasdk_tools"]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        "qasdk_tools",
        "folders (from the rootdir) the qasdk_tools fixture syncs and runs",
        type="linelist",
        default=["tools"],
    )


@pytest.fixture
def qasdk_tools(request: pytest.FixtureRequest, scripted_model: ScriptedModel) -> Iterator[Tools]:
    """Your tools, synced into a scratch database, run as the server runs them.

    The folders come from the ``qasdk_tools`` ini option (default ``tools``),
    imported from the rootdir; tasks in words go to ``scripted_model``.
    """
    from qasdk_server.testing import run_tools

    root = request.config.rootpath
    folders = [root / folder for folder in request.config.getini("qasdk_tools")]
    with run_tools(folders, model=scripted_model, module_root=root) as tools:
        yield tools
