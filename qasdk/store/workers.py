"""The ``qasdk_workers`` table: each worker process, registered at start, kept by its heartbeat.

Procrastinate's own worker table holds an id and a heartbeat; this one says
which process it is (host, pid, version), which pools it serves and how much it
has run, for ``GET /api/workers``, ``qasdk workers`` and ``/metrics``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

import msgspec

from qasdk.store._sql import Conn, execute, fetch_all, fetch_one

__all__ = [
    "WorkerRow",
    "heartbeat",
    "list_workers",
    "pool_served",
    "register",
    "stopped",
]


class WorkerRow(msgspec.Struct, frozen=True, kw_only=True):
    """One worker process; ``alive``: its heartbeat is younger than ``worker.stalled_after``
    and it did not stop. ``done``: tasks it ended (any outcome) since it started."""

    id: uuid.UUID
    name: str
    host: str
    pid: int
    pools: list[str]
    version: str
    concurrency: int
    started_at: datetime
    last_heartbeat: datetime
    stopped_at: datetime | None
    running: int
    done: int
    alive: bool


async def register(
    conn: Conn,
    *,
    worker_id: uuid.UUID,
    name: str,
    host: str,
    pid: int,
    pools: Sequence[str],
    version: str,
    concurrency: int,
) -> None:
    await execute(
        conn,
        "register_worker",
        {
            "id": worker_id,
            "name": name,
            "host": host,
            "pid": pid,
            "pools": list(pools),
            "version": version,
            "concurrency": concurrency,
        },
    )


async def heartbeat(
    conn: Conn, worker_id: uuid.UUID, *, running: int, done: int, forget: float
) -> bool:
    """Refresh this worker's row (and delete those silent ``forget`` seconds); ``False``
    when its row is gone (deleted while the worker was cut off: register again)."""
    row = await fetch_one(
        conn,
        "worker_heartbeat",
        {"id": worker_id, "running": running, "done": done, "forget": forget},
    )
    return row is not None


async def stopped(conn: Conn, worker_id: uuid.UUID, *, running: int, done: int) -> None:
    """The worker stopped on purpose: shown as dead at once, not after ``stalled_after``."""
    await execute(conn, "worker_stopped", {"id": worker_id, "running": running, "done": done})


async def list_workers(conn: Conn, *, stale: float, limit: int = 500) -> list[WorkerRow]:
    rows = await fetch_all(conn, "list_workers", {"stale": stale, "limit": limit})
    return [msgspec.convert(row, WorkerRow) for row in rows]


async def pool_served(conn: Conn, pool: str, *, stale: float) -> bool:
    """Whether a live worker serves ``pool``."""
    row = await fetch_one(conn, "pool_served", {"pool": pool, "stale": stale})
    return bool(row and row["served"])
