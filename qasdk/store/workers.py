"""The workers Procrastinate knows of: heartbeats, and what each runs now (``/api/workers``)."""

from __future__ import annotations

from datetime import datetime

import msgspec

from qasdk.store._sql import Conn, fetch_all
from qasdk.store.tasks import QUEUE

__all__ = ["WorkerRow", "list_workers"]


class WorkerRow(msgspec.Struct, frozen=True):
    """One worker: alive while its heartbeat is younger than ``worker.stalled_after``.

    ``name`` (``host:pid``) is known while it runs a task: Procrastinate stores no more.
    """

    id: int
    last_heartbeat: datetime
    alive: bool
    running: int
    name: str | None


async def list_workers(conn: Conn, *, stale: float) -> list[WorkerRow]:
    rows = await fetch_all(conn, "list_workers", {"queue": QUEUE, "stale": stale})
    return [msgspec.convert(row, WorkerRow) for row in rows]
