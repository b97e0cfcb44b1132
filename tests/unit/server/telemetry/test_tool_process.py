"""The tool process's side: a call's context is current while the tool runs."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from opentelemetry import trace

import qasdk_server.telemetry

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


def tool_process() -> ModuleType:
    """Loaded by path, as the tool process loads it."""
    path = Path(qasdk_server.telemetry.__file__).with_name("tool_process.py")
    spec = importlib.util.spec_from_file_location("_qasdk_tool_process_test", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_call_context_is_current_and_in_the_environment_during_the_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)  # no endpoint: no provider is installed
    monkeypatch.delenv("TRACEPARENT", raising=False)
    calls = tool_process().TracedCalls()
    token = calls.enter(TRACEPARENT, "vendor=a")
    try:
        assert os.environ["TRACEPARENT"] == TRACEPARENT
        assert os.environ["TRACESTATE"] == "vendor=a"
        current = trace.get_current_span().get_span_context()
        assert format(current.trace_id, "032x") == TRACE_ID
        assert format(current.span_id, "016x") == "00f067aa0ba902b7"
    finally:
        calls.leave(token)
    assert "TRACEPARENT" not in os.environ and "TRACESTATE" not in os.environ
    assert not trace.get_current_span().get_span_context().is_valid


SERVER_MODULES = [
    "qasdk_server.serve",
    "qasdk_server.app",
    "qasdk_server.cli",
    "qasdk_server.tasks.worker",
    "qasdk_server.tasks.runner",
    "qasdk_server.agent.run",
    "qasdk_server.executor.pool",
    "qasdk_server.routes.tasks",
    "qasdk_server.telemetry",
    "qasdk_server.telemetry.carrier",
]


def test_off_no_opentelemetry_module_is_imported() -> None:
    """What a server or worker imports, and its tracing when off, import no opentelemetry."""
    script = (
        "import sys\n"
        f"for name in {SERVER_MODULES!r}: __import__(name)\n"
        "from qasdk.config import load_config\n"
        "from qasdk_server.telemetry import start\n"
        "assert start(load_config(environ={}, use_file=False).telemetry) is None\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('opentelemetry'))\n"
        "assert not loaded, loaded\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "QASDK_"))}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
