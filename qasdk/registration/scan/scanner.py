"""Source files → tool entries, with griffe and without importing user code.

griffe reads a module's syntax tree and resolves names through its imports;
from that we build the same :class:`MethodConfig` a ``methods.yaml`` entry
gives. Nothing here executes the scanned code: a file that would crash on
import, or start a server, scans fine.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from pathlib import Path

import griffe
import msgspec

from qasdk.models import Problem, Source, ToolEntry
from qasdk.registration.scan.extract import extract_tool
from qasdk.registration.scan.options import tool_decorator
from qasdk.registration.scan.skipped import skipped_tools

__all__ = ["ScanResult", "Scanner", "scan_source"]

logger = logging.getLogger("qasdk.scan")


class ScanResult(msgspec.Struct, kw_only=True):
    """Tools found in source files, and what kept others from being read."""

    entries: list[ToolEntry] = []
    problems: list[Problem] = []
    #: ``@tool`` uses that cannot be registered (they would otherwise be silently dropped).
    warnings: list[Problem] = []
    files: int = 0


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
        self._lines: dict[str, list[str]] = {}
        self._order: list[str] = []
        self._problems: list[Problem] = []
        self._warnings: list[Problem] = []
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
        for line, why in skipped_tools(code):
            self._warnings.append(Problem(source=Source(display, line), reason=why))
        parsed = self._visit(code, module, path, display)
        if parsed is not None:
            self._modules[module] = (parsed, display)
            self._lines[module] = code.splitlines()
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
            entries.extend(self._tools_in(parsed, display, problems))
        return ScanResult(
            entries=entries, problems=problems, warnings=list(self._warnings), files=self._files
        )

    def _tools_in(
        self, module: griffe.Module, display: str, problems: list[Problem]
    ) -> Iterator[ToolEntry]:
        for member in module.members.values():
            if member.is_alias:
                continue
            if isinstance(member, griffe.Function):
                if tool_decorator(member) is not None:
                    entry = extract_tool(
                        module,
                        member,
                        display,
                        self.find_class,
                        problems,
                        lines=self._lines.get(module.path, []),
                    )
                    if entry is not None:
                        yield entry
            elif isinstance(member, griffe.Class):
                for nested in _functions_in_class(member):
                    if tool_decorator(nested) is not None:
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

    def module(self, name: str) -> griffe.Module | None:
        """Module ``name``, scanned or read statically from under the root (never imported)."""
        return self._module(name)

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
