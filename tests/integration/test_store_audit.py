"""The audit log table on a real PostgreSQL: append-only, bounded, masked, kept ``retention.days``.

Rows cannot be deleted by a test (that is the point), so each test writes rows
under an actor of its own and looks only at those.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest

from qasdk.audit import Actor
from qasdk.config import Config, RetentionConfig
from qasdk.errors import DatabaseError
from qasdk.store import audit
from qasdk.store.keys import create_key, list_keys
from qasdk_server.serve import open_pool
from qasdk_server.tasks.runner import TaskRunner

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


def _actor() -> Actor:
    return Actor(name=f"test-{uuid.uuid4().hex[:12]}", client="192.0.2.1")


async def _mine(conn: Any, actor: Actor) -> list[Any]:
    return await audit.list_entries(conn, actor=actor.name, limit=500)


async def _old_row(conn: Any, actor: Actor, days: int) -> None:
    """A row written ``days`` ago (only an INSERT can say when: rows are never updated)."""
    await conn.execute(
        "INSERT INTO audit_log (at, actor, action) "
        "VALUES (now() - make_interval(days => %s), %s, 'test.old')",
        (days, actor.name),
    )


async def test_a_row_is_recorded_and_read_back(conn: Any) -> None:
    actor = Actor(name=f"test-{uuid.uuid4().hex[:12]}", key_id=uuid.uuid4(), client="192.0.2.1")
    await audit.record(conn, actor=actor, action="test.thing", target="t1", detail={"n": 1})
    await conn.commit()
    (entry,) = await _mine(conn, actor)
    assert (entry.actor, entry.key_id, entry.client) == (actor.name, actor.key_id, actor.client)
    assert (entry.action, entry.target, entry.detail, entry.count) == (
        "test.thing",
        "t1",
        {"n": 1},
        1,
    )
    await conn.commit()


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_log SET actor = 'someone else' WHERE actor = %s",
        "UPDATE audit_log SET count = count + 1 WHERE actor = %s",
        "DELETE FROM audit_log WHERE actor = %s",
    ],
)
async def test_rows_cannot_be_updated_or_deleted(conn: Any, statement: str) -> None:
    actor = _actor()
    await audit.record(conn, actor=actor, action="test.kept")
    await conn.commit()
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
        await conn.execute(statement, (actor.name,))
    await conn.rollback()
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
        await conn.execute("TRUNCATE audit_log")
    await conn.rollback()
    (entry,) = await _mine(conn, actor)
    assert (entry.actor, entry.count) == (actor.name, 1)
    await conn.commit()


async def test_a_row_rolls_back_with_the_change_it_records(conn: Any) -> None:
    actor = _actor()
    name = f"test_key_{uuid.uuid4().hex[:8]}"
    async with conn.transaction(force_rollback=True):
        await create_key(conn, name, ["read"], actor=actor)
        assert [e.target for e in await _mine(conn, actor)] == [name]
    assert await _mine(conn, actor) == []
    assert name not in {k.name for k in await list_keys(conn)}
    await conn.commit()


async def test_what_a_row_holds_is_masked_and_bounded(conn: Any) -> None:
    actor = _actor()
    detail = {
        "header": "Authorization: Bearer abc.def-123",
        "url": "postgresql://app:hunter2@db.example/app",
        "mine": "the value s3cr3t-of-mine is known",
        "get_token": "a tool's name is not a secret",
        "huge": "x" * 200_000,
    }
    await audit.record(
        conn,
        actor=actor,
        action="test.masked",
        target="y" * 1000,
        detail=detail,
        secrets=["s3cr3t-of-mine"],
    )
    await conn.commit()
    (entry,) = await _mine(conn, actor)
    # Over DETAIL_BYTES as a whole: a marker with its size and a preview, still masked.
    assert entry.detail["truncated"] is True
    assert entry.detail["bytes"] > audit.DETAIL_BYTES
    preview = entry.detail["preview"]
    for secret in ("abc.def-123", "hunter2", "s3cr3t-of-mine"):
        assert secret not in preview
    assert entry.target is not None and len(entry.target) == audit.TEXT_CHARS

    small = {k: v for k, v in detail.items() if k != "huge"}
    await audit.record(
        conn, actor=actor, action="test.small", detail=small, secrets=["s3cr3t-of-mine"]
    )
    await conn.commit()
    entry = (await audit.list_entries(conn, actor=actor.name, action="test.small"))[0]
    assert entry.detail == {
        "header": "Authorization: ****",
        "url": "postgresql://app:****@db.example/app",
        "mine": "the value **** is known",
        "get_token": "a tool's name is not a secret",
    }
    await conn.commit()


async def test_retention_deletes_only_rows_older_than_its_days(conn: Any) -> None:
    actor = _actor()
    await _old_row(conn, actor, 40)
    await _old_row(conn, actor, 10)
    await audit.record(conn, actor=actor, action="test.new")
    await conn.commit()
    assert len(await _mine(conn, actor)) == 3
    deleted = await audit.delete_expired_entries(conn, days=30)
    await conn.commit()
    assert deleted >= 1
    assert sorted(e.action for e in await _mine(conn, actor)) == ["test.new", "test.old"]
    # Retention's permission ends with its transaction.
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        await conn.execute("DELETE FROM audit_log WHERE actor = %s", (actor.name,))
    await conn.rollback()


@pytest.fixture
async def pool(quiet_url: str) -> AsyncIterator[Any]:
    pool = await open_pool(quiet_url, Config())
    try:
        yield pool
    finally:
        await pool.close()


async def test_the_housekeeping_that_deletes_old_tasks_deletes_old_audit_rows(
    quiet_conn: Any, pool: Any
) -> None:
    actor = _actor()
    await _old_row(quiet_conn, actor, 40)
    await _old_row(quiet_conn, actor, 10)
    await quiet_conn.commit()
    config = Config(retention=RetentionConfig(days=30))
    runner = TaskRunner(
        config=config, pool=pool, registry=None, executor=None, worker_name="t", threads=None
    )
    _, entries = await runner.apply_retention()
    assert entries >= 1
    assert len(await _mine(quiet_conn, actor)) == 1
    await quiet_conn.commit()
    kept = TaskRunner(
        config=Config(retention=RetentionConfig(days=None)),
        pool=pool,
        registry=None,
        executor=None,
        worker_name="t",
        threads=None,
    )
    assert await kept.apply_retention() == (0, 0)


async def test_a_database_error_names_the_query(conn: Any) -> None:
    with pytest.raises(DatabaseError, match="insert_audit"):
        await audit.record(conn, actor=_actor(), action="x" * 10, detail={"n": 1}, count=2**40)
    await conn.rollback()
