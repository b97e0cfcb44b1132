"""``Enum`` classes read statically: is it one, what are its members' values."""

from __future__ import annotations

from typing import Any

import griffe

from qasdk.registration.scan.expressions import Unsupported, literal_from_source
from qasdk.registration.scan.names import ClassFinder, Names

__all__ = ["enum_member_value", "enum_values", "is_enum"]

ENUM_BASES = frozenset({"enum.Enum", "enum.IntEnum", "enum.StrEnum", "enum.Flag", "enum.IntFlag"})
_MAX_DEPTH = 10


def is_enum(cls: griffe.Class, find_class: ClassFinder, depth: int = 0) -> bool:
    """Whether ``cls`` derives from an Enum base, following bases we can read."""
    if depth > _MAX_DEPTH:
        return False
    for base in cls.bases:
        base_path = str(getattr(base, "canonical_path", base))
        if base_path in ENUM_BASES:
            return True
        parent = find_class(base_path)
        if parent is not None and is_enum(parent, find_class, depth + 1):
            return True
    return False


def enum_values(cls: griffe.Class) -> dict[str, Any]:
    """Member name → value; :class:`Unsupported` when a value is not a literal."""
    values: dict[str, Any] = {}
    for name, member in cls.members.items():
        if member.is_alias or not isinstance(member, griffe.Attribute):
            continue
        if name.startswith("_") or member.value is None:
            continue
        try:
            values[name] = literal_from_source(str(member.value))
        except (ValueError, SyntaxError, TypeError):
            raise Unsupported(
                f"{cls.name} (member {name} = {member.value} is not a literal)"
            ) from None
    return values


def enum_member_value(source: str, names: Names) -> Any:
    """The value of ``Color.RED`` when ``Color`` is an Enum we can read, else ``None``."""
    owner, _, member = source.rpartition(".")
    if not owner:
        return None
    cls = names.resolve_class(owner)
    if cls is None or not is_enum(cls, names.find_class):
        return None
    try:
        return enum_values(cls).get(member)
    except Unsupported:
        return None
