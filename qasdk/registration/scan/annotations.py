"""Type hints → the type vocabulary and the JSON Schema the model sees.

``list[int]`` is type ``list`` with schema ``{"type": "array", "items":
{"type": "integer"}}``; ``Literal`` and ``Enum`` hints add ``enum``;
``X | None`` makes the schema nullable. A hint without a JSON equivalent
raises :class:`~qasdk.registration.scan.expressions.Unsupported`.
"""

from __future__ import annotations

import ast
from typing import Any

import griffe
import msgspec

from qasdk.registration.scan.classes import data_class_kind, data_class_schema
from qasdk.registration.scan.enums import enum_values, is_enum
from qasdk.registration.scan.expressions import (
    Unsupported,
    dotted,
    subscript_args,
    to_ast,
    union_members,
)
from qasdk.registration.scan.names import Names
from qasdk.registration.types import base_schema

__all__ = ["SUPPORTED_HINTS", "AnnotationReader", "Typed"]

SUPPORTED_HINTS = (
    "use str, int, float, bool, list[...], dict[str, ...], Literal[...], an Enum, datetime, "
    "date, time, timedelta, UUID, Decimal, Path, a dataclass, TypedDict, msgspec Struct or "
    "NamedTuple of your own, X | None, or Any"
)
#: Types that travel as JSON strings of a format; the tool receives the real type.
FORMATS = {
    "datetime.datetime": "date-time",
    "datetime.date": "date",
    "datetime.time": "time",
    "datetime.timedelta": "duration",
    "uuid.UUID": "uuid",
    "decimal.Decimal": "decimal",
    "pathlib.Path": "path",
    "pathlib.PurePath": "path",
    "pathlib.PosixPath": "path",
    "pathlib.PurePosixPath": "path",
}
#: How deep data classes may contain data classes (a cycle is reported, not followed).
_MAX_CLASS_DEPTH = 10

_SIMPLE_TYPES: dict[str, str] = {
    "builtins.str": "string",
    "builtins.int": "int",
    "builtins.float": "float",
    "builtins.bool": "bool",
    "builtins.dict": "dict",
    "builtins.list": "list",
    "builtins.tuple": "list",
    "builtins.set": "list",
    "builtins.frozenset": "list",
    "builtins.object": "any",
    "typing.Any": "any",
    "typing_extensions.Any": "any",
    "typing.Dict": "dict",
    "typing.Mapping": "dict",
    "typing.MutableMapping": "dict",
    "collections.abc.Mapping": "dict",
    "collections.abc.MutableMapping": "dict",
    "typing.List": "list",
    "typing.Tuple": "list",
    "typing.Set": "list",
    "typing.FrozenSet": "list",
    "typing.Sequence": "list",
    "typing.MutableSequence": "list",
    "typing.Iterable": "list",
    "collections.abc.Sequence": "list",
    "collections.abc.MutableSequence": "list",
    "collections.abc.Iterable": "list",
    "collections.abc.Set": "list",
}
_OPTIONAL = frozenset({"typing.Optional", "typing_extensions.Optional"})
_UNION = frozenset({"typing.Union", "typing_extensions.Union"})
_LITERAL = frozenset({"typing.Literal", "typing_extensions.Literal"})
_ANNOTATED = frozenset({"typing.Annotated", "typing_extensions.Annotated"})
_FIELD_MARKERS = frozenset(
    {
        "typing.NotRequired",
        "typing_extensions.NotRequired",
        "typing.Required",
        "typing_extensions.Required",
        "typing.ReadOnly",
        "typing_extensions.ReadOnly",
    }
)
_NULL = {"type": "null"}


class Typed(msgspec.Struct, frozen=True):
    """A hint read: vocabulary type, JSON Schema, and ``Annotated`` text if any."""

    type: str
    schema: dict[str, Any]
    description: str | None = None


class AnnotationReader:
    """Reads the hints of one module (names resolve through its imports)."""

    def __init__(self, names: Names, classes: tuple[str, ...] = ()) -> None:
        self.names = names
        #: Data classes being read, outermost first (to stop at a cycle).
        self.classes = classes

    def read(self, node: ast.expr) -> Typed:
        if isinstance(node, ast.Constant):
            return self._constant(node)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
            return self._union(union_members(node))
        if isinstance(node, ast.Subscript):
            return self._subscript(node)
        if isinstance(node, (ast.Name, ast.Attribute)):
            return self._name(node)
        raise Unsupported(ast.unparse(node))

    def _constant(self, node: ast.Constant) -> Typed:
        if node.value is None:
            return Typed("None", _NULL)
        if isinstance(node.value, str):  # a forward reference: "Unit"
            try:
                return self.read(ast.parse(node.value, mode="eval").body)
            except SyntaxError:
                raise Unsupported(repr(node.value)) from None
        raise Unsupported(repr(node.value))

    def _subscript(self, node: ast.Subscript) -> Typed:
        origin = self.names.resolve(dotted(node.value))
        args = subscript_args(node)
        if origin in _OPTIONAL:
            return self._union([*args, ast.Constant(None)])
        if origin in _UNION:
            return self._union(args)
        if origin in _LITERAL:
            return literal_type([_literal_value(a) for a in args])
        if origin in _FIELD_MARKERS:  # TypedDict field markers: the type is inside
            return self.read(args[0])
        if origin in _ANNOTATED:
            inner = self.read(args[0])
            notes = [a.value for a in args[1:] if isinstance(a, ast.Constant)]
            text = next((n for n in notes if isinstance(n, str)), None)
            return Typed(inner.type, inner.schema, text or inner.description)
        simple = _SIMPLE_TYPES.get(origin)
        if simple == "list":
            schema: dict[str, Any] = {"type": "array"}
            items = [a for a in args if not (isinstance(a, ast.Constant) and a.value is ...)]
            if len(items) == 1:  # list[X], tuple[X, ...]; a fixed tuple stays untyped
                schema["items"] = self.read(items[0]).schema
            return Typed("list", schema)
        if simple == "dict":
            schema = {"type": "object"}
            if len(args) == 2:
                value_schema = self.read(args[1]).schema
                if value_schema:
                    schema["additionalProperties"] = value_schema
            return Typed("dict", schema)
        raise Unsupported(ast.unparse(node))

    def _name(self, node: ast.Name | ast.Attribute) -> Typed:
        name = dotted(node)
        if name in ("None", "builtins.None"):
            return Typed("None", _NULL)
        path = self.names.resolve(name)
        simple = _SIMPLE_TYPES.get(path)
        if simple is not None:
            return Typed(simple, base_schema(simple))
        if path in FORMATS:
            return Typed("string", {"type": "string", "format": FORMATS[path]})
        cls = self.names.find_class(path)
        if cls is not None and is_enum(cls, self.names.find_class):
            values = list(enum_values(cls).values())
            if not values:
                raise Unsupported(f"{name} (an Enum without members)")
            return literal_type(values)
        kind = data_class_kind(cls) if cls is not None else None
        if cls is not None and kind is not None:
            return Typed("dict", self._data_class(cls, kind))
        raise Unsupported(name)

    def _data_class(self, cls: griffe.Class, kind: str) -> dict[str, Any]:
        if cls.path in self.classes or len(self.classes) >= _MAX_CLASS_DEPTH:
            chain = " -> ".join([*self.classes, cls.path])
            raise Unsupported(f"{cls.name} (it contains itself: {chain}); break the cycle")
        inner = (*self.classes, cls.path)

        def read_field(owner: griffe.Class, annotation: Any) -> tuple[dict[str, Any], str | None]:
            reader = AnnotationReader(Names(owner.module, self.names.find_class), inner)
            typed = reader.read(to_ast(annotation))
            return typed.schema, typed.description

        return data_class_schema(cls, kind, read_field)

    def _union(self, nodes: list[ast.expr]) -> Typed:
        members = [self.read(a) for a in nodes]
        nullable = any(m.type == "None" for m in members)
        others = [m for m in members if m.type != "None"]
        if not others:
            return Typed("None", _NULL)
        if len(others) == 1:
            inner = others[0]
            if not nullable:
                return inner
            return Typed(inner.type, _nullable(inner.schema), inner.description)
        kinds = {m.type for m in others}
        type_name = kinds.pop() if len(kinds) == 1 else "any"
        options = [m.schema for m in others]
        if nullable:
            options.append(_NULL)
        return Typed(type_name, {"anyOf": options})


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    declared = schema.get("type")
    if isinstance(declared, str) and "enum" not in schema:
        return {**schema, "type": [declared, "null"]}
    if not schema:
        return schema
    return {"anyOf": [schema, _NULL]}


def literal_type(values: list[Any]) -> Typed:
    """The type of ``Literal[...]`` / Enum values: one JSON type plus ``enum``."""
    kinds = {type(v) for v in values}
    mapping = {str: "string", bool: "bool", int: "int", float: "float"}
    if len(kinds) == 1 and next(iter(kinds)) in mapping:
        type_name = mapping[next(iter(kinds))]
        return Typed(type_name, {**base_schema(type_name), "enum": values})
    return Typed("any", {"enum": values})


def _literal_value(node: ast.expr) -> Any:
    try:
        return ast.literal_eval(node)
    except ValueError:
        raise Unsupported(f"Literal[{ast.unparse(node)}]") from None
