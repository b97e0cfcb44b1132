"""``qasdk workers``: the worker processes registered on the database, alive or not."""

from __future__ import annotations

from typing import Any

import click

from qasdk.cli import output
from qasdk.cli.app import State, embedded_started, handle_errors, json_option, pass_state, run

__all__ = ["workers"]

#: The workers table's migration: before it, no worker has registered.
_MIGRATION = 26


@click.command(short_help="List the worker processes: pools, heartbeat, tasks running and done.")
@json_option
@pass_state
@handle_errors(read_only=True)
def workers(state: State, json_output: bool) -> None:
    """List every registered worker (`qasdk worker`, or the one `qasdk serve` embeds): host
    and pid, pools, state (alive, dead: no heartbeat for worker.stalled_after seconds,
    stopped), tasks running and done, when it started and last beat."""
    from qasdk.store import connect, resolve_url
    from qasdk.store.embedded import embedded_status
    from qasdk.store.migrate import pending_migrations, queue_available
    from qasdk.store.workers import list_workers

    config = state.config()
    database = config.database
    found: list[Any] = []
    present = not database.embedded or embedded_status(database.data_dir)["initialized"]
    if present and queue_available():  # workers need the server extra; so does their table
        url = resolve_url(database, on_start=embedded_started)

        async def go() -> list[Any]:
            conn = await connect(url, timeout=database.connect_timeout)
            async with conn:
                pending = await pending_migrations(conn)
                if any(m.version == _MIGRATION for m in pending):
                    return []  # a read-only command does not create the table
                return await list_workers(conn, stale=config.worker.stalled_after)

        found = run(go())
    click.echo(output.workers_json(found) if json_output else output.describe_workers(found))
