"""``methods.yaml`` / ``methods.json`` → tool entries.

The format is seed 000's::

    methods:
      - name: get_weather
        description: Get the weather of a city
        module_path: tools.weather
        function_name: get_weather
        parameters:
          - {name: city, type: string, description: City name, required: true}
        return_type: dict
        permissions: [network]   # optional: what it needs (see qasdk.permissions)
        cache_ttl: 3600          # optional: reuse results for an hour (deterministic tools)
        retries: 3               # optional: retry timeouts and the errors of retry_on
        retry_on: [ConnectionError]

A parameter may add ``enum``, ``items`` (the element type of a list) or a full
JSON ``schema``. An entry with ``override: true`` only needs ``name``: its
other fields replace those of the scanned ``@tool`` of that name.

Entries are decoded into msgspec Structs field by field (as the configuration
is), so every problem is reported at once with its line; the registration
rules themselves (names, types, timeouts) are the validator's.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import msgspec

from qasdk._documents import (
    Document,
    KeyPath,
    field_name,
    field_problems,
    load_document,
    parse_document,
)
from qasdk.errors import ConfigurationError
from qasdk.models import (
    MethodConfig,
    MethodParameter,
    Problem,
    Source,
    ToolEntry,
    ToolOverride,
    ToolPolicy,
)
from qasdk.registration.rules import kind_of
from qasdk.registration.types import base_schema, normalize_type

__all__ = ["DeclaredTools", "load_methods_file", "parse_methods"]

METHOD_REQUIRED = ("name", "description", "return_type", "module_path", "function_name")
PARAMETER_REQUIRED = ("name", "type", "description")


class DeclaredParameter(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """One parameter as a methods file gives it; absent fields are ``None``."""

    name: str | None = None
    type: str | None = None
    description: str | None = None
    required: bool | None = None
    default: Any = msgspec.UNSET
    enum: Annotated[list[Any], msgspec.Meta(min_length=1)] | None = None
    items: str | dict[str, Any] | None = None
    schema: dict[str, Any] | None = None


class DeclaredMethod(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """One entry of ``methods:``; ``parameters`` are decoded one by one, for their lines."""

    name: str | None = None
    description: str | None = None
    return_type: str | None = None
    module_path: str | None = None
    function_name: str | None = None
    parameters: list[Any] | None = None
    timeout: float | None = None
    tags: list[str] | None = None
    permissions: list[str] | None = None
    cache_ttl: float | None = None
    retries: int | None = None
    retry_on: list[str] | None = None
    max_concurrency: int | None = None
    rate: str | None = None
    redact: list[str] | None = None
    override: bool = False


class MethodsFile(msgspec.Struct, forbid_unknown_fields=True):
    """The whole file: a mapping with a ``methods`` list."""

    methods: list[Any] | None = None


class DeclaredTools(msgspec.Struct, kw_only=True):
    """What a methods file declares, and what is wrong with it."""

    entries: list[ToolEntry] = []
    overrides: list[ToolOverride] = []
    problems: list[Problem] = []

    @property
    def configs(self) -> list[MethodConfig]:
        return [entry.config for entry in self.entries]


def load_methods_file(path: str | Path, *, display: str | None = None) -> DeclaredTools:
    """Read one ``methods.yaml`` / ``methods.json`` file."""
    try:
        document = load_document(path, display=display)
    except ConfigurationError as exc:
        return DeclaredTools(problems=list(exc.problems))
    return _Reader(document).read()


def parse_methods(data: Any, path: str = "<methods>") -> DeclaredTools:
    """Parse already-loaded methods data (a mapping with a ``methods`` list), or YAML text."""
    if isinstance(data, str):
        try:
            document = parse_document(data, path)
        except ConfigurationError as exc:
            return DeclaredTools(problems=list(exc.problems))
    else:
        document = Document(path=path, data=data, lines={})
    return _Reader(document).read()


class _Reader:
    """Decodes one document, collecting problems with their lines."""

    def __init__(self, document: Document) -> None:
        self.document = document
        self.out = DeclaredTools()

    def problem(
        self, keypath: KeyPath, reason: str, *, tool: str | None = None, field: str | None = None
    ) -> None:
        self.out.problems.append(
            Problem(source=self.document.source(keypath), tool=tool, field=field, reason=reason)
        )

    def decode(
        self,
        raw: Mapping[str, Any],
        into: type[msgspec.Struct],
        keypath: KeyPath,
        *,
        tool: str | None = None,
        label: str = "",
    ) -> Any:
        """``raw`` as ``into``, leaving out (and reporting) every field that does not fit."""
        bad: set[str] = set()
        for path, reason in field_problems(raw, into):
            bad.add(str(path[0]))
            field = field_name(path)
            self.problem(
                (*keypath, *path), reason, tool=tool, field=f"{label}.{field}" if label else field
            )
        return msgspec.convert({k: v for k, v in raw.items() if k not in bad}, into)

    def read(self) -> DeclaredTools:
        data = self.document.data
        if data is None:
            return self.out
        if not isinstance(data, Mapping):
            self.problem((), "expected a mapping with a 'methods' list")
            return self.out
        for key in data:
            if key != "methods":
                self.problem(
                    (key,), "unknown top-level key; expected only 'methods'", field=str(key)
                )
        file = self.decode({"methods": data.get("methods")}, MethodsFile, ())
        for index, raw in enumerate(file.methods or []):
            self.method(("methods", index), raw)
        return self.out

    def method(self, keypath: KeyPath, raw: Any) -> None:
        if not isinstance(raw, Mapping):
            self.problem(keypath, f"each method must be a mapping, got {kind_of(raw)}")
            return
        name = raw.get("name") if isinstance(raw.get("name"), str) else None
        declared: DeclaredMethod = self.decode(raw, DeclaredMethod, keypath, tool=name)
        lines = {str(key): self.document.source((*keypath, key)) for key in raw}
        source = self.document.source(keypath)

        parameters: list[MethodParameter] = []
        given_parameters: list[dict[str, Any]] = []
        missing: set[str] = set()
        for index, raw_param in enumerate(declared.parameters or []):
            parsed = self.parameter(
                (*keypath, "parameters", index), raw_param, name, index, lines, declared.override
            )
            if parsed is not None:
                parameters.append(parsed[0])
                given_parameters.append(parsed[1])
                missing |= parsed[2]

        fields: dict[str, Any] = {
            key: getattr(declared, key)
            for key in (*METHOD_REQUIRED, "timeout")
            if getattr(declared, key) is not None
        }
        if "return_type" in fields:
            fields["return_type"] = normalize_type(fields["return_type"]) or fields["return_type"]
        if declared.tags is not None:
            fields["tags"] = tuple(declared.tags)
        if declared.permissions is not None:
            fields["permissions"] = tuple(sorted(declared.permissions))
        policy = ToolPolicy.of({key: getattr(declared, key) for key in ToolPolicy.OPTIONS})
        if policy is not None:
            fields["policy"] = policy

        if declared.override:
            if name is None:
                self.problem((*keypath, "name"), "is required", tool=None, field="name")
                return
            fields.pop("name", None)
            self.out.overrides.append(
                ToolOverride(
                    name=name,
                    fields=fields,
                    parameters=tuple(given_parameters) if declared.parameters is not None else None,
                    source=source,
                    locations=lines,
                )
            )
            return

        absent = {key for key in METHOD_REQUIRED if raw.get(key) is None}
        for key in METHOD_REQUIRED:
            if key in absent:
                self.problem((*keypath, key), "required field is missing", tool=name, field=key)
        config = MethodConfig(
            name=fields.get("name", ""),
            description=fields.get("description", ""),
            parameters=tuple(parameters),
            return_type=fields.get("return_type", ""),
            module_path=fields.get("module_path", ""),
            function_name=fields.get("function_name", ""),
            timeout=fields.get("timeout"),
            tags=fields.get("tags", ()),
            permissions=fields.get("permissions", ()),
            policy=fields.get("policy"),
        )
        self.out.entries.append(
            ToolEntry(
                config=config,
                source=source,
                origin="declared",
                locations=lines,
                missing=frozenset(absent | missing),
            )
        )

    def parameter(
        self,
        keypath: KeyPath,
        raw: Any,
        tool: str | None,
        index: int,
        lines: dict[str, Source],
        partial: bool,
    ) -> tuple[MethodParameter, dict[str, Any], set[str]] | None:
        """One parameter; an override's (``partial``) needs only its name.

        Returns the parameter, the fields the file gave (what an override
        replaces), and the required fields it left out (already reported).
        """
        label = f"parameters[{index}]"
        if not isinstance(raw, Mapping):
            self.problem(
                keypath,
                f"each parameter must be a mapping, got {kind_of(raw)}",
                tool=tool,
                field=label,
            )
            return None
        if isinstance(raw.get("name"), str) and raw["name"]:
            label = f"parameters.{raw['name']}"
        declared: DeclaredParameter = self.decode(
            raw, DeclaredParameter, keypath, tool=tool, label=label
        )
        lines[label] = self.document.source(keypath)
        for key in raw:
            lines[f"{label}.{key}"] = self.document.source((*keypath, key))

        param = self.build_parameter(declared, keypath, tool, label)
        missing = [key for key in PARAMETER_REQUIRED if raw.get(key) is None]
        if partial:
            missing = [key for key in missing if key == "name"]
        for key in missing:
            self.problem(
                (*keypath, key), "required field is missing", tool=tool, field=f"{label}.{key}"
            )
        shaping = {"type", "schema", "enum", "items"}
        given = {
            k: v
            for k, v in msgspec.to_builtins(param).items()
            if k in raw or (k == "schema" and shaping & set(raw))
        }
        return param, given, {f"{label}.{key}" for key in missing}

    def build_parameter(
        self, declared: DeclaredParameter, keypath: KeyPath, tool: str | None, label: str
    ) -> MethodParameter:
        type_name = declared.type or ""
        canonical = normalize_type(type_name)
        has_default = declared.default is not msgspec.UNSET
        required = declared.required if declared.required is not None else not has_default
        schema: dict[str, Any] = {}
        if declared.schema is not None:
            schema = dict(declared.schema)
        elif canonical is not None:
            schema = base_schema(canonical)
        if declared.enum is not None:
            schema["enum"] = list(declared.enum)
        if declared.items is not None:
            items = declared.items
            item_type = normalize_type(items) if isinstance(items, str) else None
            if isinstance(items, dict):
                schema["items"] = dict(items)
            elif item_type is not None:
                schema["items"] = base_schema(item_type)
            else:
                self.problem(
                    (*keypath, "items"),
                    f"must be a type name or a JSON Schema, got {items!r}",
                    tool=tool,
                    field=f"{label}.items",
                )
            if canonical not in (None, "list"):
                self.problem(
                    (*keypath, "items"),
                    f"only applies to list parameters, not {canonical}",
                    tool=tool,
                    field=f"{label}.items",
                )
        return MethodParameter(
            name=declared.name or "",
            type=canonical or type_name,
            description=declared.description or "",
            required=required,
            default=declared.default,
            schema=schema,
        )
