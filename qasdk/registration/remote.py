"""``mcp_servers:`` → tool entries of type ``mcp``, from what each server lists.

This is the one stage of ``qasdk sync`` that talks to the network: each declared
server is connected to (all at once, each within its timeout), its tools are
listed, the ones asked for are taken, and each becomes a :class:`ToolEntry`
whose parameters come from the tool's input schema. The entries then go
through merge and validation like any other, so a remote tool with a bad name
or no description is reported as such, naming the server. A server that cannot
be reached is a problem: the sync stops and changes nothing.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import difflib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

from qasdk.errors import ConfigurationError
from qasdk.models import (
    UNSET,
    McpServer,
    MethodConfig,
    MethodParameter,
    Problem,
    ToolEntry,
    ToolPolicy,
)
from qasdk.registration.types import normalize_type
from qasdk.remote.client import INSTALL_HINT, RemoteError, RemoteTool, list_tools, mcp_available

__all__ = ["DEFAULT_LIST_TIMEOUT", "remote_entries", "tool_entry"]

#: Seconds a server has at least to answer ``tools/list`` at sync (its ``timeout`` if longer).
DEFAULT_LIST_TIMEOUT = 15.0
_T = TypeVar("_T")
_REF_DEPTH = 16


def remote_entries(
    servers: Sequence[McpServer], *, environ: Mapping[str, str] | None = None
) -> tuple[list[ToolEntry], list[Problem]]:
    """The tools ``servers`` offer, as entries, and every problem listing them."""
    if not servers:
        return [], []
    if not mcp_available():
        return [], [
            Problem(source=s.source, field=f"mcp_servers.{s.name}", reason=INSTALL_HINT)
            for s in servers
        ]

    async def list_all() -> list[list[RemoteTool] | Problem]:
        return list(await asyncio.gather(*(_listed(s, environ) for s in servers)))

    entries: list[ToolEntry] = []
    problems: list[Problem] = []
    for server, listed in zip(servers, _in_own_loop(list_all), strict=True):
        if isinstance(listed, Problem):
            problems.append(listed)
            continue
        by_name = {tool.name: tool for tool in listed}
        wanted = list(server.tools) if server.tools is not None else list(by_name)
        for name in wanted:
            tool = by_name.get(name)
            if tool is None:
                close = difflib.get_close_matches(name, list(by_name), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                offered = ", ".join(sorted(by_name)) or "none"
                problems.append(
                    Problem(
                        source=server.source_of("tools"),
                        field=f"mcp_servers.{server.name}.tools",
                        reason=f"mcp server {server.name!r} lists no tool {name!r}{hint}; "
                        f"it lists: {offered}",
                    )
                )
                continue
            entries.append(tool_entry(server, tool))
    return entries, problems


def _in_own_loop(work: Callable[[], Awaitable[_T]]) -> _T:
    """Run ``work`` on an event loop of its own thread: ``collect`` may be called from one."""

    async def main() -> _T:
        return await work()

    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="qasdk-mcp") as pool:
        return pool.submit(asyncio.run, main()).result()


async def _listed(
    server: McpServer, environ: Mapping[str, str] | None
) -> list[RemoteTool] | Problem:
    where = "url" if server.url is not None else "command"
    try:
        return await list_tools(
            server.endpoint(""),
            # A short call timeout is for calls: listing (a new connection) gets at least this.
            timeout=max(server.timeout or 0.0, DEFAULT_LIST_TIMEOUT),
            environ=environ,
        )
    except RemoteError as exc:
        return Problem(
            source=server.source_of(where),
            field=f"mcp_servers.{server.name}",
            reason=f"cannot list its tools: {exc}",
        )
    except ConfigurationError as exc:
        problem = exc.problems[0] if exc.problems else Problem(reason=str(exc))
        key = "headers" if server.url is not None else "env"
        return Problem(source=server.source_of(key), field=problem.field, reason=problem.reason)


def tool_entry(server: McpServer, tool: RemoteTool) -> ToolEntry:
    """One listed tool as an entry: its input schema's properties become parameters."""
    schema = tool.input_schema
    definitions = {
        **(schema.get("definitions") or {}),
        **(schema.get("$defs") or {}),
    }
    required = set(schema.get("required") or ())
    properties = schema.get("properties") or {}
    parameters = []
    if isinstance(properties, Mapping):
        for name, raw in properties.items():
            prop = _inline(raw, definitions) if isinstance(raw, Mapping) else {}
            parameters.append(_parameter(str(name), prop, str(name) in required))
    source = server.source
    config = MethodConfig(
        name=server.prefix + tool.name,
        description=(tool.description or "").strip(),
        parameters=tuple(parameters),
        return_type="any",
        module_path="",
        function_name="",
        timeout=server.timeout,
        policy=server.policy,
        type="mcp",
        endpoint=server.endpoint(tool.name),
    )
    return ToolEntry(
        config=config,
        source=source,
        origin="mcp",
        locations={
            "name": source,
            **{key: server.source_of(key) for key in ("timeout", *ToolPolicy.OPTIONS)},
        },
    )


def _parameter(name: str, prop: dict[str, Any], required: bool) -> MethodParameter:
    schema = {k: v for k, v in prop.items() if k not in ("title", "description", "default")}
    declared = schema.get("type")
    if isinstance(declared, list):
        types = [t for t in declared if t != "null"]
        declared = types[0] if len(types) == 1 else None
    type_name = (normalize_type(declared) if isinstance(declared, str) else None) or "any"
    description = prop.get("description")
    has_default = "default" in prop
    return MethodParameter(
        name=name,
        type=type_name,
        description=description.strip() if isinstance(description, str) else "",
        required=required and not has_default,
        default=prop["default"] if has_default else UNSET,
        schema=schema,
    )


def _inline(schema: Mapping[str, Any], definitions: Mapping[str, Any], depth: int = 0) -> Any:
    """``schema`` with its local ``$ref``s replaced by what they name (a parameter stands alone)."""
    if depth > _REF_DEPTH:
        return {}
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith(("#/$defs/", "#/definitions/")):
        target = definitions.get(ref.rpartition("/")[2])
        if isinstance(target, Mapping):
            rest = {k: v for k, v in schema.items() if k != "$ref"}
            return {**_inline(target, definitions, depth + 1), **rest}
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if isinstance(value, Mapping):
            out[key] = _inline(value, definitions, depth + 1)
        elif isinstance(value, list):
            out[key] = [
                _inline(v, definitions, depth + 1) if isinstance(v, Mapping) else v for v in value
            ]
        else:
            out[key] = value
    return out
