"""Task server speed: submits, direct tasks end to end, model-turn overhead.

    python bench/api.py [--runs 3] [--submits 6000] [--concurrency 32] [--direct 300]
                        [--turns 10]

The first table sets qasdk beside what it is built on, measured in the same run
(medians of ``--runs``): a raw psycopg insert+notify loop at the same
concurrency, and raw Procrastinate (a no-op job, one worker process, the same
database); then the database statements and transactions one direct task
costs (counted from PostgreSQL's own log and ``pg_stat_database``).

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

Goals on a 2-core machine (issue 16): direct tasks end to end >= 2x raw
Procrastinate; one-client direct p50 <= 3 ms; submits >= 90 % of raw
insert+notify (>= 60 % with the worker running); <= 1 ms per model turn over
bare qwen-agent with a reused client; < 1 ms per tool call for the chain.
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
import threading
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


async def bench_direct(
    host: str, port: int, total: int, clients: int, warm: int = 20, one_request: bool = False
) -> dict[str, float]:
    """Submit, then ``GET ?wait=`` until completed; ``one_request``: ``POST ?wait=``."""
    body = json.dumps({"method": "bench_add", "params": {"a": 20, "b": 22}}).encode()
    latencies: list[float] = []
    counter = itertools.count()

    async def one(conn: Connection) -> None:
        started = time.perf_counter()
        path = "/api/tasks?wait=10" if one_request else "/api/tasks"
        status, payload = await conn.request("POST", path, body)
        assert status == 201, payload
        task = json.loads(payload)
        if not one_request:
            status, payload = await conn.request("GET", f"/api/tasks/{task['task_id']}?wait=10")
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

    warming = await Connection.open(host, port)
    for _ in range(warm):
        await one(warming)
    warming.close()
    latencies.clear()
    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    elapsed = time.perf_counter() - started
    return {
        "rate": len(latencies) / elapsed,
        "p50": percentile(latencies, 0.5) * 1000,
        "p99": percentile(latencies, 0.99) * 1000,
    }


RAW_TABLE = """
CREATE TABLE IF NOT EXISTS bench_raw_tasks (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    method text NOT NULL,
    params jsonb NOT NULL,
    status text NOT NULL DEFAULT 'pending',
    created_at timestamptz NOT NULL DEFAULT now()
)
"""
RAW_INSERT = (
    "WITH t AS (INSERT INTO bench_raw_tasks (method, params) VALUES (%s, %s) RETURNING id) "
    "SELECT pg_notify('bench_raw', id::text) FROM t"
)


async def bench_raw_inserts(url: str, total: int, concurrency: int) -> dict[str, float]:
    """The database's own limit: one durable insert + notify per transaction, no server."""
    import psycopg

    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute(RAW_TABLE)
        await conn.execute("TRUNCATE bench_raw_tasks")
    params = json.dumps({"a": 1, "b": 2})
    counter = itertools.count()
    latencies: list[float] = []
    conns = [
        await psycopg.AsyncConnection.connect(url, autocommit=True) for _ in range(concurrency)
    ]

    async def client(conn: psycopg.AsyncConnection[Any]) -> None:
        while next(counter) < total:
            begun = time.perf_counter()
            await conn.execute(RAW_INSERT, ("bench_add", params))
            latencies.append(time.perf_counter() - begun)

    for conn in conns:  # warm up (prepared statements)
        await conn.execute(RAW_INSERT, ("bench_add", params))
    started = time.perf_counter()
    await asyncio.gather(*(client(c) for c in conns))
    elapsed = time.perf_counter() - started
    for conn in conns:
        await conn.close()
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute("DROP TABLE bench_raw_tasks")
    return {"rate": len(latencies) / elapsed, "p50": percentile(latencies, 0.5) * 1000}


RAW_QUEUE = "bench_raw"


def raw_procrastinate_worker(url: str, jobs: int, concurrency: int) -> None:
    """In its own process: defer ``jobs`` no-op jobs, then time one worker draining them."""
    import procrastinate

    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=url))

    @app.task(name="bench_noop", queue=RAW_QUEUE)
    async def noop(n: int) -> None:
        return None

    async def run() -> float:
        async with app.open_async():
            await noop.batch_defer_async(*({"n": i} for i in range(jobs)))
            started = time.perf_counter()
            await app.run_worker_async(
                queues=[RAW_QUEUE],
                concurrency=concurrency,
                wait=False,
                install_signal_handlers=False,
                delete_jobs="successful",
            )
            return time.perf_counter() - started

    elapsed = asyncio.run(run())
    print(json.dumps({"rate": jobs / elapsed}))


def bench_raw_procrastinate(url: str, jobs: int, concurrency: int) -> dict[str, float]:
    made = subprocess.run(
        [sys.executable, __file__, "--raw-procrastinate", url, str(jobs), str(concurrency)],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, float] = json.loads(made.stdout.strip().splitlines()[-1])
    return result


class StatementLog:
    """Counts what PostgreSQL executes in a window, from its own log (``log_statement``).

    Only for the bench's private embedded server: it changes the server's settings
    with ``ALTER SYSTEM`` and puts them back.
    """

    def __init__(self, url: str, log: Path) -> None:
        self.url, self.log = url, log

    def _set(self, on: bool) -> None:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            if on:
                conn.execute("ALTER SYSTEM SET log_statement = 'all'")
                conn.execute("ALTER SYSTEM SET log_line_prefix = '%a|'")
            else:
                conn.execute("ALTER SYSTEM RESET log_statement")
                conn.execute("ALTER SYSTEM RESET log_line_prefix")
            conn.execute("SELECT pg_reload_conf()")
        time.sleep(0.5)  # every backend rereads the settings at its next command

    def transactions(self) -> int:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute("SELECT pg_stat_clear_snapshot()")
            row = conn.execute(
                "SELECT xact_commit + xact_rollback FROM pg_stat_database "
                "WHERE datname = current_database()"
            ).fetchone()
        return int(row[0]) if row else 0

    def count(self, window: Any) -> tuple[dict[str, int], int]:
        """Statements by application name, and transactions, while ``window()`` runs."""
        self._set(True)
        try:
            start = self.log.stat().st_size
            xacts = self.transactions()
            window()
            time.sleep(1.0)  # the stats collector and the log catch up
            xacts = self.transactions() - xacts - 1
            with self.log.open("rb") as f:
                f.seek(start)
                text = f.read().decode(errors="replace")
        finally:
            self._set(False)
        counts: dict[str, int] = {}
        for line in text.splitlines():
            app, sep, rest = line.partition("|")
            if sep and ("LOG:  statement:" in rest or "LOG:  execute" in rest):
                counts[app or "?"] = counts.get(app or "?", 0) + 1
        return counts, xacts


def bench_statements(
    host: str, port: int, statements: StatementLog, tasks: int
) -> dict[str, float]:
    """Statements and transactions per direct task, less what an idle server does as long."""
    begun = time.perf_counter()
    idle, idle_xacts = statements.count(lambda: None)
    idle_time = time.perf_counter() - begun
    begun = time.perf_counter()
    busy, busy_xacts = statements.count(
        lambda: asyncio.run(bench_direct(host, port, tasks, 1, warm=0))
    )
    scale = (time.perf_counter() - begun) / idle_time
    result = {
        app: (n - idle.get(app, 0) * scale) / tasks
        for app, n in busy.items()
        if app not in ("psql", "?")
    }
    result["transactions"] = (busy_xacts - idle_xacts * scale) / tasks
    return result


def synced_project(
    project: Path, data: Path, database: str, **settings: str
) -> tuple[str, dict[str, str]]:
    """The database URL (``QASDK_DATABASE_URL``, or an embedded server in ``data``) and the
    environment of the bench's qasdk commands (``settings`` on top), once
    ``qasdk sync tools`` has run in ``project``."""
    from qasdk.store.embedded import ensure_embedded

    url = os.environ.get("QASDK_DATABASE_URL") or ensure_embedded(data, database=database)
    env = {k: v for k, v in os.environ.items() if not k.startswith("QASDK_")}
    env.update({"QASDK_DATABASE_URL": url, "QASDK_LOGGING_LEVEL": "WARNING", **settings})
    subprocess.run(
        [sys.executable, "-m", "qasdk", "sync", "tools"],
        cwd=project,
        env=env,
        check=True,
        capture_output=True,
    )
    return url, env


def start_server(
    project: Path,
    env: dict[str, str],
    *args: str,
    python: tuple[str, ...] = (sys.executable,),
    output: list[str] | None = None,
) -> tuple[subprocess.Popen[str], int]:
    """Start ``qasdk serve`` and return it with its port; its output keeps being read (into
    ``output``, if given), so the server never blocks on a full pipe."""
    proc = subprocess.Popen(
        [*python, "-m", "qasdk", "serve", "--port", "0", *args],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    lines = output if output is not None else []
    for line in proc.stdout:
        lines.append(line)
        if "serving http://" in line:
            port = int(line.split("serving http://")[1].split()[0].rsplit(":", 1)[1])
            threading.Thread(target=_drain_output, args=(proc.stdout, output), daemon=True).start()
            return proc, port
    raise RuntimeError("qasdk serve did not start:\n" + "".join(lines[-40:]))


def _drain_output(stream: Any, output: list[str] | None) -> None:
    for line in stream:
        if output is not None:
            output.append(line)


def clean(url: str) -> None:
    """Delete the bench's tasks and their queue jobs (safe on a shared database), then vacuum."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "DELETE FROM procrastinate_jobs WHERE id IN "
            "(SELECT job_id FROM tasks WHERE method = 'bench_add' OR description = 'go')"
        )
        conn.execute("DELETE FROM tasks WHERE method = 'bench_add' OR description = 'go'")
        # Each phase starts from tables as a steady server keeps them (autovacuum would, later).
        conn.execute("VACUUM ANALYZE tasks, task_steps, procrastinate_jobs, audit_log")


def _drain(url: str, timeout: float = 120.0) -> None:
    """Until the worker has run every bench task still queued."""
    import psycopg

    deadline = time.monotonic() + timeout
    with psycopg.connect(url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT count(*) FROM tasks WHERE method = 'bench_add' "
                "AND status NOT IN ('completed', 'failed', 'cancelled')"
            ).fetchone()
            if row is None or row[0] == 0:
                return
            time.sleep(0.2)


def stop_server(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


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


def median_of(runs: list[dict[str, float]]) -> dict[str, float]:
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


def print_table(rows: dict[str, dict[str, float]], concurrency: int, runs: int) -> None:
    raw, engine = rows["raw_inserts"], rows["raw_procrastinate"]
    print(f"throughput against the parts qasdk is built on (medians of {runs} runs)")
    print(f"  raw psycopg insert+notify, concurrency {concurrency:<3}  {raw['rate']:8.0f} /s")
    print(
        f"  qasdk submits, --no-worker               {rows['submits']['rate']:8.0f} /s"
        f"   {rows['submits']['rate'] / raw['rate']:6.0%} of raw   goal >= 90 %"
    )
    print(
        f"  qasdk submits, worker running            {rows['submits_worker']['rate']:8.0f} /s"
        f"   {rows['submits_worker']['rate'] / raw['rate']:6.0%} of raw   goal >= 60 %"
    )
    print(f"  raw Procrastinate, one worker process     {engine['rate']:8.0f} jobs/s")
    direct = rows["parallel"]
    print(
        f"  qasdk direct tasks end to end, 16 clients {direct['rate']:8.0f} tasks/s"
        f" {direct['rate'] / engine['rate']:5.2f}x raw   goal >= 2x"
    )
    print(
        f"  one client p50 / p99                      {rows['sequential']['p50']:8.2f} / "
        f"{rows['sequential']['p99']:.2f} ms   goal p50 <= 3"
    )
    if "parallel_one" in rows:
        one, seq = rows["parallel_one"], rows["sequential_one"]
        print(
            f"  the same, one request (POST ?wait=)      {one['rate']:8.0f} tasks/s"
            f" {one['rate'] / engine['rate']:5.2f}x raw"
        )
        print(
            f"  one client p50 / p99                      {seq['p50']:8.2f} / {seq['p99']:.2f} ms"
        )
    statements = rows.get("statements")
    if statements:
        print("  per direct task: database statements by connection, transactions")
        for name, n in sorted(statements.items()):
            print(f"    {name:38s}{n:8.1f}")


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
    parser.add_argument("--runs", type=int, default=3, help="runs of the throughput table")
    parser.add_argument(
        "--processes", type=int, default=1, help="worker processes of the serves with a worker"
    )
    parser.add_argument("--table-only", action="store_true", help="only the throughput table")
    parser.add_argument(
        "--no-submit-and-wait",
        action="store_true",
        help="skip POST /api/tasks?wait= (for a server that lacks it)",
    )
    parser.add_argument("--chain-calls", type=int, default=20000)
    parser.add_argument("--raw-procrastinate", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--chain-only", action="store_true", help="only the middleware chain")
    args = parser.parse_args()
    if args.raw_procrastinate:
        url, jobs, concurrency = args.raw_procrastinate
        raw_procrastinate_worker(url, int(jobs), int(concurrency))
        return
    if args.chain_only:
        print_chain(bench_chain(args.chain_calls), args.chain_calls)
        return

    from qasdk.store.embedded import stop_embedded

    root = Path(tempfile.mkdtemp(prefix="qasdk-bench-api-"))
    project = root / "project"
    (project / "tools").mkdir(parents=True)
    (project / "tools" / "bench_tools.py").write_text(TOOL)
    data = root / "pgdata"
    try:
        # As many connections as clients: the raw loop has one per client.
        url, env = synced_project(
            project, data, "bench_api", QASDK_DATABASE_POOL_SIZE=str(args.concurrency)
        )

        runs: dict[str, list[dict[str, float]]] = {}

        def keep(name: str, result: dict[str, float]) -> None:
            runs.setdefault(name, []).append(result)

        statements = (
            None if os.environ.get("QASDK_DATABASE_URL") else StatementLog(url, data / "log")
        )
        one_request = not args.no_submit_and_wait
        for run in range(args.runs):
            keep("raw_inserts", asyncio.run(bench_raw_inserts(url, args.submits, args.concurrency)))
            proc, port = start_server(project, env, "--no-worker")
            try:
                keep(
                    "submits",
                    asyncio.run(bench_submits("127.0.0.1", port, args.submits, args.concurrency)),
                )
            finally:
                stop_server(proc)
            clean(url)
            keep("raw_procrastinate", bench_raw_procrastinate(url, args.direct * 4, 4))
            with_worker = ["--processes", str(args.processes)] if args.processes > 1 else []
            proc, port = start_server(project, env, *with_worker)
            try:
                keep(
                    "submits_worker",
                    asyncio.run(bench_submits("127.0.0.1", port, args.submits, args.concurrency)),
                )
                _drain(url)
                clean(url)
                keep("sequential", asyncio.run(bench_direct("127.0.0.1", port, args.direct, 1)))
                keep("parallel", asyncio.run(bench_direct("127.0.0.1", port, args.direct * 2, 16)))
                if one_request:
                    keep(
                        "sequential_one",
                        asyncio.run(
                            bench_direct("127.0.0.1", port, args.direct, 1, one_request=True)
                        ),
                    )
                    keep(
                        "parallel_one",
                        asyncio.run(
                            bench_direct("127.0.0.1", port, args.direct * 2, 16, one_request=True)
                        ),
                    )
                if statements is not None and run == 0:
                    keep("statements", bench_statements("127.0.0.1", port, statements, 100))
            finally:
                stop_server(proc)
            clean(url)
        rows = {name: median_of(results) for name, results in runs.items()}
        submits = rows["submits"]
        print_table(rows, args.concurrency, args.runs)
        if args.table_only:
            return
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
