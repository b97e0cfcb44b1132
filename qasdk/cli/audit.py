"""``qasdk audit``: who did what and when, read from the audit log."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

import click

from qasdk.cli import output
from qasdk.cli.app import State, embedded_started, handle_errors, json_option, pass_state, run

__all__ = ["audit"]

_SPAN = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
#: The audit log's migration: before it, there is nothing to read.
_MIGRATION = 14


def _when(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    """A moment: ISO 8601 (UTC unless it says otherwise), or a span back from now (``2h``)."""
    if value is None:
        return None
    text = value.strip()
    span = _SPAN.match(text)
    try:
        if span:
            amount = timedelta(**{_UNITS[span.group(2)]: float(span.group(1))})
            return datetime.now(timezone.utc) - amount
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, OverflowError):
        raise click.BadParameter(
            f"{text!r} is neither ISO 8601 (2026-01-31T12:00) nor a span (30m, 2h, 7d)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


@click.command(short_help="Show the audit log: who did what and when.")
@click.option("--action", help="This action, or those under it (task: task.submit, task.cancel).")
@click.option("--actor", help="A key's name, open, anonymous, or cli:<user>@<host>.")
@click.option("--target", help="A task id, a key's name, a tool.")
@click.option(
    "--since", callback=_when, help="At or after: ISO 8601, or a span back (30m, 2h, 7d)."
)
@click.option("--until", callback=_when, help="Before: ISO 8601, or a span back.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@json_option
@pass_state
@handle_errors(read_only=True)
def audit(
    state: State,
    action: str | None,
    actor: str | None,
    target: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    json_output: bool,
) -> None:
    """Show the audit log, newest first: syncs and reloads (with what changed), key
    changes, task submits and cancels, denied requests, refused registry rows."""
    from qasdk.store import connect, resolve_url
    from qasdk.store.audit import list_entries
    from qasdk.store.embedded import embedded_status
    from qasdk.store.migrate import pending_migrations

    config = state.config()
    database = config.database
    entries: list[Any] = []
    if not database.embedded or embedded_status(database.data_dir)["initialized"]:
        url = resolve_url(database, on_start=embedded_started)

        async def go() -> list[Any]:
            conn = await connect(url, timeout=database.connect_timeout)
            async with conn:
                pending = await pending_migrations(conn)
                if any(m.version == _MIGRATION for m in pending):
                    return []  # a read-only command does not create the table
                return await list_entries(
                    conn,
                    action=action,
                    actor=actor,
                    target=target,
                    since=since,
                    until=until,
                    limit=limit,
                )

        entries = run(go())
    click.echo(output.audit_json(entries) if json_output else output.describe_audit(entries))
