"""Arithmetic (NumPy-style docstrings)."""

from __future__ import annotations

import ast
import operator
from typing import Literal

import qasdk

_OPERATORS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}


#: Bounds that keep one expression from taking the tool process's CPU or memory.
MAX_LENGTH = 1000
MAX_DEPTH = 200
MAX_BITS = 4096


def _bounded(value: float) -> float:
    if isinstance(value, complex):
        raise ValueError("the expression has no real value")
    if isinstance(value, int) and value.bit_length() > MAX_BITS:
        raise ValueError(f"a number in the expression has more than {MAX_BITS} bits")
    return value


def _power(base: float, exponent: float) -> float:
    # Refuse before computing: 9 ** 9 ** 9 alone would run for minutes.
    if (
        isinstance(base, int)
        and isinstance(exponent, int)
        and exponent > 0
        and (abs(base).bit_length() - 1) * exponent >= MAX_BITS
    ):
        raise ValueError(f"a power in the expression would have more than {MAX_BITS} bits")
    result: float = operator.pow(base, exponent)
    return result


def _evaluate(node: ast.AST, depth: int = 0) -> float:
    if depth > MAX_DEPTH:
        raise ValueError(
            f"the expression is nested more than {MAX_DEPTH} levels deep (each operator is a level)"
        )
    if isinstance(node, ast.Expression):
        return _evaluate(node.body, depth + 1)
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        return _bounded(node.value)
    if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
        left, right = _evaluate(node.left, depth + 1), _evaluate(node.right, depth + 1)
        if isinstance(node.op, ast.Pow):
            return _bounded(_power(left, right))
        return _bounded(_OPERATORS[type(node.op)](left, right))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _OPERATORS:
        return _OPERATORS[type(node.op)](_evaluate(node.operand, depth + 1))
    raise ValueError(f"unsupported expression: {ast.unparse(node)[:80]}")


@qasdk.tool
def calculate(expression: str) -> float:
    """Evaluate an arithmetic expression.

    Parameters
    ----------
    expression : str
        The expression, using numbers, parentheses and + - * / // % **; at most
        1000 characters, 200 operators deep, no number over 4096 bits.

    Returns
    -------
    float
        The value of the expression.
    """
    if len(expression) > MAX_LENGTH:
        raise ValueError(
            f"the expression is {len(expression)} characters long; at most {MAX_LENGTH} are allowed"
        )
    value = _evaluate(ast.parse(expression, mode="eval"))
    try:
        return float(value)
    except OverflowError:
        raise ValueError("the result is too large for a floating-point number") from None


@qasdk.tool(description="Round a number to a number of decimal places.")
def round_number(
    value: float, digits: int = 0, mode: Literal["half_even", "up", "down"] = "half_even"
) -> float:
    """Round a number.

    Parameters
    ----------
    value : float
        The number to round.
    digits : int, optional
        Decimal places to keep.
    mode : {"half_even", "up", "down"}
        How to break ties and truncate.
    """
    factor = 10**digits
    if mode == "up":
        import math

        return math.ceil(value * factor) / factor
    if mode == "down":
        import math

        return math.floor(value * factor) / factor
    return round(value, digits)
