"""Task graphs: how close a graph runs to its critical path, and the delay per edge.

    python bench/graph.py [--nodes 100] [--max-deps 3] [--sleep-ms 5] [--runs 3] [--seed 1]
                          [--concurrency 4] [--chain]

Starts a private embedded PostgreSQL (or uses ``QASDK_DATABASE_URL``) and one
``qasdk serve`` with its embedded worker, then submits ``--runs`` random DAGs of
``--nodes`` direct sub-tasks (each sleeps ``--sleep-ms``; each depends on up to
``--max-deps`` earlier ones, fixed by ``--seed``). For each graph it prints:

- the wall time from the submit to the parent's completion;
- the critical path: the longest chain of dependencies, summing each sub-task's
  own run time (``completed_at - started_at`` as PostgreSQL recorded them);
- their ratio (1.0 would be a scheduler that costs nothing);
- the scheduling delay per edge: a sub-task's start minus its last dependency's
  completion (p50, p90, max), the time the graph machinery adds between two steps.

A sub-task that is ready waits for a free worker slot too: with ``--concurrency``
lower than the graph's width, the per-edge delay includes that queueing, which is
capacity, not scheduling; ``--chain`` (one ready sub-task at a time) measures
the scheduling alone. Goal on this 2-core machine: <= 10 ms p50 per edge.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from api import (  # bench/ is on sys.path as a script
    percentile,
    start_server,
    stop_server,
    synced_project,
)

TOOL = '''
import time

from qasdk import tool


@tool
def bench_step(ms: int, after: list[int] | None = None) -> int:
    """Sleep a little and return how long.

    Args:
        ms: Milliseconds to sleep.
        after: The results of the steps this one waited for (unused).
    """
    time.sleep(ms / 1000)
    return ms
'''


def random_dag(nodes: int, max_deps: int, sleep_ms: int, rng: random.Random) -> list[Any]:
    """``subtasks`` of a random DAG: each node depends on up to ``max_deps`` earlier ones."""
    graph = []
    for index in range(nodes):
        deps = sorted(rng.sample(range(index), min(index, rng.randint(0, max_deps))))
        node: dict[str, Any] = {"id": f"n{index}", "method": "bench_step"}
        node["params"] = {"ms": sleep_ms}
        if deps:
            node["depends_on"] = [f"n{d}" for d in deps]
            node["params"]["after"] = [{"$ref": f"n{d}.result"} for d in deps]
        graph.append(node)
    return graph


def chain(nodes: int, sleep_ms: int) -> list[Any]:
    """``subtasks`` of a chain: each node waits for the one before (every edge is critical)."""
    graph: list[Any] = [{"id": "n0", "method": "bench_step", "params": {"ms": sleep_ms}}]
    for index in range(1, nodes):
        graph.append(
            {
                "id": f"n{index}",
                "method": "bench_step",
                "params": {"ms": sleep_ms, "after": [{"$ref": f"n{index - 1}.result"}]},
                "depends_on": [f"n{index - 1}"],
            }
        )
    return graph


def _when(value: str) -> float:
    return datetime.fromisoformat(value).timestamp()


def measure(base: str, graph: list[Any], http: Any) -> dict[str, float]:
    started = time.perf_counter()
    response = http.post(f"{base}/api/tasks", json={"subtasks": graph})
    response.raise_for_status()
    parent = response.json()["task_id"]
    while True:
        task = http.get(f"{base}/api/tasks/{parent}", params={"wait": 30}).json()
        if task["status"] in ("completed", "failed", "cancelled"):
            break
    wall = time.perf_counter() - started
    if task["status"] != "completed":
        raise RuntimeError(f"the graph ended {task['status']}: {task.get('error')}")
    listed = http.get(
        f"{base}/api/tasks", params={"parent_id": parent, "limit": len(graph) + 1}
    ).json()["tasks"]
    if len(listed) != len(graph):
        raise RuntimeError(f"listed {len(listed)} of {len(graph)} sub-tasks")
    by_id = {t["subtask_id"]: t for t in listed}
    start = {k: _when(t["started_at"]) for k, t in by_id.items()}
    end = {k: _when(t["completed_at"]) for k, t in by_id.items()}
    longest: dict[str, float] = {}
    delays: list[float] = []
    for node in graph:  # in topological order: dependencies come first
        key, deps = node["id"], node.get("depends_on", [])
        run = end[key] - start[key]
        longest[key] = run + max((longest[d] for d in deps), default=0.0)
        if deps:
            delays.append(start[key] - max(end[d] for d in deps))
    critical = max(longest.values())
    return {
        "wall": wall * 1000,
        "critical": critical * 1000,
        "ratio": wall / critical,
        "edge_p50": percentile(delays, 0.5) * 1000,
        "edge_p90": percentile(delays, 0.9) * 1000,
        "edge_max": max(delays) * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--max-deps", type=int, default=3)
    parser.add_argument("--sleep-ms", type=int, default=5)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--concurrency", type=int, default=4, help="worker.concurrency (tasks at once)"
    )
    parser.add_argument(
        "--chain", action="store_true", help="a chain instead (each node waits for the last)"
    )
    args = parser.parse_args()

    import httpx

    from qasdk.store.embedded import stop_embedded

    root = Path(tempfile.mkdtemp(prefix="qasdk-bench-graph-"))
    project = root / "project"
    (project / "tools").mkdir(parents=True)
    (project / "tools" / "bench_graph_tools.py").write_text(TOOL)
    data = root / "pgdata"
    try:
        _, env = synced_project(
            project, data, "bench_graph", QASDK_WORKER_CONCURRENCY=str(args.concurrency)
        )
        proc, port = start_server(project, env)
        base = f"http://127.0.0.1:{port}"
        rows = []
        try:
            with httpx.Client(timeout=60) as http:
                warm = random_dag(5, 1, 0, random.Random(0))
                measure(base, warm, http)
                for run in range(args.runs):
                    graph = random_dag(
                        args.nodes, args.max_deps, args.sleep_ms, random.Random(args.seed + run)
                    )
                    if args.chain:
                        graph = chain(args.nodes, args.sleep_ms)
                    rows.append(measure(base, graph, http))
                    print(
                        f"run {run + 1}: wall {rows[-1]['wall']:8.1f} ms  critical path "
                        f"{rows[-1]['critical']:7.1f} ms  ratio {rows[-1]['ratio']:5.2f}  "
                        f"edge p50 {rows[-1]['edge_p50']:6.2f} ms  p90 "
                        f"{rows[-1]['edge_p90']:6.2f} ms  max {rows[-1]['edge_max']:7.2f} ms"
                    )
        finally:
            stop_server(proc)
        shape = "chain" if args.chain else f"random DAG (max {args.max_deps} deps)"
        print(
            f"\n{args.nodes}-node {shape}, {args.sleep_ms} ms per node, worker.concurrency "
            f"{args.concurrency}, median of {len(rows)} runs:"
        )
        for name, label in [
            ("wall", "submit -> parent completed  ms"),
            ("critical", "critical path (sum of runs)  ms"),
            ("ratio", "wall / critical path          "),
            ("edge_p50", "scheduling delay p50/edge    ms"),
            ("edge_p90", "scheduling delay p90/edge    ms"),
        ]:
            print(f"  {label} {statistics.median(r[name] for r in rows):9.2f}")
    finally:
        if not os.environ.get("QASDK_DATABASE_URL"):
            stop_embedded(data)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
