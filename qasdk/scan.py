"""Source files → tool entries, with griffe and without importing user code.

griffe reads a module's syntax tree, resolves names through its imports, and
parses docstrings (Google, NumPy or Sphinx, detected per function). From that
we build the same :class:`MethodConfig` a ``methods.yaml`` entry gives.
Nothing here executes the scanned code: a file that would crash on import, or
start a server, scans fine.
"""

from __future__ import annotations

import ast
import functools
import logging
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Literal, cast

import griffe
import msgspec

from qasdk.models import MethodConfig, MethodParameter, Problem, Source, ToolEntry
from qasdk.types import base_schema

__all__ = ["ScanResult", "Scanner", "module_name_for", "scan_source"]

#: Where ``@tool`` lives; griffe resolves every import style to one of these.
TOOL_PATHS = frozenset({"qasdk.tool", "qasdk.decorator.tool"})

_DOCSTRING_OPTIONS: Any = {
    style: {"warnings": False}
    for style in (griffe.Parser.google, griffe.Parser.numpy, griffe.Parser.sphinx)
}
_STYLES: tuple[Literal["google", "numpy", "sphinx"], ...] = ("google", "numpy", "sphinx")
_HOW_TO_DOCUMENT = {
    "google": "an 'Args:' section",
    "numpy": "a 'Parameters' section",
    "sphinx": "a ':param NAME:' line",
}

_SIMPLE_TYPES: dict[str, str] = {
    "builtins.str": "string",
    "builtins.int": "int",
    "builtins.float": "float",
    "builtins.bool": "bool",
    "builtins.dict": "dict",
    "builtins.list": "list",
    "builtins.tuple": "list",
    "builtins.set": "list",
    "builtins.frozenset": "list",
    "builtins.object": "any",
    "typing.Any": "any",
    "typing_extensions.Any": "any",
    "typing.Dict": "dict",
    "typing.Mapping": "dict",
    "typing.MutableMapping": "dict",
    "collections.abc.Mapping": "dict",
    "collections.abc.MutableMapping": "dict",
    "typing.List": "list",
    "typing.Tuple": "list",
    "typing.Set": "list",
    "typing.FrozenSet": "list",
    "typing.Sequence": "list",
    "typing.MutableSequence": "list",
    "typing.Iterable": "list",
    "collections.abc.Sequence": "list",
    "collections.abc.MutableSequence": "list",
    "collections.abc.Iterable": "list",
    "collections.abc.Set": "list",
}
_OPTIONAL = frozenset({"typing.Optional", "typing_extensions.Optional"})
_UNION = frozenset({"typing.Union", "typing_extensions.Union"})
_LITERAL = frozenset({"typing.Literal", "typing_extensions.Literal"})
_ANNOTATED = frozenset({"typing.Annotated", "typing_extensions.Annotated"})
_ENUM_BASES = frozenset({"enum.Enum", "enum.IntEnum", "enum.StrEnum", "enum.Flag", "enum.IntFlag"})
_BUILTIN_NAMES = frozenset(
    {"str", "int", "float", "bool", "dict", "list", "tuple", "set", "frozenset", "object"}
)
_SUPPORTED_HINT = (
    "use str, int, float, bool, list[...], dict[str, ...], Literal[...], an Enum, X | None, or Any"
)

logger = logging.getLogger("qasdk.scan")


class ScanResult(msgspec.Struct, kw_only=True):
    """Tools found in source files, and what kept others from being read."""

    entries: list[ToolEntry] = []
    problems: list[Problem] = []
    files: int = 0


class _Unsupported(Exception):
    """An annotation that has no JSON Schema equivalent."""


class _Typed(msgspec.Struct, frozen=True):
    type: str
    schema: dict[str, Any]
    description: str | None = None


def module_name_for(path: Path, root: Path) -> str | None:
    """The dotted module name that imports ``path`` when ``root`` is on ``sys.path``.

    ``tools/geo.py`` under root gives ``tools.geo``; a package's ``__init__.py``
    gives the package. ``None`` when ``path`` is not under ``root``.
    """
    try:
        relative = path.resolve().relative_to(root.resolve())
    except ValueError:
        return None
    parts = list(relative.with_suffix("").parts)
    if parts and parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts) if parts else None


def package_module_name(path: Path) -> str:
    """A module name from the package structure alone (for files outside the root)."""
    path = path.resolve()
    parts = [] if path.stem == "__init__" else [path.stem]
    folder = path.parent
    while (folder / "__init__.py").is_file():
        parts.insert(0, folder.name)
        folder = folder.parent
    return ".".join(parts)


def scan_source(code: str, *, module: str, path: str = "<source>") -> ScanResult:
    """Scan one module's source text."""
    scanner = Scanner(root=None)
    scanner.add_source(code, module=module, path=Path(path), display=path)
    return scanner.result()


class Scanner:
    """Scans modules in two passes: read every file, then extract tools.

    The second pass can resolve an ``Enum`` defined in another scanned module
    (or, lazily, in any module under ``root``) without importing anything.
    """

    def __init__(self, root: Path | None) -> None:
        self.root = root
        self._modules: dict[str, tuple[griffe.Module, str]] = {}
        self._order: list[str] = []
        self._problems: list[Problem] = []
        self._files = 0

    def add_file(self, path: Path, *, module: str, display: str) -> None:
        try:
            code = path.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError as exc:
            self._problems.append(
                Problem(source=Source(display), reason=f"not UTF-8 text (byte {exc.start})")
            )
            return
        except OSError as exc:
            self._problems.append(
                Problem(source=Source(display), reason=f"cannot read: {exc.strerror}")
            )
            return
        self.add_source(code, module=module, path=path, display=display)

    def add_source(self, code: str, *, module: str, path: Path, display: str) -> None:
        self._files += 1
        parsed = self._visit(code, module, path, display)
        if parsed is not None:
            self._modules[module] = (parsed, display)
            self._order.append(module)

    def _visit(self, code: str, module: str, path: Path, display: str) -> griffe.Module | None:
        try:
            return griffe.visit(module or path.stem, filepath=path, code=code)
        except SyntaxError as exc:
            self._problems.append(
                Problem(source=Source(display, exc.lineno), reason=f"syntax error: {exc.msg}")
            )
        except Exception as exc:  # griffe bug or exotic syntax: report, don't crash the sync
            logger.debug("griffe could not read %s", display, exc_info=True)
            self._problems.append(
                Problem(source=Source(display), reason=f"could not be read: {exc}")
            )
        return None

    def result(self) -> ScanResult:
        entries: list[ToolEntry] = []
        problems = list(self._problems)
        for module in self._order:
            parsed, display = self._modules[module]
            for found in self._tools_in(parsed, display, problems):
                entries.append(found)
        return ScanResult(entries=entries, problems=problems, files=self._files)

    # -- extraction ---------------------------------------------------------

    def _tools_in(
        self, module: griffe.Module, display: str, problems: list[Problem]
    ) -> Iterator[ToolEntry]:
        for member in module.members.values():
            if member.is_alias:
                continue
            if isinstance(member, griffe.Function):
                if _tool_decorator(member) is not None:
                    entry = _Extraction(self, module, member, display, problems).run()
                    if entry is not None:
                        yield entry
            elif isinstance(member, griffe.Class):
                for nested in _functions_in_class(member):
                    if _tool_decorator(nested) is not None:
                        problems.append(
                            Problem(
                                source=Source(display, nested.lineno),
                                tool=nested.name,
                                reason=f"@tool is on a method of class {member.name!r}; "
                                "only module-level functions can be tools",
                            )
                        )

    def find_class(self, path: str) -> griffe.Class | None:
        """A class by canonical path, from scanned modules or statically from ``root``."""
        module_name, _, class_name = path.rpartition(".")
        while module_name:
            module = self._module(module_name)
            if module is not None:
                member = module.members.get(class_name)
                if isinstance(member, griffe.Class):
                    return member
                return None
            module_name, _, prefix = module_name.rpartition(".")
            class_name = f"{prefix}.{class_name}"
        return None

    def _module(self, name: str) -> griffe.Module | None:
        if name in self._modules:
            return self._modules[name][0]
        if self.root is None:
            return None
        base = self.root.joinpath(*name.split("."))
        for candidate in (base.with_suffix(".py"), base / "__init__.py"):
            if candidate.is_file():
                try:
                    code = candidate.read_text(encoding="utf-8-sig")
                except (OSError, UnicodeDecodeError):
                    return None
                parsed = self._visit(code, name, candidate, str(candidate))
                if parsed is not None:
                    self._modules[name] = (parsed, str(candidate))
                return parsed
        return None


def _functions_in_class(cls: griffe.Class) -> Iterable[griffe.Function]:
    return (m for m in cls.members.values() if not m.is_alias and isinstance(m, griffe.Function))


def _tool_decorator(function: griffe.Function) -> griffe.Decorator | None:
    for decorator in function.decorators:
        try:
            if decorator.callable_path in TOOL_PATHS:
                return decorator
        except Exception:  # an unresolvable expression is simply not our decorator
            continue
    return None


class _Extraction:
    """Builds one tool entry from one decorated function, collecting problems."""

    def __init__(
        self,
        scanner: Scanner,
        module: griffe.Module,
        function: griffe.Function,
        display: str,
        problems: list[Problem],
    ) -> None:
        self.scanner = scanner
        self.module = module
        self.function = function
        self.display = display
        self.problems = problems
        self.tool = function.name
        self.line = function.lineno
        self.hints: dict[str, str] = {}

    def problem(self, field: str | None, reason: str, line: int | None = None) -> None:
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
        decorator = _tool_decorator(function)
        assert decorator is not None
        options = self._decorator_options(decorator)
        if isinstance(options.get("name"), str):
            self.tool = options["name"]

        style, sections = self._docstring()
        summary, documented = _read_sections(sections)
        wanted = {p.name for p in function.parameters}
        if function.docstring is not None and not wanted <= set(documented):
            # The style heuristic can misread short docstrings (one ":param x:" line):
            # keep whichever style documents the most parameters.
            for other in _STYLES:
                if other == style:
                    continue
                candidate = griffe.parse(function.docstring, other, warnings=False)
                other_summary, other_documented = _read_sections(candidate)
                if len(wanted & set(other_documented)) > len(wanted & set(documented)):
                    style, summary, documented = other, other_summary, other_documented

        description = options.get("description") or summary
        self.hints["description"] = "no description: add a docstring or pass @tool(description=...)"

        parameters = tuple(self._parameters(documented, style))
        return_type = self._return_type()
        config = MethodConfig(
            name=self.tool,
            description=description,
            parameters=parameters,
            return_type=return_type,
            module_path=self.module.path,
            function_name=function.name,
            timeout=options.get("timeout"),
            tags=tuple(options.get("tags", ())),
        )
        locations = {"name": Source(self.display, self.line)}
        if function.docstring is not None and function.docstring.lineno:
            locations["description"] = Source(self.display, function.docstring.lineno)
        return ToolEntry(
            config=config,
            source=Source(self.display, self.line),
            origin="scanned",
            locations=locations,
            hints=self.hints,
        )

    def _decorator_options(self, decorator: griffe.Decorator) -> dict[str, Any]:
        value = decorator.value
        if not isinstance(value, griffe.ExprCall):
            return {}
        options: dict[str, Any] = {}
        for argument in value.arguments:
            if not isinstance(argument, griffe.ExprKeyword):
                self.problem(None, f"@tool takes keyword arguments only, got {argument}")
                continue
            key = argument.name
            if key not in ("name", "description", "timeout", "tags"):
                self.problem(
                    None, f"@tool has no option {key!r}; use name, description, timeout or tags"
                )
                continue
            try:
                literal = self._literal(argument.value)
            except ValueError:
                self.problem(
                    key,
                    f"@tool({key}={argument.value}) must be a literal value: "
                    "qasdk reads it without running your code",
                )
                continue
            if key in ("name", "description") and not isinstance(literal, str):
                self.problem(key, f"@tool({key}=...) must be a string, got {literal!r}")
            elif key == "timeout" and (
                isinstance(literal, bool) or not isinstance(literal, (int, float)) or literal <= 0
            ):
                self.problem("timeout", f"must be a positive number of seconds, got {literal!r}")
            elif key == "tags" and (
                not isinstance(literal, (list, tuple))
                or not all(isinstance(t, str) for t in literal)
            ):
                self.problem("tags", f"must be a list of strings, got {literal!r}")
            else:
                options[key] = float(literal) if key == "timeout" else literal
        return options

    def _literal(self, expr: Any) -> Any:
        """Evaluate a literal expression, following module-level constants by name."""
        source = str(expr)
        try:
            return _literal_from_source(source)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            pass
        if source.isidentifier():
            attribute = self.module.members.get(source)
            if isinstance(attribute, griffe.Attribute) and attribute.value is not None:
                return self._literal(attribute.value)
        raise ValueError(source)

    def _docstring(self) -> tuple[str, list[griffe.DocstringSection]]:
        docstring = self.function.docstring
        if docstring is None:
            return "google", []
        style, sections = griffe.infer_docstring_style(
            docstring, per_style_options=_DOCSTRING_OPTIONS
        )
        parser = cast(griffe.Parser, style or griffe.Parser.google)
        if sections is None:
            sections = griffe.parse(docstring, parser, warnings=False)
        return str(parser.value), sections

    def _parameters(self, documented: dict[str, str], style: str) -> Iterator[MethodParameter]:
        for param in self.function.parameters:
            label = f"parameters.{param.name}"
            kind = param.kind
            if kind in (griffe.ParameterKind.var_positional, griffe.ParameterKind.var_keyword):
                star = "*" if kind is griffe.ParameterKind.var_positional else "**"
                self.problem(
                    label,
                    f"{star}{param.name} is not supported: the model needs named parameters",
                )
                continue
            if kind is griffe.ParameterKind.positional_only:
                self.problem(
                    label,
                    "positional-only parameters are not supported: tools are called by keyword",
                )
                continue

            typed = self._parameter_type(param, label)
            description = documented.get(param.name) or (typed.description if typed else None)
            self.hints[f"{label}.description"] = (
                f"not documented: describe {param.name!r} in "
                f"{_HOW_TO_DOCUMENT.get(style, 'the docstring')}"
            )
            required = param.default is None
            default: Any = msgspec.UNSET
            if not required:
                default = self._default(param, label)
            schema = dict(typed.schema) if typed else {}
            yield MethodParameter(
                name=param.name,
                type=typed.type if typed else "",
                description=description or "",
                required=required,
                default=default,
                schema=schema,
            )

    def _parameter_type(self, param: griffe.Parameter, label: str) -> _Typed | None:
        if param.annotation is None:
            self.hints[f"{label}.type"] = "no type hint; add one (Any accepts any value)"
            return None
        try:
            return self._typed(_to_ast(param.annotation))
        except _Unsupported as exc:
            self.hints[f"{label}.type"] = f"unsupported type {exc}; {_SUPPORTED_HINT}"
            return None

    def _return_type(self) -> str:
        annotation = self.function.returns
        if annotation is None:
            return "any"
        try:
            return self._typed(_to_ast(annotation)).type
        except _Unsupported:
            # The return type only informs readers; an exotic one is "any".
            return "any"

    def _default(self, param: griffe.Parameter, label: str) -> Any:
        try:
            value = self._literal(param.default)
        except ValueError:
            member = self._enum_member(str(param.default))
            if member is not None:
                return member
            self.problem(
                f"{label}.default",
                f"default {param.default} is not a literal; qasdk stores defaults "
                "without running your code, so use a literal, an Enum member or None",
            )
            return msgspec.UNSET
        return value

    def _enum_member(self, source: str) -> Any:
        """The value of ``Color.RED`` when ``Color`` is an Enum we can read."""
        owner, _, member = source.rpartition(".")
        if not owner:
            return None
        cls = self._resolve_class(owner)
        if cls is None or not self._is_enum(cls):
            return None
        values = self._enum_values(cls)
        return values.get(member)

    # -- annotations --------------------------------------------------------

    def _resolve(self, dotted: str) -> str:
        """Canonical path of a name as written in this module."""
        first, _, rest = dotted.partition(".")
        imports = self.module.imports
        if first in imports:
            base = imports[first]
        elif first in self.module.members and not self.module.members[first].is_alias:
            base = f"{self.module.path}.{first}"
        elif first in _BUILTIN_NAMES:
            base = f"builtins.{first}"
        else:
            base = first
        return f"{base}.{rest}" if rest else base

    def _resolve_class(self, dotted: str) -> griffe.Class | None:
        path = self._resolve(dotted)
        return self.scanner.find_class(path)

    def _is_enum(self, cls: griffe.Class, depth: int = 0) -> bool:
        if depth > 10:
            return False
        for base in cls.bases:
            base_path = str(getattr(base, "canonical_path", base))
            if base_path in _ENUM_BASES:
                return True
            parent = self.scanner.find_class(base_path)
            if parent is not None and self._is_enum(parent, depth + 1):
                return True
        return False

    def _enum_values(self, cls: griffe.Class) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, member in cls.members.items():
            if member.is_alias or not isinstance(member, griffe.Attribute):
                continue
            if name.startswith("_") or member.value is None:
                continue
            try:
                values[name] = _literal_from_source(str(member.value))
            except (ValueError, SyntaxError, TypeError):
                raise _Unsupported(
                    f"{cls.name} (member {name} = {member.value} is not a literal)"
                ) from None
        return values

    def _typed(self, node: ast.expr) -> _Typed:
        if isinstance(node, ast.Constant):
            if node.value is None:
                return _Typed("None", {"type": "null"})
            if isinstance(node.value, str):  # a forward reference: "Unit"
                try:
                    return self._typed(ast.parse(node.value, mode="eval").body)
                except SyntaxError:
                    raise _Unsupported(repr(node.value)) from None
            raise _Unsupported(repr(node.value))
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
            return self._union([_union_members(node)])
        if isinstance(node, ast.Subscript):
            origin = self._resolve(_dotted(node.value))
            args = _subscript_args(node)
            if origin in _OPTIONAL:
                return self._union([[*args, ast.Constant(None)]])
            if origin in _UNION:
                return self._union([args])
            if origin in _LITERAL:
                return _literal_type([_literal_value(a) for a in args])
            if origin in _ANNOTATED:
                inner = self._typed(args[0])
                notes = [a.value for a in args[1:] if isinstance(a, ast.Constant)]
                text = next((n for n in notes if isinstance(n, str)), None)
                return _Typed(inner.type, inner.schema, text or inner.description)
            simple = _SIMPLE_TYPES.get(origin)
            if simple == "list":
                schema: dict[str, Any] = {"type": "array"}
                items = [a for a in args if not (isinstance(a, ast.Constant) and a.value is ...)]
                if len(items) == 1:  # list[X], tuple[X, ...]; a fixed tuple stays untyped
                    schema["items"] = self._typed(items[0]).schema
                return _Typed("list", schema)
            if simple == "dict":
                schema = {"type": "object"}
                if len(args) == 2:
                    value_schema = self._typed(args[1]).schema
                    if value_schema:
                        schema["additionalProperties"] = value_schema
                return _Typed("dict", schema)
            raise _Unsupported(ast.unparse(node))
        if isinstance(node, (ast.Name, ast.Attribute)):
            dotted = _dotted(node)
            if dotted in ("None", "builtins.None"):
                return _Typed("None", {"type": "null"})
            path = self._resolve(dotted)
            simple = _SIMPLE_TYPES.get(path)
            if simple is not None:
                return _Typed(simple, base_schema(simple))
            cls = self.scanner.find_class(path)
            if cls is not None and self._is_enum(cls):
                values = list(self._enum_values(cls).values())
                if not values:
                    raise _Unsupported(f"{dotted} (an Enum without members)")
                return _literal_type(values)
            raise _Unsupported(dotted)
        raise _Unsupported(ast.unparse(node))

    def _union(self, groups: list[list[ast.expr]]) -> _Typed:
        members = [self._typed(a) for group in groups for a in group]
        nullable = any(m.type == "None" for m in members)
        others = [m for m in members if m.type != "None"]
        if not others:
            return _Typed("None", {"type": "null"})
        if len(others) == 1:
            inner = others[0]
            if not nullable:
                return inner
            return _Typed(inner.type, _nullable(inner.schema), inner.description)
        kinds = {m.type for m in others}
        type_name = kinds.pop() if len(kinds) == 1 else "any"
        options = [m.schema for m in others]
        if nullable:
            options.append({"type": "null"})
        return _Typed(type_name, {"anyOf": options})


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    declared = schema.get("type")
    if isinstance(declared, str) and "enum" not in schema:
        return {**schema, "type": [declared, "null"]}
    if not schema:
        return schema
    return {"anyOf": [schema, {"type": "null"}]}


def _literal_type(values: list[Any]) -> _Typed:
    kinds = {type(v) for v in values}
    mapping = {str: "string", bool: "bool", int: "int", float: "float"}
    if len(kinds) == 1 and next(iter(kinds)) in mapping:
        type_name = mapping[next(iter(kinds))]
        return _Typed(type_name, {**base_schema(type_name), "enum": values})
    return _Typed("any", {"enum": values})


def _literal_value(node: ast.expr) -> Any:
    try:
        return ast.literal_eval(node)
    except ValueError:
        raise _Unsupported(f"Literal[{ast.unparse(node)}]") from None


def _to_ast(annotation: Any) -> ast.expr:
    text = str(annotation)
    node = _parse_expression(text)
    if node is None:
        raise _Unsupported(repr(text))
    return node


@functools.lru_cache(maxsize=4096)
def _parse_expression(text: str) -> ast.expr | None:
    """Parse an expression once: a tree's annotations and defaults repeat a lot."""
    try:
        return ast.parse(text, mode="eval").body
    except (SyntaxError, ValueError):
        return None


def _literal_from_source(text: str) -> Any:
    """``ast.literal_eval`` on cached trees; a fresh value each call (defaults may be lists)."""
    node = _parse_expression(text)
    if node is None:
        raise ValueError(text)
    return ast.literal_eval(node)


def _dotted(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    raise _Unsupported(ast.unparse(node))


def _subscript_args(node: ast.Subscript) -> list[ast.expr]:
    if isinstance(node.slice, ast.Tuple):
        return list(node.slice.elts)
    return [node.slice]


def _union_members(node: ast.expr) -> list[ast.expr]:
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return [*_union_members(node.left), *_union_members(node.right)]
    return [node]


def _read_sections(sections: Iterable[griffe.DocstringSection]) -> tuple[str, dict[str, str]]:
    """The summary and the parameter descriptions of parsed docstring sections."""
    summary = ""
    documented: dict[str, str] = {}
    for section in sections:
        if section.kind is griffe.DocstringSectionKind.text and not summary:
            summary = _first_paragraph(str(section.value))
        elif section.kind in (
            griffe.DocstringSectionKind.parameters,
            griffe.DocstringSectionKind.other_parameters,
        ):
            for item in section.value:
                documented[item.name] = " ".join(str(item.description).split())
    return summary, documented


def _first_paragraph(text: str) -> str:
    paragraph = text.strip().split("\n\n", 1)[0]
    return " ".join(paragraph.split())
