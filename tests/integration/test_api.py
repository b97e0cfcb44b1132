"""The REST API over HTTP against a running `qasdk serve` (Properties 33-36)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qasdk.testing import ScriptedModel, reply
from tests.integration.harness import Server

pytestmark = [pytest.mark.integration, pytest.mark.anyio]
HTTP_EXAMPLES = settings(
    suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=100
)

descriptions = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    min_size=1,
    max_size=300,
).filter(lambda s: s.strip())


# Property 33: Task submission response
@HTTP_EXAMPLES
@given(descriptions, st.integers(1, 10))
async def test_submitting_a_description_answers_with_id_and_status(
    served: Server, conn: Any, model: ScriptedModel, description: str, priority: int
) -> None:
    model.rule = lambda body: reply.text("ok")
    response = served.http.post(
        "/api/tasks", json={"task_description": description, "priority": priority}
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == {"task_id", "status"}
    assert body["status"] == "pending"
    assert uuid.UUID(body["task_id"])
    assert response.headers["location"] == f"/api/tasks/{body['task_id']}"
    served.finished(body["task_id"])


# Property 34: Task status query
@HTTP_EXAMPLES
@given(st.integers(-1000, 1000), st.integers(-1000, 1000))
async def test_a_submitted_task_can_be_read_back(served: Server, conn: Any, a: int, b: int) -> None:
    task_id = served.submit(method="add", params={"a": a, "b": b})["task_id"]
    task = served.get(task_id)
    assert task["task_id"] == task_id
    assert task["status"] in {"pending", "running", "completed"}
    done = served.finished(task_id)
    assert (done["status"], done["result"]) == ("completed", a + b)


async def test_submit_and_wait_answers_the_outcome_in_one_request(
    served: Server, conn: Any
) -> None:
    done = served.http.post(
        "/api/tasks", params={"wait": 20}, json={"method": "add", "params": {"a": 2, "b": 40}}
    )
    assert done.status_code == 201, done.text
    body = done.json()
    assert (body["status"], body["result"]) == ("completed", 42)
    assert "error" not in body or body["error"] is None
    assert done.headers["location"] == f"/api/tasks/{body['task_id']}"
    assert served.get(body["task_id"])["result"] == 42  # the same task, stored

    failed = served.http.post(
        "/api/tasks", params={"wait": 20}, json={"method": "fail", "params": {"message": "no"}}
    ).json()
    assert failed["status"] == "failed"
    assert failed["error"]["message"] == "no", failed

    graph = served.http.post(
        "/api/tasks",
        params={"wait": 20},
        json={
            "subtasks": [
                {"id": "x", "method": "add", "params": {"a": 1, "b": 2}},
                {"id": "y", "method": "add", "params": {"a": 3, "b": 4}, "depends_on": ["x"]},
            ]
        },
    ).json()
    assert graph["status"] == "completed", graph

    # A wait that runs out first answers the task as it is, without an outcome.
    slow = served.http.post(
        "/api/tasks",
        params={"wait": 0.5},
        json={"method": "hang", "params": {"seconds": 30}},
    ).json()
    assert slow["status"] in {"pending", "running"}
    assert set(slow) == {"task_id", "status"}
    served.http.post(f"/api/tasks/{slow['task_id']}/cancel")
    assert served.finished(slow["task_id"])["status"] == "cancelled"


MALFORMED: list[tuple[str | bytes, str, str | None]] = [
    ("{not json", "the body is not valid JSON", None),
    ("[]", "the body: expected object, got array", None),
    ("{}", "give task_description (run by the model) or method", None),
    (
        '{"task_description": "x", "method": "add"}',
        "either task_description or method, not both",
        None,
    ),
    ('{"task_description": "   "}', "must not be empty", "task_description"),
    (
        '{"task_description": 5}',
        "task_description: expected string, got integer",
        "task_description",
    ),
    ('{"task_description": "x", "priority": 11}', "expected integer <= 10", "priority"),
    ('{"task_description": "x", "priority": "high"}', "expected integer, got string", "priority"),
    ('{"task_description": "x", "priority": null}', "expected integer, got null", "priority"),
    ('{"task_description": "x", "timeout": 0}', "expected number > 0", "timeout"),
    (
        '{"task_descripton": "x"}',
        "unknown field 'task_descripton' (did you mean 'task_description'?)",
        "task_descripton",
    ),
    ('{"method": "ad"}', "no registered tool named 'ad' (did you mean 'add'?)", "method"),
    ('{"method": "add", "params": {"a": 1}}', "missing required parameter", "params.b"),
    (
        '{"method": "add", "params": {"a": "x", "b": 2}}',
        'expected integer, got string "x"',
        "params.a",
    ),
    ('{"method": "add", "params": {"a": null, "b": 2}}', "expected integer, got null", "params.a"),
    (
        '{"method": "add", "params": {"a": 1, "b": 2, "c": 3}}',
        "unexpected parameter; accepted parameters: a, b",
        "params.c",
    ),
    ('{"method": "add", "params": [1, 2]}', "params: expected object, got array", "params"),
    ('{"task_description": "x", "params": {}}', "params go with method", "params"),
    ('{"task_description": "a\\u0000b"}', "must not contain NUL", "task_description"),
    ('{"method": "echo", "params": {"text": "a\\u0000"}}', "must not contain NUL", "params.text"),
    ("", "a JSON body is required", None),
    # What the body is, not what the decoder stumbled on ("input data was truncated").
    ('{"task_description": "x"', "the body is not valid JSON: it ends early", None),
    (
        '{"task_description": "\\ud800"}',
        "task_description: invalid \\ud800 escape (a lone surrogate, not a character)",
        "task_description",
    ),
    (
        '{"task_description": "a\\ud800 b"}',
        "invalid \\ud800 escape",
        "task_description",
    ),
    (
        '{"method": "echo", "params": {"text": "\\udc00"}}',
        "params.text: invalid \\udc00 escape",
        "params.text",
    ),
    (
        b'{"task_description": "caf\xe9"}',
        "the body is not valid UTF-8 (byte 25, in task_description)",
        "task_description",
    ),
    (b'{"task_description": "\xed\xa0\x80"}', "the body is not valid UTF-8", "task_description"),
    (b'{"\xff": 1}', "the body is not valid UTF-8 (byte 2)", None),
]


# Property 35: Invalid request error response
@pytest.mark.parametrize(("body", "reason", "field"), MALFORMED)
async def test_malformed_requests_are_400_with_the_reason(
    served: Server, body: str | bytes, reason: str, field: str | None
) -> None:
    response = served.http.post(
        "/api/tasks", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert reason in error["message"]
    if field is not None:
        assert any(p.get("field") == field for p in error["problems"]), error


@pytest.mark.parametrize(
    "content_type",
    [None, "application/x-www-form-urlencoded", "text/plain", "multipart/form-data; boundary=x"],
)
async def test_a_body_that_is_not_sent_as_json_is_415_saying_what_to_send(
    served: Server, content_type: str | None, conn: Any
) -> None:
    """What ``curl -d`` and HTML forms send (issue 18), and what keeps cross-site forms out."""
    headers = {"content-type": content_type} if content_type else {}
    body = b'{"method": "add", "params": {"a": 1, "b": 2}}'
    response = served.http.post("/api/tasks", content=body, headers=headers)
    assert response.status_code == 415, response.text
    error = response.json()["error"]
    assert error["type"] == "unsupported_media_type"
    assert "Content-Type: application/json" in error["message"]
    assert "curl --json" in error["message"]
    assert (repr(content_type.split(";")[0]) if content_type else "no Content-Type") in error[
        "message"
    ]
    # With its charset parameter it is JSON all the same.
    ok = served.http.post(
        "/api/tasks", content=body, headers={"content-type": "application/json; charset=utf-8"}
    )
    assert ok.status_code == 201, ok.text


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


# Property 35: Invalid request error response
@HTTP_EXAMPLES
@given(
    st.dictionaries(
        st.sampled_from(["task_description", "method", "params", "priority", "timeout", "extra"]),
        json_values,
        max_size=4,
    )
)
async def test_any_invalid_body_is_a_400_never_a_crash(
    served: Server, conn: Any, body: dict[str, Any]
) -> None:
    response = served.http.post("/api/tasks", json=body)
    if response.status_code == 201:  # the generator found a valid request
        served.finished(response.json()["task_id"])
        return
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] in {"invalid_request", "invalid_params", "unknown_method"}
    assert error["message"]


async def test_unknown_and_invalid_ids(served: Server) -> None:
    missing = served.http.get(f"/api/tasks/{uuid.uuid4()}")
    assert missing.status_code == 404
    assert missing.json()["error"]["type"] == "not_found"
    for path in ("/api/tasks/not-a-uuid", "/api/tasks/not-a-uuid/trace"):
        bad = served.http.get(path)  # no such task can exist: 404, and it says why
        assert bad.status_code == 404
        assert bad.json()["error"]["message"] == "no task with id 'not-a-uuid': ids are UUIDs"
    assert served.http.post(f"/api/tasks/{uuid.uuid4()}/cancel").status_code == 404
    assert served.http.get(f"/api/tasks/{uuid.uuid4()}/trace").status_code == 404
    assert served.http.get("/api/nothing").status_code == 404


# Property 36: Server error response
async def test_a_server_fault_is_a_500_with_a_logged_stack_trace(served: Server, conn: Any) -> None:
    task_id = uuid.uuid4()
    # A record the API cannot represent (the error has no type or message): a server fault.
    await conn.execute(
        "INSERT INTO tasks (id, kind, method, status, error) VALUES (%s, 'direct', 'add', 'failed', %s)",
        (task_id, json.dumps({"unexpected": True})),
    )
    await conn.commit()
    response = served.http.get(f"/api/tasks/{task_id}")
    assert response.status_code == 500
    error = response.json()["error"]
    assert error["type"] == "internal_error"
    assert error["message"] == "internal server error"
    assert "Traceback" not in response.text and "msgspec" not in response.text
    records = [r for r in served.log_records() if r.get("error_id") == error["error_id"]]
    assert len(records) == 1
    assert records[0]["level"] == "ERROR"
    assert records[0]["path"] == f"/api/tasks/{task_id}"
    assert "Traceback" in records[0]["stack_trace"]
    assert records[0]["error_type"]


async def test_lists_leave_big_fields_out_and_filter_by_what_users_ask(
    served: Server, conn: Any
) -> None:
    before = served.http.get("/api/tasks", params={"limit": 1}).json()["tasks"]
    since = before[0]["created_at"] if before else "2000-01-01T00:00:00Z"
    echo = served.run(method="echo", params={"text": "big " * 1000})
    add = served.run(method="add", params={"a": 1, "b": 2})
    page = served.http.get("/api/tasks", params={"limit": 2}).json()["tasks"]
    assert [t["task_id"] for t in page] == [add["task_id"], echo["task_id"]]
    assert all("params" not in t and "result" not in t for t in page)
    full = served.http.get("/api/tasks", params={"limit": 2, "include": "params,result"}).json()
    assert full["tasks"][0]["result"] == 3 and full["tasks"][0]["params"] == {"a": 1, "b": 2}
    only_add = served.http.get(
        "/api/tasks", params={"method": "add", "kind": "direct", "created_after": since}
    ).json()["tasks"]
    assert [t["task_id"] for t in only_add] == [add["task_id"]]
    described = served.http.get(
        "/api/tasks", params={"kind": "described", "created_after": since}
    ).json()["tasks"]
    assert described == []
    late = served.http.get("/api/tasks", params={"created_before": since}).json()["tasks"]
    assert echo["task_id"] not in [t["task_id"] for t in late]
    bad = served.http.get("/api/tasks", params={"include": "trace"})
    assert bad.status_code == 400
    assert bad.json()["error"]["message"] == (
        "include: unknown field 'trace'; one of params, result"
    )


async def test_what_a_task_may_carry_is_bounded(served: Server, conn: Any) -> None:
    long = served.http.post("/api/tasks", json={"task_description": "x" * 70_000})
    assert long.status_code == 400
    assert long.json()["error"]["message"] == (
        "task_description: must be at most 65536 characters (limits.task_description), got 70000"
    )
    big = served.http.post("/api/tasks", json={"method": "echo", "params": {"text": "y" * 300_000}})
    assert big.status_code == 400
    assert "must be at most 262144 bytes as JSON (limits.params)" in big.json()["error"]["message"]


async def test_an_unknown_tool_with_nothing_close_lists_what_there_is(served: Server) -> None:
    response = served.http.post("/api/tasks", json={"method": "zzzzqqq"})
    assert response.status_code == 400
    message = response.json()["error"]["message"]
    assert message.startswith("method: no registered tool named 'zzzzqqq'; registered: ")
    assert message.endswith("more (GET /api/methods lists them)")


async def test_list_filter_and_paginate(served: Server, conn: Any) -> None:
    ids = [served.submit(method="echo", params={"text": str(i)})["task_id"] for i in range(5)]
    for task_id in ids:
        served.finished(task_id)
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, "status": "completed"}
        if cursor:
            params["cursor"] = cursor
        page = served.http.get("/api/tasks", params=params).json()
        assert len(page["tasks"]) <= 2
        assert all(t["status"] == "completed" for t in page["tasks"])
        seen += [t["task_id"] for t in page["tasks"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [i for i in seen if i in ids] == list(reversed(ids))  # newest first, each once
    assert served.http.get("/api/tasks", params={"status": "sleeping"}).status_code == 400
    assert served.http.get("/api/tasks", params={"cursor": "garbage!"}).status_code == 400


@pytest.mark.parametrize(
    ("path", "unknown", "accepted"),
    [
        (
            "/api/tasks?offset=20",
            "offset",
            "created_after, created_before, cursor, include, kind, limit, method, parent_id, status",
        ),
        (
            "/api/tasks?page=2&limit=5",
            "page",
            "created_after, created_before, cursor, include, kind, limit, method, parent_id, status",
        ),
        (f"/api/tasks/{uuid.UUID(int=0)}?wiat=5", "wiat", "wait"),
        ("/health?verbose=1", "verbose", None),
        ("/api/methods?name=add", "name", None),
    ],
)
async def test_unknown_query_parameters_are_400(
    served: Server, path: str, unknown: str, accepted: str | None
) -> None:
    """Every route refuses what it would ignore (a filter or page that does nothing)."""
    response = served.http.get(path)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request"
    assert f"unknown query parameter '{unknown}'" in error["message"]
    if accepted:
        assert f"accepted: {accepted}" in error["message"]
    else:
        assert "takes no query parameters" in error["message"]
    assert error["problems"] == [{"field": unknown, "reason": error["problems"][0]["reason"]}]


async def test_several_unknown_query_parameters_are_named_together(served: Server) -> None:
    response = served.http.get("/api/tasks", params={"offset": 1, "page": 2, "limit": 3})
    assert response.status_code == 400, response.text
    message = response.json()["error"]["message"]
    assert message.startswith("unknown query parameters 'offset', 'page'"), message
    assert {p["field"] for p in response.json()["error"]["problems"]} == {"offset", "page"}


async def test_methods_and_health(served: Server) -> None:
    methods = served.http.get("/api/methods").json()
    names = {m["name"] for m in methods["methods"]}
    assert {"add", "echo", "hang", "record"} <= names
    assert methods["count"] == len(methods["methods"])
    add = served.http.get("/api/methods/add").json()
    assert add["module_path"] == "tools.basic"
    assert [p["name"] for p in add["parameters"]] == ["a", "b"]
    missing = served.http.get("/api/methods/ad")
    assert missing.status_code == 404
    assert "did you mean 'add'" in missing.json()["error"]["message"]

    health = served.http.get("/health")
    assert health.status_code == 200
    body = health.json()
    assert body["database"]["ok"] is True
    assert body["model"]["ok"] is True  # the scripted model answers /v1/models
    assert body["worker"]["embedded"] is True
    assert body["registry"]["tools"] == len(names)


async def test_openapi_schema(served: Server) -> None:
    schema = served.http.get("/schema/openapi.json")
    assert schema.status_code == 200
    spec = schema.json()
    paths = spec["paths"]
    assert {
        "/api/tasks",
        "/api/tasks/{task_id}",
        "/api/tasks/{task_id}/cancel",
        "/api/tasks/{task_id}/trace",
        "/api/tasks/{task_id}/events",
        "/api/methods",
        "/api/methods/{name}",
        "/health",
        "/metrics",
        "/api/config",
        "/api/config/reload",
        "/api/audit",
    } <= set(paths)
    # The error bodies and status codes the API really answers with are documented.
    cancel = paths["/api/tasks/{task_id}/cancel"]["post"]["responses"]
    assert {"200", "202", "400", "404", "408", "409", "413", "431", "500", "503"} <= set(cancel)
    too_large = cancel["413"]["content"]["application/json"]["examples"]
    assert "limits.request_body" in json.dumps(too_large)
    assert cancel["409"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorBody"
    }
    assert "201" not in cancel
    events = paths["/api/tasks/{task_id}/events"]["get"]["responses"]["200"]["content"]
    assert "text/event-stream" in events
    assert set(paths["/api/config/reload"]["post"]["responses"]) >= {"200", "422"}
