"""The audit log over HTTP and the CLI (issue 10): who did what and when, on a database of its own.

Keys are made with ``qasdk keys create`` while the server runs, as in
``test_access.py``; syncs run ``qasdk sync`` as a user would. The audit log
is append-only, so tests tell their rows apart by time (``since``) and by
fresh names, never by deleting rows.
"""

from __future__ import annotations

import getpass
import json
import socket
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from qasdk.testing import ScriptedModel
from tests.conftest import scratch_database
from tests.integration.harness import Server, make_project, qasdk, until
from tests.integration.test_access import Keyed

pytestmark = [pytest.mark.integration]

CLI = f"cli:{getpass.getuser()}@{socket.gethostname()}"

TOOLS = '''
from qasdk import tool


@tool
def audited_kept(x: int) -> int:
    """{doc}

    Args:
        x: A number.
    """
    return x


@tool
def audited_gone(x: int) -> int:
    """Goes away in the second sync.

    Args:
        x: A number.
    """
    return x
'''


class Audited(Keyed):
    def entries(self, **params: Any) -> list[dict[str, Any]]:
        """Every entry the filters select, following the cursor from page to page."""
        found: list[dict[str, Any]] = []
        query = {"limit": 500, **params}
        while True:
            response = self["admin"].get("/api/audit", params=query)
            assert response.status_code == 200, response.text
            page = response.json()
            found += page["entries"]
            if not page["next_cursor"]:
                return found
            query["cursor"] = page["next_cursor"]


@pytest.fixture(scope="module")
def audited(
    tmp_path_factory: pytest.TempPathFactory,
    session_model: ScriptedModel,
    pg_data: Path,
    pg_url: str,
) -> Iterator[Audited]:
    project = make_project(tmp_path_factory.mktemp("audit"), session_model.url)
    with scratch_database(pg_data, pg_url, "audit") as url:
        assert qasdk(project, url, "sync", "tools").returncode == 0
        server = Server(project, url)
        try:
            keys = Audited(server, project, url)
            keys.create("admin", "admin")
            keys.create("alice", "read", "submit", "cancel")
            keys.create("reader", "read")
            until(lambda: server.http.get("/api/tasks").status_code == 401, "keys never applied")
            yield keys
        finally:
            for client in keys.clients.values():
                client.close()
            assert server.stop() == 0, server.output


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


def test_a_sync_records_the_tools_it_created_updated_and_deleted(audited: Audited) -> None:
    extra = audited.project / "extra"
    extra.mkdir()
    (extra / "audited_tools.py").write_text(TOOLS.replace("{doc}", "The first version."))
    since = _now()
    first = qasdk(audited.project, audited.url, "sync", "tools", "extra")
    assert first.returncode == 0, first.stderr
    source = TOOLS.replace("{doc}", "The second version.")
    (extra / "audited_tools.py").write_text(source.split("\n\n@tool\ndef audited_gone")[0])
    second = qasdk(audited.project, audited.url, "sync", "tools", "extra", "--prune")
    assert second.returncode == 0, second.stderr

    newest, older = audited.entries(action="sync", since=since)
    assert (older["actor"], older["client"], older["key_id"]) == (CLI, None, None)
    assert sorted(older["detail"]["created"]) == ["audited_gone", "audited_kept"]
    assert older["detail"]["counts"]["created"] == 2
    assert newest["detail"]["deleted"] == ["audited_gone"]
    assert newest["detail"]["prune"] is True
    change = newest["detail"]["updated"]["audited_kept"]
    assert change == {"description": {"old": "The first version.", "new": "The second version."}}

    # Nothing written, nothing audited.
    again = qasdk(audited.project, audited.url, "sync", "tools", "extra")
    assert again.returncode == 0, again.stderr
    dry = qasdk(audited.project, audited.url, "sync", "tools", "--dry-run", "--prune")
    assert dry.returncode == 0, dry.stderr
    assert len(audited.entries(action="sync", since=since)) == 2


def test_key_changes_are_recorded_without_the_secret(audited: Audited) -> None:
    made = audited.entries(action="key.create", actor=CLI)
    assert {"admin", "alice", "reader"} <= {e["target"] for e in made}
    since = _now()
    secret = audited.create("short_lived", "read")
    revoked = qasdk(audited.project, audited.url, "keys", "revoke", "short_lived")
    assert revoked.returncode == 0, revoked.stderr
    revoke, create = audited.entries(action="key", since=since)
    assert (create["action"], create["target"], create["actor"]) == (
        "key.create",
        "short_lived",
        CLI,
    )
    assert create["detail"]["scopes"] == ["read"]
    assert (revoke["action"], revoke["target"]) == ("key.revoke", "short_lived")
    assert revoke["detail"]["id"] == create["detail"]["id"]
    everything = json.dumps(audited.entries())
    assert secret not in everything and secret.split("_", 2)[2] not in everything


def test_a_submit_and_a_cancel_are_recorded_with_the_keys_name(audited: Audited) -> None:
    alice = audited["alice"]
    submitted = alice.post("/api/tasks", json={"method": "record", "params": {"tag": "audit"}})
    assert submitted.status_code == 201, submitted.text
    task_id = submitted.json()["task_id"]
    slow = alice.post(
        "/api/tasks", json={"method": "record", "params": {"tag": "audit", "seconds": 5}}
    ).json()["task_id"]
    cancelled = alice.post(f"/api/tasks/{slow}/cancel", params={"wait": 10})
    assert cancelled.status_code in (200, 202), cancelled.text

    (submit,) = audited.entries(action="task.submit", target=task_id)
    alice_id = submit["key_id"]
    assert (submit["actor"], submit["client"]) == ("alice", "127.0.0.1")
    assert submit["detail"] == {"kind": "direct", "priority": 5, "method": "record"}
    (cancel,) = audited.entries(action="task.cancel", target=slow)
    assert (cancel["actor"], cancel["key_id"], cancel["client"]) == ("alice", alice_id, "127.0.0.1")
    assert cancel["detail"]["status"] in ("running", "cancelled")
    assert {e["target"] for e in audited.entries(action="task", actor="alice")} >= {task_id, slow}


def _these(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in rows if e["detail"]["reason"] in ("bad_key", "scope:admin")]


def test_denials_are_recorded_throttled_and_counted(audited: Audited) -> None:
    """Many 401s and 403s: one row each at once, their count when the window closes."""
    # A server of its own, stopped in the test: stopping writes the counts still in memory
    # (rows of the module's server, for its own windows, are told apart by their reason).
    server = Server(audited.project, audited.url)
    reader_key = audited["reader"].headers["authorization"]
    wrong = f"qasdk_{uuid.uuid4().hex}_not-a-real-secret"
    since = _now()
    try:
        for _ in range(40):
            bad = server.http.get("/api/tasks", headers={"Authorization": f"Bearer {wrong}"})
            assert bad.status_code == 401
            forbidden = server.http.get("/api/audit", headers={"Authorization": reader_key})
            assert forbidden.status_code == 403
        # At once: the first of each, nothing more.
        rows = _these(audited.entries(action="denied", since=since))
        assert sorted((e["actor"], e["detail"]["reason"], e["count"]) for e in rows) == [
            ("anonymous", "bad_key", 1),
            ("reader", "scope:admin", 1),
        ]
    finally:
        assert server.stop() == 0, server.output
    rows = _these(audited.entries(action="denied", since=since))
    by_reason: dict[str, list[dict[str, Any]]] = {}
    for entry in rows:
        by_reason.setdefault(entry["detail"]["reason"], []).append(entry)
    assert sorted(by_reason) == ["bad_key", "scope:admin"]
    for reason, entries in by_reason.items():
        assert len(entries) == 2, entries  # bounded: 80 requests, 4 rows
        assert sum(e["count"] for e in entries) == 40, reason
        assert {e["client"] for e in entries} == {"127.0.0.1"}
    (forbidden,) = [e for e in by_reason["scope:admin"] if e["count"] == 1]
    assert forbidden["detail"] == {
        "status": 403,
        "reason": "scope:admin",
        "paths": ["GET /api/audit"],
    }
    assert forbidden["key_id"] is not None
    assert by_reason["bad_key"][0]["key_id"] is None  # it named no key that exists
    stored = json.dumps(rows)
    assert wrong not in stored and "not-a-real-secret" not in stored
    assert "Bearer" not in stored and reader_key.split()[1] not in stored


def test_the_audit_log_needs_admin_and_filters_and_paginates(audited: Audited) -> None:
    for name in ("reader", "alice"):
        response = audited[name].get("/api/audit")
        assert response.status_code == 403, response.text
        assert "'admin' scope" in response.json()["error"]["message"]
    assert audited.server.http.get("/api/audit").status_code == 401

    since = _now()
    alice = audited["alice"]
    ids = [
        alice.post("/api/tasks", json={"method": "add", "params": {"a": i, "b": 1}}).json()[
            "task_id"
        ]
        for i in range(5)
    ]
    until = _now()
    everything = audited.entries(since=since, until=until, action="task.submit")
    assert [e["target"] for e in everything] == ids[::-1]  # newest first

    pages: list[dict[str, Any]] = []
    query: dict[str, Any] = {"since": since, "until": until, "action": "task", "limit": 2}
    while True:
        page = audited["admin"].get("/api/audit", params=query).json()
        assert len(page["entries"]) <= 2
        pages += page["entries"]
        if not page["next_cursor"]:
            break
        query["cursor"] = page["next_cursor"]
    assert [e["id"] for e in pages] == [e["id"] for e in everything]
    assert len({e["id"] for e in pages}) == 5

    assert audited.entries(target=ids[2])[0]["target"] == ids[2]
    assert audited.entries(actor="nobody-at-all") == []
    assert audited.entries(since=until, action="task.submit", actor="alice") == []
    bad = audited["admin"].get("/api/audit", params={"cursor": "not-a-cursor"})
    assert bad.status_code == 400
    assert bad.json()["error"]["problems"][0]["field"] == "cursor"


def test_a_reload_is_recorded_with_who_asked(audited: Audited) -> None:
    since = _now()
    response = audited["admin"].post("/api/config/reload")
    assert response.status_code == 200, response.text
    (reload,) = audited.entries(action="reload", since=since)
    assert (reload["actor"], reload["client"]) == ("admin", "127.0.0.1")
    assert reload["detail"]["outcome"] == response.json()["outcome"]
    assert reload["detail"]["trigger"] == "api"


def test_a_refused_registry_row_is_recorded(audited: Audited) -> None:
    since = _now()
    with psycopg.connect(audited.url, autocommit=True) as conn:
        conn.execute("UPDATE registered_methods SET timeout = 99 WHERE name = 'echo'")
    try:
        until(
            lambda: audited.entries(action="registry.refused", target="echo", since=since),
            "the refused row was never audited",
        )
        (refused,) = audited.entries(action="registry.refused", target="echo", since=since)
        assert "signature" in refused["detail"]["reason"]
        assert refused["actor"].startswith("registry:")
    finally:
        synced = qasdk(audited.project, audited.url, "sync", "tools", "extra")
        assert synced.returncode == 0, synced.stderr


def test_qasdk_audit_prints_the_log(audited: Audited) -> None:
    listed = qasdk(audited.project, audited.url, "audit", "--action", "key", "--json")
    assert listed.returncode == 0, listed.stderr
    entries = json.loads(listed.stdout)
    assert {"admin", "alice", "reader"} <= {e["target"] for e in entries}
    assert {e["action"] for e in entries} <= {"key.create", "key.revoke"}

    text = qasdk(audited.project, audited.url, "audit", "--actor", "alice", "--limit", "3")
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert lines[0].split() == [
        "AT",
        "(UTC)",
        "ACTOR",
        "CLIENT",
        "ACTION",
        "TARGET",
        "COUNT",
        "DETAIL",
    ]
    assert len(lines) == 5 and lines[-1] == "3 entries shown, newest first."
    assert all(" alice " in line and "127.0.0.1" in line for line in lines[1:4])

    synced = qasdk(audited.project, audited.url, "audit", "--action", "sync", "--since", "1d")
    assert synced.returncode == 0, synced.stderr
    assert "+audited_kept" in synced.stdout or "~audited_kept(description)" in synced.stdout

    later = qasdk(audited.project, audited.url, "audit", "--since", "2999-01-01", "--json")
    assert (later.returncode, later.stdout.strip()) == (0, "[]")
    wrong = qasdk(audited.project, audited.url, "audit", "--since", "yesterday-ish")
    assert wrong.returncode == 2
    assert "neither ISO 8601" in wrong.stderr


def test_an_api_without_keys_records_the_open_actor(
    tmp_path: Path, session_model: ScriptedModel, fresh_database: str
) -> None:
    project = make_project(tmp_path / "open", session_model.url)
    assert qasdk(project, fresh_database, "sync", "tools").returncode == 0
    server = Server(project, fresh_database, "--no-worker")
    try:
        task_id = server.submit(method="add", params={"a": 1, "b": 2})["task_id"]
        page = server.http.get("/api/audit", params={"action": "task.submit"}).json()
        (entry,) = page["entries"]
        assert (entry["actor"], entry["key_id"], entry["target"]) == ("open", None, task_id)
    finally:
        assert server.stop() == 0, server.output


def test_a_denial_flood_costs_one_row_per_window_not_one_per_request(audited: Audited) -> None:
    """A burst of 500 requests with a wrong secret for alice's key id writes one row."""
    alice_id = audited["alice"].headers["authorization"].split("_")[1]
    guess = {"Authorization": f"Bearer qasdk_{alice_id}_a-guess"}
    since = _now()
    started = time.monotonic()
    with httpx.Client(base_url=audited.server.base, timeout=30, headers=guess) as guesser:
        for _ in range(500):
            assert guesser.get("/api/tasks").status_code == 401
    elapsed = time.monotonic() - started
    rows = [e for e in audited.entries(action="denied", since=since) if e["key_id"]]
    assert [(e["actor"], e["detail"]["reason"], e["count"]) for e in rows] == [
        ("anonymous", "bad_key", 1)
    ], rows
    assert rows[0]["key_id"] == str(uuid.UUID(alice_id))  # the key it named, not who sent it
    assert elapsed < 60  # within the window: every request after the first was only counted
