"""Tools' progress reports, passed on to the task's followers without flooding the bus.

A tool may call ``ctx.report_progress`` in a tight loop; each report would be a
database round trip and a notification to every server. The relay sends at
most one per ``interval`` per call, always the latest, and the last one of a
call is never dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from qasdk_server.executor.child import Progress

__all__ = ["ProgressRelay"]

logger = logging.getLogger("qasdk.progress")

Announce = Callable[[float | None, str | None], Awaitable[None]]


class ProgressRelay:
    """The progress of one tool call: ``relay(report)`` from the tool process's reader."""

    def __init__(
        self, announce: Announce, background: set[asyncio.Task[None]], interval: float = 0.2
    ) -> None:
        self._announce = announce
        self._background = background
        self._interval = interval
        self._latest: Progress | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = asyncio.Event()
        self._next_at = 0.0
        #: Reports received and reports passed on (the rest were superseded).
        self.received = self.sent = 0
        #: The latest report (what the call's trace step keeps).
        self.last: Progress | None = None

    def __call__(self, report: Progress) -> None:
        self.received += 1
        self._latest = self.last = report
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain(), name="qasdk progress")
            self._background.add(self._task)
            self._task.add_done_callback(self._background.discard)

    def close(self) -> None:
        """The call ended: pass the last report on now, in the background."""
        self._closed.set()

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        while self._latest is not None:
            wait = self._next_at - loop.time()
            if wait > 0 and not self._closed.is_set():
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._closed.wait(), wait)
            report, self._latest = self._latest, None
            try:
                await self._announce(report.fraction, report.message)
                self.sent += 1
            except Exception as exc:  # progress is best effort: the database may be down
                logger.debug("could not pass progress on: %s", exc)
            self._next_at = loop.time() + self._interval
