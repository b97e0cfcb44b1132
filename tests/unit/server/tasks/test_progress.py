"""The progress relay: a flood of reports becomes a few announcements, the last one kept."""

from __future__ import annotations

import asyncio

import pytest

from qasdk_server.executor.child import Progress
from qasdk_server.tasks.progress import ProgressRelay

pytestmark = pytest.mark.anyio


async def test_a_flood_is_coalesced_and_the_last_report_arrives() -> None:
    sent: list[tuple[float | None, str | None]] = []

    async def announce(fraction: float | None, message: str | None) -> None:
        sent.append((fraction, message))

    background: set[asyncio.Task[None]] = set()
    relay = ProgressRelay(announce, background, interval=60)
    relay(Progress(0.001, "step 1"))
    while not sent:  # the first goes at once...
        await asyncio.sleep(0)
    for i in range(2, 1001):  # ...the rest wait out the interval, superseding each other
        relay(Progress(i / 1000, f"step {i}"))
        await asyncio.sleep(0)
    relay.close()  # the call ended: what is left goes now, not an interval later
    await asyncio.wait_for(asyncio.gather(*background), 10)
    assert relay.received == 1000
    assert sent[0] == (0.001, "step 1")
    assert sent[-1] == (1.0, "step 1000")
    assert len(sent) == 2 == relay.sent


async def test_a_failing_announcement_does_not_stop_the_next() -> None:
    calls: list[float | None] = []

    async def announce(fraction: float | None, message: str | None) -> None:
        calls.append(fraction)
        if len(calls) == 1:
            raise OSError("database down")

    background: set[asyncio.Task[None]] = set()
    relay = ProgressRelay(announce, background, interval=0)
    relay(Progress(0.1))
    await asyncio.wait_for(asyncio.gather(*background), 10)
    relay(Progress(0.2))
    await asyncio.wait_for(asyncio.gather(*background), 10)
    assert calls == [0.1, 0.2] and relay.sent == 1
