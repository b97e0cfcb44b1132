"""Built-in ``limits``: a tool's ``max_concurrency`` and ``rate``, across every worker.

A call over a limit waits its turn, within the task's deadline (or
``max_wait`` seconds when the task has none), instead of failing; when the
turn does not come in time it fails with ``ToolBusy`` saying which limit.
Slots are PostgreSQL session advisory locks on a connection of their own
(a dead worker's slots go with its connection); the rate is the generic cell
rate algorithm in ``tool_rates``. In the default chain; it does nothing (no
query) for tools without limits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from qasdk.models import ExecutionResult
from qasdk.rates import parse_rate
from qasdk.store import limits as store
from qasdk.store.connection import Pool, connect
from qasdk_server.middleware.base import Middleware, ToolCall, ToolRefused

__all__ = ["Limits"]

logger = logging.getLogger("qasdk.limits")

#: How often a call waiting for a slot looks again (doubling from the first, up to the last).
_POLL = (0.02, 0.5)


class Limits(Middleware):
    name = "limits"

    def __init__(self, pool: Pool, *, max_wait: float = 300.0) -> None:
        if isinstance(max_wait, bool) or not isinstance(max_wait, (int, float)) or max_wait <= 0:
            raise ValueError(f"max_wait: expected a number of seconds > 0, got {max_wait!r}")
        self._pool = pool
        self.max_wait = float(max_wait)

    def _budget(self, call: ToolCall) -> float:
        remaining = call.remaining()
        return self.max_wait if remaining is None else min(self.max_wait, remaining)

    async def before(self, call: ToolCall) -> ExecutionResult | None:
        policy = None if call.method is None else call.method.policy
        if policy is None or (policy.rate is None and policy.max_concurrency is None):
            return None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._budget(call)
        if policy.max_concurrency is not None:
            await self._take_slot(call, policy.max_concurrency, deadline)
        if policy.rate is not None:
            try:
                await self._take_rate(call, policy.rate, deadline)
            except BaseException:
                await self.done(call)
                raise
        return None

    async def _take_slot(self, call: ToolCall, slots: int, deadline: float) -> None:
        loop = asyncio.get_running_loop()
        url = self._pool.conninfo
        assert isinstance(url, str), "qasdk's pools are built from a URL"
        conn = await connect(url, autocommit=True)
        delay = _POLL[0]
        try:
            while (slot := await store.try_slot(conn, call.tool, slots)) is None:
                if loop.time() + delay > deadline:
                    raise ToolRefused(
                        f"tool {call.tool!r} is at its limit of {slots} calls at once "
                        "(max_concurrency, across every worker) and no slot came free "
                        "before the task's deadline",
                        error_type="ToolBusy",
                    )
                await asyncio.sleep(delay)
                delay = min(_POLL[1], delay * 2)
        except BaseException:
            await conn.close()
            raise
        call.state[self.name] = conn
        logger.debug("tool %r: slot %d of %d", call.tool, slot, slots)

    async def _take_rate(self, call: ToolCall, rate: str, deadline: float) -> None:
        loop = asyncio.get_running_loop()
        count, seconds = parse_rate(rate)
        while True:
            async with self._pool.connection() as conn:
                wait = await store.take_rate(conn, call.tool, count, seconds)
            if wait is None:
                return
            if loop.time() + wait > deadline:
                raise ToolRefused(
                    f"tool {call.tool!r} allows {rate} calls (rate, across every worker) and "
                    "its next turn comes after the task's deadline",
                    error_type="ToolBusy",
                )
            await asyncio.sleep(max(wait, 0.001))

    async def done(self, call: ToolCall) -> None:
        conn = call.state.pop(self.name, None)
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()  # the slot goes with the session
