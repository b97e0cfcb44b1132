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
        pool: gpu                # optional: only workers started with --pool gpu run it

A file may also declare MCP servers whose tools become tools of type ``mcp``::

    mcp_servers:
      - name: github                        # an identifier, unique
        url: https://mcp.example.com/mcp    # streamable HTTP ...
        headers: {Authorization: "Bearer ${GITHUB_TOKEN}"}   # expanded at call time
        tools: [search_issues]              # default: every tool it lists
        prefix: gh_                         # registered as gh_search_issues
        timeout: 20                         # seconds per call (listing at sync: 15 or more)
        retries: 2                          # cache_ttl, retries, retry_on, max_concurrency, rate
        retry_on: [McpUnavailable]
      - name: files
        command: python                     # ... or a command spoken to over stdio
        args: [servers/files.py]
        env: {ROOT: "${FILES_ROOT:-/srv}"}

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
    McpServer,
    MethodConfig,
    MethodParameter,
    Problem,
    Source,
    ToolEntry,
    ToolOverride,
    ToolPolicy,
)
from qasdk.registration import rules
from qasdk.registration.rules import kind_of
from qasdk.registration.types import base_schema, normalize_type
from qasdk.remote.templates import check_template

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
    requires_approval: bool | None = None
    pool: str | None = None
    override: bool = False


class DeclaredMcpServer(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """One entry of ``mcp_servers:``; absent fields are ``None``."""

    name: str | None = None
    url: str | None = None
    command: str | None = None
    args: list[str] | None = None
    headers: dict[str, str] | None = None
    env: dict[str, str] | None = None
    tools: list[str] | None = None
    prefix: str | None = None
    timeout: Annotated[float, msgspec.Meta(gt=0)] | None = None
    cache_ttl: float | None = None
    retries: int | None = None
    retry_on: list[str] | None = None
    max_concurrency: int | None = None
    rate: str | None = None
    redact: list[str] | None = None
    requires_approval: bool | None = None
    pool: str | None = None


class MethodsFile(msgspec.Struct, forbid_unknown_fields=True):
    """The whole file: a mapping with a ``methods`` list and an ``mcp_servers`` list."""

    methods: list[Any] | None = None
    mcp_servers: list[Any] | None = None


TOP_LEVEL = ("methods", "mcp_servers")


class DeclaredTools(msgspec.Struct, kw_only=True):
    """What a methods file declares, and what is wrong with it."""

    entries: list[ToolEntry] = []
    overrides: list[ToolOverride] = []
    servers: list[McpServer] = []
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
            if key not in TOP_LEVEL:
                self.problem(
                    (key,),
                    "unknown top-level key; expected only 'methods' and 'mcp_servers'",
                    field=str(key),
                )
        file = self.decode({k: data.get(k) for k in TOP_LEVEL}, MethodsFile, ())
        for index, raw in enumerate(file.methods or []):
            self.method(("methods", index), raw)
        names: dict[str, Source] = {}
        for index, raw in enumerate(file.mcp_servers or []):
            server = self.server(("mcp_servers", index), raw)
            if server is None:
                continue
            if server.name in names:
                self.problem(
                    ("mcp_servers", index, "name"),
                    f"duplicate MCP server name, also declared at {names[server.name]}",
                    field=f"mcp_servers.{server.name}.name",
                )
                continue
            names[server.name] = server.source_of("name")
            self.out.servers.append(server)
        return self.out

    def server(self, keypath: KeyPath, raw: Any) -> McpServer | None:
        """One ``mcp_servers:`` entry, or ``None`` when it is too broken to list tools from."""
        if not isinstance(raw, Mapping):
            self.problem(keypath, f"each MCP server must be a mapping, got {kind_of(raw)}")
            return None
        given = raw.get("name")
        label = (
            f"mcp_servers.{given}"
            if isinstance(given, str) and given
            else (f"mcp_servers[{keypath[-1]}]")
        )
        before = len(self.out.problems)
        declared: DeclaredMcpServer = self.decode(raw, DeclaredMcpServer, keypath, label=label)

        def problem(key: str | None, reason: str) -> None:
            at = (*keypath, key) if key is not None else keypath
            self.problem(at, reason, field=f"{label}.{key}" if key else label)

        if declared.name is None:
            if "name" not in raw:
                problem("name", "required field is missing")
        else:
            for reason in rules.check_identifier(declared.name, "server name"):
                problem("name", reason)
        if declared.url is None and declared.command is None:
            if "url" not in raw and "command" not in raw:
                problem(None, "give a 'url' (streamable HTTP) or a 'command' (stdio)")
        elif declared.url is not None and declared.command is not None:
            problem("command", "give a 'url' or a 'command', not both")
        if declared.url is not None:
            if not declared.url.startswith(("http://", "https://")):
                problem("url", f"must be an http:// or https:// URL, got {declared.url!r}")
            elif "@" in declared.url.split("/", 3)[2] or "${" in declared.url:
                # The URL is stored and shown as it is: a credential belongs in a header.
                problem(
                    "url",
                    "must not hold credentials or ${...}: put them in a header "
                    "(headers: {Authorization: 'Bearer ${TOKEN}'})",
                )
        if declared.command is not None and not declared.command.strip():
            problem("command", "must not be empty")
        if declared.url is not None:
            for key in ("args", "env"):
                if getattr(declared, key) is not None:
                    problem(key, "applies to a 'command' server; one with a 'url' takes headers")
        if declared.command is not None and declared.headers is not None:
            problem("headers", "applies to a 'url' server; a 'command' server takes env")
        for key in ("headers", "env"):
            for name, value in (getattr(declared, key) or {}).items():
                why = check_template(name, value)
                if why is not None:
                    self.problem((*keypath, key, name), why, field=f"{label}.{key}.{name}")
        tools = declared.tools
        if tools is not None:
            if not tools:
                problem("tools", "must name at least one tool (leave it out to take them all)")
            seen: set[str] = set()
            for index, tool in enumerate(tools):
                if tool in seen:
                    self.problem(
                        (*keypath, "tools", index),
                        f"{tool!r} is listed twice",
                        field=f"{label}.tools",
                    )
                seen.add(tool)
        prefix = declared.prefix or ""
        if prefix and not (prefix.replace("_", "a").isalnum() and not prefix[0].isdigit()):
            problem(
                "prefix",
                f"{prefix!r} cannot start a tool name: use letters, digits and underscores, "
                "not starting with a digit",
            )
        if len(self.out.problems) > before or declared.name is None:
            return None
        return McpServer(
            name=declared.name,
            url=declared.url,
            command=declared.command,
            args=tuple(declared.args or ()),
            headers=dict(declared.headers or {}),
            env=dict(declared.env or {}),
            tools=tuple(tools) if tools is not None else None,
            prefix=prefix,
            timeout=declared.timeout,
            # Each tool of the server gets these (a rate or a concurrency limit is per tool).
            policy=ToolPolicy.of({k: getattr(declared, k, None) for k in ToolPolicy.OPTIONS}),
            source=self.document.source(keypath),
            locations={str(key): self.document.source((*keypath, key)) for key in raw},
        )

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
