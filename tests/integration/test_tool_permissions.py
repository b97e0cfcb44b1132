"""Tools declare what they need (issue 10): synced, signed, and shown over HTTP.

``@tool(permissions=[...])`` and ``permissions:`` in methods.yaml reach the
table through ``qasdk sync``; ``/api/methods`` and the OpenAPI document show
them; and since keys will be limited by them, they are covered by the row's
signature: an ``UPDATE`` that hides (or adds) a permission gets the row refused.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from qasdk.testing import ScriptedModel
from tests.integration.harness import Server, make_project, qasdk

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

NEEDS = '''
from qasdk import tool


@tool(permissions=["network", "fs:write"])
def save_page(url: str) -> str:
    """Download a page and keep it.

    Args:
        url: The page.
    """
    return url
'''

DECLARED = """
methods:
  - name: echo_env
    description: Echo, declared with what it needs.
    module_path: tools.basic
    function_name: echo
    parameters:
      - {name: text, type: string, description: The text.}
    return_type: string
    permissions: [env]
"""


@pytest.fixture
def project(tmp_path: Path, session_model: ScriptedModel, fresh_database: str) -> Path:
    project = make_project(tmp_path / "project", session_model.url)
    (project / "tools" / "needs.py").write_text(NEEDS)
    (project / "tools" / "methods.yaml").write_text(DECLARED)
    synced = qasdk(project, fresh_database, "sync", "tools")
    assert synced.returncode == 0, synced.stderr
    return project


@pytest.fixture
def server(project: Path, fresh_database: str) -> Iterator[Server]:
    server = Server(project, fresh_database)
    try:
        yield server
    finally:
        server.stop()


def until(condition: Any, within: float = 15.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition never held"
        time.sleep(0.05)


async def test_synced_permissions_are_stored_and_shown(server: Server, fresh_database: str) -> None:
    with psycopg.connect(fresh_database) as conn:
        stored = dict(conn.execute("SELECT name, permissions FROM registered_methods").fetchall())
    assert stored["save_page"] == ["fs:write", "network"]  # sorted
    assert stored["echo_env"] == ["env"]
    assert stored["echo"] == []

    methods = {m["name"]: m for m in server.methods()["methods"]}
    assert methods["save_page"]["permissions"] == ["fs:write", "network"]
    assert methods["echo_env"]["permissions"] == ["env"]
    assert "permissions" not in methods["echo"]  # absent: nothing declared
    one = server.http.get("/api/methods/save_page")
    assert one.status_code == 200 and one.json()["permissions"] == ["fs:write", "network"]

    spec = server.http.get("/schema/openapi.json").json()
    shown = spec["components"]["schemas"]["MethodMetadata"]["properties"]["permissions"]
    assert shown["type"] == "array" and shown["items"] == {"type": "string"}
    assert "not a sandbox" in shown["description"]
    # Declaring is not confining: the tool runs as before.
    assert server.run(method="echo_env", params={"text": "hi"})["result"] == "hi"


async def test_a_row_whose_permissions_were_changed_by_hand_is_refused(
    project: Path, server: Server, fresh_database: str
) -> None:
    assert {"save_page", "echo"} <= {m["name"] for m in server.methods()["methods"]}
    with psycopg.connect(fresh_database, autocommit=True) as conn:
        # Hide what one tool needs, and add a need to another: both are tampering.
        conn.execute("UPDATE registered_methods SET permissions = '{}' WHERE name = 'save_page'")
        conn.execute("UPDATE registered_methods SET permissions = '{network}' WHERE name = 'echo'")
    until(lambda: "refused" in server.methods() and len(server.methods()["refused"]) == 2)
    body = server.methods()
    names = {m["name"] for m in body["methods"]}
    assert not names & {"save_page", "echo"} and "echo_env" in names
    for refused in body["refused"]:
        assert "signature does not match (row changed outside qasdk sync" in refused["reason"]
    response = server.http.post("/api/tasks", json={"method": "echo", "params": {"text": "x"}})
    assert response.status_code == 400 and "tool 'echo' is not loaded" in response.text
    # qasdk sync writes what the sources say, signed: both are loaded again.
    again = qasdk(project, fresh_database, "sync", "tools")
    assert again.returncode == 0, again.stderr
    assert "updated: permissions" in again.stdout
    until(lambda: "refused" not in server.methods())
    methods = {m["name"]: m for m in server.methods()["methods"]}
    assert methods["save_page"]["permissions"] == ["fs:write", "network"]
    assert "permissions" not in methods["echo"]


async def test_rows_signed_before_permissions_existed_still_load(
    project: Path, fresh_database: str
) -> None:
    with psycopg.connect(fresh_database, autocommit=True) as conn:
        # The database as a qasdk without migration 0015 left it: rows signed, no column.
        conn.execute("DELETE FROM registered_methods WHERE permissions <> '{}'")
        conn.execute("ALTER TABLE registered_methods DROP COLUMN permissions")
        conn.execute("DELETE FROM qasdk_migrations WHERE version = 15")
        before = conn.execute("SELECT count(*) FROM registered_methods").fetchone()
    server = Server(project, fresh_database)  # applies 0015: every row gets '{}'
    try:
        body = server.methods()
        assert "refused" not in body
        assert before is not None and body["count"] == before[0] > 0
        assert server.run(method="add", params={"a": 1, "b": 2})["result"] == 3
    finally:
        server.stop()
