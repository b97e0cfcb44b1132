"""What every command shares: the state, its options, and how errors end a command.

Exit status (documented in the README): 0 success; 1 invalid input
(configuration or tool metadata, one line per problem); 2 wrong usage;
3 the database is unreachable or refused; 4 the server cannot start (address
in use, not permitted, the server extra missing); 70 a bug (one line; ``-vv``
shows the traceback). Expected errors never print a traceback: it goes to the
log at DEBUG.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import signal
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click
import msgspec

from qasdk.cli import output
from qasdk.config import Config, LoggingConfig, load_config
from qasdk.errors import DatabaseError, QasdkError, StartupError
from qasdk.logs import configure_logging
from qasdk.registration.discover import display_path

__all__ = [
    "EXIT_DATABASE",
    "EXIT_INTERNAL",
    "EXIT_INVALID",
    "EXIT_STARTUP",
    "State",
    "embedded_started",
    "json_option",
    "module_root_option",
    "pass_state",
    "run",
    "run_service",
]

logger = logging.getLogger("qasdk.cli")
T = TypeVar("T")

EXIT_INVALID, EXIT_DATABASE, EXIT_STARTUP, EXIT_INTERNAL = 1, 3, 4, 70


class State(msgspec.Struct):
    """Options given before or after the subcommand, and the configuration once read."""

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
                self._config.logging,
                secrets=self._config.secrets(),
                console_level=console,
                max_field=self._config.limits.log_field,
            )
        return self._config


def _console_level(verbose: int) -> int:
    return {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)


def _exit_code(error: QasdkError) -> int:
    if isinstance(error, DatabaseError):
        return EXIT_DATABASE
    if isinstance(error, StartupError):
        return EXIT_STARTUP
    return EXIT_INVALID


def fail(error: QasdkError, *, json_output: bool = False, read_only: bool = False) -> NoReturn:
    """Report an expected error the way a person (or a script) wants to read it."""
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
        click.echo(output.error_json(error))
    else:
        for line in output.describe_error(error, read_only=read_only):
            click.echo(line, err=True)
    sys.exit(_exit_code(error))


def _fallback_logging() -> None:
    """Logging for an error that came before the configuration could be read."""
    try:
        logging_config = load_config(use_file=False).logging
    except QasdkError:
        logging_config = LoggingConfig()
    configure_logging(logging_config, console_level=logging.CRITICAL + 1)


def handle_errors(*, read_only: bool = False) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Turn qasdk's expected errors into one clear message and an exit status.

    ``read_only`` commands say so when they fail ("nothing was written").
    """

    def decorate(func: Callable[..., T]) -> Callable[..., T]:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> T:
            try:
                return func(*args, **kwargs)
            except QasdkError as exc:
                if not any(
                    getattr(h, "_qasdk_handler", False) for h in logging.getLogger().handlers
                ):
                    _fallback_logging()
                fail(exc, json_output=bool(kwargs.get("json_output")), read_only=read_only)

        return wrapper

    return decorate


def embedded_started(path: Path) -> None:
    """Say once that a server was started that will outlive this command, and how to stop it."""
    shown = display_path(path)
    click.echo(
        f"started the embedded PostgreSQL in {shown}; it keeps running for the next commands "
        "(stop it with: qasdk db stop)",
        err=True,
    )


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def stop_quietly_while_starting() -> None:
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


def _config_callback(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value:
        ctx.ensure_object(State).config_path = value


def _verbose_callback(ctx: click.Context, param: click.Parameter, value: int) -> None:
    if value:
        state = ctx.ensure_object(State)
        state.verbose = max(state.verbose, value)


#: Accepted before the subcommand (``qasdk -v sync``) and after it (``qasdk sync -v``).
config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    envvar="QASDK_CONFIG",
    expose_value=False,
    callback=_config_callback,
    help="model_config.yaml to use (default: ./model_config.yaml, $QASDK_CONFIG).",
)
verbose_option = click.option(
    "-v",
    "--verbose",
    count=True,
    expose_value=False,
    callback=_verbose_callback,
    help="Show progress (-v) or debug logs and tracebacks (-vv).",
)
module_root_option = click.option(
    "--module-root",
    type=click.Path(file_okay=False, exists=True),
    help="Folder `qasdk serve` imports tools from (default: the working directory).",
)
json_option = click.option("--json", "json_output", is_flag=True, help="Machine-readable output.")


def pass_state(func: Callable[..., T]) -> Callable[..., T]:
    """Give a subcommand the shared state, and the options every command accepts."""
    return config_option(verbose_option(click.pass_obj(func)))
