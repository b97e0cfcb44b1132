"""A task's trace: every model turn and tool call, written in order as it happens."""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import logging
import threading
import uuid

import psycopg
from psycopg.rows import DictRow

from qasdk.config import LimitsConfig
from qasdk.errors import QasdkError
from qasdk.models import TraceStep
from qasdk.store import tasks as store

__all__ = ["TraceRecorder"]

logger = logging.getLogger("qasdk.runner")


class TraceRecorder:
    """Writes trace steps in order on the task's connection, from any thread.

    ``start_seq`` is the last step an earlier attempt wrote: an attempt that
    takes over a task continues its trace instead of overwriting it.
    """

    def __init__(
        self,
        conn: psycopg.AsyncConnection[DictRow],
        task_id: uuid.UUID,
        start_seq: int,
        loop: asyncio.AbstractEventLoop,
        *,
        limits: LimitsConfig | None = None,
    ) -> None:
        self._conn = conn
        self._limits = limits or LimitsConfig()
        #: Steps the database did not take (it went away): written again with the outcome.
        self._unwritten: list[TraceStep] = []
        self._task_id = task_id
        self._seq = itertools.count(start_seq + 1)
        self._seq_lock = threading.Lock()
        self._loop = loop
        self._pending: list[concurrent.futures.Future[None]] = []
        #: Steps written with the outcome, in its round trip (see :meth:`hold`).
        self._held: list[TraceStep] = []

    def next_seq(self) -> int:
        with self._seq_lock:
            return next(self._seq)

    def record(self, step: TraceStep) -> None:
        """Queue a step for writing (safe to call from the agent's thread)."""
        future = asyncio.run_coroutine_threadsafe(self._write(step), self._loop)
        self._pending.append(future)

    async def add(self, step: TraceStep) -> None:
        await self._write(step)

    def hold(self, step: TraceStep) -> None:
        """Keep the attempt's last step to be written with its outcome (one round trip).

        A worker that dies before the outcome is stored loses this step with the
        outcome: the attempt runs again and writes its own.
        """
        self._held.append(step)

    def take_held(self) -> list[TraceStep]:
        held, self._held = self._held, []
        return held

    async def insert(self, steps: list[TraceStep]) -> None:
        """Write ``steps`` as they are, errors to the caller (inside its pipeline)."""
        for step in steps:
            await store.insert_step(self._conn, self._task_id, step, self._limits)

    def unwritten(self, steps: list[TraceStep]) -> None:
        """``steps`` may not have been written: write them again with the kept outcome."""
        self._unwritten.extend(steps)

    async def _write(self, step: TraceStep) -> None:
        try:
            await store.insert_step(self._conn, self._task_id, step, self._limits)
        except (QasdkError, psycopg.Error):
            self._unwritten.append(step)
            logger.warning(
                "could not record trace step %d of task %s", step.seq, self._task_id, exc_info=True
            )

    async def write_again(self, conn: psycopg.AsyncConnection[DictRow]) -> None:
        """Write the steps that failed, on ``conn`` (after the database came back)."""
        while self._unwritten:
            await store.insert_step(conn, self._task_id, self._unwritten[0], self._limits)
            self._unwritten.pop(0)

    async def flush(self) -> None:
        """Wait until every queued step is written (held ones included)."""
        pending, self._pending = self._pending, []
        if pending:
            await asyncio.gather(*(asyncio.wrap_future(f) for f in pending), return_exceptions=True)
        for step in self.take_held():
            await self._write(step)
