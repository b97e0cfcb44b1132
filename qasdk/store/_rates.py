"""One step of the generic cell rate algorithm, for whatever its two named queries count."""

from __future__ import annotations

from typing import Any

from qasdk.store._sql import Conn, fetch_one

__all__ = ["take"]


async def take(
    conn: Conn,
    take_query: str,
    wait_query: str,
    key: dict[str, Any],
    count: int,
    seconds: int,
    *,
    unknown_wait: float | None = None,
) -> float | None:
    """Count one event against ``count`` per ``seconds``: ``None`` if allowed, else the wait.

    A burst of ``count``, then one per ``seconds / count``: ``take_query`` moves
    the theoretical arrival time on (no row when it would run too far ahead),
    ``wait_query`` says how long until the next one fits (``unknown_wait`` when it
    finds no row: default, one interval).
    """
    interval = seconds / count
    params = {**key, "interval": interval, "tolerance": seconds - interval}
    if await fetch_one(conn, take_query, params) is not None:
        return None
    row = await fetch_one(conn, wait_query, params)
    if row is not None:
        return float(row["wait"])
    return float(interval if unknown_wait is None else unknown_wait)
