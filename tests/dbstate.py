"""What a test leaves in the database: snapshot before, delete and compare after."""

from __future__ import annotations

from typing import Any

import msgspec
import psycopg

#: Tables tests write to, with the column that orders their rows (newest last).
TABLES = {"registered_methods": "id", "tasks": "created_at", "procrastinate_jobs": "id"}
#: Rows of those tables that are the tests' (the queue also holds qasdk's own periodic
#: housekeeping jobs, deferred by whichever worker runs, whenever it runs).
WHERE = {"procrastinate_jobs": "task_name = 'qasdk.run_task'"}


class Snapshot(msgspec.Struct, frozen=True):
    rows: dict[str, tuple[int, Any, str]]  # table -> (count, newest key, md5 of contents)


async def snapshot(conn: psycopg.AsyncConnection[Any]) -> Snapshot:
    rows = {}
    for table, key in TABLES.items():
        cur = await conn.execute(
            f"SELECT count(*) AS n, max({key}) AS top, "
            f"coalesce(md5(string_agg(t::text, ',' ORDER BY {key})), '') AS digest "
            f"FROM {table} AS t WHERE {WHERE.get(table, 'true')}"
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
        mine = WHERE.get(table, "true")
        if top is None:
            await conn.execute(f"DELETE FROM {table} WHERE {mine}")
        else:
            await conn.execute(f"DELETE FROM {table} WHERE {mine} AND {key} > %s", (top,))
    await conn.commit()
