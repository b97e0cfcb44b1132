"""Snapshots of the tool code: tool processes import a validated copy, never files being edited.

``qasdk serve --watch`` takes one each time a change of the watched folders
validates; the embedded worker's new tool processes put it first on
``sys.path``. So an edit that does not validate (a syntax error halfway
through typing) never reaches a tool process, a running call finishes on the
version it started with, and the next task runs the new one. A snapshot is
named by a digest of its files: the same code is the same version.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import msgspec

__all__ = ["CodeVersion", "ModuleDigests", "prune_snapshots", "snapshot"]

logger = logging.getLogger("qasdk.executor")

#: Snapshots kept besides the newest: calls still running on them can finish.
KEEP = 4
_SKIPPED = frozenset({"__pycache__", "node_modules", "site-packages"})


class CodeVersion(msgspec.Struct, frozen=True):
    """A snapshot: its digest (the version) and the folder tool processes import from."""

    id: str
    path: str


def _files(root: Path, folders: Sequence[Path]) -> Iterator[tuple[str, Path]]:
    """(path relative to ``root``, file) of every file in ``folders`` under ``root``."""
    seen: set[str] = set()
    for folder in folders:
        folder = folder.resolve()
        try:
            folder.relative_to(root)
        except ValueError:
            logger.warning("%s is outside the module root %s: not snapshotted", folder, root)
            continue
        candidates = [folder] if folder.is_file() else sorted(folder.rglob("*"))
        for file in candidates:
            relative = file.relative_to(root)
            if not file.is_file() or any(
                part.startswith(".") or part in _SKIPPED for part in relative.parts
            ):
                continue
            key = relative.as_posix()
            if key not in seen:
                seen.add(key)
                yield key, file
    # Packages above the watched folders (``tools/__init__.py`` for ``tools/geo``).
    for folder in folders:
        parent = folder.resolve().parent
        while parent != root and root in parent.parents:
            init = parent / "__init__.py"
            key = init.relative_to(root).as_posix()
            if init.is_file() and key not in seen:
                seen.add(key)
                yield key, init
            parent = parent.parent


def snapshot(root: Path, folders: Sequence[Path], store: Path) -> CodeVersion:
    """Copy ``folders`` (under ``root``) into ``store``, named by their digest."""
    root = root.resolve()
    files = sorted(_files(root, folders))
    digest = hashlib.sha256()
    contents: list[tuple[str, bytes]] = []
    for key, file in files:
        data = file.read_bytes()
        contents.append((key, data))
        digest.update(key.encode() + b"\0" + len(data).to_bytes(8, "big") + data)
    version = digest.hexdigest()[:16]
    target = store / version
    if not target.is_dir():
        store.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=store))
        for key, data in contents:
            path = staging / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        try:
            os.rename(staging, target)  # whole or not at all
        except OSError:  # another reload made the same one meanwhile
            shutil.rmtree(staging, ignore_errors=True)
    return CodeVersion(version, str(target))


def prune_snapshots(store: Path, keep: Sequence[str]) -> None:
    """Delete snapshots but the ``keep`` ones and the newest few others."""
    if not store.is_dir():
        return
    others = sorted(
        (p for p in store.iterdir() if p.is_dir() and p.name not in keep),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    for old in others[KEEP:]:
        shutil.rmtree(old, ignore_errors=True)


class ModuleDigests:
    """The digest of a tool module's file as it is now (cached while its stat is unchanged).

    What the result cache keys a tool's code by when no snapshot is in use: an
    edit of the module makes earlier results miss. Only the module's own file
    counts, not what it imports.
    """

    def __init__(self, root: str | Path) -> None:
        self._root = Path(root)
        self._known: dict[str, tuple[tuple[int, int], str]] = {}

    def _file(self, module_path: str) -> Path | None:
        base = self._root.joinpath(*module_path.split("."))
        for candidate in (base.with_suffix(".py"), base / "__init__.py"):
            if candidate.is_file():
                return candidate
        import importlib.util

        try:
            spec = importlib.util.find_spec(module_path)
        except (ImportError, ValueError):
            return None
        return Path(spec.origin) if spec is not None and spec.origin else None

    def digest(self, module_path: str) -> str:
        file = self._file(module_path)
        if file is None:
            return "missing"
        try:
            stat = file.stat()
        except OSError:
            return "missing"
        key = str(file)
        stamp = (stat.st_mtime_ns, stat.st_size)
        known = self._known.get(key)
        if known is not None and known[0] == stamp:
            return known[1]
        digest = hashlib.sha256(file.read_bytes()).hexdigest()[:16]
        self._known[key] = (stamp, digest)
        return digest
