"""The registry table on a real PostgreSQL (Properties 6, 13, 14, 15, 24)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import msgspec
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qasdk.errors import DatabaseError
from qasdk.models import MethodConfig, MethodParameter
from qasdk.store.connection import connect
from qasdk.store.methods import (
    delete_methods,
    get_method,
    list_methods,
    plan_sync,
    sync_methods,
    upsert_methods,
)
from qasdk.store.migrate import all_migrations, migrate, pending_migrations
from tests.dbstate import delete_created, snapshot
from tests.strategies import method_configs

pytestmark = [pytest.mark.integration, pytest.mark.anyio]
DB_EXAMPLES = settings(
    suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=100
)

Conn = psycopg.AsyncConnection[Any]


def unique(config: MethodConfig) -> MethodConfig:
    """The same tool under a name no other example or test uses."""
    return msgspec.structs.replace(config, name=f"{config.name[:60]}_{uuid.uuid4().hex[:12]}")


def tool(name: str, **changes: Any) -> MethodConfig:
    base = MethodConfig(
        name=name,
        description="A tool.",
        parameters=(
            MethodParameter(name="x", type="int", description="X.", schema={"type": "integer"}),
        ),
        return_type="int",
        module_path="tools.mod",
        function_name="fn",
    )
    return msgspec.structs.replace(base, **changes)


# Property 13: Database persistence round-trip
@DB_EXAMPLES
@given(method_configs)
async def test_round_trip(conn: Conn, config: MethodConfig) -> None:
    config = unique(config)
    await upsert_methods(conn, [config])
    await conn.commit()
    stored = await get_method(conn, config.name)
    assert stored is not None
    assert stored.to_config() == config
    await delete_methods(conn, [config.name])
    await conn.commit()


# Property 14: Upsert idempotence
@DB_EXAMPLES
@given(st.lists(method_configs, min_size=1, max_size=5))
async def test_repeated_upserts_leave_one_row_with_the_latest_content(
    conn: Conn, versions: list[MethodConfig]
) -> None:
    name = f"idem_{uuid.uuid4().hex[:12]}"
    for version in versions:
        await upsert_methods(conn, [msgspec.structs.replace(version, name=name)])
        await conn.commit()
    cur = await conn.execute(
        "SELECT count(*) AS n FROM registered_methods WHERE name = %s", (name,)
    )
    assert (await cur.fetchone())["n"] == 1  # type: ignore[index]
    stored = await get_method(conn, name)
    assert stored is not None
    assert stored.to_config() == msgspec.structs.replace(versions[-1], name=name)
    await delete_methods(conn, [name])
    await conn.commit()


# Property 6: Batch processing completeness
@DB_EXAMPLES
@given(st.lists(method_configs, min_size=0, max_size=12))
async def test_n_configs_register_n_methods(conn: Conn, configs: list[MethodConfig]) -> None:
    batch = [unique(c) for c in configs]
    report = await sync_methods(conn, batch)
    names = [c.name for c in batch]
    cur = await conn.execute(
        "SELECT count(*) AS n FROM registered_methods WHERE name = ANY(%s)", (names,)
    )
    assert (await cur.fetchone())["n"] == len(batch)  # type: ignore[index]
    assert sorted(report.plan.created) == sorted(names)
    assert report.rows_written == len(batch)
    await delete_methods(conn, names)
    await conn.commit()


# Property 15: Updated timestamp automation
@DB_EXAMPLES
@given(
    method_configs,
    st.sampled_from(
        [
            "description",
            "return_type",
            "module_path",
            "function_name",
            "timeout",
            "tags",
            "parameters",
        ]
    ),
)
async def test_updated_at_moves_forward_on_change_only(
    conn: Conn, config: MethodConfig, field: str
) -> None:
    config = unique(config)
    await upsert_methods(conn, [config])
    await conn.commit()
    first = await get_method(conn, config.name)
    assert first is not None

    await upsert_methods(conn, [config])  # identical: no write
    await conn.commit()
    same = await get_method(conn, config.name)
    assert same is not None
    assert same.updated_at == first.updated_at

    new_values: dict[str, Any] = {
        "description": config.description + " (changed)",
        "return_type": "any" if config.return_type != "any" else "int",
        "module_path": config.module_path + ".changed",
        "function_name": config.function_name + "_v2",
        "timeout": (config.timeout or 1.0) + 1.0,
        "tags": (*config.tags, "changed"),
        "parameters": (
            *config.parameters,
            MethodParameter(name="zz_new", type="int", description="New."),
        ),
    }
    changed = msgspec.structs.replace(config, **{field: new_values[field]})
    written = await upsert_methods(conn, [changed])
    await conn.commit()
    assert written == {config.name: False}
    second = await get_method(conn, config.name)
    assert second is not None
    assert second.updated_at > first.updated_at
    assert second.created_at == first.created_at
    await delete_methods(conn, [config.name])
    await conn.commit()


# Property 24: Test data cleanup
async def test_cleanup_removes_what_a_test_created(pg_url: str) -> None:
    connection = await connect(pg_url)
    async with connection:
        before = await snapshot(connection)
        await upsert_methods(connection, [tool(f"leftover_{uuid.uuid4().hex[:8]}")])
        await connection.commit()
        assert await snapshot(connection) != before  # the check can see a leftover row
        await delete_created(connection, before)
        assert await snapshot(connection) == before


async def test_sync_plans_and_prunes(fresh_database: str) -> None:
    # --prune deletes every tool not given: a database of its own.
    conn = await connect(fresh_database)
    async with conn:
        await _sync_plans_and_prunes(conn)


async def _sync_plans_and_prunes(conn: Conn) -> None:
    prefix = f"s{uuid.uuid4().hex[:8]}"
    a, b, c = (tool(f"{prefix}_{n}") for n in "abc")
    first = await sync_methods(conn, [a, b])
    assert first.plan.created == [a.name, b.name]

    b2 = msgspec.structs.replace(b, description="Changed.", timeout=3.0)
    dry = await sync_methods(conn, [a, b2, c], dry_run=True)
    assert (dry.plan.created, dry.plan.updated, dry.plan.unchanged) == (
        [c.name],
        {b.name: ["description", "timeout"]},
        [a.name],
    )
    assert dry.rows_written == 0
    assert await get_method(conn, c.name) is None  # the dry run wrote nothing
    stored_b = await get_method(conn, b.name)
    assert stored_b is not None
    assert stored_b.description == "A tool."

    ours = [m.name for m in await list_methods(conn) if m.name.startswith(prefix)]
    assert ours == [a.name, b.name]
    kept = await sync_methods(conn, [b2, c])
    assert a.name in kept.plan.stale
    assert await get_method(conn, a.name) is not None
    pruned = await sync_methods(conn, [b2, c], prune=True)
    assert pruned.plan.deleted == [a.name]
    assert await get_method(conn, a.name) is None
    await delete_methods(conn, [b.name, c.name])
    await conn.commit()


async def test_a_failed_sync_changes_nothing(conn: Conn) -> None:
    prefix = f"f{uuid.uuid4().hex[:8]}"
    good = tool(f"{prefix}_good")
    await sync_methods(conn, [good])
    changed = msgspec.structs.replace(good, description="Should not stick.")
    too_long = tool(f"{prefix}_bad", module_path="m" * 300)  # breaks VARCHAR(255) in the database
    before = await get_method(conn, good.name)
    with pytest.raises(DatabaseError) as info:
        await sync_methods(conn, [changed, too_long])
    assert info.value.sqlstate == "22001"  # string_data_right_truncation
    assert (
        info.value.statement is not None
        and "INSERT INTO registered_methods" in info.value.statement
    )
    await conn.rollback()
    after = await get_method(conn, good.name)
    assert after == before
    assert await get_method(conn, too_long.name) is None
    await delete_methods(conn, [good.name])
    await conn.commit()


def test_plan_is_pure() -> None:
    a, b = tool("aa"), tool("bb")
    plan = plan_sync([a], [a, b])
    assert (plan.created, plan.unchanged, plan.updated, plan.deleted) == (["bb"], ["aa"], {}, [])
    assert plan_sync([a, b], [a], prune=True).deleted == ["bb"]
    assert plan_sync([a, b], [a]).stale == ["bb"]
    needs = msgspec.structs.replace(a, permissions=("network",))
    assert plan_sync([a], [needs]).updated == {"aa": ["permissions"]}
    assert plan_sync([needs], [a]).updated == {"aa": ["permissions"]}


async def test_migrations_on_a_fresh_database(fresh_database: str) -> None:
    connection = await connect(fresh_database)
    async with connection:
        assert [m.version for m in await pending_migrations(connection)] == [
            m.version for m in all_migrations()
        ]
        # A dry run on an empty database plans everything and leaves no schema behind.
        report = await sync_methods(connection, [tool("fresh_one")], dry_run=True)
        assert report.plan.created == ["fresh_one"]
        assert await pending_migrations(connection) != []
        cur = await connection.execute("SELECT to_regclass('registered_methods') AS t")
        assert (await cur.fetchone())["t"] is None  # type: ignore[index]
        await connection.commit()
        # Concurrent starts apply each migration once.
        others = [await connect(fresh_database) for _ in range(3)]
        results = await asyncio.gather(*(migrate(c) for c in [connection, *others]))
        for other in others:
            await other.close()
        assert sorted(len(r) for r in results) == [0, 0, 0, len(all_migrations())]
        assert await migrate(connection) == []
        # The seed's schema: unique name, indexes, trigger.
        cur = await connection.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'registered_methods' ORDER BY 1"
        )
        assert {r["indexname"] for r in await cur.fetchall()} >= {
            "idx_method_name",
            "idx_updated_at",
            "registered_methods_name_key",
        }
        cur = await connection.execute(
            "SELECT tgname FROM pg_trigger WHERE tgrelid = 'registered_methods'::regclass "
            "AND NOT tgisinternal ORDER BY tgname"
        )
        # The seed's trigger, and qasdk's change notification (migration 0005).
        assert [r["tgname"] for r in await cur.fetchall()] == [
            "qasdk_registry_changed",
            "update_registered_methods_updated_at",
        ]
        cur = await connection.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = 'registered_methods' ORDER BY ordinal_position"
        )
        columns = {r["column_name"]: r["data_type"] for r in await cur.fetchall()}
        assert columns["parameters_json"] == "jsonb"
        assert list(columns)[:9] == [
            "id",
            "name",
            "description",
            "parameters_json",
            "return_type",
            "module_path",
            "function_name",
            "created_at",
            "updated_at",
        ]


async def test_every_stored_parameter_is_self_describing(conn: Any) -> None:
    # Other services read the table: each parameter has name, type, description, required,
    # and a default when it has one (issue 8, defect 5).
    config = unique(
        MethodConfig(
            name="selfdescribing",
            description="d",
            return_type="string",
            module_path="m",
            function_name="f",
            parameters=(
                MethodParameter(name="a", type="int", description="A."),
                MethodParameter(
                    name="b", type="string", description="B.", required=False, default=None
                ),
                MethodParameter(name="c", type="int", description="C.", required=False),
            ),
        )
    )
    await upsert_methods(conn, [config])
    row = await (
        await conn.execute(
            "SELECT parameters_json FROM registered_methods WHERE name = %s", (config.name,)
        )
    ).fetchone()
    await conn.commit()
    assert row["parameters_json"] == [
        {"name": "a", "type": "int", "description": "A.", "required": True},
        {"name": "b", "type": "string", "description": "B.", "required": False, "default": None},
        {"name": "c", "type": "int", "description": "C.", "required": False},
    ]
