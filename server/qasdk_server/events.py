"""Task progress and registry changes from PostgreSQL notifications.

Triggers on ``tasks`` and ``task_steps`` announce every status change and
trace step on the ``qasdk_task_events`` channel, whichever worker (on
whichever machine) caused it; a trigger on ``registered_methods`` announces
registry changes on ``qasdk_registry``. One listening connection per process
turns them into per-task asyncio queues and a registry callback. When the
connection drops (the database restarted), subscribers get a ``resync``
event and the registry is reloaded: notifications may have been missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import psycopg

from qasdk.store.connection import connect
from qasdk.store.notify import REGISTRY_CHANNEL, listen

__all__ = ["TaskEvents"]

logger = logging.getLogger("qasdk.events")


class TaskEvents:
    """A LISTEN connection and the queues of everyone waiting on a task."""

    def __init__(
        self,
        url: str,
        *,
        reconnect_delay: float = 0.5,
        on_registry_change: Callable[[], Awaitable[Any]] | None = None,
    ) -> None:
        self._url = url
        self._on_registry_change = on_registry_change
        self._registry_task: asyncio.Task[Any] | None = None
        self._registry_dirty = False
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
        for task in (self._task, self._registry_task):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._task = self._registry_task = None

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

    def _registry_changed(self) -> None:
        """Reload the registry once per burst of changes (a sync is one statement, usually)."""
        if self._on_registry_change is None:
            return
        self._registry_dirty = True
        if self._registry_task is not None and not self._registry_task.done():
            return  # the running reload goes round again

        async def reload() -> None:
            assert self._on_registry_change is not None
            while self._registry_dirty:
                self._registry_dirty = False
                await asyncio.sleep(0.05)
                try:
                    await self._on_registry_change()
                except Exception:  # the database may be down; the next change retries
                    logger.warning("could not reload the registry", exc_info=True)

        self._registry_task = asyncio.create_task(reload(), name="qasdk registry reload")

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
                    await listen(conn)
                    if self.connected is False and self._ready.is_set():
                        logger.info("task events: listening again")
                        self._registry_changed()  # changes may have happened meanwhile
                    self.connected = True
                    self._ready.set()
                    self._resync_all()
                    async for notification in conn.notifies():
                        if notification.channel == REGISTRY_CHANNEL:
                            self._registry_changed()
                        else:
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
