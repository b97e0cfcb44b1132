"""What a key may run and how much, over HTTP (issue 10), on a database of its own.

Keys are made through the admin API here (``/api/keys``) and with ``qasdk keys
create``; the limits are checked at submit on every server of the database,
and the model is offered only the tools the task's key may run.
"""

from __future__ import annotations

import concurrent.futures
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from qasdk.testing import ScriptedModel, reply
from tests.conftest import scratch_database
from tests.integration.harness import Server, make_project, qasdk, until

pytestmark = [pytest.mark.integration]

TAGGED = '''
from qasdk import tool


@tool(tags=["math"])
def multiply(a: int, b: int) -> int:
    """Multiply two integers.

    Args:
        a: First.
        b: Second.
    """
    return a * b


@tool(permissions=["network"])
def lookup(host: str) -> str:
    """Pretend to look a host up (it declares that it needs the network).

    Args:
        host: The name.
    """
    return host.upper()
'''


class Limited:
    """The server (and a second one on its database), an admin client, and clients by key."""

    def __init__(self, server: Server, project: Path, url: str, admin: str) -> None:
        self.server, self.project, self.url = server, project, url
        self.admin = self.client(admin)

    def client(self, key: str, server: Server | None = None) -> httpx.Client:
        base = (server or self.server).base
        return httpx.Client(base_url=base, timeout=30, headers={"Authorization": f"Bearer {key}"})

    def create(self, name: str, **fields: Any) -> str:
        made = self.admin.post("/api/keys", json={"name": name, **fields})
        assert made.status_code == 201, made.text
        assert made.headers["cache-control"] == "no-store"
        key: str = made.json()["key"]
        return key


@pytest.fixture(scope="module")
def limited(
    tmp_path_factory: pytest.TempPathFactory,
    session_model: ScriptedModel,
    pg_data: Path,
    pg_url: str,
) -> Iterator[Limited]:
    project = make_project(tmp_path_factory.mktemp("limits"), session_model.url)
    (project / "tools" / "tagged.py").write_text(TAGGED)
    with scratch_database(pg_data, pg_url, "limits") as url:
        assert qasdk(project, url, "sync", "tools").returncode == 0
        made = qasdk(project, url, "keys", "create", "ops", "--scope", "admin")
        assert made.returncode == 0, made.stderr
        server = Server(project, url)
        try:
            limits = Limited(server, project, url, made.stdout.strip())
            yield limits
        finally:
            limits.admin.close()
            assert server.stop() == 0, server.output


def _model_tools(body: dict[str, Any]) -> set[str]:
    """The tool names a model request offered (native ``tools``, or the prompt's list)."""
    if body.get("tools"):
        return {t["function"]["name"] for t in body["tools"]}
    text = json.dumps(body["messages"])
    return set(re.findall(r'\\"name\\": \\"([a-z_]+)\\"', text))


def test_a_key_runs_only_the_tools_and_tags_it_is_given(limited: Limited) -> None:
    key = limited.create("calc", scopes=["read", "submit"], tools=["add"], tags=["math"])
    with limited.client(key) as calc:
        add = calc.post("/api/tasks", json={"method": "add", "params": {"a": 1, "b": 2}})
        assert add.status_code == 201, add.text
        tagged = calc.post("/api/tasks", json={"method": "multiply", "params": {"a": 2, "b": 3}})
        assert tagged.status_code == 201, tagged.text
        echo = calc.post("/api/tasks", json={"method": "echo", "params": {"text": "x"}})
        assert echo.status_code == 403, echo.text
        message = echo.json()["error"]["message"]
        assert "'calc' may not run tool 'echo'" in message and "add, tag:math" in message
        listed = calc.get("/api/methods").json()
        assert {m["name"] for m in listed["methods"]} == {"add", "multiply"}
        assert calc.get("/api/methods/echo").status_code == 403
        assert calc.get("/api/methods/add").status_code == 200
        done = calc.get(f"/api/tasks/{tagged.json()['task_id']}", params={"wait": 10}).json()
        assert (done["status"], done["result"]) == ("completed", 6)
    every = {m["name"] for m in limited.admin.get("/api/methods").json()["methods"]}
    assert {"add", "multiply", "echo", "record"} <= every  # an unlimited key sees them all


def test_a_key_runs_only_tools_whose_permissions_it_covers(limited: Limited) -> None:
    offline = limited.create("offline", scopes=["read", "submit"], permissions=[])
    online = limited.create("online", scopes=["read", "submit"], permissions=["network", "fs:*"])
    lookup = {"method": "lookup", "params": {"host": "example.com"}}
    with limited.client(offline) as client:
        refused = client.post("/api/tasks", json=lookup)
        assert refused.status_code == 403, refused.text
        assert "may not run tool 'lookup'" in refused.json()["error"]["message"]
        names = {m["name"] for m in client.get("/api/methods").json()["methods"]}
        assert "lookup" not in names and "add" in names
        assert client.post("/api/tasks", json={"method": "add", "params": {"a": 1, "b": 1}})
    with limited.client(online) as client:
        accepted = client.post("/api/tasks", json=lookup)
        assert accepted.status_code == 201, accepted.text
        shown = client.get("/api/methods/lookup").json()
        assert shown["permissions"] == ["network"]
    bad = limited.admin.post(
        "/api/keys", json={"name": "typo", "scopes": ["read"], "permissions": ["netwrok"]}
    )
    assert bad.status_code == 400 and "network" in bad.json()["error"]["message"], bad.text


def test_the_model_is_offered_only_the_tools_of_the_tasks_key(
    limited: Limited, model: ScriptedModel
) -> None:
    key = limited.create("agent", scopes=["read", "submit"], tools=["add"])
    # The model asks for a tool the key may not run: it is not run, the model hears so.
    model.push(
        reply.tool_call("echo", {"text": "leak"}),
        reply.tool_call("add", {"a": 2, "b": 40}),
        reply.text("42"),
    )
    with limited.client(key) as agent:
        submitted = agent.post("/api/tasks", json={"task_description": "add 2 and 40"})
        assert submitted.status_code == 201, submitted.text
        task_id = submitted.json()["task_id"]
        done = agent.get(f"/api/tasks/{task_id}", params={"wait": 20}).json()
        assert (done["status"], done["result"]) == ("completed", "42"), done
        steps = agent.get(f"/api/tasks/{task_id}/trace").json()["steps"]
    first = model.requests[0]
    assert _model_tools(first) == {"add"}, first
    tools = [s for s in steps if s["kind"] == "tool"]
    assert [s["name"] for s in tools] == ["echo", "add"]
    assert "result" not in tools[0] and "echo" in tools[0]["error"]["message"]  # never ran
    assert tools[1]["result"] == 42
    # The same task for an unlimited key offers every tool.
    model.push(reply.text("nothing to do"))
    task = limited.admin.post("/api/tasks", json={"task_description": "anything"}).json()
    limited.admin.get(f"/api/tasks/{task['task_id']}", params={"wait": 20})
    assert {"add", "echo", "multiply"} <= _model_tools(model.requests[-1])


def test_the_rate_limit_holds_across_two_servers(limited: Limited) -> None:
    key = limited.create("burst", scopes=["read", "submit"], rate="5/h")
    second = Server(limited.project, limited.url)
    try:
        clients = [limited.client(key), limited.client(key, second)]
        body = {"method": "add", "params": {"a": 1, "b": 1}}

        def submit(n: int) -> httpx.Response:
            return clients[n % 2].post("/api/tasks", json=body)

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(submit, range(12)))
        codes = sorted(a.status_code for a in answers)
        assert codes == [201] * 5 + [429] * 7, [a.text for a in answers]
        refused = next(a for a in answers if a.status_code == 429)
        # A burst of 5, then one every 12 minutes (the rate's cells): the next in 720 s.
        assert 700 <= int(refused.headers["retry-after"]) <= 720
        error = refused.json()["error"]
        assert error["type"] == "too_many_requests" and "'burst' may submit 5/h" in error["message"]
        for client in clients:
            client.close()
    finally:
        assert second.stop() == 0, second.output


def test_a_key_over_its_running_cap_waits_for_a_task_to_finish(limited: Limited) -> None:
    key = limited.create("one", scopes=["read", "submit", "cancel"], max_running=1)
    slow = {"method": "record", "params": {"tag": "cap", "seconds": 30}}
    with limited.client(key) as one:
        first = one.post("/api/tasks", json=slow)
        assert first.status_code == 201, first.text
        over = one.post("/api/tasks", json={"method": "add", "params": {"a": 1, "b": 1}})
        assert over.status_code == 429, over.text
        assert over.headers["retry-after"] == "1"
        assert "max_running 1" in over.json()["error"]["message"]
        cancelled = one.post(f"/api/tasks/{first.json()['task_id']}/cancel", params={"wait": 20})
        assert cancelled.json()["status"] == "cancelled", cancelled.text
        again = one.post("/api/tasks", json={"method": "add", "params": {"a": 1, "b": 1}})
        assert again.status_code == 201, again.text


def test_keys_are_managed_over_http_by_admins_only(limited: Limited) -> None:
    key = limited.create("temp", scopes=["read"], expires_in_days=1)
    listed = limited.admin.get("/api/keys").json()["keys"]
    temp = next(k for k in listed if k["name"] == "temp")
    assert temp["scopes"] == ["read"] and temp["expires_at"] is not None
    assert "qasdk_" not in json.dumps(listed)  # secrets are never shown again
    with limited.client(key) as reader:
        assert reader.get("/api/tasks").status_code == 200
        assert reader.get("/api/keys").status_code == 403
        assert reader.post("/api/keys", json={"name": "x", "scopes": ["admin"]}).status_code == 403
        revoked = limited.admin.delete("/api/keys/temp")
        assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
        until(lambda: reader.get("/api/tasks").status_code == 401, "the revoked key still works")
    assert limited.admin.delete("/api/keys/temp").status_code == 404


def test_a_key_with_a_bad_limit_is_refused_naming_the_field(limited: Limited) -> None:
    bad = limited.admin.post(
        "/api/keys", json={"name": "bad", "scopes": ["read"], "rate": "ten a minute"}
    )
    assert bad.status_code == 400, bad.text
    assert bad.json()["error"]["problems"][0]["field"] == "rate"
    assert "COUNT/UNIT" in bad.json()["error"]["message"]
    empty = limited.admin.post("/api/keys", json={"name": "bad", "scopes": ["read"], "tools": []})
    assert empty.status_code == 400 and "allow nothing" in empty.text
    made = qasdk(
        limited.project, limited.url, "keys", "create", "cli", "--scope", "submit",
        "--tool", "add", "--rate", "10/m", "--max-running", "2",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    listed = qasdk(limited.project, limited.url, "keys", "list").stdout
    assert "cli  submit; tool add, rate 10/m, max running 2  in force" in listed
    refused = qasdk(limited.project, limited.url, "keys", "create", "x", "--scope", "read",
                    "--rate", "5")  # fmt: skip
    assert refused.returncode != 0 and "rate" in refused.stderr
