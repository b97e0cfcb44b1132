"""``GET /metrics``: Prometheus text format."""

from __future__ import annotations

import logging

from litestar import Response, get

from qasdk.store.queue import QueueSnapshot, queue_snapshot
from qasdk_server.errors import error_responses
from qasdk_server.metrics import CONTENT_TYPE
from qasdk_server.state import ServerState

__all__ = ["metrics"]

logger = logging.getLogger("qasdk.metrics")


@get(
    "/metrics",
    media_type=CONTENT_TYPE,
    summary="Prometheus metrics",
    responses=error_responses(),
    opt={"scope": "read"},
)
async def metrics(server: ServerState) -> Response[bytes]:
    """Tasks by status, queue depth and live workers (from the database, all processes);
    task, tool-call and model-call counts and durations (this process)."""
    snapshot: QueueSnapshot | None = None
    try:
        async with server.pool.connection(timeout=2.0) as conn:
            snapshot = await queue_snapshot(conn, stale=server.config.worker.stalled_after)
    except Exception:  # a scrape must answer even when the database does not
        logger.debug("metrics: database snapshot failed", exc_info=True)
    server.metrics.database.update(
        snapshot, running=server.running_tasks, tools=len(server.registry.methods)
    )
    return Response(server.metrics.render(), media_type=CONTENT_TYPE)
