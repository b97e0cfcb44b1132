"""Which database failures are outages (retry later) and which are mistakes."""

from __future__ import annotations

import psycopg
import psycopg_pool
import pytest

from qasdk.errors import DatabaseError
from qasdk.redaction import mask_url
from qasdk.store.connection import is_outage


def wrapped(cause: BaseException, sqlstate: str | None = None) -> DatabaseError:
    try:
        raise DatabaseError("query failed", sqlstate=sqlstate) from cause
    except DatabaseError as exc:
        return exc


@pytest.mark.parametrize(
    ("exc", "outage"),
    [
        (DatabaseError("cannot connect to PostgreSQL at db:5432: connection refused"), True),
        (wrapped(psycopg.OperationalError("the connection is closed")), True),
        (wrapped(psycopg.errors.AdminShutdown(), "57P01"), True),
        (wrapped(psycopg.errors.TooManyConnections(), "53300"), True),
        (psycopg_pool.PoolTimeout("couldn't get a connection"), True),
        (psycopg.OperationalError("server closed the connection"), True),
        (wrapped(psycopg.errors.UndefinedColumn(), "42703"), False),
        (wrapped(psycopg.errors.UniqueViolation(), "23505"), False),
        (
            wrapped(psycopg.DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes")),
            False,
        ),
    ],
)
def test_is_outage(exc: BaseException, outage: bool) -> None:
    assert is_outage(exc) is outage


def test_mask_url() -> None:
    assert mask_url("postgresql://app:hunter2@db:5432/x") == "postgresql://app:****@db:5432/x"
    assert mask_url("host=db password=hunter2 user=app") == "host=db password=**** user=app"
    assert (
        mask_url("postgresql://postgres:@/qasdk?host=/tmp/x")
        == "postgresql://postgres:@/qasdk?host=/tmp/x"
    )
