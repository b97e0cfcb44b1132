"""``GET /api/workers``: every registered worker process, its pools, heartbeat and load.

Each worker (``qasdk worker``, or the one ``qasdk serve`` embeds) registers in
``qasdk_workers`` at start and refreshes its row with every heartbeat; this
server's own process is told too, worker or not.
"""

from __future__ import annotations

import os
import socket
import uuid
from datetime import datetime

import msgspec
from litestar import get

from qasdk.store import workers as store
from qasdk_server.errors import error_responses
from qasdk_server.state import ServerState

__all__ = ["list_workers"]


class Worker(msgspec.Struct):
    id: uuid.UUID
    #: ``host:pid``, as logs and a task's ``worker`` name it.
    name: str
    host: str
    pid: int
    #: The worker pools it serves (``qasdk worker --pool ...``).
    pools: list[str]
    version: str
    #: Tasks it runs at once, at most.
    concurrency: int
    started_at: datetime
    last_heartbeat: datetime
    #: Set when it stopped on purpose (it is dead from then on).
    stopped_at: datetime | None
    #: ``False``: presumed dead (no heartbeat for ``worker.stalled_after`` seconds, or stopped).
    alive: bool
    #: Tasks running there now, and tasks it ended since it started (as of its last heartbeat).
    running: int
    done: int


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


@get(
    "/api/workers",
    summary="The queue's workers",
    responses=error_responses(),
    opt={"scope": "read"},
)
async def list_workers(server: ServerState) -> WorkerList:
    """Every registered worker, alive first, then newest first; dead ones until
    ``worker.forget_after`` has passed since their last heartbeat."""
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
    workers = [Worker(**msgspec.structs.asdict(row)) for row in rows]
    return WorkerList(workers=workers, alive=sum(w.alive for w in workers), server=here)
