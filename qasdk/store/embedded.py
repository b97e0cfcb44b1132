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
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from qasdk.errors import DatabaseError
from qasdk.store._sql import query

__all__ = ["DATABASE_NAME", "embedded_status", "ensure_embedded", "stop_embedded"]

DATABASE_NAME = "qasdk"
logger = logging.getLogger("qasdk.store")


def _pgserver() -> Any:
    # pgserver asks platformdirs for a runtime dir at import; that warning is noise here.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver

    logging.getLogger("pgserver").setLevel(logging.WARNING)
    return pgserver


def ensure_embedded(data_dir: str | Path, database: str = DATABASE_NAME) -> str:
    """Start (or reuse) the embedded server in ``data_dir``; return its connection URL."""
    path = Path(data_dir).expanduser().resolve()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        pgserver = _pgserver()
        if not embedded_status(path)["running"]:
            # pgserver caches one handle per folder; a stopped server needs a new one.
            pgserver.PostgresServer._instances.pop(path, None)
        server = pgserver.get_server(path, cleanup_mode=None)
        url = str(server.get_uri())
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


def stop_embedded(data_dir: str | Path) -> bool:
    """Stop the embedded server in ``data_dir``; ``False`` if it was not running."""
    status = embedded_status(data_dir)
    if not status["running"]:
        return False
    pgserver = _pgserver()
    user = "pgserver" if hasattr(os, "geteuid") and os.geteuid() == 0 else None
    kwargs: dict[str, Any] = {"user": user} if user else {}
    pgserver.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=Path(status["data_dir"]), **kwargs)
    return True
