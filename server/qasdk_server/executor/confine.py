"""In the tool process: hold each call to its memory, CPU and process limits.

``child.py`` loads this file by path (it imports nothing of qasdk's), so it
may import only the standard library. Before every call :meth:`Confinement.apply`
sets the *soft* limits of the tool process with ``resource.setrlimit``; the
hard limits stay as the worker had them, because one process runs calls of
different tools and an unprivileged process cannot raise a hard limit again.

- memory: ``RLIMIT_AS``, the address space, in MiB; an allocation beyond it
  fails (``MemoryError`` in Python), and the worker reports the limit.
- CPU: ``RLIMIT_CPU`` counts the CPU time of the whole process since it
  started, so the soft limit is what the process has used so far plus the
  call's budget. Beyond it the kernel sends ``SIGXCPU``, which kills the
  process (Python leaves its default action), even inside a long C call.
- processes: ``RLIMIT_NPROC`` counts every process and thread of the *user*,
  not of this process; the limit is what the user runs when the call starts
  plus the call's allowance (counted again at most once a second), so ``fork``
  fails beyond it; calls running at the same time share the margin. The
  kernel does not apply it to root (or to a process with ``CAP_SYS_RESOURCE``
  or ``CAP_SYS_ADMIN``), so it is not set then.

Each limit is inherited by the subprocesses a tool starts. Soft limits stop
runaway code, not a hostile tool: it could raise them again (but it runs as the
worker's user anyway).
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from typing import Protocol

__all__ = ["Confinement", "LimitsLike", "user_tasks"]

_MIB = 1024 * 1024


class LimitsLike(Protocol):
    """``child.Limits``, without importing it."""

    @property
    def memory_mb(self) -> int | None: ...
    @property
    def cpu_seconds(self) -> float | None: ...
    @property
    def processes(self) -> int | None: ...


class Confinement:
    """Applies a call's limits; remembers the limits the process started with."""

    def __init__(self) -> None:
        self._root = hasattr(os, "geteuid") and os.geteuid() == 0
        self._counted: tuple[float, int] | None = None
        try:
            import resource
        except ImportError:  # not a POSIX system: nothing to apply
            self._resource = None
            self._initial: dict[int, tuple[int, int]] = {}
            return
        self._resource = resource
        self._initial = {
            which: resource.getrlimit(which)
            for which in (resource.RLIMIT_AS, resource.RLIMIT_CPU, resource.RLIMIT_NPROC)
        }

    def apply(self, limits: LimitsLike | None) -> None:
        """Set the soft limits for the next call (``None``: those the process started with)."""
        resource = self._resource
        if resource is None:
            return
        memory = limits.memory_mb if limits is not None else None
        cpu = limits.cpu_seconds if limits is not None else None
        processes = limits.processes if limits is not None else None
        self._set(resource.RLIMIT_AS, None if memory is None else memory * _MIB)
        if cpu is not None:
            usage = resource.getrusage(resource.RUSAGE_SELF)
            self._set(resource.RLIMIT_CPU, math.ceil(usage.ru_utime + usage.ru_stime + cpu))
        else:
            self._set(resource.RLIMIT_CPU, None)
        if processes is not None and not self._root:
            self._set(resource.RLIMIT_NPROC, self._user_tasks() + processes)
        else:
            self._set(resource.RLIMIT_NPROC, None)

    def _user_tasks(self) -> int:
        """:func:`user_tasks`, counted again at most once a second (a count takes ~40 µs
        a process)."""
        now = time.monotonic()
        if self._counted is None or now - self._counted[0] >= 1.0:
            self._counted = (now, user_tasks(os.getuid()))
        return self._counted[1]

    def _set(self, which: int, soft: int | None) -> None:
        assert self._resource is not None
        initial_soft, hard = self._initial[which]
        if soft is None:
            soft = initial_soft
        elif hard != self._resource.RLIM_INFINITY:
            soft = min(soft, hard)
        if initial_soft != self._resource.RLIM_INFINITY and soft > initial_soft:
            # Never looser than what the worker itself was given.
            soft = initial_soft
        # A limit this system does not support: the call runs without it.
        with contextlib.suppress(ValueError, OSError):
            self._resource.setrlimit(which, (soft, hard))


def user_tasks(uid: int) -> int:
    """The processes and threads of ``uid`` (what ``RLIMIT_NPROC`` counts), from /proc."""
    count = 0
    try:
        entries = os.scandir("/proc")
    except OSError:
        return 0
    with entries:
        for entry in entries:
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/status", "rb") as status:
                    text = status.read()
            except OSError:
                continue
            owner = threads = None
            for line in text.splitlines():
                if line.startswith(b"Uid:"):
                    owner = int(line.split()[1])  # the real uid, as the kernel counts
                elif line.startswith(b"Threads:"):
                    threads = int(line.split()[1])
            if owner == uid and threads is not None:
                count += threads
    return count
