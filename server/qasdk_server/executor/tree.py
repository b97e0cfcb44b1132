"""Kill every process a tool started: the tool process's descendants, found in /proc.

A tool's subprocesses share its process group unless they leave it (``setsid``,
a daemon's double fork), and ``killpg`` misses the ones that do. The tool
process is a child subreaper (``child.py``), so the orphans of its descendants
are re-parented to it rather than to init: whatever a call started stays below
the tool process, and :func:`kill_descendants` finds it there by walking
``/proc/<pid>/task/<tid>/children`` (or, without that file, every
``/proc/<pid>/stat``). Signals go through a pidfd opened after checking the
process's parent, so a PID reused by an unrelated process is never signalled.

Linux only; elsewhere the process group is all there is (:func:`kill_tree`
still kills it).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
from collections.abc import Iterator

__all__ = ["SUPPORTED", "descendants", "kill_descendants", "kill_tree"]

logger = logging.getLogger("qasdk.executor")

#: Whether descendants can be found (Linux's /proc).
SUPPORTED = sys.platform.startswith("linux") and os.path.isdir("/proc/self/task")
#: Sweeps of the tree before giving up on processes that keep forking (each is fast).
_ROUNDS = 50


def _stat(pid: int) -> tuple[str, int] | None:
    """``(state, ppid)`` of ``pid``, or ``None`` when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            text = stat.read()
    except OSError:
        return None
    fields = text.rpartition(b")")[2].split()  # the command name may hold spaces and ")"
    try:
        return fields[0].decode(), int(fields[1])
    except (IndexError, ValueError):
        return None


def _children_files(pid: int) -> list[int] | None:
    """The children of every thread of ``pid``; ``None`` when the kernel lacks the file."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    found: list[int] = []
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", "rb") as children:
                found.extend(int(c) for c in children.read().split())
        except FileNotFoundError:
            if not os.path.exists(f"/proc/{pid}/task/{tid}"):
                continue  # the thread ended meanwhile
            return None  # no CONFIG_PROC_CHILDREN
        except (OSError, ValueError):
            continue
    return found


def _parents() -> dict[int, list[int]]:
    """Every process's children, from each ``/proc/<pid>/stat`` (the slow fallback)."""
    tree: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            stat = _stat(int(name))
            if stat is not None:
                tree.setdefault(stat[1], []).append(int(name))
    return tree


def descendants(pid: int) -> list[tuple[int, int]]:
    """``(pid, parent)`` of every living descendant of ``pid``, parents before children.

    Zombies are left out: they are dead already and their children, if any,
    were re-parented.
    """
    if not SUPPORTED:
        return []
    found: list[tuple[int, int]] = []
    fallback: dict[int, list[int]] | None = None
    stack = [pid]
    seen = {pid}
    while stack:
        parent = stack.pop()
        children = _children_files(parent) if fallback is None else None
        if children is None:
            if fallback is None:
                fallback = _parents()
            children = fallback.get(parent, [])
        for child in children:
            if child in seen:
                continue
            seen.add(child)
            stat = _stat(child)
            if stat is None or stat[1] != parent or stat[0] in ("Z", "X"):
                continue
            found.append((child, parent))
            stack.append(child)
    return found


@contextlib.contextmanager
def _pidfd(pid: int, parent: int) -> Iterator[int | None]:
    """A pidfd of ``pid`` if it still is ``parent``'s child (``None``: no pidfds here).

    Raises ``ProcessLookupError`` when it is gone or is someone else's now.
    """
    if not hasattr(os, "pidfd_open"):
        yield None
        return
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        raise
    except OSError:  # an old kernel: fall back to kill()
        yield None
        return
    try:
        stat = _stat(pid)
        if stat is None or stat[1] != parent:
            raise ProcessLookupError(pid)
        yield fd
    finally:
        os.close(fd)


def _kill(pid: int, parent: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError), _pidfd(pid, parent) as fd:
        if fd is not None and hasattr(signal, "pidfd_send_signal"):
            signal.pidfd_send_signal(fd, signal.SIGKILL)
        else:
            os.kill(pid, signal.SIGKILL)


def kill_descendants(pid: int) -> int:
    """SIGKILL every descendant of ``pid`` (not ``pid`` itself); return how many there were.

    Sweeps until one finds nothing new: a process may fork, or its children be
    re-parented, while a sweep runs; one that was sent SIGKILL can fork no more.
    """
    if not SUPPORTED:
        return 0
    killed: set[int] = set()
    for _ in range(_ROUNDS):
        new = [(child, parent) for child, parent in descendants(pid) if child not in killed]
        if not new:
            return len(killed)
        for child, parent in new:
            _kill(child, parent)
            killed.add(child)
    logger.warning("tool process %d: its descendants kept forking through %d sweeps", pid, _ROUNDS)
    return len(killed)


def kill_tree(pid: int) -> None:
    """SIGKILL ``pid``, its process group and every descendant.

    ``pid`` is stopped first so it can start nothing more, and killed last, so
    that its orphans are re-parented to it (it is a subreaper) and found.
    """
    if SUPPORTED:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGSTOP)
        kill_descendants(pid)
    for kill in (os.killpg, os.kill):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            kill(pid, signal.SIGKILL)
