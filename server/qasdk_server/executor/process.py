"""One tool process as seen from the executor: its pipes and lifecycle.

Split from :mod:`qasdk_server.executor.pool` so the pool logic there reads on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import msgspec

from qasdk_server.executor import child as _child
from qasdk_server.executor import tree
from qasdk_server.executor.child import HEADER_SIZE, Listening, Progress, Ready, Reply
from qasdk_server.executor.output import OutputBudget, OutputLimits

__all__ = ["TIMED_OUT", "Exited", "Outcome", "TimedOut", "ToolProcess", "settle"]

logger = logging.getLogger("qasdk.executor")
tool_logger = logging.getLogger("qasdk.tools")

_TERMINATE_GRACE = 2.0  # seconds between SIGTERM and SIGKILL on close
_EXIT_GRACE = 1.0  # seconds a child may take to exit after closing its reply pipe
_MAX_LINE = 65536


class Exited:
    """The child died before answering."""

    def __init__(self, code: int) -> None:
        self.code = code


class TimedOut:
    """The call's deadline passed before the child answered."""


TIMED_OUT = TimedOut()
Outcome = Reply | Exited | TimedOut


def settle(future: asyncio.Future[Any], value: object) -> None:
    """Resolve ``future`` unless a reply, a timeout or an exit got there first."""
    if not future.done():
        future.set_result(value)


class _Protocol(asyncio.subprocess.SubprocessStreamProtocol):
    """Reports the exit itself: ``Process.wait()`` also waits for every pipe to close,
    which a subprocess the tool started may hold open indefinitely."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(limit=_MAX_LINE, loop=loop)
        self.exited: asyncio.Future[None] = loop.create_future()

    def process_exited(self) -> None:
        super().process_exited()
        settle(self.exited, None)


class ToolProcess:
    """One child process, its pipes, and the tasks that read them."""

    def __init__(
        self,
        proc: asyncio.subprocess.Process,
        protocol: _Protocol,
        generation: int,
        on_exit: Callable[[ToolProcess], None],
        output: OutputLimits | None = None,
    ) -> None:
        loop = asyncio.get_running_loop()
        self.output = OutputBudget(output or OutputLimits())
        self.proc = proc
        self._exited = protocol.exited
        self.pid = proc.pid
        self.generation = generation
        self.method: str | None = None  # last method dispatched, for stderr lines
        self.code_version: str | None = None  # the code snapshot it imports tools from
        self.busy = False  # a call was sent and its reply has not arrived
        self.dead = False  # its reply pipe closed: never hand it out again
        self.retiring = False  # stopped on purpose: do not replace it
        self.stderr_tail: deque[str] = deque(maxlen=20)
        self.ready: asyncio.Future[bool] = loop.create_future()
        self._on_exit = on_exit
        self._pending: asyncio.Future[Outcome] | None = None
        self._stop_task: asyncio.Task[None] | None = None
        self._decoder = msgspec.json.Decoder(Ready | Reply | Progress | Listening)
        #: The running call's tool takes a ToolContext (it may stop when warned).
        self.listening = False
        #: Called with each Progress frame of the running call (set per call).
        self.on_progress: Callable[[Progress], None] | None = None
        self._reader = loop.create_task(self._read_replies())
        self._stderr = loop.create_task(self._read_stderr())

    @classmethod
    async def start(
        cls,
        *,
        cwd: str,
        env: Mapping[str, str] | None,
        generation: int,
        on_exit: Callable[[ToolProcess], None],
        output: OutputLimits | None = None,
    ) -> ToolProcess:
        """Start a child; await :attr:`ready` before sending it calls.

        It is a session leader: terminal signals do not reach tools, and
        killing its process group also kills the subprocesses a tool started.
        """
        loop = asyncio.get_running_loop()
        transport, protocol = await loop.subprocess_exec(
            lambda: _Protocol(loop),
            sys.executable,
            str(Path(_child.__file__).resolve()),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=cwd,
            env=env,
            start_new_session=True,
        )
        proc = asyncio.subprocess.Process(transport, protocol, loop)
        return cls(proc, protocol, generation, on_exit, output)

    async def _read_replies(self) -> None:
        stdout = self.proc.stdout
        assert stdout is not None
        try:
            while True:
                header = await stdout.readexactly(HEADER_SIZE)
                message = self._decoder.decode(
                    await stdout.readexactly(int.from_bytes(header, "big"))
                )
                if isinstance(message, Ready):
                    settle(self.ready, True)
                    continue
                if isinstance(message, Listening):
                    self.listening = self.busy
                    continue
                if isinstance(message, Progress):
                    if self.busy and self.on_progress is not None:
                        try:
                            self.on_progress(message)
                        except Exception:  # a listener's bug must not end the protocol
                            logger.exception("progress listener failed")
                    continue
                self.busy = False
                if self._pending is not None:
                    settle(self._pending, message)
        except asyncio.IncompleteReadError:
            pass
        except msgspec.DecodeError:
            logger.error("tool process %d broke the protocol; killing it", self.pid)
            self.kill()
        finally:
            self.dead = True
            # It is exiting (EOF) or dead (crash); kill it if it lingers.
            await asyncio.wait({self._exited}, timeout=_EXIT_GRACE)
            if not self._exited.done():
                self.kill()
                await self._exited
            code = self.proc.returncode
            assert code is not None
            self._kill_group_left()
            if self.proc.stdin is not None:
                self.proc.stdin.close()
            if self._pending is not None:
                settle(self._pending, Exited(code))
            settle(self.ready, False)
            self._on_exit(self)

    async def _read_stderr(self) -> None:
        stderr = self.proc.stderr
        assert stderr is not None
        partial = b""
        while chunk := await stderr.read(_MAX_LINE):
            *lines, partial = (partial + chunk).split(b"\n")
            if len(partial) >= _MAX_LINE:
                lines.append(partial)
                partial = b""
            for line in lines:
                self._log_line(line)
        self._log_line(partial)
        self.note_dropped_output()

    def _log_line(self, raw: bytes) -> None:
        line = raw.decode(errors="replace").rstrip()
        if not line:
            return
        self.stderr_tail.append(line[: self.output.limits.line])
        admitted = self.output.admit(line)
        if admitted is not None:
            self._log(admitted)

    def note_dropped_output(self) -> None:
        """Log how much output the caps dropped, if any (after each call, and at exit)."""
        note = self.output.summary()
        if note is not None:
            self._log(note, logging.WARNING)

    def _log(self, line: str, level: int = logging.INFO) -> None:
        extra = {"method": self.method, "pid": self.pid}
        if self.method is None:
            tool_logger.log(level, "tool process %d: %s", self.pid, line, extra=extra)
        else:
            tool_logger.log(level, "%s: %s", self.method, line, extra=extra)

    async def call(
        self,
        frame: bytes,
        method: str,
        limit: float,
        on_progress: Callable[[Progress], None] | None = None,
    ) -> Outcome:
        """Send one call and wait for its reply, the child's death, or ``limit`` seconds."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Outcome] = loop.create_future()
        self._pending = future
        self.on_progress = on_progress
        self.listening = False
        self.note_dropped_output()  # what the previous call (or startup) printed over the caps
        self.method = method
        self.output.new_call()
        self.busy = True
        assert self.proc.stdin is not None
        self.proc.stdin.write(len(frame).to_bytes(HEADER_SIZE, "big") + frame)
        timer = loop.call_later(limit, settle, future, TIMED_OUT)
        try:
            return await future
        finally:
            timer.cancel()
            self._pending = None
            self.on_progress = None
            # Its last lines may still be in the pipe: note the drops once they are read.
            loop.call_later(0.5, self.note_dropped_output)

    def kill(self, sig: signal.Signals = signal.SIGKILL) -> None:
        """Signal the child's whole process group (it is a session leader).

        SIGKILL also kills every descendant that left the group (``tree.py``).
        """
        if self.proc.returncode is not None:
            return
        if sig == signal.SIGKILL:
            tree.kill_tree(self.pid)
            return
        try:
            os.killpg(self.pid, sig)
        except ProcessLookupError:
            pass
        except PermissionError:
            self.proc.send_signal(sig)

    def warn_cancelled(self) -> None:
        """Tell the child (only it, not its subprocesses) that its task was cancelled."""
        if self.proc.returncode is None and not self.dead:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGUSR1)

    def sweep(self) -> None:
        """Kill what the last call started and left running; the child itself stays."""
        if self.proc.returncode is None and not self.dead:
            tree.kill_descendants(self.pid)

    def _kill_group_left(self) -> None:
        """After the child exited: kill what is left of its process group."""
        # No member left: the group, and so its id, is gone (ESRCH).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)

    def stop(self) -> asyncio.Task[None]:
        """Stop the child (idempotent): EOF, SIGTERM if it is busy, SIGKILL after 2 s."""
        self.retiring = True
        if self._stop_task is None:
            self._stop_task = asyncio.get_running_loop().create_task(self._stop())
        return self._stop_task

    async def _stop(self) -> None:
        self.sweep()  # what a running call started dies now; the tool itself gets SIGTERM
        if self.proc.stdin is not None:
            self.proc.stdin.close()  # an idle child exits on EOF
        if self.busy:
            self.kill(signal.SIGTERM)
        _, pending = await asyncio.wait({self._reader}, timeout=_TERMINATE_GRACE)
        if pending:
            self.kill()
            await self._reader
        _, pending = await asyncio.wait({self._stderr}, timeout=1.0)
        if pending:  # a grandchild outside the group still holds stderr
            self._stderr.cancel()
            await asyncio.wait({self._stderr})
            transport = getattr(self.proc, "_transport", None)
            if transport is not None:
                transport.close()
