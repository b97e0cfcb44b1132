"""Seed 000's validation rules (Properties 9-12)."""

from __future__ import annotations

import keyword
from typing import Any

import msgspec
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from qasdk.models import MethodConfig, MethodParameter
from qasdk.registration.types import TYPE_NAMES, normalize_type
from qasdk.registration.validate import validate_method
from tests.strategies import identifiers, method_configs


def fields_of(config: MethodConfig) -> set[str | None]:
    return {p.field for p in validate_method(config)}


@given(method_configs)
def test_valid_configs_pass(config: MethodConfig) -> None:
    assert validate_method(config) == []


# Property 9: Method name validation
@given(method_configs, st.text(min_size=1, max_size=120))
def test_non_identifier_names_are_rejected(config: MethodConfig, name: str) -> None:
    assume(not name.isidentifier())
    problems = validate_method(msgspec.structs.replace(config, name=name))
    assert any(p.field == "name" and "not a valid Python identifier" in p.reason for p in problems)


# Property 9: Method name validation
@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("has space", "whitespace"),
        ("9lives", "starts with a digit"),
        ("a-b", "'-'"),
        ("x", "2-100"),
        ("a" * 101, "2-100"),
        ("", "must not be empty"),
    ],
)
def test_name_rule_explains_why(name: str, why: str) -> None:
    config = MethodConfig(
        name=name, description="d", return_type="int", module_path="m", function_name="fn"
    )
    assert any(p.field == "name" and why in p.reason for p in validate_method(config))


# Property 10: Parameter completeness validation
@given(
    method_configs, st.sampled_from(["name", "type", "description"]), st.sampled_from(["", "   "])
)
def test_empty_parameter_fields_fail(config: MethodConfig, field: str, empty: str) -> None:
    param = MethodParameter(name="p1", type="int", description="P.")
    broken = msgspec.structs.replace(param, **{field: empty})
    problems = validate_method(msgspec.structs.replace(config, parameters=(broken,)))
    assert problems
    assert all(p.field is not None and p.field.startswith("parameters") for p in problems)
    assert any(
        p.field.endswith(f".{field}") or (field == "name" and p.field.endswith(".name"))
        for p in problems
    )


# Property 11: Return type validation
@given(method_configs, st.text(max_size=30))
def test_unknown_return_types_fail(config: MethodConfig, return_type: str) -> None:
    assume(return_type not in TYPE_NAMES)
    problems = validate_method(msgspec.structs.replace(config, return_type=return_type))
    (problem,) = [p for p in problems if p.field == "return_type"]
    assert "expected one of string, int, float, bool, dict, list, None, any" in problem.reason


_BREAKERS: list[tuple[str, Any]] = [
    ("name", "bad name"),
    ("description", ""),
    ("description", "x" * 1001),
    ("return_type", "strng"),
    ("module_path", "my-tools.x"),
    ("module_path", ""),
    ("function_name", "class"),
    ("function_name", "1f"),
    ("timeout", -1.0),
    (
        "parameters",
        (MethodParameter(name="a", type="int", description="d", required=True, default=3),),
    ),
    (
        "parameters",
        (MethodParameter(name="a", type="int", description="d", required=False, default="x"),),
    ),
    (
        "parameters",
        (
            MethodParameter(name="a", type="int", description="d"),
            MethodParameter(name="a", type="int", description="d"),
        ),
    ),
    ("parameters", (MethodParameter(name="a", type="int", description="d", schema={"type": 5}),)),
]


# Property 12: Validation error detail
@given(
    method_configs,
    st.lists(st.sampled_from(_BREAKERS), min_size=1, max_size=4, unique_by=lambda b: b[0]),
)
def test_every_failure_names_field_and_reason(
    config: MethodConfig, breakers: list[tuple[str, Any]]
) -> None:
    broken = msgspec.structs.replace(config, **dict(breakers))
    problems = validate_method(broken)
    assert problems
    for problem in problems:
        assert problem.field, problem
        assert problem.reason and len(problem.reason) > 5, problem
    broken_fields = {field for field, _ in breakers}
    assert {p.field.split(".")[0] for p in problems if p.field} >= broken_fields


def test_keyword_function_name() -> None:
    config = MethodConfig(
        name="ok", description="d", return_type="int", module_path="m", function_name="class"
    )
    (problem,) = validate_method(config)
    assert problem.reason == "'class' is a Python keyword and cannot be a function name"
    assert keyword.iskeyword("class")


def test_aliases_are_known_types() -> None:
    assert normalize_type("str") == "string"
    config = MethodConfig(
        name="ok", description="d", return_type="str", module_path="m", function_name="fn"
    )
    # The vocabulary is canonical; parsers normalise aliases before validation.
    assert fields_of(config) == {"return_type"}


@given(identifiers)
def test_identifier_names_are_accepted(name: str) -> None:
    config = MethodConfig(
        name=name, description="d", return_type="int", module_path="m", function_name="fn"
    )
    assert validate_method(config) == []
