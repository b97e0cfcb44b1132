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


def _evaluate(node: ast.AST) -> float:
    if isinstance(node, ast.Expression):
        return _evaluate(node.body)
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
        return _OPERATORS[type(node.op)](_evaluate(node.left), _evaluate(node.right))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _OPERATORS:
        return _OPERATORS[type(node.op)](_evaluate(node.operand))
    raise ValueError(f"unsupported expression: {ast.unparse(node)}")


@qasdk.tool
def calculate(expression: str) -> float:
    """Evaluate an arithmetic expression.

    Parameters
    ----------
    expression : str
        The expression, using numbers, parentheses and + - * / // % **.

    Returns
    -------
    float
        The value of the expression.
    """
    return float(_evaluate(ast.parse(expression, mode="eval")))


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
