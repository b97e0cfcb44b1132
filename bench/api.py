"""Task server speed: submits, direct tasks end to end, model-turn overhead.

    python bench/api.py [--submits 6000] [--concurrency 32] [--direct 300] [--turns 10]

Starts a private embedded PostgreSQL (or uses ``QASDK_DATABASE_URL``), syncs
one trivial tool, and measures, on this machine:

1. submit throughput and latency (p50/p99) at ``--concurrency`` keep-alive
   connections, against ``qasdk serve --no-worker`` (the API and the database
   only; the load generator shares the machine);
2. direct tasks end to end with the embedded worker: submit, then wait for
   ``completed`` with ``GET /api/tasks/{id}?wait=``; p50/p99 one at a time, and
   tasks/s with 16 clients;
3. the same submits with an API key, then with a key that has a rate limit
   (checked in PostgreSQL on every submit, shared by all servers);
4. per model turn, qasdk's agent (trace to PostgreSQL, tools in worker
   processes) against bare qwen-agent with an in-process tool, both against
   the scripted model with zero latency;
5. the middleware chain's cost per tool call (in process, the tool itself
   replaced by a no-op): the built-ins (metrics, logging, slow_calls) against
   an empty chain. ``--chain-only`` runs just this one.

Goals on a 2-core machine: >= 1,500 submits/s, direct p50 <= 20 ms, <= 5 ms
overhead per model turn, < 1 ms per tool call for the chain.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TOOL = '''
from qasdk import tool


@tool
def bench_add(a: int, b: int) -> int:
    """Add two integers.

    Args:
        a: First.
        b: Second.
    """
    return a + b
'''


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Connection:
    """One keep-alive HTTP/1.1 connection with just enough parsing for this API."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, key: str | None
    ) -> None:
        self.reader, self.writer = reader, writer
        self.auth = f"Authorization: Bearer {key}\r\n" if key else ""

    @classmethod
    async def open(cls, host: str, port: int, key: str | None = None) -> Connection:
        return cls(*await asyncio.open_connection(host, port), key)

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\n"
        head += self.auth
        if body:
            head += "Content-Type: application/json\r\n"
        self.writer.write(head.encode() + b"\r\n" + body)
        status_line = await self.reader.readline()
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        payload = await self.reader.readexactly(length) if length else b""
        return int(status_line.split()[1]), payload

    def close(self) -> None:
        self.writer.close()


async def bench_submits(
    host: str, port: int, total: int, concurrency: int, key: str | None = None
) -> dict[str, float]:
    body = json.dumps({"method": "bench_add", "params": {"a": 1, "b": 2}}).encode()
    latencies: list[float] = []
    counter = itertools.count()
    connections = [await Connection.open(host, port, key) for _ in range(concurrency)]

    async def client(conn: Connection) -> None:
        while next(counter) < total:
            started = time.perf_counter()
            status, payload = await conn.request("POST", "/api/tasks", body)
            latencies.append(time.perf_counter() - started)
            if status != 201:
                raise RuntimeError(f"submit answered {status}: {payload[:200]!r}")

    # Warm up (connections, prepared statements, pool).
    await asyncio.gather(*(c.request("POST", "/api/tasks", body) for c in connections))
    started = time.perf_counter()
    await asyncio.gather(*(client(c) for c in connections))
    elapsed = time.perf_counter() - started
    for conn in connections:
        conn.close()
    return {
        "rate": len(latencies) / elapsed,
        "p50": percentile(latencies, 0.5) * 1000,
        "p99": percentile(latencies, 0.99) * 1000,
        "n": len(latencies),
    }


async def bench_direct(host: str, port: int, total: int, clients: int) -> dict[str, float]:
    body = json.dumps({"method": "bench_add", "params": {"a": 20, "b": 22}}).encode()
    latencies: list[float] = []
    counter = itertools.count()

    async def one(conn: Connection) -> None:
        started = time.perf_counter()
        status, payload = await conn.request("POST", "/api/tasks", body)
        assert status == 201, payload
        task_id = json.loads(payload)["task_id"]
        status, payload = await conn.request("GET", f"/api/tasks/{task_id}?wait=10")
        task = json.loads(payload)
        if task["status"] != "completed" or task["result"] != 42:
            raise RuntimeError(f"unexpected task: {task}")
        latencies.append(time.perf_counter() - started)

    async def client() -> None:
        conn = await Connection.open(host, port)
        try:
            while next(counter) < total:
                await one(conn)
        finally:
            conn.close()

    warm = await Connection.open(host, port)
    for _ in range(20):
        await one(warm)
    warm.close()
    latencies.clear()
    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    elapsed = time.perf_counter() - started
    return {
        "rate": len(latencies) / elapsed,
        "p50": percentile(latencies, 0.5) * 1000,
        "p99": percentile(latencies, 0.99) * 1000,
    }


def start_server(
    project: Path, env: dict[str, str], *args: str
) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "qasdk", "serve", "--port", "0", *args],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if "serving http://" in line:
            return proc, int(line.split("serving http://")[1].split()[0].rsplit(":", 1)[1])
    raise RuntimeError("qasdk serve did not start")


def clean(url: str) -> None:
    """Delete the bench's tasks and their queue jobs (safe on a shared database)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "DELETE FROM procrastinate_jobs WHERE id IN "
            "(SELECT job_id FROM tasks WHERE method = 'bench_add' OR description = 'go')"
        )
        conn.execute("DELETE FROM tasks WHERE method = 'bench_add' OR description = 'go'")


def stop_server(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    proc.wait(60)
    if proc.stdout is not None:
        proc.stdout.close()


def bench_model_turns(project: Path, url: str, turns: int) -> dict[str, float]:
    """Seconds per model turn: bare qwen-agent vs qasdk's AgentRun (trace + executor)."""
    import logging

    os.chdir(project)
    sys.path.insert(0, str(project))
    from qwen_agent.agents import FnCallAgent

    logging.getLogger("qwen_agent_logger").setLevel(logging.WARNING)
    from qwen_agent.tools.base import BaseTool

    from qasdk.config import Config, ModelConfig
    from qasdk.registration.collect import collect
    from qasdk.testing import ScriptedModel, reply
    from qasdk_server.executor import Executor
    from qasdk_server.registry import MethodRegistry
    from qasdk_server.serve import open_pool
    from qasdk_server.tasks.runner import TaskRunner

    def script() -> list[Any]:
        calls = [reply.tool_call("bench_add", {"a": i, "b": 1}) for i in range(turns - 1)]
        return [*calls, reply.text("done")]

    class Add(BaseTool):
        name = "bench_add"
        description = "Add two integers."
        parameters = {
            "type": "object",
            "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
            "required": ["a", "b"],
        }

        def call(self, params: Any, **kwargs: Any) -> str:
            args = json.loads(params)
            return str(args["a"] + args["b"])

    results: dict[str, float] = {}
    with ScriptedModel() as model:
        config = ModelConfig(api_base=model.url, max_turns=turns + 1, max_tool_calls=turns + 1)
        llm_cfg = {
            "model": config.name,
            "model_server": model.base_url,
            "api_key": "EMPTY",
            "generate_cfg": {"temperature": 0.7, "max_tokens": 2000},
        }

        def bare(llm: Any = None) -> float:
            model.push(*script())
            agent = FnCallAgent(function_list=[Add()], llm=llm or llm_cfg)
            started = time.perf_counter()
            *_, final = agent.run([{"role": "user", "content": "go"}])
            elapsed = time.perf_counter() - started
            assert final[-1]["content"] == "done"
            return elapsed

        bare()  # warm up
        bare_runs = [bare() for _ in range(7)]
        from qasdk_server.agent import build_llm

        shared = build_llm(config)  # the same client reuse qasdk does, nothing else
        bare(shared)
        shared_runs = [bare(shared) for _ in range(7)]

        async def ours() -> list[float]:
            import concurrent.futures

            from qasdk.store import tasks as store

            cfg = Config(model=config)
            pool = await open_pool(url, cfg)
            registry = MethodRegistry(pool)
            await registry.load()
            methods = {c.name: c for c in collect(["tools"]).configs}
            times = []
            async with Executor(methods, processes=1, cwd=project) as executor:
                threads = concurrent.futures.ThreadPoolExecutor(2)
                runner = TaskRunner(
                    config=cfg,
                    pool=pool,
                    registry=registry,
                    executor=executor,
                    worker_name="bench",
                    threads=threads,
                )
                await runner.warm_up()
                for _ in range(8):
                    model.push(*script())
                    async with pool.connection() as conn:
                        task = await store.insert_task(conn, kind="described", description="go")
                    started = time.perf_counter()
                    await runner.run(task.task_id, lambda: None)
                    times.append(time.perf_counter() - started)
                    async with pool.connection() as conn:
                        done = await store.get_task(conn, task.task_id)
                        assert done is not None and done.result == "done", done
                threads.shutdown()
            await pool.close()
            return times[1:]

        our_runs = asyncio.run(ours())
    results["bare"] = statistics.median(bare_runs) / turns
    results["shared"] = statistics.median(shared_runs) / turns
    results["ours"] = statistics.median(our_runs) / turns
    return results


def bench_chain(calls: int, runs: int = 5) -> dict[str, float]:
    """Microseconds per call through the built-ins and through an empty chain (medians)."""
    import logging

    from qasdk.config import MiddlewareConfig
    from qasdk.models import ExecutionResult
    from qasdk_server.metrics import Metrics
    from qasdk_server.middleware import ToolCall
    from qasdk_server.middleware.chain import Chain
    from qasdk_server.middleware.load import build_chain

    calls_logger = logging.getLogger("qasdk.calls")
    calls_logger.addHandler(logging.NullHandler())  # records are made, then dropped
    calls_logger.propagate = False
    calls_logger.setLevel(logging.INFO)
    done = ExecutionResult(success=True, result=5, execution_time=0.0001)

    async def execute(call: ToolCall) -> ExecutionResult:
        return done

    builtins = build_chain(
        [MiddlewareConfig(name=n) for n in ("metrics", "logging", "slow_calls")],
        metrics=Metrics(),
    )

    async def per_call(chain: Chain) -> float:
        started = time.perf_counter()
        for _ in range(calls):
            await chain.run(ToolCall("bench_add", {"a": 1, "b": 2}), execute)
        return (time.perf_counter() - started) / calls * 1e6

    async def measure() -> dict[str, float]:
        empty, full = [], []
        for _ in range(runs):
            empty.append(await per_call(Chain()))
            full.append(await per_call(builtins))
        return {"empty": statistics.median(empty), "builtins": statistics.median(full)}

    return asyncio.run(measure())


def print_chain(chain: dict[str, float], calls: int) -> None:
    print(f"middleware chain, {calls} calls x 5 runs (medians; no-op tool)")
    print(f"  empty chain                     {chain['empty']:8.2f} us/call")
    print(f"  metrics + logging + slow_calls  {chain['builtins']:8.2f} us/call   goal < 1000")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--submits", type=int, default=6000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--direct", type=int, default=300)
    parser.add_argument(
        "--turns", type=int, default=10, help="model turns per conversation (<= 20)"
    )
    parser.add_argument("--chain-calls", type=int, default=20000)
    parser.add_argument("--chain-only", action="store_true", help="only the middleware chain")
    args = parser.parse_args()
    if args.chain_only:
        print_chain(bench_chain(args.chain_calls), args.chain_calls)
        return

    from qasdk.store.embedded import ensure_embedded, stop_embedded

    root = Path(tempfile.mkdtemp(prefix="qasdk-bench-api-"))
    project = root / "project"
    (project / "tools").mkdir(parents=True)
    (project / "tools" / "bench_tools.py").write_text(TOOL)
    data = root / "pgdata"
    try:
        url = os.environ.get("QASDK_DATABASE_URL") or ensure_embedded(data, database="bench_api")
        env = {k: v for k, v in os.environ.items() if not k.startswith("QASDK_")}
        env.update(
            QASDK_DATABASE_URL=url,
            QASDK_LOGGING_LEVEL="WARNING",
            QASDK_DATABASE_POOL_SIZE=str(max(8, args.concurrency // 2)),
        )
        subprocess.run(
            [sys.executable, "-m", "qasdk", "sync", "tools"],
            cwd=project,
            env=env,
            check=True,
            capture_output=True,
        )

        proc, port = start_server(project, env, "--no-worker")
        try:
            submits = asyncio.run(bench_submits("127.0.0.1", port, args.submits, args.concurrency))
        finally:
            stop_server(proc)
        clean(url)

        proc, port = start_server(project, env)
        try:
            sequential = asyncio.run(bench_direct("127.0.0.1", port, args.direct, 1))
            parallel = asyncio.run(bench_direct("127.0.0.1", port, args.direct * 2, 16))
        finally:
            stop_server(proc)

        clean(url)
        turns = bench_model_turns(project, url, args.turns)
        clean(url)

        # Last: once a key exists, every request needs one.
        keyed = {}
        for name, limits in (
            ("bench-plain", []),
            ("bench-limited", ["--rate", "1000000/h"]),
        ):
            made = subprocess.run(
                [sys.executable, "-m", "qasdk", "keys", "create", name, "--scope", "submit",
                 *limits],
                cwd=project, env=env, check=True, capture_output=True, text=True,
            )  # fmt: skip
            keyed[name] = made.stdout.strip()
        proc, port = start_server(project, env, "--no-worker")
        try:
            with_key = asyncio.run(
                bench_submits(
                    "127.0.0.1", port, args.submits, args.concurrency, keyed["bench-plain"]
                )
            )
            clean(url)
            with_limits = asyncio.run(
                bench_submits(
                    "127.0.0.1", port, args.submits, args.concurrency, keyed["bench-limited"]
                )
            )
        finally:
            stop_server(proc)
        clean(url)

        print(
            f"submits: {submits['n']} at concurrency {args.concurrency} (qasdk serve --no-worker)"
        )
        print(f"  throughput        {submits['rate']:8.0f} /s       goal >= 1500")
        print(f"  latency p50       {submits['p50']:8.2f} ms")
        print(f"  latency p99       {submits['p99']:8.2f} ms")
        for label, result in (
            ("with an API key", with_key),
            ("with a rate limit (never reached)", with_limits),
        ):
            print(f"submits {label}")
            print(
                f"  throughput        {result['rate']:8.0f} /s       "
                f"({result['rate'] / submits['rate'] - 1:+.0%} vs open)"
            )
            print(f"  latency p50/p99   {result['p50']:8.2f} / {result['p99']:.2f} ms")
        print("direct tasks, submit -> completed (embedded worker, concurrency 4)")
        print(f"  one client  p50   {sequential['p50']:8.2f} ms      goal <= 20")
        print(f"  one client  p99   {sequential['p99']:8.2f} ms")
        print(f"  16 clients        {parallel['rate']:8.0f} tasks/s (p50 {parallel['p50']:.1f} ms)")
        print(f"model turns ({args.turns} per conversation, scripted model, zero latency)")
        print(f"  bare qwen-agent                 {turns['bare'] * 1000:8.2f} ms/turn")
        print(f"  bare qwen-agent, reused client  {turns['shared'] * 1000:8.2f} ms/turn")
        print(
            f"  qasdk (trace in PostgreSQL, tool in a worker process)"
            f" {turns['ours'] * 1000:8.2f} ms/turn"
        )
        print(
            f"  overhead vs bare                {(turns['ours'] - turns['bare']) * 1000:8.2f} ms/turn   goal <= 5"
        )
        print(
            f"  overhead vs reused client       {(turns['ours'] - turns['shared']) * 1000:8.2f} ms/turn"
        )
        print_chain(bench_chain(args.chain_calls), args.chain_calls)
    finally:
        if not os.environ.get("QASDK_DATABASE_URL"):
            stop_embedded(data)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
