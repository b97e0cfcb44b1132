"""``GET /metrics``: Prometheus text format."""

from __future__ import annotations

import logging
from typing import Any

from litestar import Response, get

from qasdk.models import TaskStatus
from qasdk.store._sql import execute
from qasdk.store.tasks import QUEUE
from server.metrics import render_gauge
from server.state import ServerState

__all__ = ["metrics"]

logger = logging.getLogger("qasdk.metrics")
STATUSES: tuple[TaskStatus, ...] = ("pending", "running", "completed", "failed", "cancelled")


@get(
    "/metrics", media_type="text/plain; version=0.0.4; charset=utf-8", summary="Prometheus metrics"
)
async def metrics(server: ServerState) -> Response[str]:
    """Tasks by status, queue depth and live workers (from the database, all processes);
    task, tool-call and model-call counts and durations (this process)."""
    lines: list[str] = []
    snapshot: dict[str, Any] | None = None
    try:
        async with server.pool.connection(timeout=2.0) as conn:
            cur = await execute(
                conn,
                "metrics_snapshot",
                {"queue": QUEUE, "stale": server.config.worker.stalled_after},
            )
            snapshot = await cur.fetchone()
    except Exception:  # a scrape must answer even when the database does not
        logger.debug("metrics: database snapshot failed", exc_info=True)
    lines += render_gauge(
        "qasdk_database_up",
        "Whether the database answered this scrape.",
        {(): 1 if snapshot is not None else 0},
    )
    if snapshot is not None:
        counts = snapshot["tasks"] or {}
        lines += render_gauge(
            "qasdk_tasks",
            "Tasks by status.",
            {(s,): counts.get(s, 0) for s in STATUSES},
            ("status",),
        )
        lines += render_gauge(
            "qasdk_queue_depth", "Tasks waiting for a worker.", {(): snapshot["queued"]}
        )
        lines += render_gauge(
            "qasdk_workers", "Workers with a recent heartbeat.", {(): snapshot["workers"]}
        )
    running = len(server.worker.running) if server.worker is not None else 0
    lines += render_gauge("qasdk_running_tasks", "Tasks running in this process.", {(): running})
    lines += render_gauge(
        "qasdk_registry_tools",
        "Tools in this process's registry.",
        {(): len(server.registry.methods)},
    )
    lines += server.metrics.render()
    return Response("\n".join(lines) + "\n", media_type="text/plain; version=0.0.4; charset=utf-8")
