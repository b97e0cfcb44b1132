"""Fault tolerance: tasks survive workers being SIGKILLed.

    python bench/faults.py [--tasks 200] [--workers 3] [--concurrency 2]
                           [--kill-every 2.0] [--seed 1] [--keep] [--json-logs]

Starts a private embedded PostgreSQL (or uses ``QASDK_DATABASE_URL``, deleting
only its own tasks afterwards; the tool named ``record`` is registered there,
replacing one of that name), syncs one tool, ``record(tag, seconds)``, which
appends ``start <tag> <pid> <ppid> <time>`` and ``end ...`` lines to a runs
file (each line flushed and fsynced) and sleeps in between, then runs:

- ``qasdk serve --port 0 --no-worker`` (the API only) and ``--workers`` x
  ``qasdk worker`` processes, all from the project folder;
- ``--tasks`` direct tasks of 0.2-1.0 s each, submitted over the first ~10 s;
- every ``--kill-every`` seconds, one random live worker is SIGKILLed (its tool
  processes die with it) and a replacement is started, until every task is
  finished (or 120 s after the last submission); the remaining workers and the
  server are then stopped with SIGTERM.

The project's ``model_config.yaml`` sets ``worker: {heartbeat_interval: 0.5,
stalled_after: 2.0, shutdown_grace: 5}`` so that a dead worker's tasks are
queued again within a few seconds: with the defaults (a heartbeat every 2 s,
presumed dead after 10 s) each recovery would take ~10 s. ``logging: {level:
WARNING}`` keeps each process's output (a file in the temporary folder) to what
went wrong and the recoveries.

Reported, from the API (task statuses) and the runs file:

- lost: accepted (201) but not ``completed``: failed (listed with their
  errors), or still pending/running at the end (listed with where their queue
  job is);
- run twice: a tag with two runs whose intervals overlap, a run being [its
  ``start`` line, its ``end`` line or, without one, the time its worker (the
  ``ppid`` on the line) was killed];
- restarted after a kill: a tag started more than once, one run after the
  other (at-least-once delivery: expected), and how many of those had already
  run to the end once (killed before the outcome was written);
- recovery wait: from a kill to the start of the run that took over each run
  the kill interrupted (p50/max);
- double recoveries: a job queued again by two recovery loops so close together
  that the second one took it from a live worker (see ``log_summary``).

Goals: 0 lost, 0 run twice (exit status 1 otherwise), and every worker stopped
with SIGTERM exits 0. ``--keep`` keeps the temporary folder (process outputs,
runs file, kills, the database); ``--json-logs`` also writes each process's
INFO log as JSON there.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import itertools
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

TOOL = '''
import os
import time

from qasdk import tool

RUNS = os.environ.get("QASDK_BENCH_RUNS", "runs.log")


def _line(event: str, tag: str) -> None:
    with open(RUNS, "a") as log:
        log.write(f"{event} {tag} {os.getpid()} {os.getppid()} {time.time():.6f}\\n")
        log.flush()
        os.fsync(log.fileno())


@tool
def record(tag: str, seconds: float) -> str:
    """Write a start line, sleep, write an end line.

    Args:
        tag: Names the run in the runs file.
        seconds: How long the run lasts.
    """
    _line("start", tag)
    time.sleep(seconds)
    _line("end", tag)
    return tag
'''

ANNOUNCE = re.compile(r"serving http://\S+:(\d+) ")
WORKER_READY = re.compile(r"worker \S+ running up to")
RECOVERED = re.compile(r"job (\d+) \(task \S+\): its worker stopped; queued again")
TERMINAL = {"completed", "failed", "cancelled"}
HEARTBEAT = 0.5  # worker.heartbeat_interval (default 2 s)
STALLED_AFTER = 2.0  # worker.stalled_after (default 10 s)
SHUTDOWN_GRACE = 5.0  # worker.shutdown_grace (default 30 s)
SUBMIT_SPREAD = 10.0  # seconds over which the tasks are submitted
DEADLINE = 120.0  # seconds after the last submission before giving up
# A tool may still write its end line while its killed worker is being torn down (it
# gets SIGKILL from PR_SET_PDEATHSIG once the worker is gone): within this many
# seconds of the kill, that is not a tool outliving its worker.
OUTLIVE_SLACK = 0.2


class Child:
    """A `qasdk` process; its output goes to a file (no pipe to drain or close)."""

    def __init__(self, name: str, args: list[str], root: Path, env: dict[str, str]) -> None:
        self.name = name
        self.log = root / "logs" / f"{name}.out"
        self.log.parent.mkdir(exist_ok=True)
        with self.log.open("w") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "qasdk", *args],
                cwd=root / "project",
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.pid = self.proc.pid
        self.killed_at: float | None = None  # time.time() of our SIGKILL
        self.crashed_at: float | None = None  # when we noticed an exit we did not cause
        self.stopped: int | None = None  # exit status after our SIGTERM

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    @property
    def gone(self) -> bool:
        """Killed by us, or died by itself."""
        return self.killed_at is not None or self.crashed_at is not None

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def tail(self, lines: int = 15) -> str:
        return "\n".join(f"    {line}" for line in self.output().splitlines()[-lines:])

    def wait_for(self, pattern: re.Pattern[str], timeout: float = 60) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = pattern.search(self.output())
            if match:
                return match
            if not self.alive:
                break
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} never printed {pattern.pattern!r}:\n{self.tail(40)}")

    def sigkill(self) -> float:
        self.killed_at = time.time()
        self.proc.kill()
        self.proc.wait()
        return self.killed_at

    def wait_stopped(self, timeout: float) -> int | None:
        """After our SIGTERM (sent once: a second one means "exit now"); SIGKILL if it hangs."""
        try:
            self.stopped = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            self.stopped = None
        return self.stopped

    def cleanup(self) -> None:
        if self.alive:
            self.proc.kill()
            self.proc.wait()


def request(port: int, method: str, path: str) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path)
        response = conn.getresponse()
        data = response.read()
        return response.status, json.loads(data) if data else None
    finally:
        conn.close()


@dataclass
class Submissions:
    """What the submitting thread did."""

    accepted: dict[str, str] = field(default_factory=dict)  # task id -> tag
    refused: list[str] = field(default_factory=list)
    first: float = 0.0  # time.time() of the first / last submission
    last: float = 0.0
    done: threading.Event = field(default_factory=threading.Event)


def submit_all(port: int, plan: list[tuple[float, str, float]], out: Submissions) -> None:
    """POST each (offset, tag, seconds) at its offset from now, on one keep-alive connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    started = time.monotonic()
    out.first = time.time()
    try:
        for offset, tag, seconds in plan:
            time.sleep(max(0.0, started + offset - time.monotonic()))
            body = json.dumps({"method": "record", "params": {"tag": tag, "seconds": seconds}})
            try:
                conn.request(
                    "POST", "/api/tasks", body.encode(), {"Content-Type": "application/json"}
                )
                response = conn.getresponse()
                data = response.read()
            except (OSError, http.client.HTTPException) as exc:
                out.refused.append(f"{tag}: {type(exc).__name__}: {exc}")
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                continue
            if response.status == 201:
                out.accepted[json.loads(data)["task_id"]] = tag
            else:
                out.refused.append(f"{tag}: {response.status} {data[:200]!r}")
    finally:
        out.last = time.time()
        conn.close()
        out.done.set()


def fetch_tasks(port: int, ids: set[str]) -> dict[str, dict[str, Any]]:
    """Our tasks, read from the API (newest first, cursor pagination)."""
    found: dict[str, dict[str, Any]] = {}
    cursor = ""
    while len(found) < len(ids):
        query = f"&cursor={cursor}" if cursor else ""
        status, page = request(port, "GET", f"/api/tasks?limit=500{query}")
        if status != 200:
            raise RuntimeError(f"GET /api/tasks answered {status}: {page}")
        for task in page["tasks"]:
            if task["task_id"] in ids:
                found[task["task_id"]] = task
        cursor = page["next_cursor"]
        if not cursor:
            break
    return found


@dataclass
class Run:
    tag: str
    pid: int
    ppid: int
    start: float
    end: float | None = None  # its end line
    cut: float | None = None  # no end line: when its worker was killed (or noticed dead)

    @property
    def until(self) -> float:
        if self.end is not None:
            return self.end
        return self.cut if self.cut is not None else float("inf")


def read_runs(path: Path, died: dict[int, float]) -> list[Run]:
    """The runs in the runs file; ``died``: worker pid -> when it was killed."""
    runs: list[Run] = []
    open_runs: dict[tuple[str, int], Run] = {}  # a tool process runs one call at a time
    if not path.exists():
        return runs
    for line in path.read_text().splitlines():
        event, tag, pid, ppid, when = line.split()
        key = (tag, int(pid))
        if event == "start":
            run = Run(tag, int(pid), int(ppid), float(when))
            runs.append(run)
            open_runs[key] = run
        elif key in open_runs:
            open_runs.pop(key).end = float(when)
    for run in runs:
        if run.end is None:
            run.cut = died.get(run.ppid)
    return runs


@dataclass
class Analysis:
    by_tag: dict[str, list[Run]]
    twice: dict[str, list[Run]]  # tags run concurrently twice
    restarted: int  # tags started more than once, sequentially
    finished_twice: int  # ... of which had run to the end more than once
    waits: list[float]  # kill -> start of the rescuing run
    interrupted: int  # runs a kill cut short
    unrescued: int  # ... never started again
    unfinished: list[Run]  # no end line, and its worker was not killed
    outlived: list[tuple[Run, float]]  # ended after its worker was killed (by so long)


def analyse(runs: list[Run], died: dict[int, float]) -> Analysis:
    by_tag: dict[str, list[Run]] = {}
    for run in runs:
        by_tag.setdefault(run.tag, []).append(run)
    twice: dict[str, list[Run]] = {}
    restarted = finished_twice = 0
    for tag, tag_runs in by_tag.items():
        tag_runs.sort(key=lambda r: r.start)
        until = float("-inf")
        for run in tag_runs:
            if run.start < until:  # started before an earlier run had ended
                twice[tag] = tag_runs
            until = max(until, run.until)
        if len(tag_runs) > 1 and tag not in twice:
            restarted += 1
            finished_twice += sum(r.end is not None for r in tag_runs) > 1
    waits: list[float] = []
    interrupted = unrescued = 0
    for run in runs:
        if run.end is None and run.cut is not None:
            interrupted += 1
            later = [r.start for r in by_tag[run.tag] if r.start > run.cut]
            if later:
                waits.append(min(later) - run.cut)
            else:
                unrescued += 1
    return Analysis(
        by_tag=by_tag,
        twice=twice,
        restarted=restarted,
        finished_twice=finished_twice,
        waits=waits,
        interrupted=interrupted,
        unrescued=unrescued,
        unfinished=[r for r in runs if r.end is None and r.cut is None],
        outlived=[
            (r, r.end - died[r.ppid])
            for r in runs
            if r.end is not None and r.ppid in died and r.end > died[r.ppid] + OUTLIVE_SLACK
        ],
    )


def _stamp(line: str) -> float | None:
    """The time of a log line, in the text format (the default) or as JSON."""
    try:
        if line.startswith("{"):
            return datetime.fromisoformat(json.loads(line)["timestamp"]).timestamp()
        return datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()
    except (ValueError, KeyError):
        return None


def log_summary(children: list[Child]) -> tuple[dict[str, int], list[str]]:
    """Counts of the notable lines in every process's output, and the double recoveries.

    A job queued again twice less than ``STALLED_AFTER - HEARTBEAT`` apart was,
    the second time, held by a worker that had just fetched it and whose
    heartbeat could not be stale yet: two recovery loops listed the same stalled
    job, and the second one retried it after another worker had taken it.
    """
    patterns = {
        "jobs queued again": ("its worker stopped; queued again",),
        "jobs skipped (task locked elsewhere)": ("already running on another worker",),
        "outcomes dropped (newer attempt)": ("a newer attempt owns it",),
        "ERROR lines": (" - ERROR - ", '"level": "ERROR"'),
        "tracebacks": ("Traceback (most recent call last)",),
    }
    counts = dict.fromkeys(patterns, 0)
    recoveries: list[tuple[int, float, str]] = []
    for child in children:
        for line in child.output().splitlines():
            for name, needles in patterns.items():
                counts[name] += any(needle in line for needle in needles)
            match = RECOVERED.search(line)
            when = _stamp(line) if match else None
            if match and when is not None:
                recoveries.append((int(match.group(1)), when, child.name))
    recoveries.sort()
    doubles = [
        f"double recovery: job {a[0]} queued again by {a[2]}, then by {b[2]}"
        f" {b[1] - a[1]:.3f} s later"
        for a, b in itertools.pairwise(recoveries)
        if a[0] == b[0] and b[1] - a[1] < STALLED_AFTER - HEARTBEAT
    ]
    counts["double recoveries"] = len(doubles)
    return counts, doubles


def job_states(url: str, ids: list[str]) -> dict[str, str]:
    """Where the queue job of each of ``ids`` is (read only)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT t.id::text, t.job_id, j.status, j.worker_id,"
            " extract(epoch FROM now() - w.last_heartbeat)"
            " FROM tasks t LEFT JOIN procrastinate_jobs j ON j.id = t.job_id"
            " LEFT JOIN procrastinate_workers w ON w.id = j.worker_id"
            " WHERE t.id = ANY(%s::uuid[])",
            (ids,),
        ).fetchall()
    states = {}
    for task_id, job_id, status, worker_id, age in rows:
        if status is None:
            states[task_id] = f"job {job_id} is gone: nothing will run this task again"
        else:
            heartbeat = "" if age is None else f", last heartbeat {float(age):.1f} s ago"
            states[task_id] = f"job {job_id} {status} (worker {worker_id}{heartbeat})"
    return states


def clean(url: str, ids: list[str]) -> None:
    """Delete this run's tasks and their queue jobs (safe on a shared database)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "DELETE FROM procrastinate_jobs WHERE id IN "
            "(SELECT job_id FROM tasks WHERE id = ANY(%s::uuid[]))",
            (ids,),
        )
        conn.execute("DELETE FROM tasks WHERE id = ANY(%s::uuid[])", (ids,))


def write_project(root: Path, concurrency: int) -> None:
    import yaml

    project = root / "project"
    (project / "tools").mkdir(parents=True)
    (project / "tools" / "fault_tools.py").write_text(TOOL)
    worker = {
        "heartbeat_interval": HEARTBEAT,
        "stalled_after": STALLED_AFTER,
        "concurrency": concurrency,
        "shutdown_grace": SHUTDOWN_GRACE,
    }
    config = {"worker": worker, "logging": {"level": "WARNING"}}
    (project / "model_config.yaml").write_text(yaml.safe_dump(config))


class Bench:
    """The processes of one run, and what happened to them."""

    def __init__(self, args: argparse.Namespace, root: Path, env: dict[str, str]) -> None:
        self.args = args
        self.root = root
        self.env = env
        self.rng = random.Random(args.seed)
        self.children: list[Child] = []
        self.workers: list[Child] = []
        self.kills: list[tuple[int, float]] = []
        self.subs = Submissions()
        self.server: Child | None = None
        self.server_rc: int | None = None
        self.statuses: dict[str, dict[str, Any]] = {}
        self.wall = 0.0
        self.deadline_hit = False

    def spawn(self, name: str, *cmd: str) -> Child:
        env = self.env
        if self.args.json_logs:
            env = {
                **env,
                "QASDK_LOGGING_LEVEL": "INFO",
                "QASDK_LOGGING_FORMAT": "json",
                "QASDK_LOGGING_FILE": str(self.root / "logs" / f"{name}.json"),
            }
        child = Child(name, list(cmd), self.root, env)
        self.children.append(child)
        return child

    def start_worker(self) -> Child:
        worker = self.spawn(f"worker-{len(self.workers) + 1}", "worker")
        self.workers.append(worker)
        return worker

    def kill_one(self) -> None:
        live = [w for w in self.workers if w.alive]
        ready = [w for w in live if WORKER_READY.search(w.output())]
        if not live:
            return
        victim = self.rng.choice(ready or live)
        at = victim.sigkill()
        self.kills.append((victim.pid, at))
        with (self.root / "kills.log").open("a") as log:
            log.write(f"{victim.name} {victim.pid} {at:.6f}\n")
        self.start_worker()  # same capacity

    def run(self) -> None:
        args = self.args
        server = self.server = self.spawn("server", "serve", "--port", "0", "--no-worker")
        port = int(server.wait_for(ANNOUNCE).group(1))
        for worker in [self.start_worker() for _ in range(args.workers)]:
            worker.wait_for(WORKER_READY)

        plan = [
            (i * SUBMIT_SPREAD / args.tasks, f"t{i:04d}", round(self.rng.uniform(0.2, 1.0), 3))
            for i in range(args.tasks)
        ]
        submitter = threading.Thread(target=submit_all, args=(port, plan, self.subs), daemon=True)
        started = time.monotonic()
        submitter.start()
        next_kill = started + args.kill_every
        next_check = started + SUBMIT_SPREAD
        while True:
            now = time.monotonic()
            if not server.alive:
                raise RuntimeError(f"qasdk serve exited {server.proc.returncode}:\n{server.tail()}")
            for worker in self.workers:
                if not worker.gone and not worker.alive:
                    worker.crashed_at = time.time()  # not ours: note it, keep the capacity
                    self.start_worker()
            if now >= next_kill:
                next_kill += args.kill_every
                self.kill_one()
            if self.subs.done.is_set() and now >= next_check:
                next_check = now + 0.5
                ids = set(self.subs.accepted)
                self.statuses = fetch_tasks(port, ids)
                done = len(self.statuses) == len(ids) and all(
                    t["status"] in TERMINAL for t in self.statuses.values()
                )
                self.deadline_hit = not done and time.time() > self.subs.last + DEADLINE
                if done or self.deadline_hit:
                    break
            time.sleep(0.05)
        self.wall = time.monotonic() - started

        for worker in self.workers:  # a replacement may still be starting: let it run first
            if not worker.gone:
                with contextlib.suppress(RuntimeError):
                    worker.wait_for(WORKER_READY)
                if not worker.alive:
                    worker.crashed_at = time.time()
        stopping = [w for w in self.workers if not w.gone]
        for worker in stopping:
            worker.proc.terminate()
        for worker in stopping:
            worker.wait_stopped(SHUTDOWN_GRACE + 30)
        self.statuses = fetch_tasks(port, set(self.subs.accepted))
        server.proc.terminate()
        self.server_rc = server.wait_stopped(60)

    def report(self, url: str) -> bool:
        """Print the results; True if the goals (0 lost, 0 run twice) were met."""
        args, subs = self.args, self.subs
        died = dict(self.kills)
        died.update({w.pid: w.crashed_at for w in self.workers if w.crashed_at is not None})
        found = analyse(read_runs(self.root / "runs.log", died), died)

        accepted = len(subs.accepted)
        by_status: dict[str, list[dict[str, Any]]] = {}
        for task_id in subs.accepted:
            task = self.statuses.get(task_id, {"task_id": task_id, "status": "missing"})
            by_status.setdefault(task["status"], []).append(task)
        completed = len(by_status.get("completed", []))
        failed = by_status.get("failed", [])
        others = {s: len(v) for s, v in by_status.items() if s not in ("completed", "failed")}
        lost = accepted - completed
        twice = len(found.twice)
        stopped = [w for w in self.workers if not w.gone]
        clean_exits = sum(w.stopped == 0 for w in stopped)
        crashed = [w for w in self.workers if w.crashed_at is not None]
        attempts = [t.get("attempts", 0) for t in self.statuses.values()]
        counts, doubles = log_summary(self.children)

        print(
            f"faults: {args.tasks} tasks of 0.2-1.0 s over {SUBMIT_SPREAD:g} s, "
            f"{args.workers} x `qasdk worker` (concurrency {args.concurrency}), "
            f"one SIGKILLed every {args.kill_every:g} s (seed {args.seed})"
        )
        print(f"  accepted (201)          {accepted:6d}       goal {args.tasks}")
        print(f"  completed               {completed:6d}       goal {accepted}")
        print(f"  failed                  {len(failed):6d}       goal 0")
        print(
            f"  lost                    {lost:6d}       goal 0"
            + (f"   (not completed: {others})" if others else "")
        )
        print(f"  run twice (at once)     {twice:6d}       goal 0")
        print(
            f"  restarted after a kill  {found.restarted:6d}       at-least-once, expected"
            f" ({found.finished_twice} had already run to the end once)"
        )
        print(
            f"  workers SIGKILLed       {len(self.kills):6d}       runs cut short:"
            f" {found.interrupted}, never started again: {found.unrescued}"
        )
        print(
            f"  stopped by SIGTERM      {len(stopped):6d}       exit 0: {clean_exits}"
            f" (goal {len(stopped)}); server exit {self.server_rc} (goal 0)"
        )
        print(f"  workers died unasked    {len(crashed):6d}       goal 0")
        print(
            f"  wall time               {self.wall:8.1f} s   first submission -> all finished"
            + (f" (gave up {DEADLINE:g} s after the last submission)" if self.deadline_hit else "")
        )
        if found.waits:
            print(
                f"  recovery wait p50       {statistics.median(found.waits):8.2f} s   "
                f"max {max(found.waits):.2f} s: kill -> the rescuing run starts"
                f" (stalled_after {STALLED_AFTER:g} s)"
            )
        if attempts:
            spread = {n: attempts.count(n) for n in sorted(set(attempts))}
            print(f"  attempts per task       {spread}")
        print("  in the processes' output: " + ", ".join(f"{k} {v}" for k, v in counts.items()))

        problems: list[str] = [f"submit refused: {text}" for text in subs.refused[:5]]
        for task in failed[:10]:
            tag = subs.accepted[task["task_id"]]
            problems.append(f"failed {tag} ({task['task_id']}): {task.get('error')}")
        unfinished = [t for s, v in by_status.items() if s not in TERMINAL for t in v]
        where = job_states(url, [t["task_id"] for t in unfinished]) if unfinished else {}
        for task in unfinished[:10]:
            tag = subs.accepted[task["task_id"]]
            runs = [(r.pid, r.ppid, "ended" if r.end else "cut") for r in found.by_tag.get(tag, [])]
            problems.append(
                f"{task['status']} {tag} ({task['task_id']}), attempts {task.get('attempts')},"
                f" {where.get(task['task_id'], 'job unknown')}; runs (pid, worker): {runs}"
            )
        for tag, tag_runs in list(found.twice.items())[:10]:
            spans = ", ".join(
                f"[{r.start - subs.first:.2f}, {r.until - subs.first:.2f}] pid {r.pid} ppid {r.ppid}"
                for r in tag_runs
            )
            problems.append(f"run twice {tag}: {spans}")
        for run in found.unfinished[:10]:
            problems.append(
                f"run of {run.tag} (pid {run.pid}, worker {run.ppid}) never ended,"
                " and its worker was not killed"
            )
        for run, late in found.outlived[:10]:
            problems.append(
                f"run of {run.tag} (pid {run.pid}) ended {late:.2f} s after its worker"
                f" {run.ppid} was killed"
            )
        problems.extend(doubles[:10])
        for worker in crashed:
            problems.append(f"{worker.name} (pid {worker.pid}) exited by itself:\n{worker.tail()}")
        for worker in stopped:
            if worker.stopped != 0:
                problems.append(
                    f"{worker.name} (pid {worker.pid}) exited {worker.stopped} on SIGTERM:\n"
                    f"{worker.tail()}"
                )
        if self.server_rc != 0 and self.server is not None:
            problems.append(f"server exited {self.server_rc}:\n{self.server.tail()}")
        for line in problems:
            print(f"  ! {line}")
        return lost == 0 and twice == 0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=2, help="tasks per worker")
    parser.add_argument("--kill-every", type=float, default=2.0, help="seconds between kills")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--json-logs", action="store_true", help="INFO logs as JSON, per process")
    args = parser.parse_args()

    from qasdk.store.embedded import ensure_embedded, stop_embedded

    root = Path(tempfile.mkdtemp(prefix="qasdk-bench-faults-"))
    write_project(root, args.concurrency)
    data = root / "pgdata"
    shared = bool(os.environ.get("QASDK_DATABASE_URL"))
    bench: Bench | None = None
    url = ""
    ok = False
    try:
        url = os.environ.get("QASDK_DATABASE_URL") or ensure_embedded(data, database="bench_faults")
        env = {k: v for k, v in os.environ.items() if not k.startswith("QASDK_")}
        env.update(
            QASDK_DATABASE_URL=url,
            QASDK_BENCH_RUNS=str(root / "runs.log"),
            PYTHONUNBUFFERED="1",
        )
        subprocess.run(
            [sys.executable, "-m", "qasdk", "sync", "tools"],
            cwd=root / "project",
            env=env,
            check=True,
            capture_output=True,
        )
        bench = Bench(args, root, env)
        bench.run()
        ok = bench.report(url)
        if args.keep:
            print(f"  kept {root}")
    finally:
        if bench is not None:
            for child in bench.children:
                child.cleanup()
            if shared and bench.subs.accepted:
                clean(url, list(bench.subs.accepted))
        if not shared:
            stop_embedded(data)
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
