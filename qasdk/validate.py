"""The registration rules of seed 000, applied to every tool.

Each rule yields a :class:`Problem` naming the tool, the field and why; all
problems are returned together so one run shows everything to fix.
"""

from __future__ import annotations

import functools
import keyword
from collections.abc import Iterable, Iterator

import msgspec

from qasdk.models import MethodConfig, MethodParameter, Problem, Source, ToolEntry
from qasdk.types import TYPE_NAMES, check_default, parameter_schema, type_error_reason

__all__ = ["validate_entries", "validate_entry", "validate_method"]

NAME_MIN, NAME_MAX = 2, 100
DESCRIPTION_MAX = 1000
MODULE_PATH_MAX = 255
RETURN_TYPE_MAX = 50


def validate_method(config: MethodConfig, source: Source | None = None) -> list[Problem]:
    """Check one tool; an empty list means it may be registered."""
    entry = ToolEntry(config=config, source=source or Source("<memory>"), origin="declared")
    return validate_entry(entry)


def validate_entries(entries: Iterable[ToolEntry]) -> list[Problem]:
    return [problem for entry in entries for problem in validate_entry(entry)]


def validate_entry(entry: ToolEntry) -> list[Problem]:
    tool = entry.config.name or None
    return [
        Problem(
            source=entry.source_of(field),
            tool=tool,
            field=field,
            reason=entry.hints.get(field, reason),
        )
        for field, reason in _check(entry.config)
        if field not in entry.missing
    ]


def _identifier_reason(value: str, what: str) -> str | None:
    if not value:
        return "must not be empty"
    if not value.isidentifier():
        return f"{value!r} is not a valid Python identifier ({_why_not_identifier(value)})"
    if keyword.iskeyword(value):
        return f"{value!r} is a Python keyword and cannot be a {what}"
    return None


def _why_not_identifier(value: str) -> str:
    if value[0].isdigit():
        return "it starts with a digit"
    if any(c.isspace() for c in value):
        return "it contains whitespace"
    bad = sorted({c for c in value if not (c.isalnum() or c == "_")})
    if bad:
        return f"it contains {', '.join(repr(c) for c in bad)}"
    return "use letters, digits and underscores, not starting with a digit"


def _check(config: MethodConfig) -> Iterator[tuple[str, str]]:
    name = config.name
    if not isinstance(name, str) or not name:
        yield "name", "must not be empty"
    else:
        if not name.isidentifier():
            yield "name", f"{name!r} is not a valid Python identifier ({_why_not_identifier(name)})"
        if not NAME_MIN <= len(name) <= NAME_MAX:
            yield "name", f"must be {NAME_MIN}-{NAME_MAX} characters long, got {len(name)}"

    description = config.description
    if not description or not description.strip():
        yield "description", "must not be empty"
    elif len(description) > DESCRIPTION_MAX:
        yield "description", f"must be at most {DESCRIPTION_MAX} characters, got {len(description)}"

    if config.return_type not in TYPE_NAMES:
        yield "return_type", type_error_reason(config.return_type)

    yield from _check_module_path(config.module_path)

    reason = _identifier_reason(config.function_name, "function name")
    if reason:
        yield "function_name", reason
    elif len(config.function_name) > NAME_MAX:
        yield "function_name", f"must be at most {NAME_MAX} characters"

    if config.timeout is not None and not config.timeout > 0:
        yield "timeout", f"must be a positive number of seconds, got {config.timeout!r}"

    for tag in config.tags:
        if not tag.strip():
            yield "tags", "tags must not be empty strings"

    seen: set[str] = set()
    for index, param in enumerate(config.parameters):
        label = f"parameters.{param.name}" if param.name else f"parameters[{index}]"
        if param.name in seen:
            yield label, f"duplicate parameter name {param.name!r}"
        seen.add(param.name)
        for field, why in _check_parameter(param):
            yield f"{label}.{field}" if field else label, why


def _check_module_path(module_path: str) -> Iterator[tuple[str, str]]:
    if not module_path:
        yield "module_path", "must not be empty"
        return
    if len(module_path) > MODULE_PATH_MAX:
        yield "module_path", f"must be at most {MODULE_PATH_MAX} characters"
    for part in module_path.split("."):
        reason = _identifier_reason(part, "module name")
        if reason:
            yield (
                "module_path",
                f"{module_path!r} cannot be imported: segment {reason}",
            )
            return


_JSON_TYPES = frozenset({"string", "integer", "number", "boolean", "object", "array", "null"})


def _plainly_valid(schema: object) -> bool:
    """True for schemas made only of what qasdk generates (skips jsonschema's slow check)."""
    if not isinstance(schema, dict):
        return False
    for key, value in schema.items():
        if key == "type":
            types = [value] if isinstance(value, str) else value
            if not isinstance(types, list) or not types or not set(types) <= _JSON_TYPES:
                return False
        elif key == "enum":
            if not isinstance(value, list) or not value:
                return False
        elif key in ("items", "additionalProperties"):
            if not _plainly_valid(value):
                return False
        elif key == "anyOf":
            if not isinstance(value, list) or not value or not all(map(_plainly_valid, value)):
                return False
        elif key not in ("description", "default"):
            return False
    return True


@functools.lru_cache(maxsize=4096)
def _schema_error(schema_json: bytes) -> str | None:
    """Check a schema once per distinct schema: most tools share a few simple ones."""
    schema = msgspec.json.decode(schema_json)
    if _plainly_valid(schema):
        return None
    import jsonschema  # only for hand-written schemas: importing it costs 30 ms

    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        return str(exc.message)
    return None


def _check_parameter(param: MethodParameter) -> Iterator[tuple[str, str]]:
    reason = _identifier_reason(param.name, "parameter name")
    if reason:
        yield "name", reason
    if not param.type:
        yield "type", "must not be empty"
    elif param.type not in TYPE_NAMES:
        yield "type", type_error_reason(param.type)
    if not param.description or not param.description.strip():
        yield "description", "must not be empty"
    if param.required and param.has_default:
        yield "default", "a required parameter cannot have a default (set required: false)"
    schema = parameter_schema(param)
    error = _schema_error(msgspec.json.encode(schema, order="sorted"))
    if error:
        yield "schema", f"is not a valid JSON Schema: {error}"
        return
    if param.has_default and param.type in TYPE_NAMES:
        why = check_default(param.default, schema)
        if why:
            yield "default", why
