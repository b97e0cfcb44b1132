"""Completion webhooks (issue 13): a real receiver in the test process, real servers.

The receiver is a ``http.server`` on a free loopback port that records every POST
and checks its HMAC; the servers allow loopback through ``webhooks.allowed_hosts``
(the default refuses it). Retries are fast here (``backoff`` 0.3 s): the schedule
is the code's, only its scale is the test's.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import re
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from qasdk.testing import ScriptedModel
from tests.integration.harness import Server, make_project, qasdk, until

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

SECRET = "whsec-test-0123456789"
WEBHOOKS = {
    "secret": SECRET,
    "allowed_hosts": ["127.0.0.1"],
    "max_attempts": 8,
    "backoff": 0.3,
    "backoff_max": 1.5,
    "timeout": 5,
    "poll_interval": 1,
}


class Receiver:
    """An HTTP server that records POSTs; ``mode``: ok, 503, redirect, hang (until released)."""

    def __init__(self) -> None:
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()  # nothing listens until start(): connections are refused
        self.posts: list[dict[str, Any]] = []
        self.mode = "ok"
        self.released = threading.Event()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.posts.append(
                    {
                        "path": self.path,
                        "headers": dict(self.headers),
                        "body": body,
                        "t": time.time(),
                    }
                )
                mode = receiver.mode
                if mode == "hang":
                    receiver.released.wait(60)
                    return
                if mode == "redirect":
                    self.send_response(302)
                    self.send_header("Location", "/elsewhere")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if mode == "503":
                    filler = b"x" * 2_000_000  # far more than the deliverer reads
                    self.send_response(503)
                    self.send_header("Content-Length", str(len(filler)))
                    self.end_headers()
                    with contextlib.suppress(OSError):  # the deliverer stops reading
                        self.wfile.write(filler)
                    return
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Quiet(ThreadingHTTPServer):
            allow_reuse_address = True
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a client that went away mid-answer

        self._server = Quiet(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.released.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def for_task(self, task_id: str) -> list[dict[str, Any]]:
        return [p for p in self.posts if json.loads(p["body"]).get("task_id") == task_id]


README = Path(__file__).parents[2] / "README.md"


def readme_verify() -> Callable[..., bool]:
    """The README's ``verify`` recipe, run as a receiver would copy it."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.DOTALL)
    [code] = [b for b in blocks if "def verify(" in b]
    namespace: dict[str, Any] = {}
    exec(code, namespace)
    verify: Callable[..., bool] = namespace["verify"]
    return verify


def verified(post: dict[str, Any]) -> dict[str, Any]:
    """The payload of ``post`` once its signature is checked (with the README's recipe)."""
    assert readme_verify()(SECRET, post["headers"], post["body"])
    assert not readme_verify()(SECRET + "x", post["headers"], post["body"])
    headers = {k.lower(): v for k, v in post["headers"].items()}
    timestamp = headers["x-qasdk-timestamp"]
    expected = hmac.new(
        SECRET.encode(), timestamp.encode() + b"." + post["body"], hashlib.sha256
    ).hexdigest()
    assert hmac.compare_digest(headers["x-qasdk-signature"], f"sha256={expected}")
    payload: dict[str, Any] = json.loads(post["body"])
    return payload


def hooked_project(root: Path, model_url: str, pg_url: str, **webhooks: Any) -> Path:
    project = make_project(root, model_url)
    config = yaml.safe_load((project / "model_config.yaml").read_text())
    config["webhooks"] = {**WEBHOOKS, **webhooks}
    (project / "model_config.yaml").write_text(yaml.safe_dump(config))
    synced = qasdk(project, pg_url, "sync", "tools")
    assert synced.returncode == 0, synced.stderr
    return project


@pytest.fixture(scope="module")
def hooked(
    tmp_path_factory: pytest.TempPathFactory, session_model: ScriptedModel, pg_url: str
) -> Iterator[Server]:
    """`qasdk serve` with webhooks on (loopback allowed) for this module's tests."""
    project = hooked_project(tmp_path_factory.mktemp("hooked"), session_model.url, pg_url)
    server = Server(project, pg_url)
    try:
        yield server
    finally:
        code = server.stop()
        assert code == 0, f"qasdk serve exited with {code}:\n{server.output}"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    try:
        yield found
    finally:
        found.stop()


def webhook(server: Server, task_id: str) -> dict[str, Any]:
    state: dict[str, Any] = server.get(task_id)["webhook"]
    return state


def settled(server: Server, task_id: str, within: float = 30) -> dict[str, Any]:
    """The task's webhook once delivered or failed."""
    until(
        lambda: webhook(server, task_id)["status"] in ("delivered", "failed"),
        f"the webhook of {task_id} never settled",
        within,
    )
    return webhook(server, task_id)


async def test_a_completed_task_is_posted_signed(
    hooked: Server, receiver: Receiver, conn: Any
) -> None:
    receiver.start()
    task = hooked.run(method="add", params={"a": 2, "b": 3}, callback_url=receiver.url)
    assert task["status"] == "completed"
    state = settled(hooked, task["task_id"])
    assert state["status"] == "delivered", state
    assert state["url"] == receiver.url
    assert [a["status_code"] for a in state["attempts"]] == [200]
    assert state["attempts"][0]["error"] is None
    [post] = receiver.for_task(task["task_id"])
    payload = verified(post)
    assert payload == {
        "event": "task.finished",
        "task_id": task["task_id"],
        "status": "completed",
        "kind": "direct",
        "result": 5,
        "error": None,
        "created_at": payload["created_at"],
        "completed_at": payload["completed_at"],
        "parent_id": None,
        "subtask_id": None,
    }
    assert payload["completed_at"] >= payload["created_at"]
    headers = {k.lower(): v for k, v in post["headers"].items()}
    assert headers["x-qasdk-delivery"] == task["task_id"]
    assert headers["content-type"] == "application/json"
    metrics = hooked.http.get("/metrics").text
    assert 'qasdk_webhook_deliveries_total{outcome="delivered"}' in metrics
    # A task without a callback says so; a list of tasks carries no webhook at all.
    plain = hooked.run(method="add", params={"a": 1, "b": 1})
    assert hooked.get(plain["task_id"])["webhook"] is None
    listed = hooked.http.get("/api/tasks", params={"limit": 5}).json()["tasks"]
    assert all("webhook" not in t for t in listed)


async def test_a_failed_and_a_cancelled_task_are_posted_too(
    hooked: Server, receiver: Receiver, conn: Any
) -> None:
    receiver.start()
    failed = hooked.run(method="fail", params={"message": "boom"}, callback_url=receiver.url)
    assert failed["status"] == "failed"
    slow = hooked.submit(
        method="slow_add", params={"a": 1, "b": 2, "delay": 30}, callback_url=receiver.url
    )
    until(lambda: hooked.get(slow["task_id"])["status"] == "running", "slow_add never ran")
    cancelled = hooked.http.post(f"/api/tasks/{slow['task_id']}/cancel", params={"wait": 20})
    assert cancelled.json()["status"] == "cancelled", cancelled.text
    for task_id, status in ((failed["task_id"], "failed"), (slow["task_id"], "cancelled")):
        assert settled(hooked, task_id)["status"] == "delivered"
        [post] = receiver.for_task(task_id)
        payload = verified(post)
        assert payload["status"] == status
        assert payload["result"] is None
        assert payload["error"]["type"]


async def test_the_webhook_arrives_after_the_receiver_was_down(
    hooked: Server, receiver: Receiver, conn: Any
) -> None:
    # Nothing listens on the receiver's port yet: the first attempts are refused.
    task = hooked.run(method="add", params={"a": 20, "b": 22}, callback_url=receiver.url)
    assert task["status"] == "completed"
    until(
        lambda: len(webhook(hooked, task["task_id"])["attempts"]) >= 1,
        "no attempt was made while the receiver was down",
    )
    state = webhook(hooked, task["task_id"])
    assert state["status"] == "pending"
    assert state["next_attempt_at"] is not None
    assert state["attempts"][0]["status_code"] is None
    assert "connect" in state["attempts"][0]["error"].lower()
    receiver.mode = "503"  # up, but not ready
    receiver.start()
    until(lambda: receiver.for_task(task["task_id"]), "the receiver never got an attempt")
    receiver.mode = "ok"
    state = settled(hooked, task["task_id"])
    assert state["status"] == "delivered", state
    codes = [a["status_code"] for a in state["attempts"]]
    assert codes[0] is None and codes[-1] == 200 and 503 in codes, codes
    answer = next(a for a in state["attempts"] if a["status_code"] == 503)
    assert answer["error"].startswith("HTTP 503: xxx") and len(answer["error"]) < 300
    delivered = receiver.for_task(task["task_id"])[-1]
    assert verified(delivered)["result"] == 42
    ids = {p["headers"].get("X-Qasdk-Delivery") for p in receiver.for_task(task["task_id"])}
    assert ids == {task["task_id"]}  # the same delivery id every attempt: receivers dedupe
    metrics = hooked.http.get("/metrics").text
    assert 'qasdk_webhook_deliveries_total{outcome="retried"}' in metrics


async def test_a_delivery_fails_for_good_after_max_attempts(
    hooked: Server, receiver: Receiver, conn: Any
) -> None:
    receiver.mode = "redirect"
    receiver.start()
    task = hooked.run(method="add", params={"a": 1, "b": 2}, callback_url=receiver.url)
    until(lambda: receiver.for_task(task["task_id"]), "no attempt reached the receiver")
    receiver.mode = "503"
    state = settled(hooked, task["task_id"], within=60)
    assert state["status"] == "failed", state
    assert len(state["attempts"]) == WEBHOOKS["max_attempts"]
    assert state["next_attempt_at"] is None
    first = state["attempts"][0]
    assert first["status_code"] == 302
    assert first["error"] == "HTTP 302: redirect to /elsewhere not followed"
    assert {p["path"] for p in receiver.posts} == {"/hook"}  # never followed
    assert 'qasdk_webhook_deliveries_total{outcome="failed"}' in hooked.http.get("/metrics").text
    assert len(receiver.for_task(task["task_id"])) == WEBHOOKS["max_attempts"]


async def test_a_receiver_that_never_answers_wedges_nothing(hooked: Server, conn: Any) -> None:
    slow, fast = Receiver(), Receiver()
    try:
        slow.mode = "hang"
        slow.start()
        fast.start()
        stuck = hooked.run(method="add", params={"a": 1, "b": 1}, callback_url=slow.url)
        until(lambda: slow.for_task(stuck["task_id"]), "the slow receiver got nothing")
        # While that attempt hangs, other deliveries go on.
        other = hooked.run(method="add", params={"a": 2, "b": 2}, callback_url=fast.url)
        assert settled(hooked, other["task_id"])["status"] == "delivered"
        assert webhook(hooked, stuck["task_id"])["attempts"] == []
        until(
            lambda: webhook(hooked, stuck["task_id"])["attempts"],
            "the hanging attempt was never given up",
        )
        [attempt] = webhook(hooked, stuck["task_id"])["attempts"][:1]
        assert attempt["status_code"] is None
        assert attempt["error"] == "no answer within 5 s (webhooks.timeout)"
        slow.mode = "ok"
        assert settled(hooked, stuck["task_id"])["status"] == "delivered"
    finally:
        slow.stop()
        fast.stop()


async def test_a_graph_parent_is_notified_once_when_the_graph_ends(
    hooked: Server, receiver: Receiver, conn: Any
) -> None:
    receiver.start()
    submitted = hooked.submit(
        subtasks=[
            {"id": "a", "method": "add", "params": {"a": 1, "b": 2}},
            {
                "id": "b",
                "method": "add",
                "params": {"a": {"$ref": "a.result"}, "b": 10},
                "depends_on": ["a"],
            },
        ],
        callback_url=receiver.url,
    )
    parent = hooked.finished(submitted["task_id"], within=60)
    assert parent["status"] == "completed"
    assert settled(hooked, parent["task_id"])["status"] == "delivered"
    posts = receiver.posts
    assert len(posts) == 1, posts  # the parent's only: the sub-tasks asked for none
    payload = verified(posts[0])
    assert payload["task_id"] == parent["task_id"]
    assert payload["kind"] == "graph"
    assert payload["result"]["b"] == {"status": "completed", "result": 13}
    children = hooked.http.get("/api/tasks", params={"parent_id": parent["task_id"]}).json()
    for child in children["tasks"]:
        assert hooked.get(child["task_id"])["webhook"] is None


async def test_credentials_in_the_url_are_used_but_never_shown(
    hooked: Server, receiver: Receiver, conn: Any
) -> None:
    receiver.start()
    url = f"http://hookuser:pw-9f8e7d@127.0.0.1:{receiver.port}/hook?token=tk-5a4b3c"
    task = hooked.run(method="add", params={"a": 1, "b": 1}, callback_url=url)
    state = settled(hooked, task["task_id"])
    assert state["status"] == "delivered"
    assert state["url"] == f"http://****@127.0.0.1:{receiver.port}/hook?****"
    [post] = receiver.for_task(task["task_id"])
    assert post["headers"]["Authorization"].startswith("Basic ")
    assert post["path"] == "/hook?token=tk-5a4b3c"
    until(lambda: "delivered to" in (hooked.project / "qasdk.log").read_text())
    log = (hooked.project / "qasdk.log").read_text()
    assert "pw-9f8e7d" not in log and "tk-5a4b3c" not in log and SECRET not in log
    shown = hooked.http.get("/api/config")
    assert shown.status_code == 200 and SECRET not in shown.text
    assert shown.json()["config"]["webhooks"]["allowed_hosts"] == ["127.0.0.1"]


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://127.0.0.1/hook", "must be an http or https URL, got scheme 'ftp'"),
        ("http:///hook", "must name a host"),
        ("http://127.0.0.1:99999/hook", "is not a valid URL"),
        ("http://127.0.0.1/ho ok", "must not contain whitespace or control characters"),
        ("http://10.0.0.7/hook", "host '10.0.0.7' is not in webhooks.allowed_hosts"),
        ("http://[::1]/hook", "host '::1' is not in webhooks.allowed_hosts"),
        ("http://127.0.0.1/" + "a" * 3000, "must be at most 2048 characters"),
    ],
)
async def test_a_bad_callback_url_is_refused_naming_the_field(
    hooked: Server, url: str, reason: str, conn: Any
) -> None:
    for body in (
        {"method": "add", "params": {"a": 1, "b": 2}},
        {"subtasks": [{"id": "a", "method": "add", "params": {"a": 1, "b": 2}}]},
    ):
        response = hooked.http.post("/api/tasks", json={**body, "callback_url": url})
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        [problem] = error["problems"]
        assert problem["field"] == "callback_url"
        assert reason in problem["reason"], problem


async def test_without_a_secret_webhooks_are_off(served: Server, conn: Any) -> None:
    response = served.http.post(
        "/api/tasks",
        json={"method": "add", "params": {"a": 1, "b": 2}, "callback_url": "https://x.test/"},
    )
    assert response.status_code == 400, response.text
    [problem] = response.json()["error"]["problems"]
    assert problem["field"] == "callback_url"
    assert "webhooks.secret" in problem["reason"]


async def test_a_webhook_survives_its_server_killed_mid_attempt(
    tmp_path: Path, model: ScriptedModel, receiver: Receiver, fresh_database: str
) -> None:
    """Killed (-9) while its POST hangs: the row stays due, and the next server sends it."""
    import psycopg

    project = hooked_project(tmp_path / "project", model.url, fresh_database)
    receiver.mode = "hang"
    receiver.start()
    doomed = Server(project, fresh_database)
    try:
        task = doomed.run(method="add", params={"a": 3, "b": 4}, callback_url=receiver.url)
        assert task["status"] == "completed"
        until(lambda: receiver.for_task(task["task_id"]), "the first attempt never arrived")
        doomed.stop(signal.SIGKILL)
    finally:
        doomed.kill()
    with psycopg.connect(fresh_database) as db:
        row = db.execute(
            "SELECT status, attempts FROM task_webhooks WHERE task_id = %s", (task["task_id"],)
        ).fetchone()
    assert row == ("pending", [])  # the attempt died with its process: not recorded, still due
    receiver.mode = "ok"
    receiver.released.set()
    successor = Server(project, fresh_database)
    try:
        state = settled(successor, task["task_id"])
        assert state["status"] == "delivered", state
        assert [a["status_code"] for a in state["attempts"]] == [200]
        posts = receiver.for_task(task["task_id"])
        assert len(posts) == 2  # at least once: the killed attempt, then the delivery
        assert verified(posts[-1])["result"] == 7
    finally:
        assert successor.stop() == 0, successor.output
