"""A worker's row in ``qasdk_workers``: registered at start, refreshed each heartbeat.

Beside Procrastinate's own heartbeat (which decides when a dead worker's jobs
are taken back), this row says who the worker is (host, pid, version, pools)
and what it has run, for ``GET /api/workers``, ``qasdk workers`` and the
``qasdk_pool_workers`` gauge. Losing the database only delays the next write;
a row deleted meanwhile (``worker.forget_after``) is registered again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, version

from qasdk.store import workers as store
from qasdk.store.connection import Pool

__all__ = ["Presence"]

logger = logging.getLogger("qasdk.worker")


def _version() -> str:
    try:
        return version("qasdk")
    except PackageNotFoundError:
        return "0"


class Presence:
    """Keeps one worker's row up to date while it runs; ``counts``: (running, done)."""

    def __init__(
        self,
        pool: Pool,
        *,
        name: str,
        pools: Sequence[str],
        concurrency: int,
        interval: float,
        forget_after: float,
        counts: Callable[[], tuple[int, int]],
    ) -> None:
        self.id = uuid.uuid4()
        self.pool = pool
        self.name = name
        self.pools = tuple(pools)
        self.concurrency = concurrency
        self.interval = interval
        self.forget_after = forget_after
        self.counts = counts
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._beat(), name="qasdk worker presence")

    async def stop(self) -> None:
        """Stop beating and mark the row stopped (it shows as dead at once)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        running, done = self.counts()
        try:
            async with self.pool.connection(timeout=5.0) as conn:
                await store.stopped(conn, self.id, running=running, done=done)
        except Exception:  # the database is gone: the row goes dead by its age instead
            logger.debug("could not mark the worker stopped", exc_info=True)

    async def _register(self) -> None:
        async with self.pool.connection() as conn:
            await store.register(
                conn,
                worker_id=self.id,
                name=self.name,
                host=socket.gethostname(),
                pid=os.getpid(),
                pools=self.pools,
                version=_version(),
                concurrency=self.concurrency,
            )

    async def _beat(self) -> None:
        registered = False
        while True:
            try:
                if not registered:
                    await self._register()
                    registered = True
                else:
                    running, done = self.counts()
                    async with self.pool.connection() as conn:
                        registered = await store.heartbeat(
                            conn, self.id, running=running, done=done, forget=self.forget_after
                        )
            except asyncio.CancelledError:
                raise
            except Exception:  # the database may be restarting; the next beat tries again
                logger.debug("worker heartbeat (qasdk_workers) failed", exc_info=True)
            await asyncio.sleep(self.interval)
