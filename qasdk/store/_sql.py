"""Every SQL statement qasdk runs, read from ``sql/queries.sql`` by name.

Statements live in one file under ``-- name: <query>`` headers (Procrastinate's
habit): reviewed in one place, never assembled from strings, always
parameterised. Only modules of :mod:`qasdk.store` import this one; failures
become :class:`DatabaseError` carrying the statement and its SQLSTATE.
"""

from __future__ import annotations

import functools
import re
from importlib import resources
from typing import Any

import psycopg
from psycopg.rows import DictRow

from qasdk.errors import DatabaseError

__all__ = ["execute", "fetch_all", "fetch_one", "query", "query_names", "statement_error"]

_HEADER = re.compile(r"^-- name: ([a-z_][a-z0-9_]*)\s*$", re.MULTILINE)
Conn = psycopg.AsyncConnection[DictRow]


@functools.cache
def _queries() -> dict[str, str]:
    text = (
        resources.files("qasdk.store")
        .joinpath("sql")
        .joinpath("queries.sql")
        .read_text(encoding="utf-8")
    )
    parts = _HEADER.split(text)
    found: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        lines = [line for line in body.strip().splitlines() if not line.startswith("--")]
        found[name] = "\n".join(lines).strip().rstrip(";")
    return found


def query_names() -> frozenset[str]:
    """Every named query (a test checks each is used, and nothing else is asked for)."""
    return frozenset(_queries())


def query(name: str) -> str:
    """The SQL of the named query."""
    return _queries()[name]


def statement_error(exc: psycopg.Error, name: str, statement: str) -> DatabaseError:
    diag = getattr(exc, "diag", None)
    primary = (diag.message_primary if diag else None) or str(exc).strip().splitlines()[0]
    sqlstate = getattr(exc, "sqlstate", None)
    code = f" (SQLSTATE {sqlstate})" if sqlstate else ""
    return DatabaseError(
        f"query {name!r} failed: {primary}{code}",
        statement=statement,
        sqlstate=sqlstate,
        query_name=name,
    )


async def execute(conn: Conn, name: str, params: Any = None) -> psycopg.AsyncCursor[DictRow]:
    """Run the named query on ``conn`` and return its cursor."""
    statement = query(name)
    try:
        return await conn.execute(statement, params)
    except psycopg.Error as exc:
        raise statement_error(exc, name, statement) from exc


async def fetch_one(conn: Conn, name: str, params: Any = None) -> DictRow | None:
    """The first row of the named query, or ``None``."""
    return await (await execute(conn, name, params)).fetchone()


async def fetch_all(conn: Conn, name: str, params: Any = None) -> list[DictRow]:
    """Every row of the named query."""
    return await (await execute(conn, name, params)).fetchall()
