"""What tracing costs a task: the same work with telemetry off and on.

    python bench/telemetry.py [--tasks 500]

One "task" here is what a described task does besides waiting for its model:
two model turns (``AgentRun.model_turn`` with an instant reply) and one tool
call (``TaskRunner.call_tool``, through a real tool process). Off, the runner
holds no tracing; on, every task is a trace (a task span, two GenAI chat spans,
an ``execute_tool`` span whose context the tool process attaches), batched to
an OTLP/HTTP collector on this machine (a plain HTTP server that answers 200).
Prints the mean and p50 per task for both, the difference, and the import cost
of opentelemetry (paid once, at start, and only when telemetry is on).
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import http.server
import itertools
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from qasdk.config import Config, ModelConfig, TelemetryConfig
from qasdk.models import ExecutionResult, MethodConfig, TraceStep
from qasdk_server.agent.run import AgentRun
from qasdk_server.executor import Executor
from qasdk_server.tasks.runner import TaskRunner

TOOL = "def noop():\n    return 1\n"
METHOD = MethodConfig(
    name="noop",
    description="noop",
    return_type="int",
    module_path="benchtool",
    function_name="noop",
)


class Collector(http.server.ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.posts = 0


class Handler(http.server.BaseHTTPRequestHandler):
    server: Collector

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.server.posts += 1
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


class Context:
    attempt = 1

    def __init__(self, runner: TaskRunner, loop: asyncio.AbstractEventLoop, span: Any) -> None:
        self.seq = itertools.count(1)
        self.runner, self.loop, self.span = runner, loop, span

    def call_tool(
        self, name: str, arguments: dict[str, Any]
    ) -> concurrent.futures.Future[ExecutionResult]:
        call = self.runner.call_tool(name, arguments, None, self.span)
        return asyncio.run_coroutine_threadsafe(call, self.loop)

    def record(self, step: TraceStep) -> None:
        pass

    def next_seq(self) -> int:
        return next(self.seq)

    def observe_model(self, outcome: str, seconds: float) -> None:
        pass


def one_task(runner: TaskRunner, loop: asyncio.AbstractEventLoop, tracing: Any) -> None:
    """Two model turns and a tool call in between, as an agent thread does them."""
    span = None if tracing is None else tracing.task(uuid.uuid4(), "described", 1, None)
    run = AgentRun(
        model=ModelConfig(),
        llm=None,
        tools=[],
        methods={"noop": METHOD},
        context=Context(runner, loop, span),
        span=span,
    )
    reply = [{"role": "assistant", "content": "ok"}]
    for _ in run.model_turn(lambda: iter([reply])):
        pass
    run.tool_call("noop", "{}")
    for _ in run.model_turn(lambda: iter([reply])):
        pass
    if span is not None:
        span.end("completed")


async def measure(tasks: int, folder: Path, tracing: Any) -> list[float]:
    loop = asyncio.get_running_loop()
    env = tracing.tool_environment({}) if tracing is not None else {}
    async with Executor({"noop": METHOD}, processes=1, cwd=folder, env=env) as executor:
        runner = TaskRunner(
            config=Config(),
            pool=None,  # type: ignore[arg-type]
            registry=None,  # type: ignore[arg-type]
            executor=executor,
            worker_name="bench",
            threads=None,  # type: ignore[arg-type]
            tracing=tracing,
        )
        with concurrent.futures.ThreadPoolExecutor(1) as thread:
            for _ in range(20):  # warm up: imports, the tool process's first calls
                await loop.run_in_executor(thread, one_task, runner, loop, tracing)
            times = []
            for _ in range(tasks):
                started = time.perf_counter()
                await loop.run_in_executor(thread, one_task, runner, loop, tracing)
                times.append(time.perf_counter() - started)
    return times


def import_cost() -> float:
    script = (
        "import time; t = time.perf_counter()\n"
        "import qasdk_server.telemetry.spans, qasdk_server.telemetry.provider\n"
        "import opentelemetry.exporter.otlp.proto.http.trace_exporter\n"
        "print(time.perf_counter() - t)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    return float(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=500)
    args = parser.parse_args()
    collector = Collector()
    threading.Thread(target=collector.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{collector.server_address[1]}"
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "benchtool.py").write_text(TOOL)
        off = asyncio.run(measure(args.tasks, folder, None))
        assert not any(m.startswith("opentelemetry") for m in sys.modules), "off imported otel"
        from qasdk_server.telemetry import start

        tracing = start(TelemetryConfig(otlp_endpoint=endpoint, service_name="bench"))
        assert tracing is not None
        on = asyncio.run(measure(args.tasks, folder, tracing))
        tracing.shutdown()
    collector.shutdown()
    mean_off, mean_on = statistics.fmean(off), statistics.fmean(on)
    print(f"tasks: {args.tasks} (2 model turns + 1 tool call each)")
    print(f"off: mean {mean_off * 1e3:.3f} ms  p50 {statistics.median(off) * 1e3:.3f} ms")
    print(f"on:  mean {mean_on * 1e3:.3f} ms  p50 {statistics.median(on) * 1e3:.3f} ms")
    print(f"overhead per task with telemetry on: {(mean_on - mean_off) * 1e3:.3f} ms (mean)")
    print(f"exports received by the collector: {collector.posts}")
    print(f"opentelemetry import, once per process when on: {import_cost() * 1e3:.0f} ms")


if __name__ == "__main__":
    main()
