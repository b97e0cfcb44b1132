"""``qasdk sync``, ``qasdk check`` and ``qasdk methods``: the registration pipeline."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from qasdk.cli import output
from qasdk.cli.app import (
    State,
    embedded_started,
    handle_errors,
    json_option,
    module_root_option,
    pass_state,
    run,
)
from qasdk.config import Config

__all__ = ["check", "methods", "sync"]

paths_argument = click.argument("paths", nargs=-1, type=click.Path())
DEFAULT_TOOLS = "tools"


def _paths(given: Sequence[str], config: Config) -> Sequence[str]:
    """PATHS as given; else the configuration's ``tools:``; else ``./tools``. Says which."""
    if given:
        return given
    if config.tools:
        click.echo(f"reading {', '.join(config.tools)} (tools: in {config.path})", err=True)
        return config.tools
    if Path(DEFAULT_TOOLS).is_dir():
        click.echo(f"reading ./{DEFAULT_TOOLS} (no PATH given)", err=True)
        return [DEFAULT_TOOLS]
    raise click.UsageError(
        "give the PATHS to read, set 'tools:' in model_config.yaml, or create ./tools"
    )


@click.command(short_help="Scan, validate and sync tools into the registry.")
@paths_argument
@click.option("--prune", is_flag=True, help="Delete registered tools that are no longer defined.")
@click.option("--dry-run", is_flag=True, help="Print what would change; write nothing.")
@module_root_option
@json_option
@pass_state
@handle_errors()
def sync(
    state: State,
    paths: Sequence[str],
    prune: bool,
    dry_run: bool,
    module_root: str | None,
    json_output: bool,
) -> None:
    """Scan PATHS for @tool functions and methods files, validate, and sync the registry.

    PATHS may be Python files, folders (searched recursively, including their
    methods.yaml / methods.json) or methods .yaml/.json files. Without PATHS:
    the `tools:` setting of model_config.yaml, else ./tools.
    """
    from qasdk.audit import Actor
    from qasdk.redaction import mask_url
    from qasdk.registration.collect import collect
    from qasdk.security.signing import load_signing_key
    from qasdk.store import connect, resolve_url, sync_methods

    config = state.config()
    catalog = collect(
        _paths(paths, config),
        module_root=module_root,
        allowed_packages=config.registry.allowed_packages,
    )
    key = None if dry_run else load_signing_key(config)
    url = resolve_url(config.database, on_start=embedded_started)

    async def go() -> Any:
        conn = await connect(url, timeout=config.database.connect_timeout)
        async with conn:
            return await sync_methods(
                conn,
                catalog.configs,
                prune=prune,
                dry_run=dry_run,
                key=key,
                actor=Actor.local("cli"),
            )

    report = run(go())
    masked = mask_url(url)
    if json_output:
        click.echo(output.sync_json(catalog, report, masked))
        return
    for warning in catalog.warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(output.describe_sync(catalog, report, masked))


@click.command(short_help="Validate tools like sync does, without a database.")
@paths_argument
@module_root_option
@json_option
@pass_state
@handle_errors(read_only=True)
def check(state: State, paths: Sequence[str], module_root: str | None, json_output: bool) -> None:
    """Validate PATHS like `sync` does, without a database (no PATHS: as `sync`)."""
    from qasdk.registration.collect import collect

    config = state.config()
    catalog = collect(
        _paths(paths, config),
        module_root=module_root,
        allowed_packages=config.registry.allowed_packages,
    )
    if json_output:
        click.echo(output.check_json(catalog))
        return
    for warning in catalog.warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(output.describe_check(catalog))


@click.command()
@json_option
@pass_state
@handle_errors(read_only=True)
def methods(state: State, json_output: bool) -> None:
    """List the registered tools."""
    from qasdk.store import connect, list_methods, resolve_url
    from qasdk.store.embedded import embedded_status
    from qasdk.store.methods import list_signed_methods
    from qasdk.store.migrate import pending_migrations

    config = state.config()
    database = config.database
    if database.embedded and not embedded_status(database.data_dir)["initialized"]:
        # A read-only command creates no database in an empty folder.
        if json_output:
            click.echo("[]")
        else:
            click.echo(
                f"No tools registered: no database in {database.data_dir} yet "
                "(qasdk sync PATH creates it)."
            )
        return
    url = resolve_url(database, on_start=embedded_started)

    async def go() -> list[Any]:
        conn = await connect(url, timeout=config.database.connect_timeout)
        async with conn:
            pending = await pending_migrations(conn)
            if pending and pending[0].version == 1:
                return []
            if any(m.version == 9 for m in pending):  # no signatures yet: all unsigned
                return [(m, None) for m in await list_methods(conn)]
            return await list_signed_methods(conn)

    signed = run(go())
    found = [method for method, _ in signed]
    click.echo(output.methods_json(found) if json_output else output.describe_methods(found))
    _report_refused(config, signed)


def _report_refused(config: Config, signed: list[Any]) -> None:
    """Say on stderr which rows servers here would not load, and why."""
    from qasdk.errors import ConfigurationError
    from qasdk.security.guard import RowGuard
    from qasdk.security.roots import roots_for
    from qasdk.security.signing import load_signing_key

    if not signed:
        return
    try:
        key = load_signing_key(config, create=False)
    except ConfigurationError as exc:
        click.echo(f"warning: signatures not checked: {exc}", err=True)
        return
    guard = RowGuard(key, roots_for(Path.cwd(), config.registry.allowed_packages))
    for method, signature in signed:
        reason = guard.refusal(method, signature)
        if reason is not None:
            click.echo(
                f"warning: tool {method.name!r} is not loaded by servers: {reason}", err=True
            )
