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

A parameter may add ``enum``, ``items`` (the element type of a list) or a full
JSON ``schema``. An entry with ``override: true`` only needs ``name``: its
other fields replace those of the scanned ``@tool`` of that name.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec

from qasdk._documents import Document, KeyPath, load_document, parse_document
from qasdk.errors import ConfigurationError
from qasdk.models import MethodConfig, MethodParameter, Problem, Source, ToolEntry, ToolOverride
from qasdk.types import base_schema, normalize_type

__all__ = ["DeclaredTools", "load_methods_file", "parse_methods"]

METHOD_REQUIRED = ("name", "description", "return_type", "module_path", "function_name")
METHOD_FIELDS = (*METHOD_REQUIRED, "parameters", "timeout", "tags", "override")
PARAMETER_REQUIRED = ("name", "type", "description")
PARAMETER_FIELDS = (*PARAMETER_REQUIRED, "required", "default", "enum", "items", "schema")

_STRING_FIELDS = {"name", "description", "return_type", "module_path", "function_name"}


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
    return _parse(document)


def parse_methods(data: Any, path: str = "<methods>") -> DeclaredTools:
    """Parse already-loaded methods data (a mapping with a ``methods`` list), or YAML text."""
    if isinstance(data, str):
        try:
            document = parse_document(data, path)
        except ConfigurationError as exc:
            return DeclaredTools(problems=list(exc.problems))
        return _parse(document)
    return _parse(Document(path=path, data=data, lines={}))


def _parse(document: Document) -> DeclaredTools:
    result = DeclaredTools()
    data = document.data
    if data is None:
        return result
    if not isinstance(data, Mapping) or not isinstance(data.get("methods", []), list):
        result.problems.append(
            Problem(source=document.source(), reason="expected a mapping with a 'methods' list")
        )
        return result
    for key in data:
        if key != "methods":
            result.problems.append(
                Problem(
                    source=document.source((key,)),
                    field=str(key),
                    reason="unknown top-level key; expected only 'methods'",
                )
            )
    for index, raw in enumerate(data.get("methods") or []):
        _parse_method(document, ("methods", index), raw, result)
    return result


class _Reader:
    """Reads one mapping's fields, recording problems with their lines."""

    def __init__(
        self,
        document: Document,
        keypath: KeyPath,
        raw: Mapping[str, Any],
        tool: str | None,
        label: str,
        problems: list[Problem],
    ) -> None:
        self.document = document
        self.keypath = keypath
        self.raw = raw
        self.tool = tool
        self.label = label
        self.problems = problems

    def field(self, key: str) -> str:
        return f"{self.label}.{key}" if self.label else key

    def problem(self, key: str | None, reason: str) -> None:
        keypath = (*self.keypath, key) if key else self.keypath
        self.problems.append(
            Problem(
                source=self.document.source(keypath),
                tool=self.tool,
                field=self.field(key) if key else (self.label or None),
                reason=reason,
            )
        )

    def check_keys(self, known: tuple[str, ...]) -> None:
        for key in self.raw:
            if key not in known:
                close = difflib.get_close_matches(str(key), known, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                self.problem(str(key), f"unknown field{hint}")

    def text(self, key: str) -> str | None:
        value = self.raw.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            self.problem(key, f"must be a string, got {type(value).__name__}")
            return None
        return value


def _parse_method(document: Document, keypath: KeyPath, raw: Any, out: DeclaredTools) -> None:
    if not isinstance(raw, Mapping):
        out.problems.append(
            Problem(
                source=document.source(keypath),
                reason=f"each method must be a mapping, got {type(raw).__name__}",
            )
        )
        return
    name = raw.get("name") if isinstance(raw.get("name"), str) else None
    reader = _Reader(document, keypath, raw, name, "", out.problems)
    reader.check_keys(METHOD_FIELDS)
    lines = {str(key): document.source((*keypath, key)) for key in raw}
    source = document.source(keypath)

    override = raw.get("override", False)
    if not isinstance(override, bool):
        reader.problem("override", f"must be true or false, got {override!r}")
        override = False

    values: dict[str, Any] = {}
    for key in _STRING_FIELDS:
        text = reader.text(key)
        if text is not None:
            values[key] = text
    if "return_type" in values:
        values["return_type"] = normalize_type(values["return_type"]) or values["return_type"]

    timeout = raw.get("timeout")
    if timeout is not None:
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
            reader.problem("timeout", f"must be a number of seconds, got {timeout!r}")
        else:
            values["timeout"] = float(timeout)

    tags = raw.get("tags")
    if tags is not None:
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            reader.problem("tags", "must be a list of strings")
        else:
            values["tags"] = tuple(tags)

    raw_params = raw.get("parameters")
    params: list[MethodParameter] = []
    raw_param_list: list[dict[str, Any]] = []
    missing_in_params: set[str] = set()
    if raw_params is not None and not isinstance(raw_params, list):
        reader.problem("parameters", f"must be a list, got {type(raw_params).__name__}")
    elif raw_params:
        for index, raw_param in enumerate(raw_params):
            parsed = _parse_parameter(
                document,
                (*keypath, "parameters", index),
                raw_param,
                name,
                index,
                lines,
                out,
                partial=override,
            )
            if parsed is not None:
                params.append(parsed[0])
                raw_param_list.append(parsed[1])
                missing_in_params |= parsed[2]

    if override:
        if name is None:
            reader.problem("name", "is required")
            return
        fields = {k: v for k, v in values.items() if k != "name"}
        out.overrides.append(
            ToolOverride(
                name=name,
                fields=fields,
                parameters=tuple(raw_param_list) if raw_params is not None else None,
                source=source,
                locations=lines,
            )
        )
        return

    missing = {key for key in METHOD_REQUIRED if key not in raw or raw[key] is None}
    for key in sorted(missing, key=METHOD_REQUIRED.index):
        reader.problem(key, "required field is missing")
    config = MethodConfig(
        name=values.get("name", ""),
        description=values.get("description", ""),
        parameters=tuple(params),
        return_type=values.get("return_type", ""),
        module_path=values.get("module_path", ""),
        function_name=values.get("function_name", ""),
        timeout=values.get("timeout"),
        tags=values.get("tags", ()),
    )
    out.entries.append(
        ToolEntry(
            config=config,
            source=source,
            origin="declared",
            locations=lines,
            missing=frozenset(missing | missing_in_params),
        )
    )


def _parse_parameter(
    document: Document,
    keypath: KeyPath,
    raw: Any,
    tool: str | None,
    index: int,
    lines: dict[str, Source],
    out: DeclaredTools,
    *,
    partial: bool = False,
) -> tuple[MethodParameter, dict[str, Any], set[str]] | None:
    """Parse one parameter; an override's (``partial``) needs only its name."""
    label = f"parameters[{index}]"
    if not isinstance(raw, Mapping):
        out.problems.append(
            Problem(
                source=document.source(keypath),
                tool=tool,
                field=label,
                reason=f"each parameter must be a mapping, got {type(raw).__name__}",
            )
        )
        return None
    if isinstance(raw.get("name"), str) and raw["name"]:
        label = f"parameters.{raw['name']}"
    reader = _Reader(document, keypath, raw, tool, label, out.problems)
    param, missing = _build_parameter(raw, reader)
    lines[label] = document.source(keypath)
    for key in raw:
        lines[f"{label}.{key}"] = document.source((*keypath, key))
    if partial:
        missing = [key for key in missing if key == "name"]
    for key in missing:
        reader.problem(key, "required field is missing")
    shaping = {"type", "schema", "enum", "items"}
    given = {
        k: v
        for k, v in msgspec.to_builtins(param).items()
        if k in raw or (k == "schema" and shaping & set(raw))
    }
    return param, given, {f"{label}.{key}" for key in missing}


def _build_parameter(raw: Mapping[str, Any], reader: _Reader) -> tuple[MethodParameter, list[str]]:
    """Build a parameter from a declared mapping; return it and its missing fields."""
    reader.check_keys(PARAMETER_FIELDS)
    name = reader.text("name") or ""
    type_name = reader.text("type") or ""
    description = reader.text("description") or ""
    canonical = normalize_type(type_name)
    required = raw.get("required")
    if required is not None and not isinstance(required, bool):
        reader.problem("required", f"must be true or false, got {required!r}")
        required = None
    has_default = "default" in raw
    if required is None:
        required = not has_default

    schema: dict[str, Any] = {}
    if "schema" in raw:
        if isinstance(raw["schema"], Mapping):
            schema = dict(raw["schema"])
        else:
            reader.problem("schema", "must be a JSON Schema mapping")
    elif canonical is not None:
        schema = base_schema(canonical)
    if "enum" in raw:
        if isinstance(raw["enum"], list) and raw["enum"]:
            schema["enum"] = list(raw["enum"])
        else:
            reader.problem("enum", "must be a non-empty list of allowed values")
    if "items" in raw:
        items = raw["items"]
        item_type = normalize_type(items) if isinstance(items, str) else None
        if isinstance(items, Mapping):
            schema["items"] = dict(items)
        elif item_type is not None:
            schema["items"] = base_schema(item_type)
        else:
            reader.problem("items", f"must be a type name or a JSON Schema, got {items!r}")
        if canonical not in (None, "list"):
            reader.problem("items", f"only applies to list parameters, not {canonical}")
    missing = [key for key in PARAMETER_REQUIRED if key not in raw or raw[key] is None]
    param = MethodParameter(
        name=name,
        type=canonical or type_name,
        description=description,
        required=required,
        default=raw["default"] if has_default else msgspec.UNSET,
        schema=schema,
    )
    return param, missing
