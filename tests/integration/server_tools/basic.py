"""Tools the integration tests serve: one per behaviour worth checking."""

import asyncio
import os
import time
from pathlib import Path

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
def unserializable() -> dict:
    """Return something JSON cannot hold."""
    return {"value": object()}


@tool
def record(tag: str, seconds: float = 0.0) -> str:
    """Append a line to the runs log (start and end), sleeping in between.

    Args:
        tag: What to write.
        seconds: How long the run lasts.
    """
    with RUNS.open("a") as log:
        log.write(f"start {tag} {os.getpid()} {time.time()}\n")
    time.sleep(seconds)
    with RUNS.open("a") as log:
        log.write(f"end {tag} {os.getpid()} {time.time()}\n")
    return tag
