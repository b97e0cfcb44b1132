"""Idle ``qasdk serve`` memory with 1,000 tools: the main process's RSS, and its children's.

    python bench/memory.py [--tools 1000] [--files 50] [--starts 3] [--settle 2]
                           [--no-worker] [--imports]

Starts a private embedded PostgreSQL (or uses ``QASDK_DATABASE_URL``), writes a
project with ``--tools`` generated ``@tool`` functions in ``--files`` modules,
runs ``qasdk sync tools``, then ``--starts`` times:

1. starts ``qasdk serve --port 0`` (with ``--no-worker``: the API only), waits
   for "serving http://", for ``/health`` to answer, then ``--settle`` seconds;
2. reads VmRSS from ``/proc/PID/status`` of the main process and, separately,
   the sum over its descendants (the tool processes);
3. runs one direct task (POST /api/tasks, then GET /api/tasks/{id}?wait=10;
   skipped with ``--no-worker``) and reads both again;
4. runs one described task against a scripted model (one tool call, then an
   answer), the first that needs qwen-agent, and reads both again, with how
   long that first task took from submit to completed.

Prints the medians of the starts. ``--imports`` also prints the top-level
packages the idle main process has loaded (from a serve started under
``python -X importtime``), to see what a serve need not import before first use.

Goal: idle main process <= 150 MB RSS with 1,000 tools.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from api import start_server, stop_server, synced_project  # bench/ is on sys.path
from sync import generate

#: The direct task run after the idle reading: tool 0 is of the first style.
METHOD, PARAMS = "bench_mem_00000", {"city": "Paris", "days": 2}
TASK = {"method": METHOD, "params": PARAMS}


def rss_kb(pid: int) -> int:
    """VmRSS of ``pid`` in kB (0 if it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (children of all its threads, recursively)."""
    found: list[int] = []
    todo = [pid]
    while todo:
        current = todo.pop()
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                children = (task / "children").read_text().split()
            except (FileNotFoundError, ProcessLookupError):
                continue
            for child in map(int, children):
                found.append(child)
                todo.append(child)
    return found


def reading(pid: int) -> tuple[float, float, int]:
    """(main MB, children MB, number of children)."""
    kids = descendants(pid)
    return rss_kb(pid) / 1024, sum(rss_kb(k) for k in kids) / 1024, len(kids)


def http(method: str, url: str, body: Any = None) -> dict[str, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=30) as response:
        result: dict[str, Any] = json.loads(response.read())
        return result


def wait_idle(port: int, settle: float) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            http("GET", f"http://127.0.0.1:{port}/health")
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    time.sleep(settle)


def one_start(
    project: Path, env: dict[str, str], args: argparse.Namespace, model: Any
) -> dict[str, tuple[Any, ...]]:
    serve_args = ["--no-worker"] if args.no_worker else []
    proc, port = start_server(project, env, *serve_args)
    try:
        wait_idle(port, args.settle)
        result: dict[str, tuple[Any, ...]] = {"idle": reading(proc.pid)}
        if not args.no_worker:
            base = f"http://127.0.0.1:{port}/api/tasks"
            task = http("POST", base, TASK)
            done = http("GET", f"{base}/{task['task_id']}?wait=10")
            if done["status"] != "completed":
                raise RuntimeError(f"the direct task did not complete: {done}")
            time.sleep(args.settle)
            result["after_task"] = reading(proc.pid)
            from qasdk.testing import reply

            model.push(reply.tool_call(METHOD, PARAMS), reply.text("done"))
            started = time.perf_counter()
            task = http("POST", base, {"task_description": "look up Paris"})
            done = http("GET", f"{base}/{task['task_id']}?wait=30")
            first = time.perf_counter() - started
            if done["status"] != "completed":
                raise RuntimeError(f"the described task did not complete: {done}")
            time.sleep(args.settle)
            result["after_model"] = (*reading(proc.pid), first)
        return result
    finally:
        stop_server(proc)


def imported_packages(project: Path, env: dict[str, str], args: argparse.Namespace) -> None:
    """Start one serve under ``-X importtime`` and print the heaviest top-level packages."""
    serve_args = ["--no-worker"] if args.no_worker else []
    lines: list[str] = []
    python = (sys.executable, "-X", "importtime")
    proc, port = start_server(project, env, *serve_args, python=python, output=lines)
    try:
        wait_idle(port, args.settle)
    finally:
        stop_server(proc)
    cumulative: dict[str, int] = {}
    for line in lines:
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cum, name = (part.strip() for part in line[len("import time:") :].split("|"))
        if not cum.isdigit():
            continue
        top = name.strip().split(".")[0]
        if name.strip() == top:  # the package's own line holds its cumulative time
            cumulative[top] = max(cumulative.get(top, 0), int(cum))
    print(f"top-level packages imported by the idle main process: {len(cumulative)}")
    for name, micros in sorted(cumulative.items(), key=lambda kv: -kv[1])[:30]:
        print(f"  {name:30s} {micros / 1000:8.1f} ms (cumulative import time)")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tools", type=int, default=1000)
    parser.add_argument("--files", type=int, default=50)
    parser.add_argument("--starts", type=int, default=3)
    parser.add_argument("--settle", type=float, default=2.0, help="seconds idle before reading")
    parser.add_argument("--no-worker", action="store_true", help="serve the API only")
    parser.add_argument("--imports", action="store_true", help="also list what serve imports")
    args = parser.parse_args()

    from qasdk.store.embedded import stop_embedded
    from qasdk.testing import ScriptedModel

    root = Path(tempfile.mkdtemp(prefix="qasdk-bench-memory-"))
    project = root / "project"
    generate(project, args.tools, args.files, folder="tools", prefix="bench_mem")
    data = root / "pgdata"
    model = ScriptedModel()
    model.__enter__()
    (project / "model_config.yaml").write_text(json.dumps({"model": {"api_base": model.url}}))
    try:
        _, env = synced_project(project, data, "bench_mem")
        runs = [one_start(project, env, args, model) for _ in range(args.starts)]
        mode = "--no-worker" if args.no_worker else "embedded worker"
        print(f"qasdk serve ({mode}), {args.tools} tools in {args.files} modules, "
              f"median of {args.starts} starts (settle {args.settle:g} s)")  # fmt: skip
        phases = (
            ("idle", "idle"),
            ("after_task", "after one direct task"),
            ("after_model", "after one model task"),
        )
        for phase, label in phases:
            if phase not in runs[0]:
                continue
            main_mb = statistics.median(r[phase][0] for r in runs)
            kids_mb = statistics.median(r[phase][1] for r in runs)
            kids = max(r[phase][2] for r in runs)
            every = ", ".join(f"{r[phase][0]:.1f}" for r in runs)
            print(f"  {label:22s} main {main_mb:7.1f} MB  (runs: {every})")
            print(f"  {'':22s} children {kids_mb:7.1f} MB in {kids} processes")
            if phase == "after_model":
                first = statistics.median(r[phase][3] for r in runs)
                print(f"  {'':22s} first model task {first * 1000:7.0f} ms submit -> completed")
        print("  goal: idle main process <= 150 MB")
        if args.imports:
            imported_packages(project, env, args)
    finally:
        model.__exit__(None, None, None)
        if not os.environ.get("QASDK_DATABASE_URL"):
            stop_embedded(data)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
