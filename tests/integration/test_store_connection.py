"""The pools' check on checkout: no round trip for a quiet connection, a new one for a dead one."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
import psycopg_pool
import pytest
from psycopg.rows import dict_row

from qasdk.store.connection import CONNECT_KWARGS, check_connection

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


def _pool(url: str) -> psycopg_pool.AsyncConnectionPool[Any]:
    return psycopg_pool.AsyncConnectionPool(
        url,
        min_size=1,
        max_size=1,
        kwargs={**CONNECT_KWARGS, "autocommit": True, "row_factory": dict_row},
        check=check_connection,
        open=False,
        name="test-check",
    )


async def _state_change(pg_url: str, pid: int) -> Any:
    async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as other:
        cur = await other.execute(
            "SELECT state_change FROM pg_stat_activity WHERE pid = %s", (pid,)
        )
        row = await cur.fetchone()
        assert row is not None
        return row[0]


async def test_a_quiet_connection_is_handed_out_without_a_round_trip(pg_url: str) -> None:
    async with _pool(pg_url) as pool:
        async with pool.connection() as conn:
            pid = conn.info.backend_pid
        before = await _state_change(pg_url, pid)
        for _ in range(5):
            async with pool.connection() as conn:
                assert conn.info.backend_pid == pid  # the same connection, handed out again
        # A ping (even an empty query) would have moved the backend through active to idle.
        assert await _state_change(pg_url, pid) == before


async def test_a_connection_whose_backend_died_is_replaced_on_checkout(pg_url: str) -> None:
    async with _pool(pg_url) as pool:
        async with pool.connection() as conn:
            pid = conn.info.backend_pid
        async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as other:
            await other.execute("SELECT pg_terminate_backend(%s)", (pid,))
            # The terminated backend has said goodbye on the socket by the time it is gone.
            for _ in range(200):
                cur = await other.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,))
                if await cur.fetchone() is None:
                    break
                await asyncio.sleep(0.01)
        async with pool.connection() as conn:
            await conn.execute("SELECT 1")  # no error: the dead one was dropped
            assert conn.info.backend_pid != pid
