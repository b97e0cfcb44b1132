"""Tools the integration tests serve: one per behaviour worth checking."""

import asyncio
import os
import time
from pathlib import Path
from typing import Any

from qasdk import tool

RUNS = Path(os.environ.get("QASDK_TEST_RUNS", "runs.log"))


@tool
def echo(text: str, times: int = 1) -> str:
    """Repeat a text.

    Args:
        text: The text.
        times: How many times.
    """
    return text * times


@tool
def add(a: int, b: int) -> int:
    """Add two integers.

    Args:
        a: First.
        b: Second.
    """
    return a + b


@tool
async def slow_add(a: int, b: int, delay: float = 0.05) -> int:
    """Add two integers, slowly.

    Args:
        a: First.
        b: Second.
        delay: Seconds to wait first.
    """
    await asyncio.sleep(delay)
    return a + b


@tool(timeout=1)
def hang(seconds: float) -> str:
    """Block the process (a synchronous sleep), longer than the tool's timeout.

    Args:
        seconds: How long to block.
    """
    time.sleep(seconds)
    return "woke up"


@tool
def fail(message: str) -> None:
    """Raise an error.

    Args:
        message: The error message.
    """
    raise ValueError(message)


@tool
def crash(code: int = 3) -> None:
    """Exit the process without cleanup.

    Args:
        code: Exit status.
    """
    os._exit(code)


@tool
def allocate(mib: int) -> int:
    """Allocate memory (beyond ``worker.tool_limits.memory_mb``, the call fails).

    Args:
        mib: How many MiB.
    """
    return len(bytearray(mib * 1024 * 1024))


@tool
def unserializable() -> dict:
    """Return something JSON cannot hold."""
    return {"value": object()}


def _note(event: str, tag: str) -> None:
    with RUNS.open("a") as log:
        log.write(f"{event} {tag} {os.getpid()} {time.time()}\n")


@tool
def record(tag: str, seconds: float = 0.0) -> str:
    """Log the run in the runs file: start, a tick every 50 ms while it lasts, end.

    Args:
        tag: What to write.
        seconds: How long the run lasts.
    """
    _note("start", tag)
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        time.sleep(min(0.05, max(0.0, until - time.monotonic())))
        _note("tick", tag)
    _note("end", tag)
    return tag


@tool
def hostile(kind: str, size: int = 1) -> Any:
    """Return a value the database cannot store as it is.

    Args:
        kind: ``nul`` (text with U+0000), ``deep`` (lists nested ``size`` levels),
            ``big`` (a string of ``size`` characters), ``env`` (the tool's environment).
        size: How deep or how big.
    """
    if kind == "env":
        return dict(os.environ)
    if kind == "nul":
        return {"text": "a\x00b", "a\x00key": 1}
    if kind == "deep":
        value: Any = []
        for _ in range(size):
            value = [value]
        return value
    return "x" * size
