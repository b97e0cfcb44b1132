"""The tool executor against real worker processes: no mocks.

Tool modules are written into ``tmp_path`` and the executor's ``cwd`` points
there, exactly as ``qasdk serve`` runs tools from the project directory.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
import os
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qasdk.config import ToolLimits, ToolLimitsOverride
from qasdk.errors import MethodExecutionError, MethodNotFoundError, ValidationError
from qasdk.models import UNSET, MethodConfig, MethodParameter
from qasdk_server.executor.pool import Executor

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

T = TypeVar("T")

TOOLS = """
import asyncio, builtins, ctypes, dataclasses, datetime, os, subprocess, sys, time, uuid


class CustomError(Exception):
    pass


def echo(a, s):
    return {"a": a, "s": s}


async def aecho(a, s):
    await asyncio.sleep(0)
    return {"a": a, "s": s}


def noop():
    return None


def ident(n):
    return n


def boom(kind, message):
    cls = CustomError if kind == "CustomError" else getattr(builtins, kind)
    raise cls(message)


def greet(name, greeting="Hello", punct=None):
    return {"text": f"{greeting}, {name}", "punct_given": punct is not None}


def hang(pidfile=None):
    if pidfile:
        with open(pidfile + ".tmp", "w") as f:
            f.write(str(os.getpid()))
        os.replace(pidfile + ".tmp", pidfile)
    time.sleep(1000)


def spawn_and_hang(pidfile):
    child = subprocess.Popen(["sleep", "1000"])
    with open(pidfile + ".tmp", "w") as f:
        f.write(str(child.pid))
    os.replace(pidfile + ".tmp", pidfile)
    time.sleep(1000)


def spin():
    while True:
        pass


async def ahang():
    await asyncio.sleep(1000)


def exit_hard(code):
    os._exit(code)


def exit_soft(code):
    sys.exit(code)


def segfault():
    ctypes.string_at(0)


def chatty():
    print("hello from the tool")
    os.write(1, b"raw fd 1 output\\n")
    print("to stderr", file=sys.stderr)
    return "done"


class Opaque:
    pass


def opaque():
    return Opaque()


@dataclasses.dataclass
class Point:
    x: int
    y: int


def rich():
    return {
        "when": datetime.datetime(2024, 1, 2, 3, 4, 5),
        "id": uuid.UUID(int=1),
        "point": Point(1, 2),
    }


def whoami():
    return {"pid": os.getpid(), "cwd": os.getcwd(), "env": os.environ.get("EXECUTOR_TEST_VAR")}


def napping_pid(seconds):
    time.sleep(seconds)
    return os.getpid()


def _write_pid(pidfile):
    with open(pidfile + ".tmp", "w") as f:
        f.write(str(os.getpid()))
    os.replace(pidfile + ".tmp", pidfile)


def daemon(pidfile, hang=False):
    # A daemon's double fork: the grandchild is in a session of its own, then orphaned.
    pid = os.fork()
    if pid == 0:
        try:
            os.setsid()
            if os.fork() == 0:
                _write_pid(pidfile)
                os.execvp("sleep", ["sleep", "600"])
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    while not os.path.exists(pidfile):
        time.sleep(0.01)
    if hang:
        time.sleep(1000)
    return os.getpid()


def daemon_hang(pidfile):
    daemon(pidfile, hang=True)


def background(pidfile):
    subprocess.run(f"sleep 600 & echo $! > {pidfile}.tmp; mv {pidfile}.tmp {pidfile}", shell=True)
    return os.getpid()


def allocate(mib):
    return len(bytearray(mib * 1024 * 1024))


def fork_many(count):
    children = []
    try:
        for _ in range(count):
            children.append(subprocess.Popen(["sleep", "600"]))
    finally:
        for child in children:
            child.kill()
            child.wait()
    return len(children)
"""

VERSIONED = """
import os, time


def version(delay=0.0):
    time.sleep(delay)
    return {{"v": {value!r}, "pid": os.getpid()}}
"""

ENV = {"EXECUTOR_TEST_VAR": "yes", "PYTHONDONTWRITEBYTECODE": "1"}


def _param(name: str, type_: str, *, default: Any = UNSET, required: bool | None = None) -> Any:
    if required is None:
        required = default is UNSET
    return MethodParameter(
        name=name, type=type_, description=f"The {name}.", required=required, default=default
    )


def _method(
    name: str,
    *params: MethodParameter,
    module: str = "exectools.basic",
    function: str | None = None,
    timeout: float | None = None,
) -> MethodConfig:
    return MethodConfig(
        name=name,
        description=f"Test tool {name}.",
        parameters=params,
        return_type="any",
        module_path=module,
        function_name=function or name,
        timeout=timeout,
    )


_AS = (_param("a", "int"), _param("s", "string"))
METHODS = {
    m.name: m
    for m in [
        _method("echo", *_AS),
        _method("aecho", *_AS),
        _method("noop"),
        _method("ident", _param("n", "int")),
        _method("boom", _param("kind", "string"), _param("message", "string")),
        _method(
            "greet",
            _param("name", "string"),
            _param("greeting", "string", default="Hello"),
            _param("punct", "string", required=False),
        ),
        _method("hang", _param("pidfile", "string", required=False), timeout=1.0),
        _method("spin", timeout=5.0),
        _method("spawn_and_hang", _param("pidfile", "string"), timeout=0.5),
        _method("ahang", timeout=0.5),
        _method("exit_hard", _param("code", "int")),
        _method("exit_soft", _param("code", "int")),
        _method("segfault"),
        _method("chatty"),
        _method("opaque"),
        _method("rich"),
        _method("whoami"),
        _method("napping_pid", _param("seconds", "float")),
        _method("daemon", _param("pidfile", "string")),
        _method("daemon_hang", _param("pidfile", "string"), timeout=3.0),
        _method("background", _param("pidfile", "string")),
        _method("allocate", _param("mib", "int")),
        _method("burn", function="spin", timeout=300.0),
        _method("fork_many", _param("count", "int")),
        _method("missing_module", module="exectools.nope", function="f"),
        _method("syntax_error", module="exectools.broken", function="f"),
        _method("missing_function", function="nope"),
        _method("version", _param("delay", "float", default=0.0), module="exectools.versioned"),
    ]
}

_TEXT = st.text(st.characters(codec="utf-8"), max_size=40)  # no lone surrogates


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def tools_dir(tmp_path: Path) -> Path:
    package = tmp_path / "exectools"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "basic.py").write_text(TOOLS)
    (package / "broken.py").write_text("def f(:\n    pass\n")
    (package / "versioned.py").write_text(VERSIONED.format(value="one"))
    return tmp_path


@pytest.fixture
async def executor(tools_dir: Path) -> AsyncIterator[Executor]:
    async with Executor(METHODS, processes=2, cwd=tools_dir, env=ENV) as running:
        yield running


@contextlib.contextmanager
def _running(
    tools_dir: Path,
) -> Iterator[tuple[Callable[[Awaitable[T]], T], Executor]]:
    """An executor on a private event loop, shared by every Hypothesis example."""
    loop = asyncio.new_event_loop()
    executor = Executor(METHODS, cwd=tools_dir, env=ENV)

    def run(awaitable: Awaitable[T]) -> T:
        return loop.run_until_complete(awaitable)

    try:
        run(executor.start())
        yield run, executor
    finally:
        run(executor.close())
        run(loop.shutdown_asyncgens())
        loop.close()


def _gone(pid: int) -> bool:
    """Whether ``pid`` is dead (a zombie waiting for a reaper counts as dead)."""
    try:
        os.kill(pid, 0)
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] == "Z"
    except (ProcessLookupError, FileNotFoundError):
        return True


def _children(pid: int) -> list[int]:
    """The children of ``pid``, zombies included."""
    found = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(FileNotFoundError):
            found += [int(c) for c in Path(f"/proc/{pid}/task/{tid}/children").read_text().split()]
    return found


async def _until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


# Property 21: Method execution with valid parameters
def test_valid_parameters_run_sync_and_async_tools(tools_dir: Path) -> None:
    with _running(tools_dir) as (run, executor):

        @settings(max_examples=100, deadline=None, derandomize=True)
        @given(
            name=st.sampled_from(["echo", "aecho"]),
            a=st.integers(),
            as_text=st.booleans(),
            s=_TEXT,
        )
        def check(name: str, a: int, as_text: bool, s: str) -> None:
            sent = str(a) if as_text else a
            result = run(executor.execute(name, {"a": sent, "s": s}))
            assert result.success, result
            assert result.result == {"a": a, "s": s}
            assert result.error is None
            assert result.error_type is None
            assert result.execution_time > 0

        check()


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.integers().map(str) | st.floats() | _TEXT,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(_TEXT, children, max_size=3),
    max_leaves=6,
)


# Property 22: Type coercion or error
def test_int_parameter_is_coerced_or_rejected(tools_dir: Path) -> None:
    with _running(tools_dir) as (run, executor):

        @settings(max_examples=100, deadline=None, derandomize=True)
        @given(value=_JSON)
        def check(value: Any) -> None:
            result = run(executor.execute("ident", {"n": value}))
            if result.success:
                assert type(result.result) is int
                assert result.result == int(value)
            else:
                assert result.error_type == "ValidationError", result
                assert result.error is not None
                assert "params.n" in result.error
                assert "expected integer" in result.error

        check()


_EXCEPTIONS = [
    "ValueError",
    "TypeError",
    "RuntimeError",
    "KeyError",
    "LookupError",
    "ZeroDivisionError",
    "PermissionError",
    "NotImplementedError",
    "AssertionError",
    "CustomError",
]


# Property 23: Exception handling
def test_exceptions_come_back_as_failures(tools_dir: Path) -> None:
    with _running(tools_dir) as (run, executor):

        @settings(max_examples=100, deadline=None, derandomize=True)
        @given(kind=st.sampled_from(_EXCEPTIONS), message=_TEXT)
        def check(kind: str, message: str) -> None:
            result = run(executor.execute("boom", {"kind": kind, "message": message}))
            assert not result.success
            assert result.result is None
            assert result.error_type == kind
            expected: type[Exception] = getattr(builtins, kind, Exception)
            assert result.error == str(expected(message))

        check()


# Property 28: Method execution error logging detail
@pytest.mark.parametrize(
    ("name", "params", "error_type", "in_traceback"),
    [
        ("boom", {"kind": "ValueError", "message": "no such city"}, "ValueError", "cls(message)"),
        ("exit_hard", {"code": 7}, "ToolProcessExited", None),
        ("ahang", {}, "TimeoutError", None),
    ],
)
async def test_failures_are_logged_with_method_params_and_exception(
    executor: Executor,
    caplog: pytest.LogCaptureFixture,
    name: str,
    params: dict[str, Any],
    error_type: str,
    in_traceback: str | None,
) -> None:
    caplog.set_level(logging.INFO, logger="qasdk")
    result = await executor.execute(name, params)
    assert result.error_type == error_type
    [record] = [r for r in caplog.records if r.name == "qasdk.executor"]
    assert record.levelno == logging.ERROR
    assert record.method == name  # type: ignore[attr-defined]
    assert record.params == params  # type: ignore[attr-defined]
    assert record.error_type == error_type  # type: ignore[attr-defined]
    message = record.getMessage()
    assert repr(name) in message
    assert repr(params) in message
    assert f"{error_type}: {result.error}" in message
    if in_traceback is None:
        assert record.tool_traceback is None  # type: ignore[attr-defined]
    else:
        tool_traceback = record.tool_traceback  # type: ignore[attr-defined]
        assert "Traceback (most recent call last)" in tool_traceback
        assert in_traceback in tool_traceback
        assert f"{error_type}: {result.error}" in tool_traceback
        assert "Traceback" not in message  # shown once, as the record's traceback


async def test_results_are_json_encoded(executor: Executor) -> None:
    result = await executor.execute("rich", {})
    assert result.success, result
    assert result.result == {
        "when": "2024-01-02T03:04:05",
        "id": "00000000-0000-0000-0000-000000000001",
        "point": {"x": 1, "y": 2},
    }


async def test_non_serializable_result_is_a_type_error(executor: Executor) -> None:
    result = await executor.execute("opaque", {})
    assert not result.success
    assert result.error_type == "TypeError"
    assert result.error is not None
    assert result.error.startswith("result of type Opaque is not JSON-serializable: ")


async def test_defaults_are_applied_and_optional_parameters_omitted(executor: Executor) -> None:
    assert executor.prepare("greet", {"name": "Ann"}) == {"name": "Ann", "greeting": "Hello"}
    assert executor.prepare("echo", {"a": "5", "s": 7}) == {"a": 5, "s": "7"}
    result = await executor.execute("greet", {"name": "Ann"})
    assert result.result == {"text": "Hello, Ann", "punct_given": False}
    result = await executor.execute("greet", {"name": "Bo", "greeting": "Hi", "punct": "!"})
    assert result.result == {"text": "Hi, Bo", "punct_given": True}


async def test_unknown_method(executor: Executor) -> None:
    with pytest.raises(MethodNotFoundError):
        executor.prepare("nope", {})
    result = await executor.execute("nope", {"x": 1})
    assert not result.success
    assert result.error_type == "MethodNotFoundError"
    assert result.error == "no registered tool named 'nope'"


async def test_all_parameter_problems_are_reported_at_once(executor: Executor) -> None:
    with pytest.raises(ValidationError) as caught:
        executor.prepare("echo", {"a": "abc", "x": 1, "y": 2})
    problems = {p.field: p for p in caught.value.problems}
    assert set(problems) == {"params.x", "params.y", "params.a", "params.s"}
    assert all(p.tool == "echo" for p in problems.values())
    assert "accepted parameters: a, s" in problems["params.x"].reason
    assert "expected integer" in problems["params.a"].reason
    assert "missing required parameter" in problems["params.s"].reason

    result = await executor.execute("echo", {"a": "abc", "x": 1, "y": 2})
    assert result.error_type == "ValidationError"
    assert result.error is not None
    for field in ("params.x", "params.y", "params.a", "params.s"):
        assert field in result.error


async def test_import_errors_name_the_module_or_function(executor: Executor) -> None:
    result = await executor.execute("missing_module", {})
    assert (result.success, result.error_type) == (False, "ModuleNotFoundError")
    assert "exectools.nope" in (result.error or "")
    result = await executor.execute("syntax_error", {})
    assert (result.success, result.error_type) == (False, "SyntaxError")
    assert "exectools.broken" in (result.error or "")
    result = await executor.execute("missing_function", {})
    assert (result.success, result.error_type) == (False, "AttributeError")
    assert result.error == "module 'exectools.basic' has no function 'nope'"


async def test_children_run_in_cwd_with_env(executor: Executor, tools_dir: Path) -> None:
    result = await executor.execute("whoami", {})
    assert os.path.realpath(result.result["cwd"]) == os.path.realpath(tools_dir)
    assert result.result["env"] == "yes"
    assert result.result["pid"] != os.getpid()


async def test_hung_sync_tool_is_killed_and_executor_recovers(
    executor: Executor, tmp_path: Path
) -> None:
    pidfile = tmp_path / "hang.pid"
    result = await executor.execute("hang", {"pidfile": str(pidfile)})
    assert not result.success
    assert result.error_type == "TimeoutError"
    assert result.error == "tool 'hang' timed out after 1.0 s"
    assert result.execution_time > 0.9  # it ran until its timeout, not forever
    await _until(lambda: _gone(int(pidfile.read_text())))

    started = time.monotonic()
    result = await executor.execute("spin", {}, timeout=0.3)  # the task's remaining time wins
    assert result.error == "tool 'spin' timed out after 0.3 s"
    assert time.monotonic() - started < 15  # spin never ends: the 0.3 s limit stopped it

    assert (await executor.execute("echo", {"a": 1, "s": "x"})).success
    pids = await asyncio.gather(*(executor.execute("napping_pid", {"seconds": 0.3}) for _ in "ab"))
    assert len({r.result for r in pids}) == 2  # both replacements are up


async def test_timeout_also_kills_subprocesses_of_the_tool(
    executor: Executor, tmp_path: Path
) -> None:
    pidfile = tmp_path / "grandchild.pid"
    result = await executor.execute("spawn_and_hang", {"pidfile": str(pidfile)})
    assert result.error_type == "TimeoutError"
    await _until(lambda: _gone(int(pidfile.read_text())))


async def test_async_tool_times_out(executor: Executor) -> None:
    result = await executor.execute("ahang", {})
    assert (result.success, result.error_type) == (False, "TimeoutError")
    assert result.error == "tool 'ahang' timed out after 0.5 s"
    assert (await executor.execute("aecho", {"a": 1, "s": "x"})).success


async def test_crashing_tool_is_reported_and_replaced(executor: Executor) -> None:
    result = await executor.execute("exit_hard", {"code": 3})
    assert not result.success
    assert result.error_type == "ToolProcessExited"
    assert result.error == "the tool process exited with code 3 while running 'exit_hard'"

    result = await executor.execute("segfault", {})
    assert result.error_type == "ToolProcessExited"
    assert result.error == "the tool process was killed by signal SIGSEGV while running 'segfault'"

    pids = await asyncio.gather(*(executor.execute("napping_pid", {"seconds": 0.3}) for _ in "ab"))
    assert all(r.success for r in pids)
    assert len({r.result for r in pids}) == 2


async def test_sys_exit_and_keyboard_interrupt_do_not_kill_the_child(tools_dir: Path) -> None:
    async with Executor(METHODS, processes=1, cwd=tools_dir) as executor:
        pid = (await executor.execute("whoami", {})).result["pid"]
        result = await executor.execute("exit_soft", {"code": 3})
        assert (result.success, result.error_type) == (False, "SystemExit")
        assert result.error == "tool called sys.exit(3)"
        result = await executor.execute("boom", {"kind": "KeyboardInterrupt", "message": "stop"})
        assert (result.error_type, result.error) == ("KeyboardInterrupt", "stop")
        assert (await executor.execute("whoami", {})).result["pid"] == pid


async def test_printing_tool_does_not_corrupt_the_protocol(
    executor: Executor, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="qasdk.tools")
    for _ in range(3):
        result = await executor.execute("chatty", {})
        assert (result.success, result.result) == (True, "done")

    def logged() -> set[str]:
        return {r.getMessage() for r in caplog.records if r.name == "qasdk.tools"}

    expected = {"chatty: hello from the tool", "chatty: raw fd 1 output", "chatty: to stderr"}
    await _until(lambda: expected <= logged())
    assert all(r.method == "chatty" for r in caplog.records if r.name == "qasdk.tools")  # type: ignore[attr-defined]


async def test_cancellation_kills_the_running_call(executor: Executor, tmp_path: Path) -> None:
    pidfile = tmp_path / "cancel.pid"
    task = asyncio.ensure_future(executor.execute("hang", {"pidfile": str(pidfile)}))
    await _until(pidfile.exists)
    pid = int(pidfile.read_text())
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await _until(lambda: _gone(pid))
    assert (await executor.execute("echo", {"a": 2, "s": "y"})).result == {"a": 2, "s": "y"}
    pids = await asyncio.gather(*(executor.execute("napping_pid", {"seconds": 0.3}) for _ in "ab"))
    assert len({r.result for r in pids}) == 2


async def test_waiting_for_a_tool_process_counts_against_the_timeout(tools_dir: Path) -> None:
    async with Executor(METHODS, processes=1, cwd=tools_dir) as executor:
        busy = asyncio.ensure_future(executor.execute("napping_pid", {"seconds": 1.0}))
        await asyncio.sleep(0.1)
        result = await executor.execute("echo", {"a": 1, "s": "x"}, timeout=0.2)
        assert result.error_type == "TimeoutError"
        assert "waiting for a free tool process" in (result.error or "")
        assert (await busy).success
        assert (await executor.execute("echo", {"a": 1, "s": "x"}, timeout=1)).success


async def test_replace_methods_reloads_in_fresh_processes(
    executor: Executor, tools_dir: Path
) -> None:
    before = await executor.execute("version", {})
    assert before.result["v"] == "one"
    slow = asyncio.ensure_future(executor.execute("version", {"delay": 1.0}))
    await asyncio.sleep(0.3)  # dispatched to an old process

    (tools_dir / "exectools" / "versioned.py").write_text(VERSIONED.format(value="two-two"))
    methods = {k: v for k, v in METHODS.items() if k != "echo"}
    methods["echo2"] = _method("echo2", *_AS, function="echo")
    executor.replace_methods(methods)

    after = await executor.execute("version", {})
    assert after.result["v"] == "two-two"
    assert after.result["pid"] != before.result["pid"]
    assert (await executor.execute("echo", {"a": 1, "s": "x"})).error_type == "MethodNotFoundError"
    assert (await executor.execute("echo2", {"a": 1, "s": "x"})).success

    old = await slow
    assert old.result["v"] == "one"
    await _until(lambda: _gone(old.result["pid"]) and _gone(before.result["pid"]))


async def test_close_stops_every_child(tools_dir: Path) -> None:
    executor = Executor(METHODS, processes=2, cwd=tools_dir)
    async with executor:
        pids = [
            r.result
            for r in await asyncio.gather(
                *(executor.execute("napping_pid", {"seconds": 0.2}) for _ in "ab")
            )
        ]
        running = asyncio.ensure_future(executor.execute("hang", {}))
        await asyncio.sleep(0.2)
    result = await running
    assert result.error_type == "ToolProcessExited"
    assert "SIGTERM" in (result.error or "")
    assert all(_gone(pid) for pid in pids)
    with pytest.raises(MethodExecutionError, match="not running"):
        await executor.execute("noop", {})


async def test_a_thousand_calls_in_a_row_reuse_warm_processes(executor: Executor) -> None:
    # How fast they are is bench/api.py's business; here: none fails, none leaks a process.
    pids = set()
    for _ in range(1000):
        result = await executor.execute("napping_pid", {"seconds": 0})
        assert result.success
        pids.add(result.result)
    assert len(pids) <= 2  # the pool's two processes served every call


# -- containment: nothing a call starts outlives it; limits ------------------------------

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc")


@linux_only
@pytest.mark.parametrize("tool", ["daemon", "background"])
async def test_what_a_successful_call_started_is_killed_and_reaped(
    executor: Executor, tmp_path: Path, tool: str
) -> None:
    pidfile = tmp_path / f"{tool}.pid"
    result = await executor.execute(tool, {"pidfile": str(pidfile)})
    assert result.success, result
    tool_process = result.result
    await _until(lambda: _gone(int(pidfile.read_text())), timeout=30)
    # Reaped too: no zombie is left under the warm tool process, which stays.
    await _until(lambda: not _children(tool_process), timeout=30)
    again = await executor.execute("whoami", {})
    assert again.success


@linux_only
async def test_a_timed_out_call_leaves_no_daemon_behind(executor: Executor, tmp_path: Path) -> None:
    pidfile = tmp_path / "daemon.pid"
    result = await executor.execute("daemon_hang", {"pidfile": str(pidfile)})
    assert result.error_type == "TimeoutError", result
    assert pidfile.exists()  # the daemon was running when the timeout struck
    await _until(lambda: _gone(int(pidfile.read_text())), timeout=30)
    assert (await executor.execute("echo", {"a": 1, "s": "x"})).success


@linux_only
async def test_closing_the_executor_kills_what_running_calls_started(
    tools_dir: Path, tmp_path: Path
) -> None:
    pidfile = tmp_path / "daemon.pid"
    async with Executor(METHODS, processes=1, cwd=tools_dir) as executor:
        running = asyncio.ensure_future(
            executor.execute("daemon_hang", {"pidfile": str(pidfile)}, timeout=120)
        )
        await _until(pidfile.exists, timeout=30)
    assert (await running).error_type == "ToolProcessExited"
    await _until(lambda: _gone(int(pidfile.read_text())), timeout=30)


@linux_only
async def test_memory_limit_names_the_setting_and_the_pool_goes_on(tools_dir: Path) -> None:
    limits = ToolLimits(memory_mb=256)
    async with Executor(METHODS, processes=1, cwd=tools_dir, limits=limits) as executor:
        result = await executor.execute("allocate", {"mib": 4096})
        assert (result.success, result.error_type) == (False, "ToolLimitExceeded")
        assert result.error == (
            "tool 'allocate' exceeded its memory limit (worker.tool_limits.memory_mb = 256)"
        )
        assert (await executor.execute("allocate", {"mib": 16})).result == 16 * 1024 * 1024
        assert (await executor.execute("echo", {"a": 1, "s": "x"})).success


@linux_only
async def test_cpu_limit_kills_the_call_names_the_setting_and_is_replaced(
    tools_dir: Path,
) -> None:
    by_tool = {"burn": ToolLimitsOverride(cpu_seconds=1)}
    async with Executor(
        METHODS, processes=1, cwd=tools_dir, limits=ToolLimits(), limits_by_tool=by_tool
    ) as executor:
        before = (await executor.execute("whoami", {})).result["pid"]
        result = await executor.execute("burn", {})
        assert (result.success, result.error_type) == (False, "ToolLimitExceeded")
        assert result.error == (
            "tool 'burn' used more than 1 s of CPU (worker.tool_limits_by_tool.burn.cpu_seconds = 1)"
        )
        after = await executor.execute("whoami", {})
        assert after.success
        assert after.result["pid"] != before  # the killed process was replaced


@linux_only
@pytest.mark.skipif(os.geteuid() == 0, reason="the kernel does not apply RLIMIT_NPROC to root")
async def test_process_limit_makes_fork_fail_in_the_tool(tools_dir: Path) -> None:
    limits = ToolLimits(processes=5)
    async with Executor(METHODS, processes=1, cwd=tools_dir, limits=limits) as executor:
        result = await executor.execute("fork_many", {"count": 50})
        assert (result.success, result.error_type) == (False, "BlockingIOError"), result
        assert (await executor.execute("fork_many", {"count": 2})).result == 2
