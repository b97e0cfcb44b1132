"""The tool process: runs tools for :mod:`qasdk_server.executor.pool`, one call at a time.

The executor starts this file as a script (``python .../child.py``), not with
``-m``: no package of qasdk's is imported on the way, so startup stays fast and
the tool's imports see a clean interpreter whose first ``sys.path`` entry is
the tool folder. It imports nothing from qasdk but msgspec.

Protocol: frames of a 4-byte big-endian length followed by a JSON document
(msgspec tagged structs). The child sends :class:`Ready` once, then answers
every :class:`Call` with one :class:`Reply`, sending any number of
:class:`Progress` frames before it while the tool reports progress. EOF on its
input means "exit"; SIGUSR1 during a call means "the task was cancelled" (a
tool that takes a ``ToolContext`` sees it as ``ctx.cancelled``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, BinaryIO

import msgspec

if TYPE_CHECKING:
    import asyncio
    from types import ModuleType

__all__ = ["Call", "CallContext", "Limits", "Listening", "Progress", "Ready", "Reply", "main"]

HEADER_SIZE = 4


class Ready(msgspec.Struct, tag=True, array_like=True):
    """The child is set up and waiting for calls."""

    pid: int


class Limits(msgspec.Struct, frozen=True, array_like=True):
    """What a call may use (``None``: unlimited); see ``confine.py``."""

    memory_mb: int | None = None
    cpu_seconds: float | None = None
    processes: int | None = None


class CallContext(msgspec.Struct, frozen=True, array_like=True):
    """The task a call belongs to: what a ``qasdk.ToolContext`` parameter receives."""

    task_id: str | None = None
    attempt: int = 1
    #: Unix time by which the call must be done.
    deadline: float | None = None


class Progress(msgspec.Struct, tag=True, array_like=True):
    """``ToolContext.report_progress`` during a call; any number precede its Reply."""

    fraction: float | None = None
    message: str | None = None


class Listening(msgspec.Struct, tag=True, array_like=True):
    """Sent as a call starts when its tool takes a ``ToolContext``: it may stop on its own
    when warned of a cancellation (SIGUSR1), so the worker gives it a moment first."""


class Call(msgspec.Struct, tag=True, array_like=True):
    """Run ``module:function(**params)`` on behalf of the registered tool ``method``.

    ``params`` are the arguments given; ``defaults`` the registered defaults of
    the others, used only where the function has no default of its own.
    """

    method: str
    module: str
    function: str
    params: dict[str, Any]
    defaults: dict[str, Any] = {}
    limits: Limits | None = None
    context: CallContext | None = None
    #: The W3C trace context of the tool-call span, when the worker traces.
    traceparent: str | None = None
    tracestate: str | None = None


class Reply(msgspec.Struct, tag=True, array_like=True):
    """The outcome of one call; ``result`` is the tool's return value as JSON.

    Raw on both sides: the worker checks its size before it parses it.
    """

    ok: bool
    result: msgspec.Raw = msgspec.Raw(b"null")
    error_type: str = ""
    error: str = ""
    traceback: str = ""
    #: Bytes of a result over the worker's limit, which ``result`` then only previews.
    cut: int = 0


#: Bytes of a cut result's JSON kept as its preview (as ``qasdk.store.values.PREVIEW``).
_PREVIEW = 500


def _cut_result(encoded: bytes, limit: int) -> Reply:
    """A result over ``limit`` never crosses the pipe: a marker with a preview does."""
    marker = {
        "truncated": True,
        "bytes": len(encoded),
        "limit": limit,
        "preview": encoded[:_PREVIEW].decode(errors="replace"),
    }
    return Reply(ok=True, result=msgspec.Raw(msgspec.json.encode(marker)), cut=len(encoded))


def _safe_str(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:
        return f"<unprintable {type(exc).__name__}>"


def _failure(exc: BaseException, message: str | None = None) -> Reply:
    """Describe ``exc`` without the frame of this module that caught it."""
    import traceback

    if message is None:
        if isinstance(exc, SystemExit):
            code = "" if exc.code is None else repr(exc.code)
            message = f"tool called sys.exit({code})"
        elif isinstance(exc, KeyboardInterrupt):
            message = _safe_str(exc) or "tool raised KeyboardInterrupt"
        else:
            message = _safe_str(exc)
    tb = exc.__traceback__
    if tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    try:
        text = "".join(traceback.format_exception(type(exc), exc, tb))
    except Exception:
        text = f"{type(exc).__name__}: {message}\n"
    return Reply(ok=False, error_type=type(exc).__name__, error=message, traceback=text)


def _load_sibling(name: str, folder: str = "") -> ModuleType:
    """``<name>.py`` next to this file (or in the sibling package ``folder``), as
    ``_qasdk_<name>``: no qasdk import on the way, and a name no user module can shadow."""
    import importlib.util

    here = os.path.dirname(os.path.abspath(__file__))
    path = os.path.join(os.path.join(here, os.pardir, folder) if folder else here, f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"_qasdk_{name}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _log_to_stderr() -> None:
    """``ctx.logger`` lines go to stderr, which the worker logs under the tool's name."""
    import logging

    base = logging.getLogger("qasdk.tool")
    if base.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("[task %(task_id)s] %(levelname)s %(message)s"))
    base.addHandler(handler)
    base.setLevel(logging.INFO)
    base.propagate = False


class _Runner:
    """Resolves and calls tool functions, caching lookups, converters and the event loop."""

    def __init__(self, send: Callable[[Progress | Listening], None] | None = None) -> None:
        self._convert = _load_sibling("convert")
        self._functions: dict[tuple[str, str], tuple[Callable[..., Any], Any]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._send = send
        #: Set by SIGUSR1 during a call: the worker says its task was cancelled.
        self.cancelled = False
        #: Loaded with the first traced call: untraced, nothing of opentelemetry is imported.
        self._traced: Any = None
        #: Bytes of result JSON the worker takes (``QASDK_RESULT_LIMIT``; 0: no limit).
        self.result_limit = int(os.environ.pop("QASDK_RESULT_LIMIT", "0") or 0)

    def _resolve(self, call: Call) -> tuple[Callable[..., Any], Any] | Reply:
        """The function to call and its converter, or a failure naming the module or function."""
        found_before = self._functions.get((call.module, call.function))
        if found_before is not None:
            return found_before
        import importlib

        try:
            module = importlib.import_module(call.module)
        except BaseException as exc:
            reason = _safe_str(exc) or type(exc).__name__
            return _failure(
                exc, f"cannot import module {call.module!r} for tool {call.method!r}: {reason}"
            )
        found: object = getattr(module, call.function, None)
        if found is None:
            missing = f"module {call.module!r} has no function {call.function!r}"
            return _failure(AttributeError(missing))
        if not callable(found):
            return _failure(TypeError(f"{call.module}.{call.function} is not callable"))
        entry = (found, self._convert.Converter(found))
        self._functions[(call.module, call.function)] = entry
        return entry

    def _context(self, call: Call, live: list[bool]) -> Any:
        """The ``ToolContext`` of this call (qasdk is importable: the tool imported it)."""
        import contextlib

        from qasdk.context import ToolContext

        _log_to_stderr()
        send = self._send
        context = call.context or CallContext()

        def emit(fraction: float | None, message: str | None) -> None:
            if live[0] and send is not None:
                with contextlib.suppress(OSError, ValueError):  # the worker went away
                    send(Progress(fraction, message))

        return ToolContext(
            tool=call.method,
            task_id=context.task_id,
            attempt=context.attempt,
            deadline=context.deadline,
            emit=emit,
            cancelled=lambda: self.cancelled,
        )

    def _await(self, awaitable: Awaitable[Any]) -> Any:
        """Run a coroutine on a loop kept across calls, so loop-bound clients stay usable."""
        import asyncio

        if self._loop is None or self._loop.is_closed():
            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)
        return self._loop.run_until_complete(asyncio.ensure_future(awaitable, loop=self._loop))

    def run(self, call: Call) -> Reply:
        resolved = self._resolve(call)
        if isinstance(resolved, Reply):
            return resolved
        function, converter = resolved
        try:
            arguments = converter.arguments(call.params, call.defaults)
        except self._convert.ArgumentError as exc:
            return Reply(ok=False, error_type="ValidationError", error=_safe_str(exc))
        live = [True]
        self.cancelled = False
        if converter.context_param is not None:
            arguments[converter.context_param] = self._context(call, live)
            if self._send is not None:
                self._send(Listening())
        token = None
        if call.traceparent:
            if self._traced is None:
                self._traced = _load_sibling("tool_process", "telemetry").TracedCalls()
            token = self._traced.enter(call.traceparent, call.tracestate)
        try:
            value = function(**arguments)
            if isinstance(value, Awaitable):
                value = self._await(value)
        except BaseException as exc:
            return _failure(exc)
        finally:
            live[0] = False  # a context kept past its call reports nothing
            if call.traceparent:
                self._traced.leave(token)
        try:
            encoded = self._convert.encode_result(value)
        except Exception as exc:
            return Reply(
                ok=False,
                error_type="TypeError",
                error=f"result of type {type(value).__qualname__} is not JSON-serializable: {exc}",
            )
        if self.result_limit and len(encoded) > self.result_limit:
            return _cut_result(encoded, self.result_limit)
        return Reply(ok=True, result=msgspec.Raw(encoded))


def _read_frame(stream: BinaryIO) -> bytes | None:
    header = stream.read(HEADER_SIZE)
    if len(header) < HEADER_SIZE:
        return None
    size = int.from_bytes(header, "big")
    body = stream.read(size)
    return body if len(body) == size else None


def _write_frame(stream: BinaryIO, payload: bytes) -> None:
    stream.write(len(payload).to_bytes(HEADER_SIZE, "big"))
    stream.write(payload)
    stream.flush()


def _flush_std_streams() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except Exception:
            pass


def _isolate_protocol() -> tuple[BinaryIO, BinaryIO]:
    """Keep private copies of fds 0/1 for the protocol; give tools /dev/null and stderr.

    ``os.dup`` returns non-inheritable fds, so subprocesses a tool starts
    cannot hold the protocol pipes open either.
    """
    proto_in, proto_out = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)
    reconfigure = getattr(sys.stdout, "reconfigure", None)
    if reconfigure is not None:
        reconfigure(line_buffering=True)
    return os.fdopen(proto_in, "rb"), os.fdopen(proto_out, "wb")


def _fix_sys_path() -> None:
    """Import tools from the working directory first, as ``python -m`` would.

    Before it, when the worker gives one (``QASDK_CODE_ROOT``), the snapshot of
    the validated tool code this process runs (see ``executor/code.py``).
    """
    here = os.path.dirname(os.path.abspath(__file__))
    if sys.path and os.path.abspath(sys.path[0] or os.curdir) == here:
        del sys.path[0]
    cwd = os.getcwd()
    if not sys.path or sys.path[0] != cwd:
        sys.path.insert(0, cwd)
    code = os.environ.pop("QASDK_CODE_ROOT", None)
    if code:
        sys.path.insert(0, code)


def _die_with_parent() -> None:
    """Linux: be killed when the worker that started us dies, even by SIGKILL.

    Otherwise a tool could run on, orphaned, while its task is recovered and run
    again elsewhere: the same work twice at once.
    """
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the parent died before prctl took effect
        os._exit(1)


def _become_subreaper() -> None:
    """Linux: adopt the orphans of our subprocesses, instead of init.

    A process a tool starts that double-forks or calls setsid() leaves our process
    group, but stays our descendant: the worker finds it below us and kills it
    after the call (``tree.py``).
    """
    if not sys.platform.startswith("linux"):
        return
    import contextlib
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(36, 1)  # PR_SET_CHILD_SUBREAPER


class _Reaper:
    """Reaps adopted children between calls, when the worker has killed them.

    Only between calls: during one, the tool's own ``subprocess`` objects must
    collect their children's exit status themselves.
    """

    def __init__(self) -> None:
        import signal

        self._signal = signal
        self._previous: Any = None
        self._on = False

    def _reap(self, *_: object) -> None:
        while True:
            try:
                pid, _status = os.waitpid(-1, os.WNOHANG)
            except (ChildProcessError, InterruptedError):
                return
            if pid == 0:
                return

    def idle(self) -> None:
        if not self._on and hasattr(self._signal, "SIGCHLD"):
            self._previous = self._signal.signal(self._signal.SIGCHLD, self._reap)
            self._on = True
        self._reap()

    def busy(self) -> None:
        if self._on:
            self._reap()
            self._signal.signal(self._signal.SIGCHLD, self._previous)
            self._on = False


def main() -> None:
    """Serve calls until the parent closes our input."""
    import faulthandler

    _die_with_parent()
    _become_subreaper()
    confinement: Any = _load_sibling("confine").Confinement()
    reaper = _Reaper()
    reader, writer = _isolate_protocol()
    _fix_sys_path()
    faulthandler.enable()  # a segfaulting tool leaves a Python traceback in the log
    encoder = msgspec.json.Encoder()
    decoder = msgspec.json.Decoder(Call)
    import signal
    import threading

    lock = threading.Lock()  # a tool's threads may report progress too

    def send(message: Progress | Listening | Reply | Ready) -> None:
        payload = encoder.encode(message)
        with lock:
            _write_frame(writer, payload)

    runner = _Runner(send)

    def on_cancel(*_: object) -> None:
        runner.cancelled = True

    if hasattr(signal, "SIGUSR1"):
        signal.signal(signal.SIGUSR1, on_cancel)
    try:
        send(Ready(pid=os.getpid()))
        reaper.idle()
        while (frame := _read_frame(reader)) is not None:
            call = decoder.decode(frame)
            reaper.busy()
            confinement.apply(call.limits)
            reply = runner.run(call)
            reaper.idle()
            _flush_std_streams()
            send(reply)
    except BrokenPipeError:
        pass  # the parent went away; nobody is left to answer


if __name__ == "__main__":
    main()
