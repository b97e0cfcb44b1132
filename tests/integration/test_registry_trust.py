"""A registry that is data, not code (issue 10): signed rows, allowed roots, key rotation.

One ``UPDATE registered_methods SET module_path='os', function_name='system'``
used to make a running server execute shell commands. Now the row's signature
no longer matches and ``os`` is not under the module root: the server does
not load it, says which tool and why, and the executor would refuse it anyway.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import msgspec
import psycopg
import pytest

from qasdk.models import MethodConfig, MethodParameter
from qasdk.security.signing import SigningKey, new_secret
from qasdk.store.methods import sign_methods, upsert_methods
from qasdk.testing import ScriptedModel
from qasdk_server.executor import Executor
from tests.integration.harness import Server, make_project, qasdk, until

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

SHELL_PARAMS = json.dumps(
    [{"name": "command", "type": "string", "description": "c", "required": True}]
)


@pytest.fixture(autouse=True)
def _key_files(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests are about the default: the key file beside the data, not a configured key."""
    monkeypatch.delenv("QASDK_REGISTRY_SIGNING_KEY", raising=False)


@pytest.fixture
def project(tmp_path: Path, session_model: ScriptedModel, fresh_database: str) -> Path:
    project = make_project(tmp_path / "project", session_model.url)
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


def refusals(server: Server) -> dict[str, str]:
    return {
        r["tool"]: r["reason"]
        for r in server.log_records()
        if r.get("message", "").startswith("tool ") and "not loaded" in r.get("message", "")
    }


async def test_a_row_pointed_at_os_system_is_refused_by_a_running_server(
    project: Path, server: Server, fresh_database: str, tmp_path: Path
) -> None:
    assert server.run(method="echo", params={"text": "hi"})["status"] == "completed"
    marker = tmp_path / "pwned"
    with psycopg.connect(fresh_database, autocommit=True) as conn:
        conn.execute(
            "UPDATE registered_methods SET module_path = 'os', function_name = 'system', "
            "parameters_json = %s::jsonb WHERE name = 'echo'",
            (SHELL_PARAMS,),
        )
    until(lambda: "echo" not in {m["name"] for m in server.methods()["methods"]})
    response = server.http.post(
        "/api/tasks", json={"method": "echo", "params": {"command": f"touch {marker}"}}
    )
    assert response.status_code == 400, response.text
    assert "tool 'echo' is not loaded" in response.text
    time.sleep(0.5)
    assert not marker.exists()
    (refused,) = server.methods()["refused"]
    assert refused["name"] == "echo"
    assert "signature does not match (row changed outside qasdk sync" in refused["reason"]
    assert "'os' is not under the module root" in refused["reason"]
    assert "signature does not match" in refusals(server)["echo"]
    listed = qasdk(project, fresh_database, "methods")
    assert listed.returncode == 0, listed.stderr
    assert "warning: tool 'echo' is not loaded by servers: its row's signature" in listed.stderr
    # The other tools are unaffected.
    assert server.run(method="add", params={"a": 1, "b": 2})["result"] == 3
    # qasdk sync writes the row again, signed: it is loaded again.
    assert qasdk(project, fresh_database, "sync", "tools").returncode == 0
    until(lambda: "echo" in {m["name"] for m in server.methods()["methods"]})
    assert "refused" not in server.methods()


async def test_unsigned_rows_and_rows_signed_with_another_key_are_refused(
    project: Path, fresh_database: str
) -> None:
    tool = MethodConfig(
        name="unsigned_echo",
        description="Echo.",
        parameters=(MethodParameter(name="text", type="string", description="Text."),),
        return_type="string",
        module_path="tools.basic",
        function_name="echo",
    )
    foreign = msgspec.structs.replace(tool, name="foreign_echo")
    other = SigningKey(secret=new_secret(), source="another deployment")
    async with await psycopg.AsyncConnection.connect(fresh_database) as conn:
        from psycopg.rows import dict_row

        conn.row_factory = dict_row  # type: ignore[assignment]
        await upsert_methods(conn, [tool, foreign])  # type: ignore[arg-type]
        await sign_methods(conn, other, ["foreign_echo"])  # type: ignore[arg-type]
        await conn.commit()
    server = Server(project, fresh_database)
    try:
        body = server.methods()
        names = {m["name"] for m in body["methods"]}
        assert "echo" in names and not names & {"unsigned_echo", "foreign_echo"}
        reasons = {r["name"]: r["reason"] for r in body["refused"]}
        assert reasons["unsigned_echo"].startswith("its row is not signed")
        assert "signed with another key" in reasons["foreign_echo"]
        logged = refusals(server)
        assert set(logged) >= {"unsigned_echo", "foreign_echo"}
        response = server.http.post(
            "/api/tasks", json={"method": "foreign_echo", "params": {"text": "x"}}
        )
        assert response.status_code == 400 and "is not loaded" in response.text
    finally:
        server.stop()


async def test_rotating_the_signing_key_keeps_every_tool_loaded(
    project: Path, server: Server, fresh_database: str
) -> None:
    key_file = project / ".qasdk" / "signing.key"
    before = key_file.read_text()
    count = len(server.methods()["methods"])
    rotated = qasdk(project, fresh_database, "db", "rotate-signing-key")
    assert rotated.returncode == 0, rotated.stderr
    assert f"re-signed {count} tools with a new key" in rotated.stdout
    assert key_file.read_text() != before and (key_file.stat().st_mode & 0o777) == 0o600
    # The running server takes the new key over; a new one starts with every tool.
    until(lambda: len(server.methods()["methods"]) == count and "refused" not in server.methods())
    assert server.run(method="add", params={"a": 2, "b": 2})["result"] == 4
    again = Server(project, fresh_database)
    try:
        assert len(again.methods()["methods"]) == count and "refused" not in again.methods()
    finally:
        again.stop()


async def test_the_executor_never_sends_code_from_outside_its_roots(tmp_path: Path) -> None:
    shell = MethodConfig(
        name="shell",
        description="Shell.",
        parameters=(MethodParameter(name="command", type="string", description="C."),),
        return_type="int",
        module_path="os",
        function_name="system",
    )
    marker = tmp_path / "pwned"
    async with Executor({"shell": shell}, processes=1, cwd=tmp_path) as executor:
        result = await executor.execute("shell", {"command": f"touch {marker}"})
    assert not result.success and result.error_type == "ValidationError"
    assert "module_path: 'os' is not under the module root" in (result.error or "")
    assert not marker.exists()
