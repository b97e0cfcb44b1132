"""MCP overhead: a ``tools/call`` against the same direct task over REST.

    python bench/mcp_calls.py [--calls 200]

Starts a private embedded PostgreSQL (or uses ``QASDK_DATABASE_URL``), syncs one
trivial tool, starts ``qasdk serve`` (embedded worker) and measures, one call at
a time, p50/p99 of:

1. REST: ``POST /api/tasks`` then ``GET /api/tasks/{id}?wait=`` until completed;
2. MCP over streamable HTTP (``/mcp``, the ``mcp`` SDK's client): ``tools/call``;
3. MCP over stdio (``qasdk mcp``, its own embedded worker): ``tools/call``.

Every one is a durable task (inserted, queued, run by a tool process, traced).
Goal: MCP adds at most a few milliseconds to the REST path.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from api import TOOL, percentile, synced_project  # bench/ is on sys.path when run as a script


def summary(latencies: list[float]) -> str:
    p50, p99 = percentile(latencies, 0.5) * 1000, percentile(latencies, 0.99) * 1000
    return f"p50 {p50:6.1f} ms  p99 {p99:6.1f} ms  ({len(latencies)} calls)"


async def bench_rest(base: str, calls: int) -> list[float]:
    import httpx

    latencies = []
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:
        for i in range(calls + 10):
            started = time.perf_counter()
            made = await http.post(
                "/api/tasks", json={"method": "bench_add", "params": {"a": i, "b": 1}}
            )
            task_id = made.json()["task_id"]
            while True:
                task = (await http.get(f"/api/tasks/{task_id}", params={"wait": 10})).json()
                if task["status"] == "completed":
                    break
            if i >= 10:  # the first ones warm the tool process up
                latencies.append(time.perf_counter() - started)
    return latencies


async def bench_session(session: Any, calls: int) -> list[float]:
    await session.initialize()
    latencies = []
    for i in range(calls + 10):
        started = time.perf_counter()
        result = await session.call_tool("bench_add", {"a": i, "b": 1})
        assert not result.is_error, result
        if i >= 10:
            latencies.append(time.perf_counter() - started)
    return latencies


async def bench_http(base: str, calls: int) -> list[float]:
    import httpx2
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    async with (
        httpx2.AsyncClient(timeout=httpx2.Timeout(30, read=300)) as http,
        streamable_http_client(f"{base}/mcp", http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        return await bench_session(session, calls)


async def bench_stdio(project: Path, env: dict[str, str], calls: int) -> list[float]:
    from mcp import ClientSession, StdioServerParameters, stdio_client

    params = StdioServerParameters(
        command=sys.executable, args=["-m", "qasdk", "mcp"], cwd=project, env=env
    )
    with open(os.devnull, "w") as errlog:
        async with (
            stdio_client(params, errlog=errlog) as (read, write),
            ClientSession(read, write) as session,
        ):
            return await bench_session(session, calls)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()

    from qasdk.store.embedded import stop_embedded

    root = Path(tempfile.mkdtemp(prefix="qasdk-bench-mcp-"))
    project = root / "project"
    (project / "tools").mkdir(parents=True)
    (project / "tools" / "bench_tools.py").write_text(TOOL)
    data = root / "pgdata"
    try:
        _, env = synced_project(project, data, "bench_mcp")
        proc = subprocess.Popen(
            [sys.executable, "-m", "qasdk", "serve", "--port", "0"],
            cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        assert proc.stdout is not None
        base = next(
            line.split("serving ")[1].split()[0] for line in proc.stdout if "serving http" in line
        )
        try:
            print(f"REST submit + wait   {summary(asyncio.run(bench_rest(base, args.calls)))}")
            print(f"MCP streamable HTTP  {summary(asyncio.run(bench_http(base, args.calls)))}")
        finally:
            proc.terminate()
            proc.wait(60)
            proc.stdout.close()
        stdio = asyncio.run(bench_stdio(project, env, args.calls))
        print(f"MCP stdio            {summary(stdio)}")
    finally:
        if not os.environ.get("QASDK_DATABASE_URL"):
            stop_embedded(data)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
