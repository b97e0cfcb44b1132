"""Shared fixtures: a real PostgreSQL the suite starts itself, and cleanup checks.

The database is the embedded server qasdk ships (pgserver), in a temporary
folder, started once per session. Every test that writes to it gets a
connection whose teardown deletes what the test created and then checks the
tables are exactly as before (seed Property 24).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest
from hypothesis import HealthCheck, settings

from qasdk.store.connection import connect
from qasdk.store.embedded import ensure_embedded, stop_embedded
from qasdk.store.migrate import migrate
from tests.dbstate import Snapshot, delete_created, snapshot

# Fixed seed everywhere (CI included) so a failure reproduces; ``dev`` explores.
settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    max_examples=100,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", deadline=None, max_examples=100)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


#: The registry's signing key of every process the suite starts: tests sync into one
#: database from many project folders, each of which would otherwise make a key of its own
#: (``.qasdk/signing.key``) and so sign rows the others refuse.
SIGNING_KEY = "qasdk-test-suite-signing-key-0123456789abcdef"


@pytest.fixture(scope="session", autouse=True)
def _one_signing_key() -> Iterator[None]:
    saved = os.environ.get("QASDK_REGISTRY_SIGNING_KEY")
    os.environ["QASDK_REGISTRY_SIGNING_KEY"] = saved or SIGNING_KEY
    yield
    if saved is None:
        os.environ.pop("QASDK_REGISTRY_SIGNING_KEY", None)


@pytest.fixture(scope="session")
def pg_data() -> Iterator[Path]:
    # Not under pytest's numbered temp dirs: another pytest run may rotate those away.
    folder = Path(tempfile.mkdtemp(prefix="qasdk-test-pg-"))
    data = folder / "data"
    try:
        yield data
    finally:
        stop_embedded(data)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_url(pg_data: Path) -> str:
    """URL of a migrated test database on the embedded server."""
    url = ensure_embedded(pg_data, database="qasdk_test")

    async def setup() -> None:
        conn = await connect(url)
        async with conn:
            await migrate(conn)

    import asyncio

    asyncio.run(setup())
    return url


@contextlib.contextmanager
def scratch_database(pg_data: Path, pg_url: str, prefix: str) -> Iterator[str]:
    """An empty database (no schema) on the test server, dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    url = ensure_embedded(pg_data, database=name)
    try:
        yield url
    finally:
        admin = pg_url.replace("/qasdk_test?", "/postgres?", 1)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def fresh_database(pg_data: Path, pg_url: str) -> Iterator[str]:
    """An empty database for one test (for what touches every row, like --prune)."""
    with scratch_database(pg_data, pg_url, "fresh") as url:
        yield url


@pytest.fixture(scope="session")
def quiet_url(pg_data: Path, pg_url: str) -> Iterator[str]:
    """A migrated database no server's workers read: for tests that set task states by hand."""
    with scratch_database(pg_data, pg_url, "quiet") as url:

        async def setup() -> None:
            async with await connect(url) as conn:
                await migrate(conn)

        import asyncio

        asyncio.run(setup())
        yield url


@pytest.fixture
async def conn(pg_url: str) -> AsyncIterator[psycopg.AsyncConnection]:  # type: ignore[type-arg]
    """A connection to the test database; the test's rows are gone afterwards."""
    async with _checked(pg_url) as connection:
        yield connection


@pytest.fixture
async def quiet_conn(quiet_url: str) -> AsyncIterator[psycopg.AsyncConnection]:  # type: ignore[type-arg]
    """Like ``conn``, on the database no worker reads (no task is taken meanwhile)."""
    async with _checked(quiet_url) as connection:
        yield connection


@contextlib.asynccontextmanager
async def _checked(url: str) -> AsyncIterator[psycopg.AsyncConnection]:  # type: ignore[type-arg]
    connection = await connect(url)
    before: Snapshot = await snapshot(connection)
    try:
        yield connection
    finally:
        await connection.rollback()
        await delete_created(connection, before)
        after = await snapshot(connection)
        await connection.close()
        assert after == before, "the test left rows behind (Property 24)"
