"""Per-tool limits shared by every worker: a rate (``tool_rates``) and concurrency slots.

Slots are session advisory locks: a worker that dies releases its slots with
its connection, so a crash never leaves a tool blocked.
"""

from __future__ import annotations

from qasdk.store import _rates
from qasdk.store._sql import Conn, fetch_one

__all__ = ["take_rate", "try_slot"]


async def take_rate(conn: Conn, tool: str, count: int, seconds: int) -> float | None:
    """Count one call against ``count`` per ``seconds``: ``None`` if it may start, else the wait."""
    return await _rates.take(
        conn, "take_tool_rate", "tool_rate_wait", {"tool": tool}, count, seconds
    )


async def try_slot(conn: Conn, tool: str, slots: int) -> int | None:
    """Take a free slot of ``tool`` on ``conn`` (autocommit; held while it lives)."""
    for slot in range(slots):
        row = await fetch_one(conn, "try_tool_slot", {"tool": tool, "slot": slot})
        if row is not None and row["taken"]:
            return slot
    return None
