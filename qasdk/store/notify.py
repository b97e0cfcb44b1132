"""PostgreSQL notifications qasdk listens to: task events and registry changes.

Triggers (migrations 0004 and 0005) announce every task status change and
trace step, and every change of ``registered_methods``, whoever made it.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from qasdk.store._sql import Conn, execute

__all__ = [
    "REGISTRY_CHANNEL",
    "TASK_CHANNEL",
    "announce_event",
    "announce_progress",
    "announce_registry",
    "listen",
]

TASK_CHANNEL = "qasdk_task_events"
REGISTRY_CHANNEL = "qasdk_registry"


async def listen(conn: Conn) -> None:
    """Subscribe ``conn`` (autocommit) to both channels."""
    await execute(conn, "listen_task_events")
    await execute(conn, "listen_registry")


async def announce_registry(conn: Conn) -> None:
    """Tell every listener to reload the registry (its rows did not change: its key did)."""
    await execute(conn, "announce_registry")


async def announce_progress(
    conn: Conn, task_id: uuid.UUID, tool: str, fraction: float | None, message: str | None
) -> None:
    """A ``progress`` event of ``task_id`` on the task channel (kept under its 8000-byte cap)."""
    if message and len(message.encode()) > 7000:
        message = message[:1000]
    await announce_event(
        conn, task_id, "progress", {"tool": tool, "fraction": fraction, "message": message}
    )


async def announce_event(conn: Conn, task_id: uuid.UUID, event: str, data: dict[str, Any]) -> None:
    """An event of ``task_id`` that is told, not stored (its followers' SSE streams get it)."""
    payload = json.dumps({**data, "task_id": str(task_id), "event": event}, default=str)
    await execute(conn, "announce_progress", {"payload": payload})
