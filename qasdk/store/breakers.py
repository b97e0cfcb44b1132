"""The ``tool_breakers`` table: each tool's circuit breaker, shared by every worker.

The decisions are the middleware's (``qasdk_server/middleware/breaker.py``);
this module only reads and writes the state, atomically: at most one caller
becomes the probe of an open breaker, and an outcome and the transition it
causes are one transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

import msgspec

from qasdk.store._sql import Conn, fetch_all, fetch_one

__all__ = ["Breaker", "admit", "find", "listed", "record"]

State = Literal["closed", "open", "half_open"]


class Breaker(msgspec.Struct, frozen=True, kw_only=True):
    """A tool's breaker as stored (``outcomes``: the last calls, oldest first)."""

    state: State = "closed"
    outcomes: tuple[bool, ...] = ()
    retry_at: datetime | None = None
    #: This caller was let through as the probe of an open breaker.
    probing: bool = False
    opened_at: datetime | None = None

    @property
    def failures(self) -> int:
        return sum(1 for ok in self.outcomes if not ok)


def _breaker(row: dict[str, Any] | None) -> Breaker | None:
    if row is None:
        return None
    return Breaker(
        state=row["state"],
        outcomes=tuple(row["outcomes"] or ()),
        retry_at=row.get("retry_at"),
        probing=bool(row.get("probing", False)),
        opened_at=row.get("opened_at"),
    )


async def admit(conn: Conn, tool: str, *, probe_timeout: float) -> Breaker | None:
    """The breaker of ``tool`` (``None``: none yet, closed), claiming the probe if one is due."""
    row = await fetch_one(conn, "breaker_admit", {"tool": tool, "probe_timeout": probe_timeout})
    return _breaker(row)


async def record(
    conn: Conn,
    tool: str,
    ok: bool,
    *,
    window: int,
    decide: Callable[[Breaker], tuple[State, float] | None],
) -> tuple[Breaker, State | None]:
    """Add one outcome; ``decide`` says whether that makes a transition (state, cool-down).

    Returns the breaker after it, and the state it moved to (``None``: it stayed).
    """
    async with conn.transaction():
        row = await fetch_one(conn, "breaker_record", {"tool": tool, "ok": ok, "window": window})
        breaker = _breaker(row)
        assert breaker is not None
        decision = decide(breaker)
        if decision is None:
            return breaker, None
        state, cool_down = decision
        changed = await fetch_one(
            conn, "breaker_set", {"tool": tool, "state": state, "cool_down": cool_down}
        )
        after = _breaker(changed)
        assert after is not None
        return after, state


async def find(conn: Conn, tool: str) -> Breaker | None:
    """The breaker of ``tool`` as it is, for ``GET /api/methods/{name}``."""
    return _breaker(await fetch_one(conn, "get_breaker", {"tool": tool}))


async def listed(conn: Conn) -> list[tuple[str, Breaker]]:
    """Every breaker that is not closed, or has failures on record: (tool, breaker)."""
    rows = await fetch_all(conn, "list_breakers")
    return [(row["tool"], b) for row in rows if (b := _breaker(row)) is not None]
