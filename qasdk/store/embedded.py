"""The embedded PostgreSQL: a private server in a folder of the project.

With no database configured, qasdk starts PostgreSQL 16 from the binaries the
``pgserver`` package ships, in ``.qasdk/pgdata`` by default, listening only on
a Unix socket. It keeps running after the command that started it, so later
commands (and ``qasdk serve``) reuse it; ``qasdk db stop`` stops it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import psycopg
from psycopg import sql

from qasdk.errors import DatabaseError
from qasdk.store._sql import query

__all__ = [
    "DATABASE_NAME",
    "drop_database",
    "embedded_status",
    "embedded_url",
    "ensure_embedded",
    "private_folder",
    "stop_embedded",
]

DATABASE_NAME = "qasdk"
logger = logging.getLogger("qasdk.store")


def _pgserver() -> Any:
    # pgserver asks platformdirs for a runtime dir at import; that warning is noise here.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver

    logging.getLogger("pgserver").setLevel(logging.WARNING)
    return pgserver


def private_folder(path: Path) -> None:
    """Create ``path``; a ``.qasdk`` folder gets a ``.gitignore`` so it never lands in a
    repository (the database, code snapshots and qwen-agent's workspace live there)."""
    path.mkdir(parents=True, exist_ok=True)
    for folder in (path, *path.parents):
        if folder.name == ".qasdk":
            ignore = folder / ".gitignore"
            if not ignore.exists():
                ignore.write_text("# qasdk's local state: the embedded database and more.\n*\n")
            return


def embedded_url(data_dir: str | Path, database: str = DATABASE_NAME) -> str:
    """The URL the embedded server in ``data_dir`` has (or will have), without starting it."""
    path = Path(data_dir).expanduser().resolve()
    return f"postgresql://postgres:@/{database}?host={path}"


def ensure_embedded(
    data_dir: str | Path,
    database: str = DATABASE_NAME,
    *,
    on_start: Callable[[Path], None] | None = None,
) -> str:
    """Start (or reuse) the embedded server in ``data_dir``; return its connection URL.

    ``on_start`` hears of a server this call started (it keeps running afterwards).
    """
    path = Path(data_dir).expanduser().resolve()
    try:
        private_folder(path.parent)
        pgserver = _pgserver()
        running = embedded_status(path)["running"]
        if not running:
            # pgserver caches one handle per folder; a stopped server needs a new one.
            pgserver.PostgresServer._instances.pop(path, None)
        server = pgserver.get_server(path, cleanup_mode=None)
        url = str(server.get_uri())
        if not running and on_start is not None:
            on_start(path)
    except (OSError, subprocess.SubprocessError, AssertionError, RuntimeError) as exc:
        log = path / "log"
        hint = f"; see {log}" if log.exists() else ""
        raise DatabaseError(f"cannot start the embedded PostgreSQL in {path}: {exc}{hint}") from exc
    _create_database(url, database)
    return url.replace("/postgres?", f"/{database}?", 1)


def _create_database(url: str, database: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        if conn.execute(query("database_exists"), {"name": database}).fetchone() is None:
            create = sql.SQL(query("create_database")).format(database=sql.Identifier(database))
            # Another process may create it first.
            with contextlib.suppress(psycopg.errors.DuplicateDatabase):
                conn.execute(create)


def drop_database(url: str, database: str) -> None:
    """Drop ``database`` of the server ``url`` points at (connected as to ``postgres``)."""
    admin = url.replace(f"/{database}?", "/postgres?", 1)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL(query("drop_database")).format(database=sql.Identifier(database)))


def embedded_status(data_dir: str | Path) -> dict[str, Any]:
    """Whether the embedded server in ``data_dir`` exists and runs, without starting it."""
    path = Path(data_dir).expanduser().resolve()
    pid_file = path / "postmaster.pid"
    status: dict[str, Any] = {
        "data_dir": str(path),
        "initialized": (path / "PG_VERSION").exists(),
        "running": False,
        "pid": None,
    }
    if pid_file.exists():
        try:
            pid = int(pid_file.read_text().splitlines()[0])
            os.kill(pid, 0)
        except (ValueError, IndexError, ProcessLookupError, PermissionError, OSError):
            return status
        status.update(running=True, pid=pid)
    return status


def stop_embedded(
    data_dir: str | Path, *, mode: Literal["smart", "fast", "immediate"] = "fast"
) -> bool:
    """Stop the embedded server in ``data_dir``; ``False`` if it was not running.

    ``mode`` is ``pg_ctl stop``'s: ``fast`` ends sessions and shuts down cleanly,
    ``immediate`` is a crash stop (no checkpoint: the next start recovers from WAL),
    ``smart`` waits for every session to end.
    """
    status = embedded_status(data_dir)
    if not status["running"]:
        return False
    pgserver = _pgserver()
    user = "pgserver" if hasattr(os, "geteuid") and os.geteuid() == 0 else None
    kwargs: dict[str, Any] = {"user": user} if user else {}
    pgserver.pg_ctl(["-w", "-m", mode, "stop"], pgdata=Path(status["data_dir"]), **kwargs)
    return True
