"""``qasdk db``: the database in use, the embedded server, migrations."""

from __future__ import annotations

from typing import Any

import click

from qasdk.cli.app import State, embedded_started, handle_errors, pass_state, run
from qasdk.errors import ConfigurationError

__all__ = ["db"]


@click.group()
def db() -> None:
    """The database: its URL, the embedded server, migrations."""


@db.command("url")
@pass_state
@handle_errors(read_only=True)
def db_url(state: State) -> None:
    """Print the database URL in use (password masked)."""
    from qasdk.redaction import mask_url
    from qasdk.store import resolve_url
    from qasdk.store.embedded import embedded_status, embedded_url

    database = state.config().database
    if database.embedded and not embedded_status(database.data_dir)["initialized"]:
        click.echo(embedded_url(database.data_dir))  # what it will be; nothing is created
        click.echo("(not created yet: the first qasdk sync creates it)", err=True)
        return
    click.echo(mask_url(resolve_url(database, on_start=embedded_started)))


@db.command("status")
@pass_state
@handle_errors(read_only=True)
def db_status(state: State) -> None:
    """Say which database is configured and whether it answers (exit 3 if not)."""
    from qasdk.redaction import mask_url
    from qasdk.store import connect, resolve_url
    from qasdk.store.embedded import embedded_status

    database = state.config().database
    if not database.embedded:
        url = resolve_url(database)

        async def reach() -> None:
            conn = await connect(url, timeout=database.connect_timeout)
            await conn.close()

        run(reach())  # a DatabaseError here exits 3
        click.echo(f"external database {mask_url(url)}: reachable")
        return
    status = embedded_status(database.data_dir)
    state_text = f"running (pid {status['pid']})" if status["running"] else "stopped"
    if not status["initialized"]:
        state_text = "not created yet (the next command that needs it creates it)"
    click.echo(f"embedded PostgreSQL in {status['data_dir']}: {state_text}")


@db.command("stop")
@pass_state
@handle_errors()
def db_stop(state: State) -> None:
    """Stop the embedded PostgreSQL."""
    from qasdk.store.embedded import stop_embedded

    database = state.config().database
    if not database.embedded:
        raise ConfigurationError("a database is configured; only the embedded one can be stopped")
    click.echo("stopped" if stop_embedded(database.data_dir) else "not running")


@db.command("migrate")
@pass_state
@handle_errors()
def db_migrate(state: State) -> None:
    """Apply pending schema migrations."""
    from qasdk.store import connect, migrate, resolve_url

    config = state.config()
    url = resolve_url(config.database, on_start=embedded_started)

    async def go() -> list[Any]:
        conn = await connect(url, timeout=config.database.connect_timeout)
        async with conn:
            return await migrate(conn)

    applied = run(go())
    for migration in applied:
        click.echo(f"applied {migration.version:04d}_{migration.name}")
    if not applied:
        click.echo("database schema is up to date")
