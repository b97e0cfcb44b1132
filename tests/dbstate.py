"""What a test leaves in the database: snapshot before, delete and compare after."""

from __future__ import annotations

from typing import Any

import msgspec
import psycopg

#: Tables tests write to, with the column that orders their rows (newest last).
TABLES = {"registered_methods": "id", "tasks": "created_at", "procrastinate_jobs": "id"}


class Snapshot(msgspec.Struct, frozen=True):
    rows: dict[str, tuple[int, Any, str]]  # table -> (count, newest key, md5 of contents)


async def snapshot(conn: psycopg.AsyncConnection[Any]) -> Snapshot:
    rows = {}
    for table, key in TABLES.items():
        cur = await conn.execute(
            f"SELECT count(*) AS n, max({key}) AS top, "
            f"coalesce(md5(string_agg(t::text, ',' ORDER BY {key})), '') AS digest "
            f"FROM {table} AS t"
        )
        row = await cur.fetchone()
        assert row is not None
        rows[table] = (row["n"], row["top"], row["digest"])
    await conn.commit()
    return Snapshot(rows)


async def delete_created(conn: psycopg.AsyncConnection[Any], before: Snapshot) -> None:
    """Delete rows added since ``before`` (tests use fresh names, never edit old rows)."""
    for table, key in TABLES.items():
        top = before.rows[table][1]
        if top is None:
            await conn.execute(f"DELETE FROM {table}")
        else:
            await conn.execute(f"DELETE FROM {table} WHERE {key} > %s", (top,))
    await conn.commit()
