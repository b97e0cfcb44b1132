"""Versioned schema migrations, tracked in ``qasdk_migrations``.

Migrations are the numbered files in ``sql/migrations/``, plus 0003: the
schema of the installed Procrastinate (the task queue), read from its package
so it always matches the code that uses it. Pending ones are applied in one
transaction under an advisory lock, so several processes starting at once on a
new database apply each migration exactly once.

The registry's migrations need nothing but PostgreSQL; the task queue's (0003
and 0004, the ``tasks`` tables that point at its jobs) need Procrastinate,
which comes with the ``server`` extra. Without it ``qasdk sync`` applies the
registry's and leaves the queue's to the first ``qasdk serve``: each
migration is tracked on its own, so the order they arrive in does not matter.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import logging
import re
from importlib import resources

import msgspec
import psycopg
from psycopg.rows import DictRow

from qasdk.store._sql import execute, statement_error

__all__ = ["Migration", "all_migrations", "migrate", "pending_migrations"]

logger = logging.getLogger("qasdk.store")
_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
PROCRASTINATE_VERSION = 3
#: Migrations of the task queue: they need the Procrastinate package.
QUEUE_VERSIONS = frozenset(
    {PROCRASTINATE_VERSION, 4, 6, 8, 11, 13, 16, 18, 20, 21, 22, 23, 25, 26, 27, 28, 29, 30}
)


class Migration(msgspec.Struct, frozen=True):
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def _procrastinate_schema() -> Migration:
    from procrastinate.schema import SchemaManager

    return Migration(PROCRASTINATE_VERSION, "procrastinate", SchemaManager.get_schema())


def queue_available() -> bool:
    """Whether the task queue's package (Procrastinate, the server extra) is installed."""
    return importlib.util.find_spec("procrastinate") is not None


@functools.cache
def all_migrations(*, queue: bool | None = None) -> tuple[Migration, ...]:
    """Every migration this installation can apply (``queue``: include the queue's)."""
    include_queue = queue_available() if queue is None else queue
    folder = resources.files("qasdk.store").joinpath("sql").joinpath("migrations")
    found = [_procrastinate_schema()] if include_queue else []
    for item in folder.iterdir():
        match = _FILE.match(item.name)
        if not match:
            continue
        version = int(match.group(1))
        if version in QUEUE_VERSIONS and not include_queue:
            continue
        found.append(Migration(version, match.group(2), item.read_text(encoding="utf-8")))
    return tuple(sorted(found, key=lambda m: m.version))


async def _applied(conn: psycopg.AsyncConnection[DictRow]) -> dict[int, str]:
    row = await (await execute(conn, "migrations_table_exists")).fetchone()
    if not row or not row["present"]:
        return {}
    rows = await (await execute(conn, "applied_migrations")).fetchall()
    return {r["version"]: r["checksum"] for r in rows}


async def pending_migrations(conn: psycopg.AsyncConnection[DictRow]) -> list[Migration]:
    """Migrations not yet applied to the database (read-only)."""
    applied = await _applied(conn)
    for migration in all_migrations():
        if migration.version in applied and applied[migration.version] != migration.checksum:
            logger.warning(
                "migration %04d_%s changed after it was applied; it is not re-run",
                migration.version,
                migration.name,
            )
    return [m for m in all_migrations() if m.version not in applied]


async def migrate(conn: psycopg.AsyncConnection[DictRow]) -> list[Migration]:
    """Apply pending migrations; return those this call applied."""
    async with conn.transaction():
        if not await pending_migrations(conn):
            return []
        await execute(conn, "lock_migrations")
        await execute(conn, "create_migrations_table")
        applied = await _applied(conn)
        done = []
        for migration in all_migrations():
            if migration.version in applied:
                continue
            try:
                await conn.execute(migration.sql.encode())
            except psycopg.Error as exc:
                raise statement_error(
                    exc, f"migration {migration.version:04d}_{migration.name}", migration.sql
                ) from exc
            await execute(
                conn,
                "record_migration",
                {
                    "version": migration.version,
                    "name": migration.name,
                    "checksum": migration.checksum,
                },
            )
            logger.info("applied migration %04d_%s", migration.version, migration.name)
            done.append(migration)
    return done
