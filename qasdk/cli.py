"""The ``qasdk`` command.

Exit status: 0 success; 1 invalid input (configuration or tool metadata, one
line per problem); 2 wrong usage; 3 the database is unreachable or refused.
Expected errors never print a traceback; it goes to the log at DEBUG.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import signal
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, NoReturn, TypeVar

import click
import msgspec

from qasdk.config import Config, LoggingConfig, load_config
from qasdk.errors import ConfigurationError, DatabaseError, QasdkError
from qasdk.logs import configure_logging

__all__ = ["main"]

logger = logging.getLogger("qasdk.cli")
T = TypeVar("T")

EXIT_INVALID, EXIT_DATABASE = 1, 3


class State(msgspec.Struct):
    config_path: str | None = None
    verbose: int = 0
    _config: Config | None = None

    def config(self, *, service: bool = False) -> Config:
        """Load the configuration and set up logging.

        Commands keep the console to warnings (``-v`` for more); a ``service``
        (serve, worker) logs at the configured level.
        """
        if self._config is None:
            self._config = load_config(self.config_path)
            console = None if service and not self.verbose else _console_level(self.verbose)
            configure_logging(
                self._config.logging, secrets=self._config.secrets(), console_level=console
            )
        return self._config


def _console_level(verbose: int) -> int:
    return {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)


def _fail(error: QasdkError, *, json_output: bool = False) -> NoReturn:
    """Report an expected error the way a person (or a script) wants to read it."""
    code = EXIT_DATABASE if isinstance(error, DatabaseError) else EXIT_INVALID
    extra: dict[str, Any] = {"reported": True}
    if error.problems:
        first = error.problems[0]
        extra["problems"] = [str(p) for p in error.problems]
        if first.source is not None:
            extra["path"] = first.source.path
            extra["line"] = first.source.line
        extra["parse_error"] = first.reason
    if isinstance(error, DatabaseError):
        extra["statement"] = error.statement
        extra["sqlstate"] = error.sqlstate
    logger.error("%s: %s", type(error).__name__, error, exc_info=error, extra=extra)
    if json_output:
        body = {
            "ok": False,
            "error_type": type(error).__name__,
            "message": str(error),
            "problems": [msgspec.to_builtins(p) for p in error.problems],
        }
        click.echo(msgspec.json.encode(body).decode())
    elif error.problems:
        for problem in error.problems:
            click.echo(str(problem), err=True)
        noun = "problem" if len(error.problems) == 1 else "problems"
        click.echo(f"{len(error.problems)} {noun} found; nothing was written.", err=True)
    else:
        click.echo(f"error: {error}", err=True)
    sys.exit(code)


def _fallback_logging() -> None:
    """Logging for an error that came before the configuration could be read."""
    try:
        logging_config = load_config(use_file=False).logging
    except QasdkError:
        logging_config = LoggingConfig()
    configure_logging(logging_config, console_level=logging.CRITICAL + 1)


def handle_errors(func: Callable[..., T]) -> Callable[..., T]:
    """Turn qasdk's expected errors into one clear message and an exit status."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return func(*args, **kwargs)
        except QasdkError as exc:
            if not any(getattr(h, "_qasdk_handler", False) for h in logging.getLogger().handlers):
                _fallback_logging()
            _fail(exc, json_output=bool(kwargs.get("json_output")))

    return wrapper


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def _stop_quietly_while_starting() -> None:
    """SIGTERM before the service is up (and handles it itself): just exit, status 0."""

    def stop(signum: int, frame: Any) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)


def run_service(coro: Coroutine[Any, Any, T]) -> T:
    """Run a long-lived service on uvloop when it is installed."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    envvar="QASDK_CONFIG",
    help="model_config.yaml to use (default: ./model_config.yaml, $QASDK_CONFIG).",
)


def pass_state(func: Callable[..., T]) -> Callable[..., T]:
    """Merge a subcommand's ``--config`` into the shared state."""

    def wrapper(state: State, /, *args: Any, config_path: str | None = None, **kwargs: Any) -> T:
        if config_path:
            state.config_path = config_path
        return func(state, *args, **kwargs)

    functools.update_wrapper(wrapper, func)
    return config_option(click.pass_obj(wrapper))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@config_option
@click.option("-v", "--verbose", count=True, help="Show progress (-v) or debug logs (-vv).")
@click.version_option(package_name="qasdk")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, verbose: int) -> None:
    """Register @tool functions in PostgreSQL and run tasks through qwen-agent."""
    ctx.obj = State(config_path=config_path, verbose=verbose)


module_root_option = click.option(
    "--module-root",
    type=click.Path(file_okay=False, exists=True),
    help="Folder `qasdk serve` imports tools from (default: the working directory).",
)
json_option = click.option("--json", "json_output", is_flag=True, help="Machine-readable output.")


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--prune", is_flag=True, help="Delete registered tools that are no longer defined.")
@click.option("--dry-run", is_flag=True, help="Print what would change; write nothing.")
@module_root_option
@json_option
@pass_state
@handle_errors
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
    methods.yaml / methods.json) or methods .yaml/.json files.
    """
    from qasdk.collect import collect
    from qasdk.store import connect, mask_url, resolve_url, sync_methods

    config = state.config()
    registry = collect(paths, module_root=module_root)
    url = resolve_url(config.database)

    async def go() -> Any:
        conn = await connect(url, timeout=config.database.connect_timeout)
        async with conn:
            return await sync_methods(conn, registry.configs, prune=prune, dry_run=dry_run)

    report = run(go())
    masked = mask_url(url)
    if json_output:
        body = {
            "ok": True,
            "dry_run": report.dry_run,
            "database": masked,
            "tools": len(registry.entries),
            **msgspec.to_builtins(report.plan),
            "rows_written": report.rows_written,
            "migrations_applied": report.migrations_applied,
            "warnings": [str(w) for w in registry.warnings],
        }
        click.echo(msgspec.json.encode(body).decode())
        return
    for warning in registry.warnings:
        click.echo(f"warning: {warning}", err=True)
    from qasdk._report import describe_sync

    click.echo(describe_sync(registry, report, masked))


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@module_root_option
@json_option
@pass_state
@handle_errors
def check(state: State, paths: Sequence[str], module_root: str | None, json_output: bool) -> None:
    """Validate PATHS like `sync` does, without a database."""
    from qasdk.collect import collect

    state.config()
    registry = collect(paths, module_root=module_root)
    if json_output:
        body = {"ok": True, "tools": [msgspec.to_builtins(c) for c in registry.configs]}
        click.echo(msgspec.json.encode(body).decode())
        return
    for warning in registry.warnings:
        click.echo(f"warning: {warning}", err=True)
    names = ", ".join(entry.config.name for entry in registry.entries)
    click.echo(f"{len(registry.entries)} tools OK: {names}")


@cli.command()
@json_option
@pass_state
@handle_errors
def methods(state: State, json_output: bool) -> None:
    """List the registered tools."""
    from qasdk.store import connect, list_methods, resolve_url
    from qasdk.store.migrate import pending_migrations

    config = state.config()
    url = resolve_url(config.database)

    async def go() -> list[Any]:
        conn = await connect(url, timeout=config.database.connect_timeout)
        async with conn:
            pending = await pending_migrations(conn)
            if pending and pending[0].version == 1:
                return []
            return await list_methods(conn)

    found = run(go())
    if json_output:
        click.echo(msgspec.json.encode(found).decode())
        return
    from qasdk._report import describe_methods

    click.echo(describe_methods(found))


def _service_config(
    config: Config, host: str | None, port: int | None, concurrency: int | None
) -> Config:
    server, worker = config.server, config.worker
    if host is not None:
        server = msgspec.structs.replace(server, host=host)
    if port is not None:
        server = msgspec.structs.replace(server, port=port)
    if concurrency is not None:
        worker = msgspec.structs.replace(worker, concurrency=concurrency)
    return msgspec.structs.replace(config, server=server, worker=worker)


concurrency_option = click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    help="Tasks this worker runs at once (default: worker.concurrency, 4).",
)


@cli.command()
@click.option("--host", help="Interface to listen on (default: server.host, 127.0.0.1).")
@click.option(
    "--port", type=click.IntRange(0, 65535), help="Port (default: server.port, 8000; 0 picks one)."
)
@concurrency_option
@click.option("--no-worker", is_flag=True, help="Serve the API only; run `qasdk worker` elsewhere.")
@click.option(
    "--watch",
    "watch",
    multiple=True,
    type=click.Path(exists=True),
    metavar="PATH",
    help="Tool folder to rescan and sync when it changes (repeatable); "
    "the config file is watched too.",
)
@click.option("--prune", is_flag=True, help="With --watch: delete tools removed from PATH.")
@pass_state
@handle_errors
def serve(
    state: State,
    host: str | None,
    port: int | None,
    concurrency: int | None,
    no_worker: bool,
    watch: tuple[str, ...],
    prune: bool,
) -> None:
    """Serve the REST API with an embedded worker (OpenAPI docs at /schema)."""
    _stop_quietly_while_starting()
    from server.serve import run_server

    def overrides(loaded: Config) -> Config:
        return _service_config(loaded, host, port, concurrency)

    config = overrides(state.config(service=True))
    run_service(
        run_server(
            config,
            host=config.server.host,
            port=config.server.port,
            embedded_worker=not no_worker,
            watch=watch,
            prune=prune,
            overrides=overrides,
        )
    )


@cli.command()
@concurrency_option
@pass_state
@handle_errors
def worker(state: State, concurrency: int | None) -> None:
    """Run tasks from the queue, on any machine that reaches the database."""
    _stop_quietly_while_starting()
    from server.serve import run_worker

    config = _service_config(state.config(service=True), None, None, concurrency)
    run_service(run_worker(config))


@cli.group()
def db() -> None:
    """The database: its URL, the embedded server, migrations."""


@db.command("url")
@pass_state
@handle_errors
def db_url(state: State) -> None:
    """Print the database URL in use (password masked)."""
    from qasdk.store import mask_url, resolve_url

    click.echo(mask_url(resolve_url(state.config().database)))


@db.command("status")
@pass_state
@handle_errors
def db_status(state: State) -> None:
    """Say which database is configured and whether the embedded one runs."""
    from qasdk.store import mask_url
    from qasdk.store.embedded import embedded_status

    database = state.config().database
    if not database.embedded:
        click.echo(f"external database: {mask_url(database.url or database.host or '')}")
        return
    status = embedded_status(database.data_dir)
    state_text = f"running (pid {status['pid']})" if status["running"] else "stopped"
    if not status["initialized"]:
        state_text = "not created yet (the next command that needs it creates it)"
    click.echo(f"embedded PostgreSQL in {status['data_dir']}: {state_text}")


@db.command("stop")
@pass_state
@handle_errors
def db_stop(state: State) -> None:
    """Stop the embedded PostgreSQL."""
    from qasdk.store.embedded import stop_embedded

    database = state.config().database
    if not database.embedded:
        raise ConfigurationError("a database is configured; only the embedded one can be stopped")
    click.echo("stopped" if stop_embedded(database.data_dir) else "not running")


@db.command("migrate")
@pass_state
@handle_errors
def db_migrate(state: State) -> None:
    """Apply pending schema migrations."""
    from qasdk.store import connect, migrate, resolve_url

    config = state.config()
    url = resolve_url(config.database)

    async def go() -> list[Any]:
        conn = await connect(url, timeout=config.database.connect_timeout)
        async with conn:
            return await migrate(conn)

    applied = run(go())
    for migration in applied:
        click.echo(f"applied {migration.version:04d}_{migration.name}")
    if not applied:
        click.echo("database schema is up to date")


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point."""
    try:
        cli.main(args=list(argv) if argv is not None else None, prog_name="qasdk")
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
