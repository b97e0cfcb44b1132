"""``GET /api/workers``: the queue's workers, their heartbeats and what they run now.

Procrastinate's worker table holds an id and a heartbeat; a worker's name
(``host:pid``) is read from the tasks it runs, and this server's own process
(host, pid, start) is told in full.
"""

from __future__ import annotations

import os
import socket
from datetime import datetime

import msgspec
from litestar import get

from qasdk.store import workers as store
from qasdk_server.errors import error_responses
from qasdk_server.state import ServerState

__all__ = ["list_workers"]


class Worker(msgspec.Struct):
    id: int
    #: ``host:pid``, ``host`` and ``pid``: known while it runs a task, or when it is this server's.
    name: str | None
    host: str | None
    pid: int | None
    started_at: datetime | None
    last_heartbeat: datetime
    alive: bool
    running: int


class ThisServer(msgspec.Struct):
    name: str
    host: str
    pid: int
    started_at: datetime
    embedded_worker: bool
    running_tasks: int


class WorkerList(msgspec.Struct):
    workers: list[Worker]
    alive: int
    server: ThisServer


def _split(name: str | None) -> tuple[str | None, int | None]:
    if not name:
        return None, None
    host, _, pid = name.rpartition(":")
    return (host, int(pid)) if host and pid.isdigit() else (name, None)


@get(
    "/api/workers",
    summary="The queue's workers",
    responses=error_responses(),
    opt={"scope": "read"},
)
async def list_workers(server: ServerState) -> WorkerList:
    """Every worker Procrastinate knows of, alive or not yet pruned, oldest first."""
    async with server.pool.connection() as conn:
        rows = await store.list_workers(conn, stale=server.config.worker.stalled_after)
    here = ThisServer(
        name=f"{socket.gethostname()}:{os.getpid()}",
        host=socket.gethostname(),
        pid=os.getpid(),
        started_at=server.started_at,
        embedded_worker=server.worker is not None,
        running_tasks=server.running_tasks,
    )
    workers = []
    for row in rows:
        host, pid = _split(row.name)
        workers.append(
            Worker(
                id=row.id,
                name=row.name,
                host=host,
                pid=pid,
                started_at=here.started_at if row.name == here.name else None,
                last_heartbeat=row.last_heartbeat,
                alive=row.alive,
                running=row.running,
            )
        )
    return WorkerList(workers=workers, alive=sum(w.alive for w in workers), server=here)
