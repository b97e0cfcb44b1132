"""The sample ``calculate``: right answers, and bounded work whatever the expression."""

from __future__ import annotations

import pytest

from sample_tools.calculator import MAX_BITS, MAX_DEPTH, MAX_LENGTH, calculate


@pytest.mark.parametrize(
    ("expression", "value"),
    [
        ("1 + 2 * 3", 7.0),
        ("(1 + 2) * 3", 9.0),
        ("7 // 2 + 7 % 2", 4.0),
        ("2 ** 10", 1024.0),
        ("2 ** -1", 0.5),
        ("-(3 - 5)", 2.0),
        ("1.5 ** 2", 2.25),
        ("(-1) ** 1000001", -1.0),
        ("2 ** 1000", float(2**1000)),
    ],
)
def test_arithmetic(expression: str, value: float) -> None:
    assert calculate(expression) == value


@pytest.mark.parametrize("expression", ["9**9**9**9", "9**9**9", "2 ** 4096", "10 ** 100000"])
def test_huge_powers_are_refused_before_they_are_computed(expression: str) -> None:
    with pytest.raises(
        ValueError, match=f"a power in the expression would have more than {MAX_BITS} bits"
    ):
        calculate(expression)


def test_numbers_grown_by_multiplication_are_bounded() -> None:
    with pytest.raises(
        ValueError, match=f"a number in the expression has more than {MAX_BITS} bits"
    ):
        calculate(" * ".join(["(2 ** 4000)"] * 2))


def test_a_result_too_large_for_a_float_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="too large for a floating-point number"):
        calculate("2 ** 2000")


def test_long_expressions_are_refused() -> None:
    with pytest.raises(ValueError, match=f"1001 characters long; at most {MAX_LENGTH}"):
        calculate("1" * 1001)
    assert calculate("(" + "1+" * 150 + "1)" + " " * 697) == 151.0  # 1000 characters


def test_deep_nesting_is_refused() -> None:
    with pytest.raises(ValueError, match=f"nested more than {MAX_DEPTH} levels deep"):
        calculate("-" * 300 + "1")
    assert calculate("-" * 100 + "1") == 1.0


def test_what_is_not_arithmetic_is_refused() -> None:
    with pytest.raises(ValueError, match="unsupported expression: __import__"):
        calculate("__import__('os').system('true')")
    with pytest.raises(ValueError, match="no real value"):
        calculate("(-8) ** 0.5")
