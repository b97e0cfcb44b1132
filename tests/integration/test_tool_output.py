"""A tool that prints without end does not flood the log (issue 9): the output caps.

Real tool processes; the caps are small here so the test stays quick.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from qasdk.models import MethodConfig, MethodParameter
from qasdk_server.executor.output import OutputLimits
from qasdk_server.executor.pool import Executor

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

TOOLS = """
import sys

def flood(lines, width):
    for i in range(lines):
        print(str(i) + "x" * width)
    print("last line", file=sys.stderr)
    return "done"
"""

FLOOD = MethodConfig(
    name="flood",
    description="Print a lot.",
    parameters=tuple(
        MethodParameter(name=n, type="int", description=f"The {n}.", required=True)
        for n in ("lines", "width")
    ),
    return_type="any",
    module_path="loud",
    function_name="flood",
)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def _until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


async def test_flooding_output_is_capped_and_the_drop_is_noted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "loud.py").write_text(TOOLS)
    caplog.set_level(logging.INFO, logger="qasdk.tools")
    limits = OutputLimits(line=200, per_call=5000, rate=10_000)
    async with Executor({"flood": FLOOD}, processes=1, cwd=tmp_path, output=limits) as executor:
        result = await executor.execute("flood", {"lines": 5000, "width": 10_000})
        assert (result.success, result.result) == (True, "done")

        def records() -> list[logging.LogRecord]:
            return [r for r in caplog.records if r.name == "qasdk.tools"]

        await _until(lambda: any("dropped" in r.getMessage() for r in records()))
        lines = [r for r in records() if r.levelno == logging.INFO]
        (note,) = [r for r in records() if r.levelno == logging.WARNING]
        # 5000 bytes a call at 200 bytes a line (plus the marker): a couple of dozen lines.
        assert 10 <= len(lines) <= 30, len(lines)
        assert all(len(r.getMessage()) < 300 for r in lines)
        assert "more bytes; worker.tool_output_line" in lines[0].getMessage()
        assert "flood: dropped" in note.getMessage()
        assert "worker.tool_output_per_call" in note.getMessage()

        # The next call has its own allowance.
        caplog.clear()
        result = await executor.execute("flood", {"lines": 1, "width": 1})
        assert result.success
        await _until(lambda: any("last line" in r.getMessage() for r in records()))
