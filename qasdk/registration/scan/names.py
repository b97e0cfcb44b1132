"""Names as written in one module → canonical paths and the classes they point at."""

from __future__ import annotations

from collections.abc import Callable

import griffe

__all__ = ["BUILTIN_NAMES", "ClassFinder", "Names"]

BUILTIN_NAMES = frozenset(
    {"str", "int", "float", "bool", "dict", "list", "tuple", "set", "frozenset", "object"}
)

#: Finds a class by canonical path, in scanned modules or statically under the module root.
ClassFinder = Callable[[str], "griffe.Class | None"]


class Names:
    """Resolves the names of ``module`` through its imports, without importing anything."""

    def __init__(self, module: griffe.Module, find_class: ClassFinder) -> None:
        self.module = module
        self.find_class = find_class

    def resolve(self, dotted: str) -> str:
        """Canonical path of a name as written in this module."""
        first, _, rest = dotted.partition(".")
        imports = self.module.imports
        if first in imports:
            base = imports[first]
        elif first in self.module.members and not self.module.members[first].is_alias:
            base = f"{self.module.path}.{first}"
        elif first in BUILTIN_NAMES:
            base = f"builtins.{first}"
        else:
            base = first
        return f"{base}.{rest}" if rest else base

    def resolve_class(self, dotted: str) -> griffe.Class | None:
        """The class a name written in this module refers to, when it can be read."""
        return self.find_class(self.resolve(dotted))
