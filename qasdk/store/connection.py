"""Which PostgreSQL to use, how to reach it, and how to talk about it safely.

A URL shown to a person always goes through :func:`~qasdk.redaction.mask_url`; an error from
the driver always goes through :func:`connection_error`, which names the host
and the reason and never the password.
"""

from __future__ import annotations

import select
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import psycopg
import psycopg_pool
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import DictRow, dict_row
from psycopg.types.json import set_json_loads

from qasdk.config import DatabaseConfig
from qasdk.errors import DatabaseError
from qasdk.redaction import mask_url, redact, url_password
from qasdk.store._sql import fetch_one
from qasdk.store.embedded import ensure_embedded

__all__ = [
    "CONNECT_KWARGS",
    "Pool",
    "check_connection",
    "configure",
    "connect",
    "connection_error",
    "describe_target",
    "is_outage",
    "ping",
    "resolve_url",
]

#: A pool of autocommit connections returning rows as dicts (the server's and workers').
Pool = psycopg_pool.AsyncConnectionPool[psycopg.AsyncConnection[DictRow]]

#: Every session speaks UTC so TIMESTAMP columns mean the same thing everywhere.
CONNECT_KWARGS: dict[str, Any] = {
    "options": "-c TimeZone=UTC",
    "application_name": "qasdk",
}


def resolve_url(config: DatabaseConfig, *, on_start: Callable[[Path], None] | None = None) -> str:
    """The connection string for ``config``, starting the embedded server if needed.

    ``on_start`` hears of an embedded server this started (it outlives the process).
    """
    if config.url:
        return config.url
    if config.host:
        params: dict[str, str | int | None] = {
            "host": config.host,
            "port": config.port,
            "dbname": config.database,
            "user": config.user,
            "password": config.password,
        }
        return make_conninfo("", **{k: v for k, v in params.items() if v is not None})
    return ensure_embedded(config.data_dir, on_start=on_start)


def describe_target(url: str) -> str:
    """``host:port/db as user`` for messages; the socket folder for a local socket."""
    try:
        params = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return mask_url(url)
    host = str(params.get("host") or "localhost")
    where = host if host.startswith("/") else f"{host}:{params.get('port') or 5432}"
    parts = [where]
    if params.get("dbname"):
        parts.append(f"database {params['dbname']!r}")
    if params.get("user"):
        parts.append(f"user {params['user']!r}")
    return ", ".join(parts)


def _password(url: str) -> str | None:
    try:
        value = conninfo_to_dict(url).get("password")
    except psycopg.ProgrammingError:
        return url_password(url)
    return str(value) if value else None


def connection_error(exc: Exception, url: str) -> DatabaseError:
    """A one-line, password-free :class:`DatabaseError` for a failed connection."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    reason = first.rsplit(" failed: ", 1)[-1].strip() or first
    if reason.startswith("connection failed: "):
        reason = reason[len("connection failed: ") :]
    reason = redact(reason[:1].lower() + reason[1:], [_password(url)])
    return DatabaseError(f"cannot connect to PostgreSQL at {describe_target(url)}: {reason}")


def _decode_json(data: str | bytes) -> Any:
    return msgspec.json.decode(data)


async def configure(conn: psycopg.AsyncConnection[Any]) -> None:
    """Read ``json``/``jsonb`` with msgspec: faster than the standard library, and no
    recursion limit below the depth qasdk stores (``limits.json_depth``)."""
    set_json_loads(_decode_json, conn)


async def check_connection(conn: psycopg.AsyncConnection[Any]) -> None:
    """The pools' check on checkout, with no round trip while the socket is quiet.

    An idle connection has nothing to read. A restarted server or a terminated
    backend leaves a message or end-of-file on the socket: only then is the
    connection pinged, and the pool replaces it if the ping fails. (Pinging every
    checkout cost a round trip per statement on the hot path.)
    """
    if conn.closed or conn.broken:
        raise psycopg.OperationalError("the connection is closed")
    if _readable(conn.fileno()):
        await psycopg_pool.AsyncConnectionPool.check_connection(conn)


def _readable(fd: int) -> bool:
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(fd, select.POLLIN | select.POLLERR | select.POLLHUP)
        return bool(poller.poll(0))
    return bool(select.select([fd], [], [], 0)[0])  # pragma: no cover (no poll on Windows)


async def connect(
    url: str, *, timeout: float = 5.0, autocommit: bool = False
) -> psycopg.AsyncConnection[DictRow]:
    """Open one connection (rows as dicts, UTC), or raise a clear :class:`DatabaseError`."""
    try:
        conn = await psycopg.AsyncConnection.connect(
            url,
            autocommit=autocommit,
            row_factory=dict_row,
            connect_timeout=max(1, round(timeout)),
            **CONNECT_KWARGS,
        )
    except (psycopg.OperationalError, psycopg.ProgrammingError) as exc:
        raise connection_error(exc, url) from None
    await configure(conn)
    return conn


_OUTAGE_CLASSES = ("08", "53", "57")  # connection exception, resources, operator intervention


def is_outage(exc: BaseException) -> bool:
    """Whether a database failure means "unreachable now, retry", not "this is wrong".

    ``exc`` is a :class:`DatabaseError` (its cause is the driver's error), a psycopg
    error, or a pool timeout. Serves the API (503 or 500) and the worker (run the
    task again later, or record the failure).
    """
    cause = exc.__cause__ if isinstance(exc, DatabaseError) and exc.__cause__ else exc
    sqlstate = getattr(exc, "sqlstate", None) or getattr(cause, "sqlstate", None)
    if sqlstate:
        return str(sqlstate)[:2] in _OUTAGE_CLASSES
    lost = (psycopg.OperationalError, psycopg.InterfaceError, psycopg_pool.PoolTimeout, OSError)
    if isinstance(cause, lost):
        return True
    # A DatabaseError without a cause is a failed connect (``connection_error``); a
    # psycopg error without SQLSTATE is the driver refusing data (a NUL in text, say).
    return isinstance(cause, DatabaseError)


async def ping(conn: psycopg.AsyncConnection[DictRow]) -> None:
    """One round trip: raises when the database does not answer."""
    await fetch_one(conn, "ping")
