"""Extra worker processes of one ``qasdk serve`` or ``qasdk worker`` (``worker.processes``).

One event loop runs on one core; with ``worker.processes: N`` a process runs
its own worker and keeps ``N - 1`` children that run exactly what ``qasdk
worker`` runs (:func:`qasdk_server.serve.run_worker`), with the parent's
effective configuration, command-line overrides included.

The configuration reaches a child on its stdin (it holds secrets: never argv
or the environment), as one line of JSON. The child keeps reading stdin: end
of file means its parent stopped or died, and the child stops as on SIGTERM,
so it never outlives its parent by more than ``worker.shutdown_grace``.
Children share the parent's working directory, environment, stdout and stderr
(their start line and their log lines, in the configured format, come out as
the parent's do); they run in a session of their own, so a Ctrl-C in a
terminal reaches the parent only, and the parent stops them in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import AsyncIterator

import msgspec

from qasdk.config import Config

__all__ = ["Start", "WorkerProcesses", "child_config"]

logger = logging.getLogger("qasdk.worker")

#: How a child is started: ``python -m`` this module.
_MODULE = "qasdk_server.tasks.processes"
#: Seconds a child gets beyond ``worker.shutdown_grace`` to close, before it is killed.
_MARGIN = 10.0


class Start(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What a parent sends its child on stdin, once, as one JSON line."""

    config: Config
    #: The parent's console log level (``-v``), when it is not ``logging.level``.
    console_level: int | None = None


def child_config(config: Config) -> Config:
    """A child runs one worker (no grandchildren) and serves no metrics port (they would clash)."""
    worker = msgspec.structs.replace(config.worker, processes=1, metrics_port=None)
    return msgspec.structs.replace(config, worker=worker)


class WorkerProcesses:
    """``extra`` child worker processes, started again (with backoff) when one exits.

    Use :meth:`running`; :meth:`request_stop` lets the children begin their graceful
    stop while the parent stops its own worker.
    """

    def __init__(self, config: Config, extra: int, *, console_level: int | None = None) -> None:
        start = Start(config=child_config(config), console_level=console_level)
        self._payload = msgspec.json.encode(start) + b"\n"
        self.extra = extra
        self.grace = config.worker.shutdown_grace + _MARGIN
        self.restarts = 0
        self._children: dict[int, asyncio.subprocess.Process] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()

    @classmethod
    @contextlib.asynccontextmanager
    async def running(
        cls, config: Config, extra: int, *, console_level: int | None = None
    ) -> AsyncIterator[WorkerProcesses]:
        processes = cls(config, extra, console_level=console_level)
        processes.start()
        try:
            yield processes
        finally:
            await processes.stop()

    @property
    def pids(self) -> list[int]:
        """The children running now."""
        return [p.pid for p in self._children.values() if p.returncode is None]

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._supervise(slot), name=f"qasdk worker process {slot}")
            for slot in range(1, self.extra + 1)
        ]

    def request_stop(self) -> None:
        """Ask every child to stop (stdin closed, SIGTERM once); start no more."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        for proc in self._children.values():
            _ask_to_stop(proc)

    async def stop(self) -> None:
        """Stop the children: ``shutdown_grace`` plus a margin, then SIGKILL."""
        self.request_stop()
        if not self._tasks:
            return
        _, late = await asyncio.wait(self._tasks, timeout=self.grace)
        if late:
            for proc in self._children.values():
                if proc.returncode is None:
                    logger.warning(
                        "worker process %d did not stop within %.0f s: killed", proc.pid, self.grace
                    )
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
            await asyncio.wait(late)

    async def _supervise(self, slot: int) -> None:
        delay = 0.5
        while not self._stopping.is_set():
            started = time.monotonic()
            reason = await self._run_child(slot)
            if self._stopping.is_set():
                return
            if time.monotonic() - started > 30:
                delay = 0.5
            self.restarts += 1
            logger.warning("worker process %d: %s; starting again in %.1f s", slot, reason, delay)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)
            delay = min(delay * 2, 10.0)

    async def _run_child(self, slot: int) -> str:
        """Start the child of ``slot``, hand it the configuration, wait for its end; say why."""
        try:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                _MODULE,
                stdin=asyncio.subprocess.PIPE,
                start_new_session=True,  # a terminal's Ctrl-C reaches the parent only
            )
        except OSError as exc:
            return f"could not start: {exc}"
        self._children[slot] = proc
        logger.info("worker process %d started (pid %d)", slot, proc.pid)
        assert proc.stdin is not None
        try:
            proc.stdin.write(self._payload)
            await proc.stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            pass  # it died at once: its exit status says why
        if self._stopping.is_set():
            _ask_to_stop(proc)  # started while the parent was being stopped
        code = await proc.wait()
        if code < 0:
            with contextlib.suppress(ValueError):
                return f"pid {proc.pid} was killed by {signal.Signals(-code).name}"
            return f"pid {proc.pid} was killed by signal {-code}"
        return f"pid {proc.pid} exited with status {code}"


def _ask_to_stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is not None:
        return
    if proc.stdin is not None:
        proc.stdin.close()
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)  # also stops one still starting


def _watch_stdin(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
    """Block until stdin ends (the parent stopped or died), then ask the worker to stop."""
    with contextlib.suppress(OSError, ValueError):
        while os.read(sys.stdin.fileno(), 65536):  # nothing more comes before the end
            pass
    with contextlib.suppress(RuntimeError):  # the loop has closed already
        loop.call_soon_threadsafe(stop.set)


async def _run(config: Config) -> None:
    from qasdk_server.serve import run_worker

    stop = asyncio.Event()
    watcher = threading.Thread(
        target=_watch_stdin, args=(asyncio.get_running_loop(), stop), daemon=True
    )
    watcher.start()
    await run_worker(config, stop=stop)


def main() -> None:
    """A child: read the configuration from stdin, set up logging, run a worker until EOF."""
    from qasdk.cli.app import handle_errors, run_service, stop_quietly_while_starting
    from qasdk.logs import configure_logging

    stop_quietly_while_starting()
    line = sys.stdin.buffer.readline()
    if not line.strip():
        return  # the parent stopped before it sent anything: nothing to do
    start = msgspec.json.decode(line, type=Start)
    config = start.config
    configure_logging(
        config.logging,
        secrets=config.secrets(),
        console_level=start.console_level,
        max_field=config.limits.log_field,
    )
    handle_errors()(run_service)(_run(config))
    # Exit without waiting for agent threads still inside a model call (as `qasdk worker`).
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
