from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qasdk.registration.types import (
    TYPE_NAMES,
    CoercionError,
    base_schema,
    check_default,
    coerce,
    normalize_type,
    type_error_reason,
)


@pytest.mark.parametrize(
    ("alias", "canonical"),
    [
        ("str", "string"),
        ("integer", "int"),
        ("number", "float"),
        ("boolean", "bool"),
        ("object", "dict"),
        ("array", "list"),
        ("null", "None"),
        ("Any", "any"),
        ("string", "string"),
    ],
)
def test_aliases_normalise(alias: str, canonical: str) -> None:
    assert normalize_type(alias) == canonical


def test_unknown_type_suggests_nearest() -> None:
    assert normalize_type("strng") is None
    assert "did you mean 'string'" in type_error_reason("strng")


@pytest.mark.parametrize(
    ("value", "schema", "expected"),
    [
        ("5", {"type": "integer"}, 5),
        (5.0, {"type": "integer"}, 5),
        (3, {"type": "number"}, 3.0),
        ("2.5", {"type": "number"}, 2.5),
        ("true", {"type": "boolean"}, True),
        (0, {"type": "boolean"}, False),
        (12345, {"type": "string"}, "12345"),
        ("[1, 2]", {"type": "array", "items": {"type": "integer"}}, [1, 2]),
        (["1", 2.0], {"type": "array", "items": {"type": "integer"}}, [1, 2]),
        ('{"a": "1"}', {"type": "object", "additionalProperties": {"type": "integer"}}, {"a": 1}),
        (None, {"type": ["integer", "null"]}, None),
        ("1", {"type": ["string", "integer"]}, "1"),
        ("b", {"type": "string", "enum": ["a", "b"]}, "b"),
        (7, {}, 7),
        (None, {"anyOf": [{"type": "integer"}, {"type": "null"}]}, None),
    ],
)
def test_coerce_converts(value: Any, schema: dict[str, Any], expected: Any) -> None:
    result = coerce(value, schema)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    ("value", "schema", "reason"),
    [
        ("abc", {"type": "integer"}, 'expected integer, got string "abc"'),
        (True, {"type": "integer"}, "expected integer, got boolean true"),
        (1.5, {"type": "integer"}, "expected integer"),
        ("maybe", {"type": "boolean"}, "expected boolean"),
        ({"a": 1}, {"type": "string"}, "expected string"),
        ("c", {"type": "string", "enum": ["a", "b"]}, '"c" is not one of "a", "b"'),
        (None, {"type": "integer"}, "expected integer, got null$"),
        ([[1, 2]], {"type": "string"}, r"expected string, got array \[\[1, 2\]\]"),
        ("x" * 500, {"type": "integer"}, 'expected integer, got string "' + "x" * 79 + r"\.\.\.$"),
        ("nan", {"type": "number"}, "expected number"),
    ],
)
def test_coerce_rejects_with_reason(value: Any, schema: dict[str, Any], reason: str) -> None:
    with pytest.raises(CoercionError, match=reason.replace("(", r"\(")):
        coerce(value, schema)


@given(st.integers(), st.sampled_from(["integer", "number", "string"]))
def test_integers_always_coerce_to_numeric_or_string(value: int, json_type: str) -> None:
    result = coerce(value, {"type": json_type})
    assert (result == value) if json_type != "string" else (result == str(value))


def test_check_default() -> None:
    assert check_default(3, base_schema("int")) is None
    assert check_default(None, base_schema("int")) is None
    assert check_default("3", base_schema("int")) is not None
    assert check_default("x", {"type": "string", "enum": ["a"]}) is not None


def test_every_type_has_a_schema() -> None:
    for name in TYPE_NAMES:
        schema = base_schema(name)
        assert schema == {} if name == "any" else "type" in schema
