"""``qasdk serve``, ``qasdk worker``, ``qasdk mcp``, ``qasdk model check``: the server's commands.

They reach the ``qasdk`` command through the ``qasdk.commands`` entry point,
so the SDK never imports the server. This module imports only click and
qasdk: the server's own packages (the ``server`` extra) load when a command
runs, and their absence is one clear line.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
import threading
from typing import Any

import click
import msgspec

from qasdk.cli.app import (
    State,
    handle_errors,
    json_option,
    pass_state,
    run_service,
    stop_quietly_while_starting,
)
from qasdk.config import Config
from qasdk.errors import StartupError

__all__ = ["mcp", "model", "serve", "worker"]

#: What the server needs beyond the SDK: installed by ``pip install 'qasdk[server]'``.
SERVER_PACKAGES = ("litestar", "uvicorn", "procrastinate", "qwen_agent", "prometheus_client", "mcp")


def require_server_extra(packages: tuple[str, ...] = SERVER_PACKAGES) -> None:
    """Say exactly what to install when the server's packages (or ``packages``) are missing."""
    missing = [name for name in packages if importlib.util.find_spec(name) is None]
    if missing:
        raise StartupError(
            f"the task server needs the 'server' extra (missing: {', '.join(missing)}); "
            "install it with: pip install 'qasdk[server]'"
        )


def _service_config(
    config: Config,
    host: str | None,
    port: int | None,
    concurrency: int | None,
    pools: tuple[str, ...] = (),
    metrics_port: int | None = None,
    metrics_host: str | None = None,
    processes: int | None = None,
) -> Config:
    server, worker = config.server, config.worker
    if host is not None:
        server = msgspec.structs.replace(server, host=host)
    if port is not None:
        server = msgspec.structs.replace(server, port=port)
    if concurrency is not None:
        worker = msgspec.structs.replace(worker, concurrency=concurrency)
    if pools:
        worker = msgspec.structs.replace(worker, pools=tuple(dict.fromkeys(pools)))
    if metrics_port is not None:
        worker = msgspec.structs.replace(worker, metrics_port=metrics_port)
    if metrics_host is not None:
        worker = msgspec.structs.replace(worker, metrics_host=metrics_host)
    if processes is not None:
        worker = msgspec.structs.replace(worker, processes=processes)
    return msgspec.structs.replace(config, server=server, worker=worker)


def _check_pool(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> Any:
    from qasdk.registration.rules import check_pool

    for name in value:
        for reason in check_pool(name):
            raise click.BadParameter(reason)
    return value


pool_option = click.option(
    "--pool",
    "pools",
    multiple=True,
    metavar="NAME",
    callback=_check_pool,
    help="A worker pool to serve (repeatable; default: worker.pools, [default]). "
    "Only tasks of tools in these pools run here.",
)


concurrency_option = click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    help="Tasks this worker runs at once (default: worker.concurrency, 4).",
)


processes_option = click.option(
    "--processes",
    type=click.IntRange(min=1),
    help="Worker processes, each running --concurrency tasks: this one and N-1 it starts "
    "and stops (default: worker.processes, 1).",
)


@click.command(short_help="Serve the REST API (docs at /schema) and an embedded worker.")
@click.option("--host", help="Interface to listen on (default: server.host, 127.0.0.1).")
@click.option(
    "--port", type=click.IntRange(0, 65535), help="Port (default: server.port, 8000; 0 picks one)."
)
@concurrency_option
@processes_option
@pool_option
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
@handle_errors()
def serve(
    state: State,
    host: str | None,
    port: int | None,
    concurrency: int | None,
    processes: int | None,
    pools: tuple[str, ...],
    no_worker: bool,
    watch: tuple[str, ...],
    prune: bool,
) -> None:
    """Serve the REST API and an embedded worker; the console at /console, API docs at /schema."""
    if no_worker and processes is not None:
        raise click.UsageError("--processes needs a worker: leave out --no-worker")
    stop_quietly_while_starting()
    require_server_extra()
    from qasdk_server.serve import run_server  # the server extra, checked above

    def overrides(loaded: Config) -> Config:
        return _service_config(loaded, host, port, concurrency, pools, processes=processes)

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
    _leave()


@click.command(short_help="Run queued tasks, on any machine that reaches the database.")
@concurrency_option
@processes_option
@pool_option
@click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    help="Serve this worker's Prometheus /metrics on this port (default: worker.metrics_port, "
    "off; 0 picks one).",
)
@click.option(
    "--metrics-host", help="Interface of --metrics-port (default: worker.metrics_host, 127.0.0.1)."
)
@pass_state
@handle_errors()
def worker(
    state: State,
    concurrency: int | None,
    processes: int | None,
    pools: tuple[str, ...],
    metrics_port: int | None,
    metrics_host: str | None,
) -> None:
    """Run tasks from the queue, on any machine that reaches the database.

    With --pool it takes only the tasks of those pools (`@tool(pool="gpu")`);
    with --metrics-port it serves its own /metrics (a worker has no API); with
    --processes N it also starts N-1 more worker processes (no /metrics of their own).
    """
    stop_quietly_while_starting()
    require_server_extra()
    from qasdk_server.serve import run_worker

    config = _service_config(
        state.config(service=True),
        None,
        None,
        concurrency,
        pools,
        metrics_port,
        metrics_host,
        processes,
    )
    run_service(run_worker(config))
    _leave()


@click.command(short_help="Serve the registered tools to an MCP client over stdio.")
@concurrency_option
@click.option(
    "--no-worker",
    is_flag=True,
    help="Only submit: a `qasdk serve` or `qasdk worker` on the database runs the tasks.",
)
@pass_state
@handle_errors()
def mcp(state: State, concurrency: int | None, no_worker: bool) -> None:
    """Serve the registry as MCP tools on stdin/stdout, each call a task.

    For an MCP client's configuration (it starts this command). Runs an
    embedded worker unless --no-worker; nothing but MCP reaches stdout (logs
    go to stderr and the configured log file).
    """
    stop_quietly_while_starting()
    require_server_extra()
    from qasdk_server.mcp.stdio import run_stdio

    config = _service_config(state.config(service=True), None, None, concurrency)
    run_service(run_stdio(config, embedded_worker=not no_worker, version=_version()))
    _leave()


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("qasdk")
    except PackageNotFoundError:
        return "0"


@click.group(short_help="Check the configured model.")
def model() -> None:
    """Check the model of model_config.yaml (the `model` section)."""


@model.command(short_help="Can the configured model call tools, and in which format?")
@json_option
@pass_state
@handle_errors()
def check(state: State, json_output: bool) -> None:
    """Tell within seconds whether the configured model can drive tools.

    Reaches the endpoint, looks for the model in what it lists, times a trivial
    prompt, then asks a question that needs a built-in get_weather tool once per
    function-calling format (nous, native), through the same agent a task uses.
    Prints a table and the model settings to use.

    Exit status: 0 tool calling works in at least one format; 5 the model
    answers but calls the tool in neither; 6 the endpoint is unreachable or
    the model does not answer; 1 invalid configuration; 4 the server extra is
    missing.
    """
    require_server_extra(("qwen_agent", "openai", "httpx"))
    from qasdk_server.check import check_model
    from qasdk_server.check.report import render_text

    config = state.config()
    progress = None if json_output else (lambda line: click.echo(f"{line} ...", err=True))
    report = check_model(config.model, progress=progress)
    if json_output:
        click.echo(msgspec.json.encode(report).decode())
    else:
        for line in render_text(report):
            click.echo(line)
        click.echo(
            f"{'ok' if report.status == 0 else 'error'}: {report.message}",
            err=report.status != 0,
        )
    if report.status:
        sys.exit(report.status)


def _leave() -> None:
    """Exit now that everything is closed, without waiting for agent threads.

    A thread may still be inside a model call (or qwen-agent's first import)
    whose task was already handed back; finalizing the interpreter under it
    would only delay the exit, or crash in a C extension's import.
    """
    if any(t.daemon and t.is_alive() for t in threading.enumerate()):
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
