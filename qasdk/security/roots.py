"""Where tool code may come from: the module root and the configured packages.

A tool's ``module_path`` is checked statically (nothing is imported): a
standard-library module (``os``, ``subprocess``, ``builtins``...) is never a
tool, nor is a package installed elsewhere (site-packages) unless the
configuration allows it by name (``registry.allowed_packages``).
"""

from __future__ import annotations

import importlib.machinery
import sys
from pathlib import Path

import msgspec

__all__ = ["SETTING", "STDLIB", "ModuleRoots", "roots_for"]

#: The configuration setting that allows packages, as messages name it.
SETTING = "registry.allowed_packages"
STDLIB = frozenset(sys.stdlib_module_names) | frozenset(sys.builtin_module_names)


class ModuleRoots(msgspec.Struct, frozen=True, kw_only=True):
    """The folders tool code is imported from and the packages allowed besides.

    ``root`` is the module root (``qasdk sync``'s folder or ``--module-root``,
    the server's working directory); ``copies`` are folders holding snapshots
    of its code (``qasdk serve --watch``); ``shown`` is how messages name the root.
    """

    root: str
    packages: tuple[str, ...] = ()
    copies: tuple[str, ...] = ()
    shown: str | None = None

    def allows_package(self, module_path: str) -> bool:
        return any(module_path == p or module_path.startswith(p + ".") for p in self.packages)

    def refusal(self, module_path: str, *, present: bool = True) -> str | None:
        """Why ``module_path`` may not be a tool, or ``None`` when it may.

        ``present``: the module must be found under the root (a process that runs
        tools); with ``False`` a module found nowhere on this machine passes (a
        server without the code checks what it can: workers check again).
        """
        if self.allows_package(module_path):
            return None
        top = module_path.partition(".")[0]
        if top in STDLIB:
            return self._outside(module_path, "it is a standard-library module")
        folders = [self.root, *self.copies]
        if importlib.machinery.PathFinder.find_spec(top, folders) is not None:
            return None
        spec = importlib.machinery.PathFinder.find_spec(top, [p for p in sys.path if p])
        if spec is not None:
            where = spec.origin or (list(spec.submodule_search_locations or []) or ["?"])[0]
            return self._outside(module_path, f"it is installed at {where}")
        if present:
            return self._outside(module_path, "no such module is there")
        return None

    def _outside(self, module_path: str, detail: str) -> str:
        shown = self.shown if self.shown is not None else self.root
        return (
            f"{module_path!r} is not under the module root {shown!r} nor an allowed package "
            f"({SETTING}), {detail}; tools run only code from there"
        )


def roots_for(
    root: str | Path, packages: tuple[str, ...] = (), *, shown: str | None = None
) -> ModuleRoots:
    """:class:`ModuleRoots` for a folder (made absolute)."""
    return ModuleRoots(root=str(Path(root).resolve()), packages=packages, shown=shown)
