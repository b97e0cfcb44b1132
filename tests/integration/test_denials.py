"""Denied requests are aggregated before they reach the audit log (real PostgreSQL, a clock
the test turns): one row when a (reason, client, key) is first refused, then one per window
with the count, and never more windows than ``MAX_WINDOWS``."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from types import SimpleNamespace
from typing import Any

import pytest

from qasdk.config import Config
from qasdk.keys import ApiKey
from qasdk.store import audit
from qasdk_server import denials as module
from qasdk_server.auth import Refused
from qasdk_server.denials import Denials
from qasdk_server.serve import open_pool

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def request(client: str, path: str = "/api/tasks") -> Any:
    return SimpleNamespace(
        client=SimpleNamespace(host=client), scope={"method": "GET", "path": path}
    )


def key(name: str) -> ApiKey:
    return ApiKey(
        id=uuid.uuid4(), name=name, scopes=("read",), created_at=datetime.now(timezone.utc)
    )


@pytest.fixture
async def pool(quiet_url: str) -> AsyncIterator[Any]:
    pool = await open_pool(quiet_url, Config())
    try:
        yield pool
    finally:
        await pool.close()


async def rows(pool: Any, client: str) -> list[Any]:
    async with pool.connection() as conn:
        found = await audit.list_entries(conn, action="denied", limit=500)
    return sorted((e for e in found if e.client == client), key=lambda e: e.id)


def client() -> str:
    """An address no other test uses (rows stay: the log is append-only)."""
    return f"198.51.100.{uuid.uuid4().int % 250}-{uuid.uuid4().hex[:6]}"


async def test_a_flood_is_one_row_per_window_and_every_denial_is_counted(pool: Any) -> None:
    clock, address = Clock(), client()
    denials = Denials(pool, clock=clock)
    bad = Refused(401, "unauthorized", "no", reason="no_key")
    for _ in range(100):
        await denials.note(bad, request(address))
    assert [(e.count, e.detail["reason"]) for e in await rows(pool, address)] == [(1, "no_key")]
    assert await denials.flush() == 0  # the window is still open

    clock.now += module.WINDOW
    assert await denials.flush() == 1
    for _ in range(50):  # the flood goes on: counted in the window the flush reopened
        await denials.note(bad, request(address, "/api/methods"))
    clock.now += module.WINDOW
    assert await denials.flush() == 1
    found = await rows(pool, address)
    assert [e.count for e in found] == [1, 99, 50]
    assert found[2].detail["paths"] == ["GET /api/methods"]
    assert found[1].detail["first_at"] <= found[1].detail["last_at"]

    clock.now += module.WINDOW
    assert await denials.flush() == 0  # quiet: the window closes with nothing to write
    await denials.note(bad, request(address))  # and the next denial is written at once
    assert [e.count for e in await rows(pool, address)] == [1, 99, 50, 1]


async def test_reasons_and_keys_are_counted_apart(pool: Any) -> None:
    address = client()
    denials = Denials(pool, clock=Clock())
    reader, other = key("reader"), key("other")
    refusals = [
        Refused(401, "unauthorized", "no", reason="bad_key", key=reader),
        Refused(401, "unauthorized", "no", reason="revoked", key=reader),
        Refused(403, "forbidden", "no", reason="scope", key=reader, scope="admin"),
        Refused(403, "forbidden", "no", reason="scope", key=other, scope="admin"),
    ]
    for refused in refusals * 3:
        await denials.note(refused, request(address))
    await denials.close()
    found = await rows(pool, address)
    summary = sorted((e.actor, e.detail["reason"], e.count) for e in found)
    assert summary == [
        ("anonymous", "bad_key", 1),  # a wrong secret proves nothing about who sent it
        ("anonymous", "bad_key", 2),
        ("other", "scope:admin", 1),
        ("other", "scope:admin", 2),
        ("reader", "revoked", 1),
        ("reader", "revoked", 2),
        ("reader", "scope:admin", 1),
        ("reader", "scope:admin", 2),
    ]
    assert {e.key_id for e in found if e.actor == "anonymous"} == {reader.id}


async def test_many_addresses_share_one_window_beyond_the_limit(
    pool: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(module, "MAX_WINDOWS", 3)
    prefix = uuid.uuid4().hex[:8]
    denials = Denials(pool, clock=Clock())
    bad = Refused(401, "unauthorized", "no", reason="no_key")
    for n in range(10):
        await denials.note(bad, request(f"{prefix}-{n}"))
    await denials.close()
    async with pool.connection() as conn:
        found = await audit.list_entries(conn, action="denied", limit=500)
    own = [e for e in found if (e.client or "").startswith(prefix)]
    assert len(own) == 3  # the first three addresses, at once
    overflow = [e for e in found if e.client == "*" and e.count == 7]
    assert overflow, "the other seven were not counted together"
