"""One ``@tool`` function → one tool entry, with every problem it has.

The entry is what a ``methods.yaml`` entry would give (name, description,
parameters, return type, module and function), plus where each part was read
and, for the validator, how to fix a part that is missing.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from typing import Any

import griffe
import msgspec

from qasdk.context import CONTEXT_PATHS
from qasdk.models import (
    MethodConfig,
    MethodParameter,
    Problem,
    Source,
    ToolEntry,
    ToolPolicy,
)
from qasdk.registration.scan.annotations import SUPPORTED_HINTS, AnnotationReader, Typed
from qasdk.registration.scan.docstrings import entry_line, how_to_document, read_docstring
from qasdk.registration.scan.enums import enum_member_value
from qasdk.registration.scan.expressions import Unsupported, module_literal, to_ast
from qasdk.registration.scan.names import ClassFinder, Names
from qasdk.registration.scan.options import option_line, read_options, tool_decorator

__all__ = ["extract_tool"]


def extract_tool(
    module: griffe.Module,
    function: griffe.Function,
    display: str,
    find_class: ClassFinder,
    problems: list[Problem],
    *,
    lines: list[str] | None = None,
) -> ToolEntry | None:
    """The entry of a decorated ``function``; its problems are appended to ``problems``.

    ``lines`` is the module's source, to point at the docstring line of a problem.
    """
    return _Extraction(module, function, display, find_class, problems, lines or []).run()


class _Extraction:
    def __init__(
        self,
        module: griffe.Module,
        function: griffe.Function,
        display: str,
        find_class: ClassFinder,
        problems: list[Problem],
        lines: list[str],
    ) -> None:
        self.module = module
        self.lines = lines
        self.function = function
        self.display = display
        self.names = Names(module, find_class)
        self.types = AnnotationReader(self.names)
        self.problems = problems
        self.tool = function.name
        self.line = function.lineno
        self.hints: dict[str, str] = {}
        self.locations: dict[str, Source] = {}

    def problem(self, field: str | None, reason: str, *, line: int | None = None) -> None:
        self.problems.append(
            Problem(
                source=Source(self.display, line or self.line),
                tool=self.tool,
                field=field,
                reason=reason,
            )
        )

    def run(self) -> ToolEntry | None:
        function = self.function
        decorator = tool_decorator(function)
        assert decorator is not None

        def report(field: str | None, reason: str) -> None:
            line = option_line(decorator, self.lines, field) if field else None
            self.problem(field, reason, line=line)

        first = len(self.problems)
        options = read_options(decorator, self._literal, report)
        if isinstance(options.get("name"), str):
            self.tool = options["name"]
            # Problems with the other options name the tool as the model will know it.
            self.problems[first:] = [
                msgspec.structs.replace(p, tool=self.tool) for p in self.problems[first:]
            ]

        documented = read_docstring(function)
        self.hints["description"] = "no description: add a docstring or pass @tool(description=...)"
        config = MethodConfig(
            name=self.tool,
            description=options.get("description") or documented.summary,
            parameters=tuple(self._parameters(documented.parameters, documented.style)),
            return_type=self._return_type(),
            module_path=self.module.path,
            function_name=function.name,
            timeout=options.get("timeout"),
            tags=tuple(options.get("tags", ())),
            permissions=tuple(sorted(options.get("permissions", ()))),
            policy=ToolPolicy.of(options),
        )
        locations = {"name": Source(self.display, self.line), **self.locations}
        if function.docstring is not None and function.docstring.lineno:
            locations["description"] = Source(self.display, function.docstring.lineno)
        return ToolEntry(
            config=config,
            source=Source(self.display, self.line),
            origin="scanned",
            locations=locations,
            hints=self.hints,
        )

    def _literal(self, expr: Any) -> Any:
        return module_literal(expr, self.module)

    def _parameters(self, documented: dict[str, str], style: str) -> Iterator[MethodParameter]:
        for param in self.function.parameters:
            label = f"parameters.{param.name}"
            kind = param.kind
            if kind in (griffe.ParameterKind.var_positional, griffe.ParameterKind.var_keyword):
                star = "*" if kind is griffe.ParameterKind.var_positional else "**"
                self.problem(
                    label, f"{star}{param.name} is not supported: the model needs named parameters"
                )
                continue
            if kind is griffe.ParameterKind.positional_only:
                self.problem(
                    label,
                    "positional-only parameters are not supported: tools are called by keyword",
                )
                continue

            if self._is_context(param):
                continue  # the tool process passes it; the model never sees it
            typed = self._parameter_type(param, label)
            description = documented.get(param.name) or (typed.description if typed else None)
            self.hints[f"{label}.description"] = self._undocumented(param.name, documented, style)
            required = param.default is None
            yield MethodParameter(
                name=param.name,
                type=typed.type if typed else "",
                description=description or "",
                required=required,
                default=msgspec.UNSET if required else self._default(param, label),
                schema=dict(typed.schema) if typed else {},
            )

    def _is_context(self, param: griffe.Parameter) -> bool:
        """``ctx: ToolContext`` (imported from ``qasdk``), however it is imported or quoted."""
        if param.annotation is None:
            return False
        written = str(param.annotation).strip().strip("'\"")
        resolved = self.names.resolve(written)
        return resolved in CONTEXT_PATHS or resolved == "ToolContext"  # ``from qasdk import *``

    def _undocumented(self, name: str, documented: dict[str, str], style: str) -> str:
        """Why ``name`` has no description, with the likely typo when the docstring has one."""
        signature = {p.name for p in self.function.parameters}
        strays = [d for d in documented if d not in signature]
        close = difflib.get_close_matches(name, strays, n=1)
        if close and self.function.docstring is not None:
            line = entry_line(self.lines, self.function.docstring, close[0])
            where = f" on line {line}" if line else ""
            if line:
                self.locations[f"parameters.{name}.description"] = Source(self.display, line)
            return (
                f"not documented: the docstring describes {close[0]!r}{where}, which is not a "
                f"parameter (did you mean {name!r}?)"
            )
        return f"not documented: describe {name!r} in {how_to_document(style)}"

    def _parameter_type(self, param: griffe.Parameter, label: str) -> Typed | None:
        if param.annotation is None:
            self.hints[f"{label}.type"] = "no type hint; add one (Any accepts any value)"
            return None
        try:
            return self.types.read(to_ast(param.annotation))
        except Unsupported as exc:
            self.hints[f"{label}.type"] = f"unsupported type {exc}; {SUPPORTED_HINTS}"
            return None

    def _return_type(self) -> str:
        """The vocabulary type of the return hint, by the same rules as parameters'."""
        annotation = self.function.returns
        if annotation is None:
            return "any"
        try:
            return self.types.read(to_ast(annotation)).type
        except Unsupported as exc:
            self.hints["return_type"] = f"unsupported return type {exc}; {SUPPORTED_HINTS}"
            return ""

    def _default(self, param: griffe.Parameter, label: str) -> Any:
        try:
            return self._literal(param.default)
        except ValueError:
            member = enum_member_value(str(param.default), self.names)
            if member is not None:
                return member
            self.problem(
                f"{label}.default",
                f"default {param.default} is not a literal; qasdk stores defaults "
                "without running your code, so use a literal, an Enum member or None",
            )
            return msgspec.UNSET
