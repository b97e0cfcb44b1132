"""``qasdk keys``: the API keys that may call the task server."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

import click
import msgspec

from qasdk.cli.app import State, embedded_started, handle_errors, json_option, pass_state, run
from qasdk.keys import SCOPES, ApiKey

__all__ = ["keys"]

T = TypeVar("T")


@click.group()
def keys() -> None:
    """API keys: create (the secret is shown once), list, revoke."""


def _with_database(state: State, work: Callable[[Any], Awaitable[T]]) -> T:
    from qasdk.store import connect, migrate, resolve_url

    config = state.config()
    url = resolve_url(config.database, on_start=embedded_started)

    async def go() -> T:
        conn = await connect(url, timeout=config.database.connect_timeout)
        async with conn:
            await migrate(conn)
            result = await work(conn)
            await conn.commit()
            return result

    return run(go())


def _when(value: datetime | None) -> str:
    return "-" if value is None else value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M")


def _limits(key: ApiKey) -> str:
    parts = [
        *(f"tool {t}" for t in key.tools or ()),
        *(f"tag {t}" for t in key.tags or ()),
        *(f"permission {p}" for p in key.permissions or ()),
    ]
    if key.rate is not None:
        parts.append(f"rate {key.rate}")
    if key.max_running is not None:
        parts.append(f"max running {key.max_running}")
    if key.max_tokens_per_task is not None:
        parts.append(f"max tokens per task {key.max_tokens_per_task}")
    return "" if not parts else "; " + ", ".join(parts)


@keys.command("create")
@click.argument("name")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    required=True,
    type=click.Choice(SCOPES),
    help="What the key may do (repeat for several): read, submit, cancel, admin.",
)
@click.option(
    "--expires-in", type=click.FloatRange(min=0, min_open=True), help="Days until it expires."
)
@click.option(
    "--tool", "tools", multiple=True, help="A tool it may run (repeat; default: every tool)."
)
@click.option("--tag", "tags", multiple=True, help="It may run the tools with this tag (repeat).")
@click.option(
    "--permission",
    "permissions",
    multiple=True,
    help="A permission its tools may need, such as network or fs:* (repeat; default: any).",
)
@click.option("--rate", help="At most this many submits per window: 10/m, 100/h, 5/30s.")
@click.option(
    "--max-running", type=click.IntRange(min=1), help="At most this many tasks unfinished at once."
)
@click.option(
    "--max-tokens-per-task",
    type=click.IntRange(min=1),
    help="Tokens one of its tasks may use (below model.max_tokens_per_task).",
)
@json_option
@pass_state
@handle_errors()
def create(
    state: State,
    name: str,
    scopes: Sequence[str],
    expires_in: float | None,
    tools: Sequence[str],
    tags: Sequence[str],
    permissions: Sequence[str],
    rate: str | None,
    max_running: int | None,
    max_tokens_per_task: int | None,
    json_output: bool,
) -> None:
    """Create a key called NAME and print its secret (shown this once only)."""
    from qasdk.audit import Actor
    from qasdk.store.keys import create_key

    expires = None
    if expires_in is not None:
        expires = datetime.now(timezone.utc) + timedelta(days=expires_in)
    key, text = _with_database(
        state,
        lambda conn: create_key(
            conn,
            name,
            scopes,
            actor=Actor.local("cli"),
            expires_at=expires,
            tools=tools or None,
            tags=tags or None,
            permissions=permissions or None,
            rate=rate,
            max_running=max_running,
            max_tokens_per_task=max_tokens_per_task,
        ),
    )
    if json_output:
        click.echo(msgspec.json.encode({"key": text, **msgspec.structs.asdict(key)}).decode())
        return
    click.echo(text)
    click.echo(
        f"key {key.name!r} ({', '.join(key.scopes)}{_limits(key)}, "
        f"expires {_when(key.expires_at)}) created; "
        "the secret above is not stored and cannot be shown again. Send it as "
        "'Authorization: Bearer <key>'.",
        err=True,
    )


@keys.command("list")
@json_option
@pass_state
@handle_errors(read_only=True)
def list_(state: State, json_output: bool) -> None:
    """List the keys (never their secrets)."""
    from qasdk.store.keys import list_keys

    found = _with_database(state, list_keys)
    if json_output:
        click.echo(msgspec.json.encode(found).decode())
        return
    if not found:
        click.echo("No API keys: the task server runs open (on a loopback address only).")
        return
    now = datetime.now(timezone.utc)
    for key in found:
        state_text = "in force" if key.active(now) else ("revoked" if key.revoked_at else "expired")
        click.echo(
            f"{key.name}  {','.join(key.scopes)}{_limits(key)}  {state_text}"
            f"  created {_when(key.created_at)}  expires {_when(key.expires_at)}  id {key.id}"
        )


@keys.command("revoke")
@click.argument("name")
@pass_state
@handle_errors()
def revoke(state: State, name: str) -> None:
    """Revoke the key called NAME: requests with it are refused from now on."""
    from qasdk.audit import Actor
    from qasdk.errors import ValidationError
    from qasdk.models import Problem
    from qasdk.store.keys import revoke_key

    key = _with_database(state, lambda conn: revoke_key(conn, name, actor=Actor.local("cli")))
    if key is None:
        problem = Problem(
            field="name", reason=f"no key in force is called {name!r} (qasdk keys list)"
        )
        raise ValidationError(problems=[problem])
    click.echo(f"key {name!r} revoked")
