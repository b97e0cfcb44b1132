"""Declared tools → checked against the code they name, statically.

A ``methods.yaml`` entry names a module, a function and its parameters; a typo
in any of them used to sync fine and fail only when a task ran. Each is read
with griffe under the module root (nothing is imported): the module must be
there, the function in it, and the declared parameters must be the function's.

Tools run only code from the module root or an allowed package
(``registry.allowed_packages``): a module that is neither (``os``, ``shutil``,
a package from site-packages, a module that is not there) is an error. A
module of an allowed package that is not under the root (installed where the
workers run) is a warning naming it.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator

import griffe

from qasdk.models import Problem, ToolEntry
from qasdk.registration import rules
from qasdk.registration.discover import display_path
from qasdk.registration.scan import Scanner
from qasdk.security.roots import STDLIB, ModuleRoots, roots_for

__all__ = ["resolve_declared"]

_STARS = (griffe.ParameterKind.var_positional, griffe.ParameterKind.var_keyword)


def _hint(name: str, options: list[str]) -> str:
    """The closest option; or the only one left, however different (a renamed parameter)."""
    close = difflib.get_close_matches(name, options, n=1) or (options if len(options) == 1 else [])
    return f" (did you mean {close[0]!r}?)" if close else ""


def resolve_declared(
    entries: list[ToolEntry], scanner: Scanner, allowed_packages: tuple[str, ...] = ()
) -> tuple[list[Problem], list[Problem]]:
    """(problems, warnings) of the declared ``entries`` against the code under the root."""
    problems: list[Problem] = []
    warnings: list[Problem] = []
    root = display_path(scanner.root) if scanner.root else "."
    roots: ModuleRoots = roots_for(scanner.root or ".", allowed_packages, shown=root)
    for entry in entries:
        if entry.missing & {"module_path"} or entry.config.type != "python":
            continue
        config = entry.config
        if not rules.is_module_path(config.module_path):
            continue  # the validator says why
        if entry.origin != "declared":
            # A scanned tool's module is a file qasdk read; only a name that the
            # standard library takes first is refused.
            if config.module_path.partition(".")[0] in STDLIB:
                refusal = roots.refusal(config.module_path)
                problems.append(_located(entry, "module_path", refusal or ""))
            continue
        refusal = roots.refusal(config.module_path)
        if refusal is not None:
            problems.append(_located(entry, "module_path", refusal))
            continue
        if "function_name" in entry.missing:
            continue
        module = scanner.module(config.module_path)
        if module is None and not roots.allows_package(config.module_path):
            problems.append(
                _located(
                    entry,
                    "module_path",
                    f"module {config.module_path!r} is not under the module root {root!r}",
                )
            )
            continue
        if module is None:
            warnings.append(
                Problem(
                    source=entry.source_of("module_path"),
                    tool=config.name,
                    field="module_path",
                    reason=f"module {config.module_path!r} of an allowed package is not "
                    f"under the module root {root!r}, so it could not be checked; it must be "
                    "importable where the workers run",
                )
            )
            continue
        for field, reason in _check(entry, module):
            problems.append(
                Problem(source=entry.source_of(field), tool=config.name, field=field, reason=reason)
            )
    return problems, warnings


def _located(entry: ToolEntry, field: str, reason: str) -> Problem:
    return Problem(
        source=entry.source_of(field), tool=entry.config.name, field=field, reason=reason
    )


def _check(entry: ToolEntry, module: griffe.Module) -> Iterator[tuple[str, str]]:
    config = entry.config
    functions = {
        name: member
        for name, member in module.members.items()
        if not member.is_alias and isinstance(member, griffe.Function)
    }
    function = functions.get(config.function_name)
    if function is None:
        hint = _hint(config.function_name, list(functions))
        yield (
            "function_name",
            f"module {config.module_path!r} has no function {config.function_name!r}{hint}",
        )
        return
    signature = {p.name: p for p in function.parameters if p.kind not in _STARS}
    takes_any = any(p.kind is griffe.ParameterKind.var_keyword for p in function.parameters)
    declared = {p.name for p in config.parameters}
    for param in config.parameters:
        real = signature.get(param.name)
        field = f"parameters.{param.name}"
        if real is None:
            if not takes_any:
                left = [n for n, p in signature.items() if n not in declared and p.default is None]
                hint = _hint(param.name, left or [n for n in signature if n not in declared])
                yield field, f"{config.function_name}() has no parameter {param.name!r}{hint}"
            continue
        if real.kind is griffe.ParameterKind.positional_only:
            yield field, f"{param.name!r} is positional-only: tools are called by keyword"
        elif not param.required and not param.has_default and real.default is None:
            yield (
                f"{field}.required",
                f"{config.function_name}() has no default for {param.name!r}: declare a "
                "default, or make it required",
            )
    for name, real in signature.items():
        if name not in declared and real.default is None:
            yield (
                "parameters",
                f"{config.function_name}() requires {name!r}, which is not declared",
            )
