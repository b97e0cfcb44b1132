"""The ``qasdk`` command: one module per group of commands, one for what they print.

``app`` holds what commands share (state, options, errors and exit statuses),
``tools`` the registration commands, ``db`` the database, ``keys`` the API
keys, ``audit`` the audit log, ``output`` every line they print (text and
``--json``). Installed packages add commands through
the ``qasdk.commands`` entry point: the task server adds ``serve`` and
``worker`` (``qasdk_server.cli``).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

import click

from qasdk.cli.app import EXIT_INTERNAL, State, config_option, verbose_option
from qasdk.cli.audit import audit
from qasdk.cli.db import db
from qasdk.cli.keys import keys
from qasdk.cli.tools import check, methods, sync
from qasdk.cli.workers import workers

__all__ = ["cli", "main"]

logger = logging.getLogger("qasdk.cli")


class _Commands(click.Group):
    """qasdk's own commands, and those installed packages contribute on first use.

    A package adds one with a ``qasdk.commands`` entry point (the task server
    adds ``serve`` and ``worker``); a broken one is logged, never fatal.
    """

    _installed = False

    def _install(self) -> None:
        if self._installed:
            return
        self._installed = True
        from importlib.metadata import entry_points

        for point in entry_points(group="qasdk.commands"):
            if point.name in self.commands:
                continue
            try:
                command = point.load()
            except Exception:
                logger.warning("could not load the %r command from %s", point.name, point.value)
                continue
            if isinstance(command, click.Command):
                self.add_command(command, point.name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._install()
        return super().list_commands(ctx)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        self._install()
        return super().get_command(ctx, cmd_name)


@click.group(
    cls=_Commands,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@config_option
@verbose_option
@click.version_option(package_name="qasdk")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Register @tool functions in PostgreSQL and run tasks through qwen-agent."""
    ctx.ensure_object(State)


for command in (sync, check, methods, db, keys, audit, workers):
    cli.add_command(command)


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point."""
    args = list(argv) if argv is not None else sys.argv[1:]
    try:
        cli.main(args=args, prog_name="qasdk")
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as exc:  # a bug: one line; the traceback with -vv and in the log
        logger.debug("unexpected error", exc_info=True)
        if _verbosity(args) >= 2:
            raise
        click.echo(
            f"error: internal error: {type(exc).__name__}: {exc} (-vv shows the traceback)",
            err=True,
        )
        sys.exit(EXIT_INTERNAL)


def _verbosity(args: Sequence[str]) -> int:
    """How many ``-v`` were given, wherever they stand (the state may not exist yet)."""
    count = 0
    for arg in args:
        if arg == "--":
            break
        if arg == "--verbose":
            count += 1
        elif len(arg) > 1 and arg[0] == "-" and arg[1] != "-" and set(arg[1:]) == {"v"}:
            count += len(arg) - 1
    return count
