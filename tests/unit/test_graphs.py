"""A declared graph's checks and its references (qasdk.graphs), without a database."""

from __future__ import annotations

from typing import Any

import pytest

from qasdk.graphs import RefError, Subtask, check_graph, find_refs, resolve_params, resolve_text


def node(key: str, *deps: str, params: dict[str, Any] | None = None) -> Subtask:
    return Subtask(id=key, kind="direct", method="add", params=params or {}, depends_on=deps)


def fields(problems: list[Any]) -> dict[str, str]:
    return {p.field: p.reason for p in problems}


def test_a_diamond_is_a_valid_graph() -> None:
    diamond = [node("a"), node("b", "a"), node("c", "a"), node("d", "b", "c")]
    assert check_graph(diamond) == []


def test_unknown_duplicate_and_self_dependencies_are_named_by_field() -> None:
    found = fields(check_graph([node("a"), node("a"), node("b", "zz", "b")]))
    assert "duplicate id 'a' (also subtasks[0])" in found["subtasks[1].id"]
    assert "unknown sub-task id 'zz'" in found["subtasks[2].depends_on[0]"]
    assert "cannot depend on itself" in found["subtasks[2].depends_on[1]"]


def test_a_cycle_is_named_with_its_path() -> None:
    found = fields(check_graph([node("a", "c"), node("b", "a"), node("c", "b"), node("d")]))
    assert list(found) == ["subtasks[0].depends_on"]
    assert found["subtasks[0].depends_on"] == "dependency cycle: 'a' -> 'c' -> 'b' -> 'a'"


def test_a_reference_must_point_at_a_dependency_s_result() -> None:
    graph = [
        node("a"),
        node("b", params={"x": {"$ref": "a.result"}}),
        node("c", "a", params={"x": [1, {"$ref": "a.value"}]}),
        Subtask(id="d", kind="described", description="Use {{a.result}}", depends_on=("a",)),
        Subtask(id="e", kind="described", description="Use {{ b.result.x }}"),
    ]
    found = fields(check_graph(graph))
    assert "'a' must be in depends_on" in found["subtasks[1].params.x"]
    assert "must be '<subtask id>.result'" in found["subtasks[2].params.x[1]"]
    assert "'b' must be in depends_on" in found["subtasks[4].task_description"]
    assert not any(f.startswith("subtasks[3]") for f in found)


def test_refs_are_found_anywhere_in_params() -> None:
    params = {"a": 1, "b": {"c": [{"$ref": "x.result.y"}]}, "d": {"$ref": "z.result"}}
    assert find_refs(params, "params") == [
        ("params.b.c[0]", "x.result.y"),
        ("params.d", "z.result"),
    ]
    with pytest.raises(RefError, match=r"params.d.\$ref: must be a string"):
        find_refs({"d": {"$ref": 3}}, "params")


def test_params_resolve_to_parts_of_results() -> None:
    results = {"a": 5, "b": {"items": [{"name": "x"}, {"name": "y"}], "n": 2}}
    params = {
        "whole": {"$ref": "a.result"},
        "deep": {"$ref": "b.result.items.1.name"},
        "last": {"$ref": "b.result.items.-1"},
        "kept": [1, {"not": "a ref", "$ref": "b.result"}],
    }
    assert resolve_params(params, results) == {
        "whole": 5,
        "deep": "y",
        "last": {"name": "y"},
        "kept": [1, {"not": "a ref", "$ref": "b.result"}],
    }


def test_a_missing_field_is_an_error_naming_the_path_and_what_there_is() -> None:
    with pytest.raises(RefError) as caught:
        resolve_params({"x": {"$ref": "b.result.n.deeper"}}, {"b": {"n": 2}})
    assert caught.value.field == "params.x"
    assert "b.result.n has no 'deeper' (it is int)" in caught.value.reason
    with pytest.raises(RefError, match="object with keys 'n'"):
        resolve_params({"x": {"$ref": "b.result.m"}}, {"b": {"n": 2}})
    with pytest.raises(RefError, match="sub-task 'c' has no result"):
        resolve_params({"x": {"$ref": "c.result"}}, {"b": 1})


def test_descriptions_get_results_as_text() -> None:
    results = {"a": "Paris", "b": {"t": 21}}
    text = "Weather in {{a.result}}: {{ b.result }}, {{b.result.t}} degrees"
    assert resolve_text(text, results) == 'Weather in Paris: {"t":21}, 21 degrees'
    assert resolve_text("no placeholders {here}", results) == "no placeholders {here}"
