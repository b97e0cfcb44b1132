"""Python expressions as griffe keeps them (source text) → syntax trees and literal values.

Nothing is evaluated beyond ``ast.literal_eval``: the scanner never runs user code.
"""

from __future__ import annotations

import ast
import functools
from typing import Any

import griffe

__all__ = [
    "Unsupported",
    "dotted",
    "literal_from_source",
    "module_literal",
    "parse_expression",
    "subscript_args",
    "to_ast",
    "union_members",
]


class Unsupported(Exception):
    """An annotation that has no JSON Schema equivalent; the message names it."""


@functools.lru_cache(maxsize=4096)
def parse_expression(text: str) -> ast.expr | None:
    """Parse an expression once: a tree's annotations and defaults repeat a lot."""
    try:
        return ast.parse(text, mode="eval").body
    except (SyntaxError, ValueError):
        return None


def to_ast(annotation: Any) -> ast.expr:
    """The syntax tree of a griffe annotation, or :class:`Unsupported`."""
    text = str(annotation)
    node = parse_expression(text)
    if node is None:
        raise Unsupported(repr(text))
    return node


def literal_from_source(text: str) -> Any:
    """``ast.literal_eval`` on cached trees; a fresh value each call (defaults may be lists)."""
    node = parse_expression(text)
    if node is None:
        raise ValueError(text)
    return ast.literal_eval(node)


def module_literal(expr: Any, module: griffe.Module) -> Any:
    """A literal expression's value, following module-level constants by name.

    Raises:
        ValueError: the expression is not a literal (nor a constant holding one).
    """
    source = str(expr)
    try:
        return literal_from_source(source)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        pass
    if source.isidentifier():
        attribute = module.members.get(source)
        if isinstance(attribute, griffe.Attribute) and attribute.value is not None:
            return module_literal(attribute.value, module)
    raise ValueError(source)


def dotted(node: ast.expr) -> str:
    """``a.b.c`` for a name or an attribute chain."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{dotted(node.value)}.{node.attr}"
    raise Unsupported(ast.unparse(node))


def subscript_args(node: ast.Subscript) -> list[ast.expr]:
    """The arguments of ``X[a, b]``."""
    if isinstance(node.slice, ast.Tuple):
        return list(node.slice.elts)
    return [node.slice]


def union_members(node: ast.expr) -> list[ast.expr]:
    """The members of ``A | B | C``."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return [*union_members(node.left), *union_members(node.right)]
    return [node]
