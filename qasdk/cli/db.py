"""``qasdk db``: the database in use, the embedded server, migrations."""

from __future__ import annotations

import os
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


@db.command("rotate-signing-key")
@pass_state
@handle_errors()
def db_rotate_signing_key(state: State) -> None:
    """Re-sign every registry row with a new key, and put the key where it is kept.

    Rows the current key does not verify stay unsigned for the new key (they
    are not loaded: run qasdk sync). With the key in a file (the default), the
    file is replaced and running servers and workers here take it over; with
    registry.signing_key set, the new key is printed to set everywhere instead.
    """
    from qasdk.audit import Actor
    from qasdk.security.signing import (
        SigningKey,
        key_file_path,
        load_signing_key,
        new_secret,
        write_key_file,
    )
    from qasdk.store import connect, resolve_url
    from qasdk.store.methods import resign_methods
    from qasdk.store.notify import announce_registry

    config = state.config()
    old = load_signing_key(config)
    new = SigningKey(secret=new_secret(), source="new key")
    url = resolve_url(config.database, on_start=embedded_started)
    in_file = old.file is not None
    if in_file:
        # Written first, beside the old one: a failure below leaves the old key in use.
        pending = key_file_path(config).with_name("signing.key.next")
        write_key_file(pending, new.secret)

    async def go() -> Any:
        conn = await connect(url, timeout=config.database.connect_timeout)
        async with conn:
            report = await resign_methods(conn, old, new, actor=Actor.local("cli"))
            if in_file:
                os.replace(pending, key_file_path(config))
                await announce_registry(conn)  # now that the file holds the key they verify
                await conn.commit()
            return report

    report = run(go())
    click.echo(f"re-signed {len(report.resigned)} tools with a new key")
    for name in report.refused:
        click.echo(
            f"warning: tool {name!r} was not signed with the current key: not re-signed, "
            "still not loaded (run qasdk sync)",
            err=True,
        )
    if in_file:
        click.echo(
            f"the new key is in {key_file_path(config)}; copy it to the servers and workers "
            "that run elsewhere"
        )
    else:
        click.echo(
            "registry.signing_key is configured: set it to this new key in every server and "
            "worker (e.g. QASDK_REGISTRY_SIGNING_KEY), then restart them:"
        )
        click.echo(new.secret)
