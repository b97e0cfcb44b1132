"""Fault tolerance: tasks survive workers being SIGKILLed, and PostgreSQL outages.

    python bench/faults.py [--scenario kill] [--tasks 200] [--workers 3]
                           [--concurrency 2] [--kill-every 2.0] [--seed 1]
                           [--keep] [--json-logs]
    python bench/faults.py --scenario outage [--tasks 100] [--outage-seconds 10]
                           [--outages 2] [--stop-mode alternate] [...]

Starts a private embedded PostgreSQL (or, for ``kill`` only, uses
``QASDK_DATABASE_URL``, deleting only its own tasks afterwards; the tool named
``record`` is registered there, replacing one of that name), syncs one tool,
``record(tag, seconds)``, which appends ``start <tag> <pid> <ppid> <time>`` and
``end ...`` lines to a runs file (each line flushed and fsynced: the side-effect
ledger) and sleeps in between, then runs ``qasdk serve --port 0 --no-worker``
(the API only) and ``--workers`` x ``qasdk worker`` processes, all from the
project folder, and one of two scenarios.

``--scenario kill`` (the default):

- ``--tasks`` direct tasks of 0.2-1.0 s each, submitted over the first ~10 s;
- every ``--kill-every`` seconds, one random live worker is SIGKILLed (its tool
  processes die with it) and a replacement is started, until every task is
  finished (or 120 s after the last submission); the remaining workers and the
  server are then stopped with SIGTERM.

``--scenario outage`` (needs the private PostgreSQL: it is stopped and started
again, so ``QASDK_DATABASE_URL`` must not be set):

- ``--tasks`` direct tasks of 0.2-1.0 s each, planned over the first ~10 s; a
  submission answered ``503`` (or cut off) is tried again every 0.5 s, each try
  with a tag of its own (``t0007``, ``t0007r1``, ...) so that a refused try that
  ran after all shows up in the ledger; one never answered ``201`` within 60 s
  (plus the outages) is refused, not lost;
- ``--outages`` times: once tools are in flight (or after 20 s), PostgreSQL is
  stopped (``--stop-mode``: ``immediate`` is a crash stop, ``pg_ctl -m
  immediate``, no checkpoint, WAL recovery on the next start; ``fast`` a clean
  one that ends every session; ``alternate``, the default, starts with
  ``immediate`` and takes turns), kept down ``--outage-seconds``, then started
  again; the next outage comes 3 s after it is back, once the tasks in flight
  at the last stop are finished (or 20 s later). Nobody is killed: the
  workers, the API and their tool processes live through it. A worker that
  exits by itself is replaced once the database is back, and reported.

The project's ``model_config.yaml`` sets ``worker: {heartbeat_interval: 0.5,
stalled_after: 2.0, shutdown_grace: 5}`` so that a dead worker's tasks are
queued again within a few seconds: with the defaults (a heartbeat every 2 s,
presumed dead after 10 s) each recovery would take ~10 s. ``logging: {level:
WARNING}`` keeps each process's output (a file in the temporary folder) to what
went wrong and the recoveries.

Reported for ``kill``, from the API (task statuses) and the runs file:

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

Reported for ``outage``: accepted, refused (never 201) and tries answered 503 or
cut off; completed, failed, lost (as above); run twice, which with no worker
killed is any tag started a second time: while an earlier run was still going
(at once), or after one had run to the end (re-run after completion: the
outage made the queue run a finished tool again); restarted (a second start
after a run that never wrote its end line); tries that were refused yet ran;
for each outage, the runs in flight when PostgreSQL stopped (how many ended
while it was down, how many of their tasks completed in one attempt), and from
PostgreSQL being back to the first tool starting and to the tasks in flight at
the stop being completed (recovery: the max of that); and from the last one
being back to every task done (the backlog included).

Goals: 0 lost, 0 run twice (exit status 1 otherwise, and when completed tasks
have no run in the runs file: the ledger is not being written), and every
worker stopped with SIGTERM exits 0. For an outage the goal is the README's
guarantee: a tool whose call was in flight when the database went away runs
once; its worker keeps the outcome and stores it when the database is back.
``--keep`` keeps the temporary folder (process outputs, runs file, kills,
outages, the database); ``--json-logs`` also writes each process's INFO log as
JSON there.
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
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

TOOL = '''
import os
import time

from qasdk import tool

RUNS = os.environ.get("FAULTS_BENCH_RUNS", "runs.log")


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
DATABASE = "bench_faults"  # in the private embedded PostgreSQL
StopMode = Literal["immediate", "fast"]


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
    tried: list[str] = field(default_factory=list)  # every tag sent (outage: with retries)
    retries: Counter[str] = field(default_factory=Counter)  # tries made again, by why
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


RETRY_EVERY = 0.5  # seconds between two tries of a refused submission (outage)
GIVE_UP = 60.0  # seconds, besides the outages, before a submission is refused for good


def submit_retrying(
    port: int, plan: list[tuple[float, str, float]], out: Submissions, patience: float
) -> None:
    """Like `submit_all`, but a try answered 503 or cut off is made again, with a new tag.

    Every try gets a tag of its own (``t0007``, ``t0007r1``, ...): a try that was
    refused but created a task all the same runs under its own tag, not as a second
    run of the accepted one. ``patience``: seconds before a submission is refused.
    """
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    started = time.monotonic()
    out.first = time.time()
    try:
        for offset, base, seconds in plan:
            time.sleep(max(0.0, started + offset - time.monotonic()))
            give_up = time.monotonic() + patience
            for attempt in itertools.count():
                tag = base if attempt == 0 else f"{base}r{attempt}"
                out.tried.append(tag)
                body = json.dumps({"method": "record", "params": {"tag": tag, "seconds": seconds}})
                try:
                    conn.request(
                        "POST", "/api/tasks", body.encode(), {"Content-Type": "application/json"}
                    )
                    response = conn.getresponse()
                    data = response.read()
                except (OSError, http.client.HTTPException) as exc:
                    reason = f"{type(exc).__name__}: {exc}"
                    out.retries[type(exc).__name__] += 1
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                else:
                    if response.status == 201:
                        out.accepted[json.loads(data)["task_id"]] = tag
                        break
                    reason = f"{response.status} {data[:200]!r}"
                    if response.status != 503:
                        out.refused.append(f"{tag}: {reason}")
                        break
                    out.retries["503"] += 1
                if time.monotonic() > give_up:
                    out.refused.append(f"{tag}: gave up after {patience:g} s: {reason}")
                    break
                time.sleep(RETRY_EVERY)
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


def unrecorded(
    accepted: dict[str, str], statuses: dict[str, dict[str, Any]], found: Analysis
) -> str:
    """A problem line if completed tasks have no run in the ledger (it is not being written)."""
    missing = [
        tag
        for task_id, tag in accepted.items()
        if statuses.get(task_id, {}).get("status") == "completed" and tag not in found.by_tag
    ]
    if not missing:
        return ""
    return (
        f"{len(missing)} completed tasks have no run in the runs file ({', '.join(missing[:5])}"
        f"{', ...' if len(missing) > 5 else ''}): the side-effect ledger is blind, nothing above"
        " about runs can be trusted"
    )


def _stamp(line: str) -> float | None:
    """The time of a log line, in the text format (the default) or as JSON."""
    try:
        if line.startswith("{"):
            return datetime.fromisoformat(json.loads(line)["timestamp"]).timestamp()
        return datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()
    except (ValueError, KeyError):
        return None


def log_summary(
    children: list[Child], extra: dict[str, tuple[str, ...]] | None = None
) -> tuple[dict[str, int], list[str]]:
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
        **(extra or {}),
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

    def start(self) -> int:
        """Start the API and the workers; the API's port."""
        server = self.server = self.spawn("server", "serve", "--port", "0", "--no-worker")
        port = int(server.wait_for(ANNOUNCE).group(1))
        for worker in [self.start_worker() for _ in range(self.args.workers)]:
            worker.wait_for(WORKER_READY)
        return port

    def plan(self) -> list[tuple[float, str, float]]:
        """(offset, tag, seconds) of each task to submit."""
        args = self.args
        return [
            (i * SUBMIT_SPREAD / args.tasks, f"t{i:04d}", round(self.rng.uniform(0.2, 1.0), 3))
            for i in range(args.tasks)
        ]

    def run(self) -> None:
        args = self.args
        port = self.start()
        server = self.server
        assert server is not None
        plan = self.plan()
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
        self.stop(port)

    def stop(self, port: int) -> None:
        """SIGTERM to the workers, then the server; the tasks' last statuses."""
        server = self.server
        assert server is not None
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

    def by_status(self) -> dict[str, list[dict[str, Any]]]:
        """The accepted tasks as the API last showed them, by status."""
        by_status: dict[str, list[dict[str, Any]]] = {}
        for task_id in self.subs.accepted:
            task = self.statuses.get(task_id, {"task_id": task_id, "status": "missing"})
            by_status.setdefault(task["status"], []).append(task)
        return by_status

    def task_problems(
        self,
        url: str,
        found: Analysis,
        by_status: dict[str, list[dict[str, Any]]],
        *,
        show_runs: bool = False,
    ) -> tuple[str, list[str]]:
        """A blind ledger's problem line (or ""), and a line per refused, failed or unfinished
        task; ``show_runs`` adds the ledger's runs of an unfinished one."""
        subs = self.subs
        blind = unrecorded(subs.accepted, self.statuses, found)
        problems: list[str] = [f"submit refused: {text}" for text in subs.refused[:5]]
        if blind:
            problems.append(blind)
        for task in by_status.get("failed", [])[:10]:
            tag = subs.accepted[task["task_id"]]
            problems.append(f"failed {tag} ({task['task_id']}): {task.get('error')}")
        unfinished = [t for s, v in by_status.items() if s not in TERMINAL for t in v]
        where = job_states(url, [t["task_id"] for t in unfinished]) if unfinished else {}
        for task in unfinished[:10]:
            tag = subs.accepted[task["task_id"]]
            line = (
                f"{task['status']} {tag} ({task['task_id']}), attempts {task.get('attempts')},"
                f" {where.get(task['task_id'], 'job unknown')}"
            )
            if show_runs:
                runs = [
                    (r.pid, r.ppid, "ended" if r.end else "cut") for r in found.by_tag.get(tag, [])
                ]
                line += f"; runs (pid, worker): {runs}"
            problems.append(line)
        return blind, problems

    def process_problems(
        self, doubles: list[str], crashed: list[Child], stopped: list[Child]
    ) -> list[str]:
        """Double recoveries, and processes that died unasked or did not stop cleanly."""
        problems = doubles[:10]
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
        return problems

    def report(self, url: str) -> bool:
        """Print the results; True if the goals (0 lost, 0 run twice) were met."""
        args, subs = self.args, self.subs
        died = dict(self.kills)
        died.update({w.pid: w.crashed_at for w in self.workers if w.crashed_at is not None})
        found = analyse(read_runs(self.root / "runs.log", died), died)

        accepted = len(subs.accepted)
        by_status = self.by_status()
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

        blind, problems = self.task_problems(url, found, by_status, show_runs=True)
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
        problems.extend(self.process_problems(doubles, crashed, stopped))
        for line in problems:
            print(f"  ! {line}")
        return lost == 0 and twice == 0 and not blind


FIRST_OUTAGE = 2.0  # seconds after the first submission, once tools are in flight
BETWEEN_OUTAGES = 3.0  # seconds from PostgreSQL being back to the next outage
IN_FLIGHT_WAIT = 20.0  # seconds an outage waits for tools in flight before going ahead
SETTLE = 3.0  # seconds after every task is done, for a wrongly recovered job to show
OUTAGE_LOG: dict[str, tuple[str, ...]] = {
    "outcomes kept through an outage": ("keeping it until the database is back",),
    "kept outcomes dropped (newer attempt)": ("kept outcome dropped",),
    "tasks to run again (database gone before the tool ran)": ("it will run again",),
    "queue worker restarts": ("queue worker: ",),
}


@dataclass
class Outage:
    mode: str  # pg_ctl stop -m ...
    stopping: float  # time.time() when the stop began
    down: float  # ... when PostgreSQL was down
    in_flight: list[str]  # tags whose tool was running when the stop began
    back: float = 0.0  # ... when PostgreSQL answered again


def in_flight(path: Path) -> list[str]:
    """Tags with a start line and no end line yet (a tool process runs one call at a time)."""
    running: set[tuple[str, str]] = set()
    if path.exists():
        for line in path.read_text().splitlines():
            fields = line.split()
            if len(fields) != 5:  # a line being written
                continue
            event, tag, pid = fields[:3]
            if event == "start":
                running.add((tag, pid))
            else:
                running.discard((tag, pid))
    return sorted(tag for tag, _ in running)


def _when(value: str | None) -> float | None:
    return None if value is None else datetime.fromisoformat(value).timestamp()


def classify_repeats(
    found: Analysis,
) -> tuple[dict[str, list[Run]], dict[str, list[Run]], dict[str, list[Run]]]:
    """Tags started more than once, with no worker killed: at once, after an end, after a cut.

    At once: started while an earlier run was going (a run without an end line whose
    worker did not die never ends). After an end: re-run after completion, the tool
    had run to the end and ran again. After a cut: its earlier run was cut short by
    its worker dying (by itself: the bench kills nobody here), then started again.
    """
    at_once: dict[str, list[Run]] = {}
    rerun: dict[str, list[Run]] = {}
    restarted: dict[str, list[Run]] = {}
    for tag, runs in found.by_tag.items():
        if len(runs) < 2:
            continue
        if tag in found.twice:
            at_once[tag] = runs
        elif any(
            early.end is not None and early.end <= late.start
            for i, late in enumerate(runs)
            for early in runs[:i]
        ):
            rerun[tag] = runs
        else:
            restarted[tag] = runs
    return at_once, rerun, restarted


class OutageBench(Bench):
    """PostgreSQL stopped and started again while tools are in flight; nobody is killed."""

    def __init__(
        self, args: argparse.Namespace, root: Path, env: dict[str, str], data: Path, database: str
    ) -> None:
        super().__init__(args, root, env)
        self.data = data
        self.database = database
        self.runs_file = root / "runs.log"
        self.outages: list[Outage] = []
        self.db_up = True
        self.next_settle_check = 0.0
        self.to_replace = 0  # workers that exited by themselves, replaced once the DB is up

    def modes(self) -> list[StopMode]:
        turns: tuple[StopMode, ...] = ("immediate", "fast")
        if self.args.stop_mode != "alternate":
            turns = (self.args.stop_mode,)
        return [turns[i % len(turns)] for i in range(self.args.outages)]

    def watch(self) -> None:
        """The API must live through it; a worker that exits is noted and, DB up, replaced."""
        server = self.server
        assert server is not None
        if not server.alive:
            raise RuntimeError(f"qasdk serve exited {server.proc.returncode}:\n{server.tail()}")
        for worker in self.workers:
            if not worker.gone and not worker.alive:
                worker.crashed_at = time.time()
                self.to_replace += 1
        while self.db_up and self.to_replace:
            self.to_replace -= 1
            self.start_worker()

    def outage(self, mode: StopMode) -> None:
        from qasdk.store.embedded import ensure_embedded, stop_embedded

        flying = in_flight(self.runs_file)
        stopping = time.time()
        stop_embedded(self.data, mode=mode)
        self.db_up = False
        outage = Outage(mode, stopping, time.time(), flying)
        self.outages.append(outage)
        with (self.root / "outages.log").open("a") as log:
            log.write(f"stop {mode} {stopping:.6f} {outage.down:.6f} {' '.join(flying)}\n")
        until = time.monotonic() + self.args.outage_seconds
        while time.monotonic() < until:
            self.watch()
            time.sleep(0.05)
        ensure_embedded(self.data, database=self.database)
        outage.back = time.time()
        self.db_up = True
        with (self.root / "outages.log").open("a") as log:
            log.write(f"back {outage.back:.6f}\n")

    def settled(self, port: int, anyway: bool) -> bool:
        """Whether the tasks in flight at the last outage are finished: the next one may
        come (``anyway``: it may, finished or not), so one outage's recovery is not
        measured through the next."""
        if not self.outages or anyway:
            return True
        if time.monotonic() < self.next_settle_check:
            return False
        self.next_settle_check = time.monotonic() + 0.5
        tags = set(self.outages[-1].in_flight)
        ids = {task_id for task_id, tag in self.subs.accepted.items() if tag in tags}
        try:
            tasks = fetch_tasks(port, ids)
        except (RuntimeError, OSError, http.client.HTTPException):
            return False
        return len(tasks) == len(ids) and all(t["status"] in TERMINAL for t in tasks.values())

    def run(self) -> None:
        args = self.args
        port = self.start()
        patience = GIVE_UP + args.outages * (args.outage_seconds + BETWEEN_OUTAGES)
        submitter = threading.Thread(
            target=submit_retrying, args=(port, self.plan(), self.subs, patience), daemon=True
        )
        started = time.monotonic()
        submitter.start()
        modes = self.modes()
        slots = args.workers * args.concurrency
        next_outage = started + FIRST_OUTAGE
        next_check = started
        while True:
            self.watch()
            now = time.monotonic()
            if len(self.outages) < args.outages:
                if (
                    now >= next_outage
                    and self.settled(port, now > next_outage + IN_FLIGHT_WAIT)
                    and (
                        len(in_flight(self.runs_file)) >= max(1, slots // 2)
                        or now >= next_outage + IN_FLIGHT_WAIT
                    )
                ):
                    self.outage(modes[len(self.outages)])
                    next_outage = time.monotonic() + BETWEEN_OUTAGES
            elif self.subs.done.is_set() and now >= next_check:
                next_check = now + 0.5
                ids = set(self.subs.accepted)
                try:
                    self.statuses = fetch_tasks(port, ids)
                except (RuntimeError, OSError, http.client.HTTPException):
                    continue  # the API is still catching up with the database
                done = len(self.statuses) == len(ids) and all(
                    t["status"] in TERMINAL for t in self.statuses.values()
                )
                last = max(self.subs.last, self.outages[-1].back if self.outages else 0.0)
                self.deadline_hit = not done and time.time() > last + DEADLINE
                if done or self.deadline_hit:
                    break
            time.sleep(0.05)
        self.wall = time.monotonic() - started
        time.sleep(SETTLE)
        self.watch()
        self.stop(port)

    def report(self, url: str) -> bool:
        args, subs = self.args, self.subs
        died = {w.pid: w.crashed_at for w in self.workers if w.crashed_at is not None}
        found = analyse(read_runs(self.runs_file, died), died)
        at_once, rerun, restarted = classify_repeats(found)
        twice = len(at_once) + len(rerun)

        accepted = len(subs.accepted)
        by_status = self.by_status()
        completed = len(by_status.get("completed", []))
        failed = by_status.get("failed", [])
        others = {s: len(v) for s, v in by_status.items() if s not in ("completed", "failed")}
        lost = accepted - completed
        ran_refused = sorted(set(found.by_tag) - set(subs.accepted.values()))
        stopped = [w for w in self.workers if not w.gone]
        clean_exits = sum(w.stopped == 0 for w in stopped)
        crashed = [w for w in self.workers if w.crashed_at is not None]
        attempts = [t.get("attempts", 0) for t in self.statuses.values()]
        counts, doubles = log_summary(self.children, OUTAGE_LOG)
        task_of = {tag: self.statuses.get(task_id, {}) for task_id, tag in subs.accepted.items()}

        modes = ", ".join(o.mode for o in self.outages)
        print(
            f"faults: {args.tasks} tasks of 0.2-1.0 s planned over {SUBMIT_SPREAD:g} s, "
            f"{args.workers} x `qasdk worker` (concurrency {args.concurrency}), PostgreSQL"
            f" stopped {len(self.outages)} x for {args.outage_seconds:g} s ({modes}) (seed {args.seed})"
        )
        retried = ", ".join(f"{k} x {v}" for k, v in sorted(subs.retries.items())) or "none"
        print(f"  accepted (201)          {accepted:6d}       goal {args.tasks}")
        print(
            f"  refused (never 201)     {len(subs.refused):6d}       not lost; tries made"
            f" again: {retried}"
        )
        print(f"  completed               {completed:6d}       goal {accepted}")
        print(f"  failed                  {len(failed):6d}       goal 0")
        print(
            f"  lost                    {lost:6d}       goal 0"
            + (f"   (not completed: {others})" if others else "")
        )
        print(
            f"  run twice               {twice:6d}       goal 0 (at once {len(at_once)},"
            f" re-run after completion {len(rerun)})"
        )
        print(
            f"  restarted               {len(restarted):6d}       a run cut short (its worker"
            " died), then started again"
        )
        print(f"  refused, yet ran        {len(ran_refused):6d}       goal 0")
        waits: list[float] = []
        for n, outage in enumerate(self.outages, 1):
            flying = [task_of.get(tag, {}) for tag in outage.in_flight]
            once = sum(t.get("status") == "completed" and t.get("attempts") == 1 for t in flying)
            ended_down = sum(
                any(r.end is not None and r.end < outage.back for r in found.by_tag.get(tag, []))
                for tag in outage.in_flight
            )
            resumed = min(
                (r.start for rs in found.by_tag.values() for r in rs if r.start > outage.back),
                default=None,
            )
            done = [_when(t.get("completed_at")) for t in flying]
            settled = [w for w in done if w is not None]
            wait = max(settled) - outage.back if settled and len(settled) == len(done) else None
            if wait is not None:
                waits.append(wait)
            print(
                f"  outage {n} ({outage.mode:9s})  down {outage.back - outage.down:5.1f} s;"
                f" in flight at the stop {len(outage.in_flight)}: ended while down {ended_down},"
                f" completed in 1 attempt {once}; back -> tools run again "
                + ("never" if resumed is None else f"{resumed - outage.back:.2f} s")
                + ", -> the in-flight tasks completed "
                + ("never" if wait is None else f"{wait:.2f} s")
            )
        finishes = [_when(t.get("completed_at")) for t in self.statuses.values()]
        last_done = max((w for w in finishes if w is not None), default=None)
        if self.outages and last_done is not None:
            print(
                f"  recovery                {max(waits, default=float('nan')):8.2f} s   max over"
                " the outages: back -> the tasks in flight at the stop completed"
                f" (stalled_after {STALLED_AFTER:g} s); last back -> all tasks done"
                f" {last_done - self.outages[-1].back:.2f} s (with the backlog)"
            )
        print(
            f"  stopped by SIGTERM      {len(stopped):6d}       exit 0: {clean_exits}"
            f" (goal {len(stopped)}); server exit {self.server_rc} (goal 0)"
        )
        print(f"  workers died unasked    {len(crashed):6d}       goal 0")
        print(
            f"  wall time               {self.wall:8.1f} s   first submission -> all finished"
            + (f" (gave up {DEADLINE:g} s after the last outage)" if self.deadline_hit else "")
        )
        if attempts:
            spread = {n: attempts.count(n) for n in sorted(set(attempts))}
            print(f"  attempts per task       {spread}")
        print("  in the processes' output: " + ", ".join(f"{k} {v}" for k, v in counts.items()))

        blind, problems = self.task_problems(url, found, by_status)
        for label, tags in (("run twice at once", at_once), ("re-run after completion", rerun)):
            for tag, tag_runs in list(tags.items())[:10]:
                spans = ", ".join(
                    f"[{r.start - subs.first:.2f}, {r.until - subs.first:.2f}]"
                    f" pid {r.pid} ppid {r.ppid}"
                    for r in tag_runs
                )
                task = task_of.get(tag, {})
                problems.append(
                    f"{label} {tag} (task {task.get('task_id')}, attempts"
                    f" {task.get('attempts')}): {spans}"
                )
        for tag in ran_refused[:10]:
            problems.append(f"refused, yet ran: {tag}")
        problems.extend(self.process_problems(doubles, crashed, stopped))
        for line in problems:
            print(f"  ! {line}")
        return lost == 0 and twice == 0 and not blind


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scenario", choices=["kill", "outage"], default="kill")
    parser.add_argument("--tasks", type=int, help="200 for kill, 100 for outage")
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=2, help="tasks per worker")
    parser.add_argument("--kill-every", type=float, default=2.0, help="seconds between kills")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--json-logs", action="store_true", help="INFO logs as JSON, per process")
    outage = parser.add_argument_group("outage")
    outage.add_argument("--outage-seconds", type=float, default=10.0, help="each outage's length")
    outage.add_argument("--outages", type=int, default=2, help="how many outages, one by one")
    outage.add_argument(
        "--stop-mode",
        choices=["immediate", "fast", "alternate"],
        default="alternate",
        help="pg_ctl stop -m: immediate (a crash stop), fast, or by turns from immediate",
    )
    args = parser.parse_args()
    if args.tasks is None:
        args.tasks = 200 if args.scenario == "kill" else 100
    if args.scenario == "outage" and os.environ.get("QASDK_DATABASE_URL"):
        parser.error(
            "--scenario outage stops and starts PostgreSQL, so it needs the private embedded"
            " one it starts itself: unset QASDK_DATABASE_URL (it is not touched)"
        )

    from qasdk.store.embedded import ensure_embedded, stop_embedded

    root = Path(tempfile.mkdtemp(prefix="qasdk-bench-faults-"))
    write_project(root, args.concurrency)
    data = root / "pgdata"
    shared = bool(os.environ.get("QASDK_DATABASE_URL"))
    bench: Bench | None = None
    url = ""
    ok = False
    try:
        url = os.environ.get("QASDK_DATABASE_URL") or ensure_embedded(data, database=DATABASE)
        env = {k: v for k, v in os.environ.items() if not k.startswith("QASDK_")}
        env.update(
            QASDK_DATABASE_URL=url,
            # Not QASDK_*: tool processes get no QASDK_* variable (qasdk's secrets).
            FAULTS_BENCH_RUNS=str(root / "runs.log"),
            PYTHONUNBUFFERED="1",
        )
        subprocess.run(
            [sys.executable, "-m", "qasdk", "sync", "tools"],
            cwd=root / "project",
            env=env,
            check=True,
            capture_output=True,
        )
        if args.scenario == "outage":
            bench = OutageBench(args, root, env, data, DATABASE)
        else:
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
