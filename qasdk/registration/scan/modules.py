"""File paths → the dotted module names ``qasdk serve`` will import them as."""

from __future__ import annotations

from pathlib import Path

__all__ = ["module_name_for", "package_module_name"]


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
