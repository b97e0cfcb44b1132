"""Task graphs a client declares (issue 13), through a real server, its worker and qwen-agent.

The side-effect file of the ``record`` tool (``runs.log``) tells which sub-tasks
really ran, and how often: a graph loses none and runs none twice, even when
its server is killed in the middle.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest

from qasdk.testing import ScriptedModel, reply
from tests.integration.harness import Server, make_project, qasdk, runs, until

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


def children(server: Server, parent: str) -> dict[str, dict[str, Any]]:
    """The graph's sub-tasks by their ids in the graph (``GET /api/tasks?parent_id=``)."""
    response = server.http.get(
        "/api/tasks", params={"parent_id": parent, "include": "params,result"}
    )
    assert response.status_code == 200, response.text
    return {t["subtask_id"]: t for t in response.json()["tasks"]}


def rejected(server: Server, **body: Any) -> dict[str, str]:
    response = server.http.post("/api/tasks", json=body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_graph", response.text
    return {p["field"]: p["reason"] for p in error["problems"]}


async def test_a_diamond_passes_results_to_the_last_sub_task(
    served: Server, model: ScriptedModel, conn: Any
) -> None:
    model.push(reply.text("The total is 116."))
    submitted = served.submit(
        subtasks=[
            {"id": "a", "method": "add", "params": {"a": 1, "b": 2}},
            {
                "id": "b",
                "method": "add",
                "params": {"a": {"$ref": "a.result"}, "b": 10},
                "depends_on": ["a"],
            },
            {
                "id": "c",
                "method": "add",
                "params": {"a": {"$ref": "a.result"}, "b": 100},
                "depends_on": ["a"],
            },
            {
                "id": "s",
                "method": "add",
                "params": {"a": {"$ref": "b.result"}, "b": {"$ref": "c.result"}},
                "depends_on": ["b", "c"],
            },
            {
                "id": "d",
                "task_description": "Report {{b.result}} + {{c.result}} = {{s.result}}",
                "depends_on": ["b", "c", "s"],
            },
        ]
    )
    assert submitted["status"] == "running"
    parent = served.finished(submitted["task_id"], within=60)
    assert parent["status"] == "completed", parent
    assert parent["kind"] == "graph"
    assert parent["failure_policy"] == "fail_fast"
    summary = parent["result"]
    assert {k: v["status"] for k, v in summary.items()} == dict.fromkeys("abcsd", "completed")
    assert [summary[k]["result"] for k in "abcs"] == [3, 13, 103, 116]
    assert summary["d"]["result"] == "The total is 116."
    # The described sub-task was asked with its references resolved.
    (request,) = model.requests
    assert "Report 13 + 103 = 116" in str(request["messages"])
    # Each sub-task is a task of its own, with its parent, and its resolved params.
    tasks = children(served, submitted["task_id"])
    assert set(tasks) == set("abcsd")
    assert all(t["parent_id"] == submitted["task_id"] for t in tasks.values())
    assert tasks["s"]["params"] == {"a": 13, "b": 103}
    assert sorted(tasks["s"]["depends_on"]) == sorted(
        [tasks["b"]["task_id"], tasks["c"]["task_id"]]
    )
    assert tasks["d"]["task_description"] == "Report 13 + 103 = 116"
    assert served.trace(tasks["s"]["task_id"])[0]["result"] == 116


async def test_a_cycle_and_unknown_ids_are_rejected_by_name(served: Server, conn: Any) -> None:
    cycle = rejected(
        served,
        subtasks=[
            {"id": "a", "method": "add", "params": {"a": 1, "b": 2}, "depends_on": ["c"]},
            {"id": "b", "method": "add", "params": {"a": 1, "b": 2}, "depends_on": ["a"]},
            {"id": "c", "method": "add", "params": {"a": 1, "b": 2}, "depends_on": ["b"]},
        ],
    )
    assert cycle == {"subtasks[0].depends_on": "dependency cycle: 'a' -> 'c' -> 'b' -> 'a'"}
    unknown = rejected(
        served,
        subtasks=[
            {"id": "a", "method": "add", "params": {"a": 1, "b": 2}},
            {"id": "b", "method": "add", "params": {"a": 1}, "depends_on": ["a", "nope"]},
            {"id": "c", "method": "no_such_tool", "params": {}},
            {
                "id": "d",
                "method": "add",
                "params": {"a": "x", "b": {"$ref": "a.result"}},
                "depends_on": ["a"],
            },
            {"id": "e", "method": "add", "params": {"a": {"$ref": "b.result"}, "b": 1}},
        ],
    )
    assert "unknown sub-task id 'nope'" in unknown["subtasks[1].depends_on[1]"]
    assert "missing required parameter" in unknown["subtasks[1].params.b"]
    assert "no registered tool named 'no_such_tool'" in unknown["subtasks[2].method"]
    assert "subtasks[3].params.a" in unknown  # a wrong type; b (a reference) is not checked
    assert "subtasks[3].params.b" not in unknown
    assert "'b' must be in depends_on" in unknown["subtasks[4].params.a"]
    assert len(unknown) == 5
    listed = served.http.get("/api/tasks", params={"kind": "graph"}).json()["tasks"]
    assert listed == []


async def test_fail_fast_cancels_the_rest(served: Server, conn: Any) -> None:
    submitted = served.submit(
        subtasks=[
            {"id": "bad", "method": "fail", "params": {"message": "boom"}},
            {"id": "slow", "method": "hang", "params": {"seconds": 60}},
            {"id": "next", "method": "add", "params": {"a": 1, "b": 2}, "depends_on": ["bad"]},
        ]
    )
    parent = served.finished(submitted["task_id"], within=60)
    assert parent["status"] == "failed", parent
    assert parent["error"]["type"] == "SubtaskFailed"
    statuses = {k: v["status"] for k, v in parent["result"].items()}
    assert statuses == {"bad": "failed", "slow": "cancelled", "next": "cancelled"}
    assert parent["result"]["bad"]["error"] == {"type": "ValueError", "message": "boom"}
    assert "'bad' failed" in parent["result"]["next"]["error"]["message"]


async def test_continue_runs_what_does_not_depend_on_the_failure(served: Server, conn: Any) -> None:
    submitted = served.submit(
        failure_policy="continue",
        subtasks=[
            {"id": "bad", "method": "fail", "params": {"message": "boom"}},
            {"id": "after_bad", "method": "add", "params": {"a": 1, "b": 2}, "depends_on": ["bad"]},
            {
                "id": "later",
                "method": "add",
                "params": {"a": 1, "b": {"$ref": "after_bad.result"}},
                "depends_on": ["after_bad"],
            },
            {"id": "ok", "method": "add", "params": {"a": 1, "b": 2}},
            {
                "id": "after_ok",
                "method": "add",
                "params": {"a": {"$ref": "ok.result"}, "b": 4},
                "depends_on": ["ok"],
            },
        ],
    )
    parent = served.finished(submitted["task_id"], within=60)
    assert parent["status"] == "failed", parent
    summary = parent["result"]
    assert {k: v["status"] for k, v in summary.items()} == {
        "bad": "failed",
        "after_bad": "cancelled",
        "later": "cancelled",
        "ok": "completed",
        "after_ok": "completed",
    }
    assert summary["after_ok"]["result"] == 7
    assert "its dependency 'bad' failed" in summary["after_bad"]["error"]["message"]
    assert "its dependency 'after_bad' cancelled" in summary["later"]["error"]["message"]


async def test_a_reference_the_result_cannot_satisfy_fails_that_sub_task(
    served: Server, conn: Any
) -> None:
    submitted = served.submit(
        subtasks=[
            {"id": "a", "method": "add", "params": {"a": 1, "b": 2}},
            {
                "id": "b",
                "method": "add",
                "params": {"a": {"$ref": "a.result.total"}, "b": 1},
                "depends_on": ["a"],
            },
        ]
    )
    parent = served.finished(submitted["task_id"], within=60)
    assert parent["status"] == "failed"
    error = parent["result"]["b"]["error"]
    assert error["type"] == "RefError"
    assert "params.a: 'a.result.total': a.result has no 'total' (it is int)" in error["message"]


async def test_cancelling_the_graph_cancels_every_unfinished_sub_task(
    served: Server, conn: Any
) -> None:
    submitted = served.submit(
        subtasks=[
            {"id": "done", "method": "add", "params": {"a": 1, "b": 2}},
            {"id": "slow", "method": "hang", "params": {"seconds": 60}},
            {"id": "waiting", "method": "add", "params": {"a": 1, "b": 2}, "depends_on": ["slow"]},
        ]
    )
    parent_id = submitted["task_id"]
    until(
        lambda: (
            children(served, parent_id)["slow"]["status"] == "running"
            and children(served, parent_id)["done"]["status"] == "completed"
        ),
        "the slow sub-task never started",
        within=30,
    )
    response = served.http.post(f"/api/tasks/{parent_id}/cancel", params={"wait": 20})
    assert response.status_code == 200, response.text
    parent = response.json()
    assert parent["status"] == "cancelled"
    statuses = {k: t["status"] for k, t in children(served, parent_id).items()}
    assert statuses == {"done": "completed", "slow": "cancelled", "waiting": "cancelled"}
    assert parent["result"]["done"] == {"status": "completed", "result": 3}


async def test_a_graph_survives_its_server_killed_mid_way(
    tmp_path: Path, session_model: ScriptedModel, fresh_database: str
) -> None:
    project = make_project(tmp_path / "project", session_model.url)
    assert qasdk(project, fresh_database, "sync", "tools").returncode == 0
    graph = [
        {"id": "first", "method": "record", "params": {"tag": "first"}},
        {
            "id": "slow",
            "method": "record",
            "params": {"tag": "slow", "seconds": 8},
            "depends_on": ["first"],
        },
        {"id": "side", "method": "record", "params": {"tag": "side"}, "depends_on": ["first"]},
        {
            "id": "last",
            "method": "record",
            "params": {"tag": "last"},
            "depends_on": ["slow", "side"],
        },
    ]
    doomed = Server(project, fresh_database)
    try:
        parent_id = doomed.submit(subtasks=graph)["task_id"]
        # Killed once `side` has recorded its outcome and while `slow` runs (a tool that
        # ended but whose outcome was not stored yet runs again: delivery is at-least-once).
        until(
            lambda: (
                any(e == "start" and t == "slow" for e, t, _, _ in runs(project))
                and children(doomed, parent_id)["side"]["status"] == "completed"
            ),
            "the slow sub-task never started",
            within=30,
        )
        doomed.stop(signal.SIGKILL)
        assert ("end", "slow") not in [(e, t) for e, t, _, _ in runs(project)]
    finally:
        doomed.kill()
    rescuer = Server(project, fresh_database)
    try:
        parent = rescuer.finished(parent_id, within=60)
        tasks = children(rescuer, parent_id)
    finally:
        assert rescuer.stop() == 0, rescuer.output
    assert parent["status"] == "completed", parent
    assert {k: v["result"] for k, v in parent["result"].items()} == {
        "first": "first",
        "slow": "slow",
        "side": "side",
        "last": "last",
    }
    events = [(e, t) for e, t, _, _ in runs(project)]
    # Nothing lost, nothing run twice: the killed run of `slow` ran again, the rest once.
    assert events.count(("end", "slow")) == 1
    assert events.count(("start", "slow")) == 2
    for tag in ("first", "side", "last"):
        assert events.count(("start", tag)) == 1, events
        assert events.count(("end", tag)) == 1, events
    assert events.index(("start", "last")) > events.index(("end", "slow"))
    assert tasks["slow"]["attempts"] == 2
    assert tasks["last"]["attempts"] == 1


async def test_a_sub_task_cancelled_on_its_own_cancels_its_dependents(
    served: Server, conn: Any
) -> None:
    submitted = served.submit(
        failure_policy="continue",
        subtasks=[
            {"id": "slow", "method": "hang", "params": {"seconds": 60}},
            {"id": "waiting", "method": "add", "params": {"a": 1, "b": 2}, "depends_on": ["slow"]},
            {"id": "after", "method": "add", "params": {"a": 1, "b": 2}, "depends_on": ["waiting"]},
            {"id": "free", "method": "add", "params": {"a": 1, "b": 2}},
        ],
    )
    parent_id = submitted["task_id"]
    tasks = children(served, parent_id)
    assert tasks["waiting"]["status"] == "pending"
    response = served.http.post(f"/api/tasks/{tasks['waiting']['task_id']}/cancel")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "cancelled"
    until(
        lambda: (
            children(served, parent_id)["after"]["status"] == "cancelled"
            and children(served, parent_id)["free"]["status"] == "completed"
        ),
        "the dependent was not cancelled, or the free sub-task did not run",
        within=30,
    )
    assert served.get(parent_id)["status"] == "running"  # `slow` still runs
    stopped = served.http.post(f"/api/tasks/{tasks['slow']['task_id']}/cancel", params={"wait": 20})
    assert stopped.status_code == 200, stopped.text
    parent = served.finished(parent_id, within=30)
    assert parent["status"] == "failed"
    assert {k: v["status"] for k, v in parent["result"].items()} == {
        "slow": "cancelled",
        "waiting": "cancelled",
        "after": "cancelled",
        "free": "completed",
    }


# -- graphs the model plans ("split": true) -----------------------------------------------


def _diamond_plan() -> list[dict[str, Any]]:
    return [
        {"id": "a", "method": "add", "params": {"a": 1, "b": 2}},
        {
            "id": "b",
            "method": "add",
            "params": {"a": {"$ref": "a.result"}, "b": 10},
            "depends_on": ["a"],
        },
        {
            "id": "c",
            "method": "add",
            "params": {"a": {"$ref": "a.result"}, "b": 100},
            "depends_on": ["a"],
        },
        {
            "id": "d",
            "method": "add",
            "params": {"a": {"$ref": "b.result"}, "b": {"$ref": "c.result"}},
            "depends_on": ["b", "c"],
        },
    ]


async def test_a_model_planned_split_runs_its_plan_and_answers_from_the_results(
    served: Server, model: ScriptedModel, conn: Any
) -> None:
    model.push(
        # The first plan has a problem: it goes back to the model, which corrects it.
        reply.tool_call(
            "plan_subtasks",
            {"subtasks": [{"id": "a", "method": "no_such_tool", "params": {}}]},
        ),
        reply.tool_call("plan_subtasks", {"subtasks": _diamond_plan()}),
        reply.text("The plan's total is 116."),
    )
    submitted = served.submit(task_description="Add things up in steps.", split=True)
    assert served.get(submitted["task_id"])["split"] in ("planning", "waiting", "composing")
    parent = served.finished(submitted["task_id"], within=60)
    assert parent["status"] == "completed", parent
    assert parent["result"] == "The plan's total is 116."
    assert parent["split"] == "composing"
    tasks = children(served, submitted["task_id"])
    assert {k: t["status"] for k, t in tasks.items()} == dict.fromkeys("abcd", "completed")
    assert [tasks[k]["result"] for k in "abcd"] == [3, 13, 103, 116]
    assert tasks["d"]["params"] == {"a": 13, "b": 103}
    planning, corrected, composing = model.requests
    # Planning offers the plan tool only, and lists the registered tools in it.
    assert "plan_subtasks" in str(planning["messages"]) + str(planning.get("tools"))
    assert "no registered tool named 'no_such_tool'" in str(corrected["messages"])
    # Composing goes on from the planning conversation with every sub-task's outcome,
    # so the model is not asked to plan again.
    assert '"result": 116' in str(composing["messages"])
    assert "Add things up in steps." in str(composing["messages"])
    trace = served.trace(submitted["task_id"])
    plans = [s for s in trace if s["kind"] == "tool" and s["name"] == "plan_subtasks"]
    assert [bool(s.get("error")) for s in plans] == [True, False]
    assert plans[1]["result"] == {"subtasks": ["a", "b", "c", "d"]}
    assert plans[1]["content"].startswith("SPLITTING -> READY: 4 sub-tasks")


async def test_a_split_whose_sub_task_fails_fails_fast_without_composing(
    served: Server, model: ScriptedModel, conn: Any
) -> None:
    plan = [
        {"id": "bad", "method": "fail", "params": {"message": "boom"}},
        {"id": "next", "method": "add", "params": {"a": 1, "b": 2}, "depends_on": ["bad"]},
    ]
    model.push(reply.tool_call("plan_subtasks", {"subtasks": plan}))
    submitted = served.submit(task_description="Try something.", split=True)
    parent = served.finished(submitted["task_id"], within=60)
    assert parent["status"] == "failed", parent
    assert parent["error"]["type"] == "SubtaskFailed"
    assert len(model.requests) == 1  # no composing turn
    tasks = children(served, submitted["task_id"])
    assert tasks["bad"]["status"] == "failed"
    assert tasks["next"]["status"] == "cancelled"


async def test_cancelling_a_waiting_split_cancels_its_sub_tasks(
    served: Server, model: ScriptedModel, conn: Any
) -> None:
    plan = [{"id": "slow", "method": "hang", "params": {"seconds": 60}}]
    model.push(reply.tool_call("plan_subtasks", {"subtasks": plan}))
    submitted = served.submit(task_description="Wait a long time.", split=True)
    until(
        lambda: children(served, submitted["task_id"]).get("slow", {}).get("status") == "running",
        "the planned sub-task never started",
        within=60,
    )
    assert served.get(submitted["task_id"])["split"] == "waiting"
    response = served.http.post(f"/api/tasks/{submitted['task_id']}/cancel")
    assert response.status_code in (200, 202), response.text
    parent = served.finished(submitted["task_id"], within=60)
    assert parent["status"] == "cancelled", parent
    assert children(served, submitted["task_id"])["slow"]["status"] == "cancelled"


async def test_split_is_refused_where_it_cannot_apply(served: Server) -> None:
    response = served.http.post("/api/tasks", json={"method": "add", "params": {}, "split": True})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["problems"][0]["field"] == "split"
