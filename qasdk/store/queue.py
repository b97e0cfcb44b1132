"""The queue's state in PostgreSQL beyond Procrastinate's own: stalled jobs, and counts.

Procrastinate does not retry the jobs of a worker that died; qasdk does, in
one statement (``recover_stalled_jobs``). The counts feed ``/metrics``.
"""

from __future__ import annotations

from typing import Any

import msgspec

from qasdk.store import graphs
from qasdk.store._sql import Conn, fetch_all, fetch_one
from qasdk.store.pools import QUEUE, QUEUE_PREFIX, pool_of

__all__ = ["QueueSnapshot", "StalledJob", "queue_snapshot", "recover_stalled_jobs"]


class StalledJob(msgspec.Struct, frozen=True):
    """A job taken back from a dead worker, and whether its task was being cancelled."""

    job_id: int
    task_id: str | None
    abort_requested: bool


class QueueSnapshot(msgspec.Struct, frozen=True):
    """Tasks by status, jobs waiting, workers alive: across every process on the database.

    ``queued_by_pool``: jobs waiting, by pool; ``pool_workers``: registered workers by
    (pool, ``alive`` or ``dead``); a worker serving two pools counts in each.
    """

    tasks: dict[str, int]
    queued: int
    workers: int
    queued_by_pool: dict[str, int] = {}
    pool_workers: dict[tuple[str, str], int] = {}


async def recover_stalled_jobs(conn: Conn, *, stale: float) -> list[StalledJob]:
    """Queue again the jobs of workers silent for ``stale`` seconds (see queries.sql)."""
    rows = await fetch_all(
        conn, "recover_stalled_jobs", {"queue": QUEUE, "prefix": QUEUE_PREFIX, "stale": stale}
    )
    # A sub-task cancelled here moves its graph on (in a transaction of its own, after
    # this statement's: its rows are unlocked, so the parent's lock comes first again).
    for parent in {row.pop("parent_id") for row in rows} - {None}:
        await graphs.advance(conn, parent)
    return [msgspec.convert(row, StalledJob) for row in rows]


async def queue_snapshot(conn: Conn, *, stale: float) -> QueueSnapshot:
    row: Any = await fetch_one(
        conn, "metrics_snapshot", {"queue": QUEUE, "prefix": QUEUE_PREFIX, "stale": stale}
    )
    assert row is not None
    return QueueSnapshot(
        tasks=dict(row["tasks"] or {}),
        queued=row["queued"],
        workers=row["workers"],
        queued_by_pool={pool_of(q): n for q, n in (row["queued_by_queue"] or {}).items()},
        pool_workers={
            (entry["pool"], "alive" if entry["alive"] else "dead"): entry["n"]
            for entry in row["pool_workers"] or []
        },
    )
