"""What a key may submit: its tools, its rate of submits, its tasks unfinished at once.

Both live in PostgreSQL and are checked in the submit's own transaction: the
running tasks are counted under a per-key advisory lock, the rate is one row
per key (GCRA) locked by its update, so every server of a database sees the
same numbers and two submits racing on two servers cannot both take the last
slot.
"""

from __future__ import annotations

import math

import psycopg
from psycopg.rows import DictRow

from qasdk.keys import ApiKey
from qasdk.store import keys as store
from qasdk_server.errors import ApiError

__all__ = ["admit", "refuse_tool"]

#: Seconds a client over its cap of unfinished tasks is told to wait: a task's end is unknown.
RUNNING_RETRY = 1


def refuse_tool(key: ApiKey, name: str) -> ApiError:
    allowed = [*(key.tools or ()), *(f"tag:{tag}" for tag in key.tags or ())]
    shown = ", ".join(allowed) if allowed else "any tool"
    limits = f"; tools: {shown}" + (
        f"; permissions: {', '.join(key.permissions)}" if key.permissions is not None else ""
    )
    return ApiError(403, "forbidden", f"the API key {key.name!r} may not run tool {name!r}{limits}")


async def admit(conn: psycopg.AsyncConnection[DictRow], key: ApiKey) -> None:
    """Raise 429 (with ``Retry-After``) when ``key`` is over its running cap or its rate.

    Call it in the transaction that then inserts the task: the lock it takes
    holds until that commits, and a refused or failed submit takes nothing.
    """
    if key.max_running is not None:
        await store.lock_owner(conn, key.id)
        running = await store.open_tasks(conn, key.id, key.max_running)
        if running >= key.max_running:
            raise _too_many(
                f"the API key {key.name!r} has {running} tasks pending or running, its cap "
                f"(max_running {key.max_running}); submit again when one has finished",
                RUNNING_RETRY,
            )
    if key.rate_count is not None and key.rate_seconds is not None:
        wait = await store.take_rate(conn, key.id, key.rate_count, key.rate_seconds)
        if wait is not None:
            retry = max(1, math.ceil(wait))
            raise _too_many(
                f"the API key {key.name!r} may submit {key.rate} ({key.rate_count} tasks per "
                f"{key.rate_seconds} s, in bursts of up to {key.rate_count}); retry in {retry} s",
                retry,
            )


def _too_many(message: str, retry_after: int) -> ApiError:
    return ApiError(429, "too_many_requests", message, headers={"Retry-After": str(retry_after)})
