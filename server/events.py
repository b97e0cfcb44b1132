"""Task progress from PostgreSQL notifications, fanned out to whoever waits.

Triggers on ``tasks`` and ``task_steps`` announce every status change and
trace step on the ``qasdk_task_events`` channel, whichever worker (on
whichever machine) caused it. One listening connection per server process
turns them into per-task asyncio queues. When the connection drops (the
database restarted), subscribers get a ``resync`` event: events may have been
missed, so they re-read the task.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any

import psycopg

from qasdk.store.connection import connect

__all__ = ["CHANNEL", "TaskEvents"]

CHANNEL = "qasdk_task_events"
logger = logging.getLogger("qasdk.events")


class TaskEvents:
    """A LISTEN connection and the queues of everyone waiting on a task."""

    def __init__(self, url: str, *, reconnect_delay: float = 0.5) -> None:
        self._url = url
        self._reconnect_delay = reconnect_delay
        self._queues: dict[uuid.UUID, set[asyncio.Queue[dict[str, Any]]]] = defaultdict(set)
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self.connected = False

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="qasdk task events")
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._ready.wait(), 5)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    @contextlib.asynccontextmanager
    async def subscribe(self, task_id: uuid.UUID) -> AsyncIterator[asyncio.Queue[dict[str, Any]]]:
        """A queue of this task's events for the duration of the block."""
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._queues[task_id].add(queue)
        try:
            yield queue
        finally:
            subscribers = self._queues.get(task_id)
            if subscribers is not None:
                subscribers.discard(queue)
                if not subscribers:
                    del self._queues[task_id]

    def _dispatch(self, payload: str) -> None:
        try:
            event = json.loads(payload)
            task_id = uuid.UUID(event["task_id"])
        except (ValueError, KeyError, TypeError):
            logger.debug("ignoring malformed notification %r", payload)
            return
        for queue in self._queues.get(task_id, ()):
            queue.put_nowait(event)

    def _resync_all(self) -> None:
        for queues in self._queues.values():
            for queue in queues:
                queue.put_nowait({"event": "resync"})

    async def _listen(self) -> None:
        while True:
            try:
                conn = await connect(self._url, autocommit=True)
                async with conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    if self.connected is False and self._ready.is_set():
                        logger.info("task events: listening again")
                    self.connected = True
                    self._ready.set()
                    self._resync_all()
                    async for notification in conn.notifies():
                        self._dispatch(notification.payload)
            except asyncio.CancelledError:
                raise
            except (psycopg.Error, OSError, Exception) as exc:  # keep listening whatever happens
                if self.connected:
                    logger.warning("task events: connection lost (%s); reconnecting", exc)
                self.connected = False
                self._ready.set()
                self._resync_all()
                await asyncio.sleep(self._reconnect_delay)
