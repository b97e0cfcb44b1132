"""Abuse: requests, tool outputs and results that once froze, wedged or bloated the server.

    python bench/abuse.py [--only NAME ...] [--keep]

Starts a private embedded PostgreSQL and ``qasdk serve`` (embedded worker) in a
temporary project with the sample tools and a few hostile ones, then replays,
one at a time, the probes of issue 9:

- huge-body: a 50 MB JSON body; deep-body: JSON nested 100,000 levels;
- huge-header: a 50 MB header; slowloris: 50 connections sending a header byte a
  second; unknown-method: a 9 MB tool name;
- long-expression: ``calculate`` with a 30,000-character expression;
  power-tower: ``calculate("9**9**9**9")``;
- poison-output: a tool printing 50 MB; nul-result: a tool returning text with
  U+0000; big-result: a tool returning 50 MB; big-list: ``GET /api/tasks?limit=20``
  over such tasks.

For each it prints the answer (status or what happened, and how long it took),
the worst ``/health`` latency while it ran (polled every 50 ms from another
thread), and the server's RSS before and after. Goals: ``/health`` never slower
than 200 ms during a probe; RSS back within 50 MB of the baseline after each.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HOSTILE = '''
import sys

from qasdk import tool


@tool
def shout_lots(megabytes: int) -> str:
    """Print a lot to stdout and stderr.

    Args:
        megabytes: How much.
    """
    line = "x" * 1023 + "\\n"
    for _ in range(megabytes * 512):
        sys.stdout.write(line)
        sys.stderr.write(line)
    return "done"


@tool
def nul_text() -> dict:
    """Return text with NUL characters."""
    return {"text": "a\\x00b", "k\\x00": "\\x00"}


@tool
def huge(megabytes: int) -> str:
    """Return a very large string.

    Args:
        megabytes: How large.
    """
    return "y" * (megabytes * 1024 * 1024)
'''

ANNOUNCE = re.compile(r"serving http://([\d.]+):(\d+) ")


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class Health:
    """Polls /health every 50 ms and keeps the latencies, while a probe runs."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.samples: list[float] = []
        self.failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self) -> Health:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _poll(self) -> None:
        while not self._stop.is_set():
            started = time.perf_counter()
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                conn.request("GET", "/health")
                conn.getresponse().read()
                conn.close()
            except OSError:
                self.failures += 1
            self.samples.append((time.perf_counter() - started) * 1000)
            self._stop.wait(0.05)

    @property
    def worst(self) -> float:
        return max(self.samples, default=0.0)


def raw(port: int, data: bytes, *, timeout: float = 60) -> str:
    """Send raw bytes; the status line answered, or what happened instead."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        except OSError as exc:
            return f"send cut: {exc.strerror or exc}"
        try:
            answer = sock.recv(200)
        except OSError as exc:
            return f"no answer: {exc.strerror or exc}"
    return answer.split(b"\r\n", 1)[0].decode(errors="replace") or "closed"


def post(port: int, body: bytes, path: str = "/api/tasks") -> str:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    return raw(port, head + body)


def request(port: int, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    payload = None if body is None else json.dumps(body)
    conn.request(method, path, body=payload, headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    data = response.read()
    conn.close()
    try:
        return response.status, json.loads(data)
    except ValueError:
        return response.status, data[:200]


def run_task(port: int, body: dict[str, Any]) -> str:
    status, answer = request(port, "POST", "/api/tasks", body)
    if status != 201:
        return f"{status} {json.dumps(answer)[:80]}"
    task_id = answer["task_id"]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        status, task = request(port, "GET", f"/api/tasks/{task_id}?wait=10")
        if task.get("status") in ("completed", "failed", "cancelled"):
            error = task.get("error") or {}
            detail = f"{error.get('type')}: {error.get('message', '')[:60]}" if error else ""
            return f"201, task {task['status']} {detail}".strip()
    return "201, task still running after 120 s"


def slowloris(port: int, connections: int = 50, seconds: float = 20) -> str:
    socks = []
    for _ in range(connections):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        socks.append(sock)
    deadline = time.monotonic() + seconds
    closed = 0
    while time.monotonic() < deadline and closed < connections:
        closed = 0
        for sock in socks:
            try:
                sock.sendall(b"X-a: b\r\n")
            except OSError:
                closed += 1
        time.sleep(1)
    for sock in socks:
        sock.close()
    return f"{closed} of {connections} closed by the server within {seconds:.0f} s"


def probes(port: int) -> dict[str, Callable[[], str]]:
    # Built before any probe runs: making 50 MB here holds this process's GIL, and the
    # /health poller (a thread of this process) would count that against the server.
    huge_name = json.dumps({"method": "m" * (9 * 1024 * 1024)}).encode()
    deep = b"[" * 100_000 + b"]" * 100_000
    huge_body = b'{"task_description": "' + b"a" * 50_000_000 + b'"}'
    huge_header = (
        b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"h" * 50_000_000 + b"\r\n\r\n"
    )
    return {
        "huge-body": lambda: post(port, huge_body),
        "deep-body": lambda: post(port, b'{"method": "echo", "params": {"x": ' + deep + b"}}"),
        "huge-header": lambda: raw(port, huge_header),
        "slowloris": lambda: slowloris(port),
        "unknown-method": lambda: post(port, huge_name),
        "long-expression": lambda: run_task(
            port, {"method": "calculate", "params": {"expression": "1+" * 15_000 + "1"}}
        ),
        "power-tower": lambda: run_task(
            port, {"method": "calculate", "params": {"expression": "9**9**9**9"}}
        ),
        "poison-output": lambda: run_task(
            port, {"method": "shout_lots", "params": {"megabytes": 25}}
        ),
        "nul-result": lambda: run_task(port, {"method": "nul_text", "params": {}}),
        "big-result": lambda: run_task(port, {"method": "huge", "params": {"megabytes": 50}}),
        "big-list": lambda: "{} ({} bytes)".format(*_list(port)),
    }


def _list(port: int) -> tuple[int, int]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    conn.request("GET", "/api/tasks?limit=20")
    response = conn.getresponse()
    size = len(response.read())
    conn.close()
    return response.status, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="*", help="run only these probes")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="qasdk-abuse-"))
    repo = Path(__file__).resolve().parents[1]
    # Under its own name: its methods.yaml declares a tool in ``sample_tools.legacy``.
    shutil.copytree(
        repo / "sample_tools", root / "sample_tools", ignore=shutil.ignore_patterns("__pycache__")
    )
    (root / "sample_tools" / "hostile.py").write_text(HOSTILE)
    (root / "model_config.yaml").write_text(
        "logging: {level: WARNING, file: qasdk.log}\nworker: {concurrency: 2}\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("QASDK_")}
    qasdk = [sys.executable, "-m", "qasdk"]
    synced = subprocess.run(
        [*qasdk, "sync", "sample_tools"], cwd=root, env=env, capture_output=True
    )
    if synced.returncode != 0:
        sys.exit(synced.stderr.decode())
    server = subprocess.Popen(
        [*qasdk, "serve", "--port", "0"],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    port = 0
    assert server.stdout is not None
    for line in server.stdout:
        match = ANNOUNCE.search(line)
        if match:
            port = int(match.group(2))
            break
    threading.Thread(target=server.stdout.read, daemon=True).start()
    time.sleep(2)  # the embedded worker's warm-up
    try:
        baseline = rss_mb(server.pid)
        print(f"qasdk serve pid {server.pid}, port {port}, RSS at rest {baseline:.0f} MB\n")
        print(f"{'probe':<16} {'answer':<58} {'/health worst':>13} {'RSS before':>10} {'after':>7}")
        results = {}
        for name, probe in probes(port).items():
            if args.only and name not in args.only:
                continue
            before = rss_mb(server.pid)
            started = time.perf_counter()
            with Health(port) as health:
                try:
                    answer = probe()
                except OSError as exc:
                    answer = f"{type(exc).__name__}: {exc}"
            took = time.perf_counter() - started
            time.sleep(1.0)
            after = rss_mb(server.pid)
            results[name] = (health.worst, after - baseline)
            shown = f"{answer} ({took:.1f} s)"[:58]
            failed = f" ({health.failures} failed)" if health.failures else ""
            print(
                f"{name:<16} {shown:<58} {health.worst:>10.0f} ms{failed} "
                f"{before:>7.0f} MB {after:>4.0f} MB",
                flush=True,
            )
        worst = max((w for w, _ in results.values()), default=0.0)
        grown = max((g for _, g in results.values()), default=0.0)
        print(
            f"\nworst /health {worst:.0f} ms (goal <= 200); RSS at most {grown:+.0f} MB from "
            "rest (goal <= 50)"
        )
        print("server alive" if server.poll() is None else f"server exited: {server.returncode}")
    finally:
        server.terminate()
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            server.kill()
        subprocess.run([*qasdk, "db", "stop"], cwd=root, env=env, capture_output=True)
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
