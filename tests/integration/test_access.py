"""API keys, scopes and task ownership over HTTP (issue 10), on a database of its own.

Keys are made with ``qasdk keys create`` while the server runs, as an operator
would: the server is open until the first key exists, then every request
needs one.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from qasdk.testing import ScriptedModel
from tests.conftest import scratch_database
from tests.integration.harness import Server, make_project, qasdk, until

pytestmark = [pytest.mark.integration]

ADD = {"method": "add", "params": {"a": 1, "b": 2}}


class Keyed:
    """The server, and one client per key."""

    def __init__(self, server: Server, project: Path, url: str) -> None:
        self.server, self.project, self.url = server, project, url
        self.clients: dict[str, httpx.Client] = {}

    def create(self, name: str, *scopes: str) -> str:
        args = [a for s in scopes for a in ("--scope", s)]
        made = qasdk(self.project, self.url, "keys", "create", name, *args)
        assert made.returncode == 0, made.stderr
        key = made.stdout.strip()
        self.clients[name] = httpx.Client(
            base_url=self.server.base, timeout=30, headers={"Authorization": f"Bearer {key}"}
        )
        return key

    def __getitem__(self, name: str) -> httpx.Client:
        return self.clients[name]


@pytest.fixture(scope="module")
def keyed(
    tmp_path_factory: pytest.TempPathFactory,
    session_model: ScriptedModel,
    pg_data: Path,
    pg_url: str,
) -> Iterator[Keyed]:
    project = make_project(tmp_path_factory.mktemp("access"), session_model.url)
    with scratch_database(pg_data, pg_url, "access") as url:
        assert qasdk(project, url, "sync", "tools").returncode == 0
        server = Server(project, url)
        try:
            assert "no API keys: the API is open to anyone on this machine" in server.output
            assert server.http.get("/api/tasks").status_code == 200  # open: no keys yet
            keys = Keyed(server, project, url)
            keys.create("alice", "read", "submit")
            keys.create("bob", "read", "submit", "cancel")
            keys.create("reader", "read")
            keys.create("ops", "admin")
            until(lambda: server.http.get("/api/tasks").status_code == 401, "keys never applied")
            yield keys
        finally:
            for client in keys.clients.values():
                client.close()
            assert server.stop() == 0, server.output


def test_a_request_without_a_valid_key_is_401(keyed: Keyed) -> None:
    http = keyed.server.http
    for headers in ({}, {"Authorization": "Bearer qasdk_nope"}, {"X-API-Key": "wrong"}):
        response = http.get("/api/tasks", headers=headers)
        assert response.status_code == 401, response.text
        assert response.headers["www-authenticate"] == 'Bearer realm="qasdk"'
        assert response.json()["error"]["type"] == "unauthorized"
    assert "qasdk keys create" in http.get("/api/tasks").json()["error"]["message"]
    # The health check and the API docs stay public.
    assert http.get("/health").status_code == 200
    assert http.get("/schema/openapi.json").status_code == 200


def test_x_api_key_works_as_well(keyed: Keyed) -> None:
    key = keyed["alice"].headers["authorization"].split(" ", 1)[1]
    response = keyed.server.http.get("/api/tasks", headers={"X-API-Key": key})
    assert response.status_code == 200, response.text


def test_a_key_without_the_scope_is_403_naming_it(keyed: Keyed) -> None:
    response = keyed["reader"].post("/api/tasks", json=ADD)
    assert response.status_code == 403, response.text
    error = response.json()["error"]
    assert (error["type"], "'submit' scope" in error["message"]) == ("forbidden", True)
    assert keyed["reader"].get("/api/methods").status_code == 200
    assert keyed["alice"].get("/api/config").status_code == 403  # admin only
    assert keyed["ops"].get("/api/config").status_code == 200


def test_a_task_is_seen_only_by_the_key_that_submitted_it(keyed: Keyed) -> None:
    alice, bob, ops = keyed["alice"], keyed["bob"], keyed["ops"]
    submitted = alice.post("/api/tasks", json=ADD)
    assert submitted.status_code == 201, submitted.text
    task_id = submitted.json()["task_id"]
    done = alice.get(f"/api/tasks/{task_id}", params={"wait": 10}).json()
    assert (done["status"], done["result"]) == ("completed", 3)
    for path in (f"/api/tasks/{task_id}", f"/api/tasks/{task_id}/trace"):
        assert bob.get(path).status_code == 404  # not 403: ids cannot be probed
        assert alice.get(path).status_code == 200
        assert ops.get(path).status_code == 200  # admin sees every task
    with bob.stream("GET", f"/api/tasks/{task_id}/events") as events:
        assert events.status_code == 404
    assert bob.post(f"/api/tasks/{task_id}/cancel").status_code == 404
    listed = {t["task_id"] for t in bob.get("/api/tasks", params={"limit": 100}).json()["tasks"]}
    assert task_id not in listed
    listed = {t["task_id"] for t in alice.get("/api/tasks", params={"limit": 100}).json()["tasks"]}
    assert task_id in listed
    listed = {t["task_id"] for t in ops.get("/api/tasks", params={"limit": 100}).json()["tasks"]}
    assert task_id in listed


def test_a_cancel_needs_the_cancel_scope_and_the_task(keyed: Keyed) -> None:
    bob = keyed["bob"]
    task_id = bob.post(
        "/api/tasks", json={"method": "record", "params": {"tag": "keyed", "seconds": 5}}
    ).json()["task_id"]
    assert keyed["alice"].post(f"/api/tasks/{task_id}/cancel").status_code == 403
    cancelled = bob.post(f"/api/tasks/{task_id}/cancel", params={"wait": 10})
    assert cancelled.status_code in (200, 202), cancelled.text


def test_retry_and_discard_need_the_cancel_scope(keyed: Keyed) -> None:
    task_id = keyed["bob"].post("/api/tasks", json=ADD).json()["task_id"]
    for action in ("retry", "discard"):
        refused = keyed["alice"].post(f"/api/tasks/{task_id}/{action}")
        assert refused.status_code == 403, refused.text
        assert "'cancel' scope" in refused.json()["error"]["message"]
        # With the scope, its owner and an admin reach it: not blocked, so 409.
        for who in ("bob", "ops"):
            assert keyed[who].post(f"/api/tasks/{task_id}/{action}").status_code == 409


def test_a_revoked_key_stops_working(keyed: Keyed) -> None:
    keyed.create("temp", "read")
    until(lambda: keyed["temp"].get("/api/tasks").status_code == 200, "the new key never worked")
    revoked = qasdk(keyed.project, keyed.url, "keys", "revoke", "temp")
    assert revoked.returncode == 0, revoked.stderr
    until(lambda: keyed["temp"].get("/api/tasks").status_code == 401, "the key still works")
    assert "revoked" in keyed["temp"].get("/api/tasks").json()["error"]["message"]
    listed = qasdk(keyed.project, keyed.url, "keys", "list")
    assert "temp  read  revoked" in listed.stdout
    assert "qasdk_" not in listed.stdout  # secrets are never shown again


def test_serving_a_network_without_keys_is_refused(
    tmp_path: Path, session_model: ScriptedModel, fresh_database: str
) -> None:
    project = make_project(tmp_path / "open", session_model.url)
    assert qasdk(project, fresh_database, "sync", "tools").returncode == 0
    refused = qasdk(project, fresh_database, "serve", "--host", "0.0.0.0", "--port", "0")
    assert refused.returncode != 0
    assert "refusing to serve 0.0.0.0 with no API keys" in refused.stderr
    assert "server.auth: none" in refused.stderr
