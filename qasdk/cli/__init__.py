"""The ``qasdk`` command: one module per group of commands, one for what they print.

``app`` holds what commands share (state, options, errors and exit statuses),
``tools`` the registration commands, ``services`` the task server, ``db`` the
database, ``output`` every line they print (text and ``--json``).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

import click

from qasdk.cli.app import EXIT_INTERNAL, State, config_option, verbose_option
from qasdk.cli.db import db
from qasdk.cli.services import serve, worker
from qasdk.cli.tools import check, methods, sync

__all__ = ["cli", "main"]

logger = logging.getLogger("qasdk.cli")


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@config_option
@verbose_option
@click.version_option(package_name="qasdk")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Register @tool functions in PostgreSQL and run tasks through qwen-agent."""
    ctx.ensure_object(State)


for command in (sync, check, methods, serve, worker, db):
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
