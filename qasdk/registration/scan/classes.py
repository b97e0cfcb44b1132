"""Data classes read statically: dataclasses, TypedDicts, msgspec Structs, NamedTuples.

A parameter annotated with one (defined anywhere under the module root) gets an
object schema with its fields, which are required, their defaults, and their
descriptions (the class docstring's ``Attributes`` section, or a docstring
under the field); the tool receives an instance of the class.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import griffe

from qasdk.registration.scan.docstrings import attribute_docs
from qasdk.registration.scan.expressions import Unsupported, literal_from_source, to_ast

__all__ = ["DATA_CLASS_KINDS", "data_class_kind", "data_class_schema"]

_DATACLASS = frozenset({"dataclasses.dataclass", "pydantic.dataclasses.dataclass"})
_BASES = {
    "typing.TypedDict": "TypedDict",
    "typing_extensions.TypedDict": "TypedDict",
    "msgspec.Struct": "Struct",
    "typing.NamedTuple": "NamedTuple",
}
DATA_CLASS_KINDS = ("dataclass", "TypedDict", "Struct", "NamedTuple")
_NOT_REQUIRED = frozenset({"typing.NotRequired", "typing_extensions.NotRequired"})
_REQUIRED = frozenset({"typing.Required", "typing_extensions.Required"})
_FIELD_CALLS = ("field(", "dataclasses.field(", "msgspec.field(")

#: Reads one annotation of a field, in the field's own module: (schema, description).
ReadField = Callable[[griffe.Class, Any], tuple[dict[str, Any], str | None]]


def data_class_kind(cls: griffe.Class) -> str | None:
    """Which kind of data class ``cls`` is, or ``None``."""
    for decorator in cls.decorators:
        try:
            if decorator.callable_path in _DATACLASS:
                return "dataclass"
        except Exception:
            continue
    for base in cls.bases:
        kind = _BASES.get(str(getattr(base, "canonical_path", base)))
        if kind is not None:
            return kind
    return None


def _total(cls: griffe.Class) -> bool:
    keywords = getattr(cls, "keywords", None) or {}
    return str(keywords.get("total", "True")) != "False"


def _default(value: Any) -> tuple[bool, Any]:
    """(has a default, its literal value or ``...`` when it is not a literal)."""
    if value is None:
        return False, None
    text = str(value)
    if text.startswith(_FIELD_CALLS):
        if "default=" not in text:
            return True, ...  # default_factory: optional, nothing to store
        text = text.split("default=", 1)[1].rsplit(")", 1)[0].split(",", 1)[0]
    try:
        return True, literal_from_source(text)
    except (ValueError, SyntaxError, TypeError):
        return True, ...


def data_class_schema(cls: griffe.Class, kind: str, read_field: ReadField) -> dict[str, Any]:
    """The object schema of a data class, its fields read with ``read_field``."""
    docs = attribute_docs(cls)
    properties: dict[str, Any] = {}
    required: list[str] = []
    total = _total(cls) if kind == "TypedDict" else True
    for name, member in cls.members.items():
        if member.is_alias or not isinstance(member, griffe.Attribute):
            continue
        if member.annotation is None or name.startswith("_"):
            continue
        constant = "class-attribute" in member.labels and "instance-attribute" not in member.labels
        if constant and kind == "dataclass":
            continue  # a ClassVar-like constant, not a field
        annotation = str(member.annotation)
        if annotation.startswith(("ClassVar", "typing.ClassVar")):
            continue
        read, description = read_field(cls, member.annotation)
        field_schema = dict(read)
        own = member.docstring.value if member.docstring else None
        text = description or own or docs.get(name)
        if text:
            field_schema["description"] = " ".join(text.split())
        has_default, value = _default(member.value)
        if kind == "TypedDict":
            outer = _outer(annotation)
            needed = (total and outer != "NotRequired") or outer == "Required"
        else:
            needed = not has_default
            if has_default and value is not ...:
                field_schema["default"] = value
        if needed:
            required.append(name)
        properties[name] = field_schema
    if not properties:
        raise Unsupported(f"{cls.name} (a {kind} without typed fields)")
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema


def _outer(annotation: str) -> str:
    node = to_ast(annotation)
    head = getattr(node, "value", None)
    name = getattr(head, "id", None) or getattr(head, "attr", None)
    return str(name or "")
