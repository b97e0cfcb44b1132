"""Fuzz the HTTP API from its own OpenAPI schema (schemathesis): no request gets a 5xx.

One `qasdk serve --no-worker` on a database of its own: valid submissions are
queued and never run (the test tools sleep, crash and exit), so every request
is answered by the API alone. Every operation the server documents at
``/schema/openapi.json`` is tested, including ones added later, with
schemathesis' coverage and fuzzing phases under the project's Hypothesis
profile (``ci``: derandomized, so a run repeats; ``dev`` explores).

Checked: no server error, every status code and content type is one the
schema documents for the operation (the error bodies and codes are declared
on each route: see ``qasdk_server.errors.error_responses``).

The schema alone rarely produces a request that gets past validation (it does
not say that ``task_description`` and ``method`` exclude each other, that
unknown fields are refused, or that ids are UUIDs), so hooks steer part of the
generated data to real tools, tasks and cursors. A valid ``wait`` (up to 60 s)
is shortened to 0.2 s, and only a finished task's event stream is opened: on
a pending task, which never runs here, both would last as long as allowed.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, status_code_conformance

from qasdk.testing import ScriptedModel
from tests.conftest import scratch_database
from tests.integration.harness import Server, make_project, qasdk

pytestmark = [pytest.mark.integration]

MAX_EXAMPLES = 50  # per operation, fuzzing phase; the coverage phase adds its own cases
MAX_WAIT = 60.0  # the API's upper bound for `wait`
SHORT_WAIT = 0.2


# Any text, and often the characters that trouble a database or an encoder.
TEXT = st.text() | st.text(st.sampled_from("\x00a\t\n\"'\\%_\u2028\U0001f600"), max_size=6)
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)
BY_TYPE = {
    "integer": st.integers(),
    "number": st.floats(allow_nan=False, allow_infinity=False),
    "string": TEXT,
    "boolean": st.booleans(),
}


@pytest.fixture(scope="module")
def fuzz_database(pg_data: Path, pg_url: str) -> Iterator[str]:
    """An empty database for this module's server, dropped afterwards."""
    with scratch_database(pg_data, pg_url, "fuzz") as url:
        yield url


@pytest.fixture(scope="module")
def fuzz_server(
    tmp_path_factory: pytest.TempPathFactory, session_model: ScriptedModel, fuzz_database: str
) -> Iterator[Server]:
    project = make_project(tmp_path_factory.mktemp("fuzz"), session_model.url)
    # Open for good: the fuzzer creates keys through POST /api/keys, and a key in force
    # would turn every later request into a 401 with `server.auth: auto`.
    config = project / "model_config.yaml"
    config.write_text(config.read_text() + "server:\n  auth: none\n")
    synced = qasdk(project, fuzz_database, "sync", "tools")
    assert synced.returncode == 0, synced.stderr
    server = Server(project, fuzz_database, "--no-worker")
    try:
        yield server
    finally:
        code = server.stop()
        assert code == 0, f"qasdk serve exited with {code}:\n{server.output}"


def _cursor(created: datetime, task_id: uuid.UUID) -> str:
    """A well-formed cursor (the route's format) for a position that need not exist."""
    raw = f"{created.isoformat()}|{task_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _steer(schema: Any, server: Server) -> None:
    """Hooks that turn part of the generated values into real tasks, tools and cursors."""
    pending = [
        server.submit(method="add", params={"a": 1, "b": 2})["task_id"],
        server.submit(task_description="add 1 and 2")["task_id"],
    ]
    cancelled = server.submit(method="echo", params={"text": "x"})["task_id"]
    assert server.http.post(f"/api/tasks/{cancelled}/cancel").status_code == 200
    tools = server.http.get("/api/methods").json()["methods"]
    page = server.http.get("/api/tasks", params={"limit": 1}).json()
    assert page["next_cursor"], page

    # A pending task's event stream never ends (no worker here): only finished ones.
    task_ids = {"events": st.just(cancelled), "other": st.sampled_from([*pending, cancelled])}
    names = st.sampled_from([tool["name"] for tool in tools])
    offsets = st.timedeltas(
        min_value=-timedelta(hours=23, minutes=59), max_value=timedelta(hours=23, minutes=59)
    )
    cursors = st.just(page["next_cursor"]) | st.builds(
        _cursor, st.datetimes(timezones=st.none() | st.builds(timezone, offsets)), st.uuids()
    )

    def arguments(tool: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
        """Mostly the tool's own parameters, of its types or of any type; or anything."""
        parameters = tool.get("parameters", [])
        value = {p["name"]: BY_TYPE.get(p.get("schema", {}).get("type"), JSON) for p in parameters}
        required = {p["name"] for p in parameters if p.get("required", True)}
        own = st.fixed_dictionaries(
            {name: value[name] | JSON for name in value if name in required},
            optional={name: value[name] | JSON for name in value if name not in required},
        )
        return own | st.dictionaries(TEXT, JSON, max_size=2)

    options = {
        "priority": st.integers(min_value=1, max_value=10),
        "timeout": st.none() | st.floats(min_value=0, max_value=86400, exclude_min=True),
    }
    direct = st.sampled_from(tools).flatmap(
        lambda tool: st.fixed_dictionaries(
            {"method": st.just(tool["name"]), "params": arguments(tool)}, optional=options
        )
    )
    described = st.fixed_dictionaries({"task_description": TEXT}, optional=options)

    @schema.hook
    def flatmap_path_parameters(
        context: schemathesis.HookContext, path_parameters: dict[str, Any] | None
    ) -> st.SearchStrategy[dict[str, Any] | None]:
        # Random ids and names reach 400 and 404 only; real ones reach the rest.
        if not path_parameters or context.operation is None:
            return st.just(path_parameters)
        if "task_id" in path_parameters:
            kind = "events" if context.operation.path.endswith("/events") else "other"
            real = task_ids[kind].map(lambda task_id: {**path_parameters, "task_id": task_id})
        elif "name" in path_parameters:
            real = names.map(lambda name: {**path_parameters, "name": name})
        else:
            return st.just(path_parameters)
        return st.just(path_parameters) | real

    @schema.hook
    def flatmap_query(
        context: schemathesis.HookContext, query: dict[str, Any] | None
    ) -> st.SearchStrategy[dict[str, Any] | None]:
        if context.operation is None or context.operation.label != "GET /api/tasks":
            return st.just(query)
        return st.just(query) | cursors.map(lambda cursor: {**(query or {}), "cursor": cursor})

    @schema.hook
    def flatmap_body(context: schemathesis.HookContext, body: Any) -> st.SearchStrategy[Any]:
        if context.operation is None or context.operation.label != "POST /api/tasks":
            return st.just(body)
        return st.just(body) | direct | described


@pytest.fixture(scope="module")
def api_schema(fuzz_server: Server) -> Any:
    schema = schemathesis.openapi.from_url(f"{fuzz_server.base}/schema/openapi.json")
    schema.config.update(base_url=fuzz_server.base)
    _steer(schema, fuzz_server)
    return schema


@pytest.fixture(autouse=True)
def _node_id_for_schemathesis(request: pytest.FixtureRequest) -> None:
    # schemathesis (4.32.5) names each operation's subtest through pytest's private
    # `Function._nodeid`, which pytest 9.2 replaced (`_id`, a NodeId): without the old
    # attribute the test fails with AttributeError before sending a request.
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid


def _short_waits(case: schemathesis.Case) -> None:
    """`wait` in range waits that long on a pending task: a valid value, made short."""
    query = case.query or {}
    try:
        wait = float(query["wait"])
    except (KeyError, TypeError, ValueError):
        return
    if SHORT_WAIT < wait <= MAX_WAIT:
        query["wait"] = SHORT_WAIT


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES)
def test_no_server_errors(case: schemathesis.Case) -> None:
    _short_waits(case)
    checks = [not_a_server_error, status_code_conformance, content_type_conformance]
    case.call_and_validate(checks=checks, timeout=30)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"task_description": "a\x00b"}, id="text column"),
        pytest.param({"method": "echo", "params": {"text": "a\x00b"}}, id="jsonb"),
    ],
)
def test_text_the_database_cannot_store_is_a_bad_request(
    fuzz_server: Server, body: dict[str, Any]
) -> None:
    """What the fuzzer found first: NUL in stored text was a 503 (text) or a 500 (jsonb)."""
    response = fuzz_server.http.post("/api/tasks", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["type"] == "invalid_request"


def test_nothing_went_wrong_in_the_server_log(fuzz_server: Server) -> None:
    """Errors a status code cannot show (a stream that breaks after its headers)."""
    errors = [r for r in fuzz_server.log_records() if r.get("level") in ("ERROR", "CRITICAL")]
    assert not errors, errors
