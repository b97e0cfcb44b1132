"""The type vocabulary of tool metadata, its JSON Schema, and value coercion.

A parameter has a *type* from a small vocabulary (what ``methods.yaml`` says
and the database stores) and a *schema* (JSON Schema, what the model sees and
what arguments are checked against). The schema may be richer than the type:
``list[int]`` is type ``list`` with ``items: {type: integer}``.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import math
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from qasdk._excerpt import SHOWN, excerpt
from qasdk.errors import ValidationError
from qasdk.models import Problem

if TYPE_CHECKING:
    from qasdk.models import MethodParameter

__all__ = [
    "TYPE_NAMES",
    "CoercionError",
    "base_schema",
    "check_default",
    "coerce",
    "normalize_type",
    "parameter_schema",
    "type_error_reason",
]

TYPE_NAMES: tuple[str, ...] = ("string", "int", "float", "bool", "dict", "list", "None", "any")

_ALIASES: dict[str, str] = {
    "str": "string",
    "text": "string",
    "integer": "int",
    "number": "float",
    "double": "float",
    "boolean": "bool",
    "object": "dict",
    "mapping": "dict",
    "array": "list",
    "tuple": "list",
    "none": "None",
    "null": "None",
    "nonetype": "None",
    "Any": "any",
}

_JSON_TYPES: dict[str, str] = {
    "string": "string",
    "int": "integer",
    "float": "number",
    "bool": "boolean",
    "dict": "object",
    "list": "array",
    "None": "null",
}


def normalize_type(name: str) -> str | None:
    """Return the canonical spelling of a type name, or ``None`` if unknown."""
    name = name.strip()
    if name in TYPE_NAMES:
        return name
    return _ALIASES.get(name) or _ALIASES.get(name.lower())


def type_error_reason(name: object) -> str:
    """Explain why ``name`` is not a type, suggesting the nearest known one."""
    known = ", ".join(TYPE_NAMES)
    if not isinstance(name, str) or not name.strip():
        return f"must not be empty; expected one of {known}"
    close = difflib.get_close_matches(name, [*TYPE_NAMES, *_ALIASES], n=1, cutoff=0.6)
    hint = f" (did you mean {normalize_type(close[0])!r}?)" if close else ""
    return f"unknown type {name!r}{hint}; expected one of {known}"


def base_schema(type_name: str) -> dict[str, Any]:
    """The plain JSON Schema of a canonical type name (``any`` accepts anything)."""
    json_type = _JSON_TYPES.get(type_name)
    return {"type": json_type} if json_type else {}


def parameter_schema(param: MethodParameter) -> dict[str, Any]:
    """A parameter's JSON Schema: its own, or the plain schema of its type."""
    return param.schema or base_schema(param.type)


class CoercionError(ValidationError, ValueError):
    """A value does not fit a schema and cannot be converted to fit it.

    ``path`` names where in the value (``params.items[2]``), ``reason`` why.
    """

    def __init__(self, reason: str, path: str = "") -> None:
        super().__init__(problems=[Problem(field=path or None, reason=reason)])
        self.reason = reason
        self.path = path


_INT_RE = re.compile(r"[+-]?\d+")
_TRUE = {"true", "yes", "1", "on"}
_FALSE = {"false", "no", "0", "off"}


# bool before int: True is an int to Python, a boolean to JSON.
_JSON_KINDS: tuple[tuple[type | tuple[type, ...], str], ...] = (
    (bool, "boolean"),
    (int, "integer"),
    (float, "number"),
    (str, "string"),
    ((list, tuple), "array"),
    (dict, "object"),
)


def _json_text(value: object) -> str:
    """``value`` as JSON writes it, shortened."""
    if isinstance(value, str):
        value = value[: SHOWN + 1]  # no need to encode more than is shown
    return excerpt(json.dumps(value, ensure_ascii=False, default=repr))


def _describe(value: object) -> str:
    """``string "x"``, ``null``: a value as JSON names and writes it."""
    if value is None:
        return "null"
    kind = next((name for t, name in _JSON_KINDS if isinstance(value, t)), type(value).__name__)
    return f"{kind} {_json_text(value)}"


def _coerce_one(value: Any, json_type: str, path: str) -> Any:
    """Convert ``value`` to one JSON type, the way a lenient but honest API would."""
    if json_type == "null":
        if value is None:
            return None
    elif json_type == "string":
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
    elif json_type == "integer":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and _INT_RE.fullmatch(value.strip()):
            return int(value.strip())
    elif json_type == "number":
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                number = float(value.strip())
            except ValueError:
                pass
            else:
                if math.isfinite(number):
                    return number
    elif json_type == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
    elif json_type in ("object", "array"):
        want: type = dict if json_type == "object" else list
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                value = json.loads(value)
        if isinstance(value, (tuple, set, frozenset)) and want is list:
            value = list(value)
        if isinstance(value, want):
            return value
    raise CoercionError(f"expected {json_type}, got {_describe(value)}", path)


def coerce(value: Any, schema: Mapping[str, Any], path: str = "") -> Any:
    """Return ``value`` converted to fit ``schema``, or raise :class:`CoercionError`.

    Supports the subset of JSON Schema that qasdk generates: ``type`` (one or a
    list), ``enum``, ``items``, ``additionalProperties`` and ``anyOf``.
    """
    if "anyOf" in schema:
        reasons = []
        for option in schema["anyOf"]:
            try:
                return coerce(value, option, path)
            except CoercionError as exc:
                reasons.append(exc.reason)
        raise CoercionError(" and ".join(dict.fromkeys(reasons)), path)

    declared = schema.get("type")
    types = [declared] if isinstance(declared, str) else list(declared or [])
    if types:
        # Try an exact match first so "1" stays a string when strings are allowed.
        result: Any = None
        for json_type in types:
            try:
                result = _coerce_one(value, json_type, path)
            except CoercionError:
                continue
            if type(result) is type(value) or value is None:
                break
        else:
            for json_type in types:
                try:
                    result = _coerce_one(value, json_type, path)
                    break
                except CoercionError:
                    continue
            else:
                raise CoercionError(f"expected {' or '.join(types)}, got {_describe(value)}", path)
        value = result

    if isinstance(value, str) and isinstance(schema.get("format"), str):
        _check_format(value, schema["format"], path)
    if "enum" in schema and value not in schema["enum"]:
        options = ", ".join(_json_text(v) for v in schema["enum"])
        raise CoercionError(f"{_json_text(value)} is not one of {options}", path)
    if isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        value = [coerce(v, schema["items"], f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict) and isinstance(schema.get("properties"), Mapping):
        value = _coerce_fields(value, schema, path)
    if isinstance(value, dict) and isinstance(schema.get("additionalProperties"), Mapping):
        value = {
            k: coerce(v, schema["additionalProperties"], f"{path}.{excerpt(k)}")
            for k, v in value.items()
        }
    return value


#: String formats qasdk generates, and what a value of each must parse as.
_FORMATS: dict[str, tuple[str, str]] = {
    "date-time": ("datetime", "an ISO 8601 date and time, such as 2026-01-31T12:00:00Z"),
    "date": ("date", "an ISO 8601 date, such as 2026-01-31"),
    "time": ("time", "an ISO 8601 time, such as 12:30:00"),
    "duration": ("timedelta", "an ISO 8601 duration, such as PT1H30M"),
    "uuid": ("uuid", "a UUID"),
    "decimal": ("decimal", "a decimal number written as a string, such as '12.50'"),
}


def _check_format(value: str, name: str, path: str) -> None:
    known = _FORMATS.get(name)
    if known is None:
        return
    import datetime as dt
    import decimal
    import uuid

    import msgspec

    target: Any = {
        "datetime": dt.datetime,
        "date": dt.date,
        "time": dt.time,
        "timedelta": dt.timedelta,
        "uuid": uuid.UUID,
        "decimal": decimal.Decimal,
    }[known[0]]
    try:
        msgspec.convert(value, target)
    except msgspec.ValidationError:
        raise CoercionError(f"expected {known[1]}, got {_describe(value)}", path) from None


def _coerce_fields(value: dict[str, Any], schema: Mapping[str, Any], path: str) -> dict[str, Any]:
    """An object's fields, each fitted to its own schema; missing required ones refused."""
    properties: Mapping[str, Any] = schema["properties"]
    result: dict[str, Any] = {}
    for key, item in value.items():
        field = f"{path}.{key}" if path else key
        if key in properties:
            result[key] = coerce(item, properties[key], field)
        elif schema.get("additionalProperties") is False:
            names = ", ".join(properties)
            raise CoercionError(f"unexpected field; expected {names}", field)
        else:
            result[key] = item
    for key in schema.get("required", ()):
        if key not in value:
            raise CoercionError("missing required field", f"{path}.{key}" if path else key)
    return result


def check_default(default: Any, schema: Mapping[str, Any]) -> str | None:
    """Return why ``default`` cannot be a value of ``schema``, or ``None`` if it can."""
    if default is None:
        # ``param: X = None`` is the common way to say "optional"; allow it.
        return None
    try:
        coerced = coerce(default, schema)
    except CoercionError as exc:
        return exc.reason
    if coerced != default:
        return f"default {default!r} is not a {schema.get('type', 'value')}"
    return None
