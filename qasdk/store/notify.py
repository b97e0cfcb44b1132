"""PostgreSQL notifications qasdk listens to: task events and registry changes.

Triggers (migrations 0004 and 0005) announce every task status change and
trace step, and every change of ``registered_methods``, whoever made it.
"""

from __future__ import annotations

from qasdk.store._sql import Conn, execute

__all__ = ["REGISTRY_CHANNEL", "TASK_CHANNEL", "announce_registry", "listen"]

TASK_CHANNEL = "qasdk_task_events"
REGISTRY_CHANNEL = "qasdk_registry"


async def listen(conn: Conn) -> None:
    """Subscribe ``conn`` (autocommit) to both channels."""
    await execute(conn, "listen_task_events")
    await execute(conn, "listen_registry")


async def announce_registry(conn: Conn) -> None:
    """Tell every listener to reload the registry (its rows did not change: its key did)."""
    await execute(conn, "announce_registry")
