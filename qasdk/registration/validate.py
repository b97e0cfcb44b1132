"""The registration rules of seed 000, applied to every tool, scanned or declared.

The rules themselves live in :mod:`qasdk.registration.rules` (the decorator
and the scanner ask them too); here each becomes a :class:`Problem` naming the
tool, the field, where it is defined and why. All problems are returned
together so one run shows everything to fix.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator

import msgspec

from qasdk.models import MethodConfig, MethodParameter, Problem, Source, ToolEntry
from qasdk.registration import rules
from qasdk.registration.types import TYPE_NAMES, check_default, parameter_schema, type_error_reason

__all__ = ["validate_entries", "validate_entry", "validate_method"]


def validate_method(config: MethodConfig, source: Source | None = None) -> list[Problem]:
    """Check one tool; an empty list means it may be registered."""
    entry = ToolEntry(config=config, source=source or Source("<memory>"), origin="declared")
    return validate_entry(entry)


def validate_entries(entries: Iterable[ToolEntry]) -> list[Problem]:
    return [problem for entry in entries for problem in validate_entry(entry)]


def validate_entry(entry: ToolEntry) -> list[Problem]:
    tool = entry.config.name or None
    endpoint = entry.config.endpoint
    # A remote tool's fields come from its server: say which one, and where it is declared.
    remote = (
        f" (as mcp server {endpoint.server!r} lists its tool {endpoint.tool!r})"
        if endpoint is not None
        else ""
    )
    return [
        Problem(
            source=entry.source_of(field),
            tool=tool,
            field=field,
            reason=entry.hints.get(field, reason) + remote,
        )
        for field, reason in _check(entry.config)
        if field not in entry.missing
    ]


def _check(config: MethodConfig) -> Iterator[tuple[str, str]]:
    checks: list[tuple[str, Callable[[object], Iterator[str]], object]] = [
        ("name", rules.check_name, config.name),
        ("description", rules.check_description, config.description),
        ("timeout", rules.check_timeout, config.timeout),
        ("tags", rules.check_tags, config.tags),
        ("permissions", rules.check_permissions, config.permissions),
    ]
    if config.type == "python":
        checks[2:2] = [
            ("module_path", rules.check_module_path, config.module_path),
            ("function_name", rules.check_function_name, config.function_name),
        ]
    elif config.endpoint is None:
        yield "endpoint", "an mcp tool needs an endpoint (its server and remote name)"
    for field, rule, value in checks:
        for reason in rule(value):
            yield field, reason
    policy = config.policy
    if policy is not None:
        for field, rule, value in (
            ("cache_ttl", rules.check_cache_ttl, policy.cache_ttl),
            ("retries", rules.check_retries, policy.retries),
            ("retry_on", rules.check_retry_on, policy.retry_on),
            ("max_concurrency", rules.check_max_concurrency, policy.max_concurrency),
            ("rate", rules.check_rate, policy.rate),
            ("redact", rules.check_redact, policy.redact),
            ("requires_approval", rules.check_flag, policy.requires_approval),
            ("pool", rules.check_pool, policy.pool),
        ):
            for reason in rule(value):
                yield field, reason
        if policy.retry_on and not policy.retries:
            yield "retry_on", "names errors to retry but retries is 0: set retries too"
    if config.return_type not in TYPE_NAMES:
        yield "return_type", type_error_reason(config.return_type)

    seen: set[str] = set()
    for index, param in enumerate(config.parameters):
        label = f"parameters.{param.name}" if param.name else f"parameters[{index}]"
        if param.name in seen:
            yield label, f"duplicate parameter name {param.name!r}"
        seen.add(param.name)
        for field, why in _check_parameter(param):
            yield f"{label}.{field}" if field else label, why


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
            if not (_plainly_valid(value) or (key == "additionalProperties" and value is False)):
                return False
        elif key == "properties":
            if not isinstance(value, dict) or not all(map(_plainly_valid, value.values())):
                return False
        elif key == "required":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                return False
        elif key == "format":
            if not isinstance(value, str):
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
    for reason in rules.check_identifier(param.name, "parameter name"):
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
