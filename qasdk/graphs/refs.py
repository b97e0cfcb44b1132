"""References from a sub-task to its dependencies' results.

In ``params``, any value ``{"$ref": "a.result"}`` (or ``"a.result.field.0"``)
is replaced by that part of sub-task ``a``'s result; in a ``task_description``,
``{{a.result}}`` (or ``{{a.result.field}}``) is replaced by it as text (JSON
when it is not a string). Fields are keys of objects or indexes of lists.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import msgspec

__all__ = [
    "REF_KEY",
    "RefError",
    "find_refs",
    "parse_ref",
    "resolve_params",
    "resolve_text",
    "template_refs",
]

REF_KEY = "$ref"
_TEMPLATE = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")


class RefError(ValueError):
    """A reference that is malformed, or that the referenced result cannot satisfy."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def parse_ref(ref: str, field: str) -> tuple[str, list[str]]:
    """``"a.result.x.0"`` as ``("a", ["x", "0"])``; a reference must start ``<id>.result``."""
    parts = ref.split(".")
    if len(parts) < 2 or not parts[0] or parts[1] != "result" or not all(parts[2:]):
        raise RefError(
            field, f"reference {ref!r} must be '<subtask id>.result' followed by '.field's"
        )
    return parts[0], parts[2:]


def _is_ref(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and REF_KEY in value


def find_refs(value: Any, path: str) -> list[tuple[str, str]]:
    """Every ``{"$ref": ...}`` in ``value``: (its field path, the reference)."""
    if _is_ref(value):
        ref = value[REF_KEY]
        if not isinstance(ref, str):
            raise RefError(f"{path}.{REF_KEY}", "must be a string such as 'a.result'")
        return [(path, ref)]
    found: list[tuple[str, str]] = []
    if isinstance(value, dict):
        for key, item in value.items():
            found += find_refs(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += find_refs(item, f"{path}[{index}]")
    return found


def template_refs(text: str) -> list[str]:
    """The references of ``{{...}}`` placeholders in ``text``."""
    return _TEMPLATE.findall(text)


def _lookup(ref: str, results: Mapping[str, Any], field: str) -> Any:
    subtask, path = parse_ref(ref, field)
    if subtask not in results:
        raise RefError(field, f"sub-task {subtask!r} has no result (it is not a dependency)")
    value = results[subtask]
    walked = f"{subtask}.result"
    for part in path:
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif (
            isinstance(value, list)
            and part.lstrip("-").isdigit()
            and -len(value) <= int(part) < len(value)
        ):
            value = value[int(part)]
        else:
            shown = (
                type(value).__name__
                if not isinstance(value, dict | list)
                else (
                    "object with keys " + ", ".join(map(repr, list(value)[:10]))
                    if isinstance(value, dict)
                    else f"list of {len(value)}"
                )
            )
            raise RefError(field, f"{ref!r}: {walked} has no {part!r} (it is {shown})")
        walked += f".{part}"
    return value


def resolve_params(value: Any, results: Mapping[str, Any], path: str = "params") -> Any:
    """``value`` with each ``{"$ref": ...}`` replaced by what it references."""
    if _is_ref(value):
        return _lookup(str(value[REF_KEY]), results, path)
    if isinstance(value, dict):
        return {k: resolve_params(v, results, f"{path}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_params(v, results, f"{path}[{i}]") for i, v in enumerate(value)]
    return value


def resolve_text(text: str, results: Mapping[str, Any], field: str = "task_description") -> str:
    """``text`` with each ``{{ref}}`` replaced by the referenced value, as text."""

    def shown(match: re.Match[str]) -> str:
        value = _lookup(match.group(1), results, field)
        return value if isinstance(value, str) else msgspec.json.encode(value).decode()

    return _TEMPLATE.sub(shown, text)
