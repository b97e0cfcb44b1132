"""Worker pools → Procrastinate queues: the one mapping every job that is queued uses.

The default pool keeps the queue qasdk always had (``qasdk``), so jobs queued
before pools existed stay valid; pool ``gpu`` is queue ``qasdk.gpu``. Pool names
cannot hold a dot (see :func:`qasdk.registration.rules.check_pool`), so the
mapping is one-to-one and every qasdk queue starts with :data:`QUEUE`.
"""

from __future__ import annotations

from collections.abc import Iterable

from qasdk.registration.rules import DEFAULT_POOL

__all__ = ["DEFAULT_POOL", "QUEUE", "QUEUE_PREFIX", "pool_of", "queue_for", "queues_for"]

#: The default pool's Procrastinate queue (and the stem of every other pool's).
QUEUE = "qasdk"
#: What the queue of every pool but the default starts with (SQL filters on it).
QUEUE_PREFIX = QUEUE + "."


def queue_for(pool: str | None) -> str:
    """The queue a task of ``pool`` is queued on (``None``: the default pool)."""
    if not pool or pool == DEFAULT_POOL:
        return QUEUE
    return QUEUE_PREFIX + pool


def queues_for(pools: Iterable[str]) -> list[str]:
    """The queues a worker serving ``pools`` listens on, each once, in order."""
    return list(dict.fromkeys(queue_for(pool) for pool in pools))


def pool_of(queue: str) -> str:
    """The pool of one of qasdk's queues (the inverse of :func:`queue_for`)."""
    if queue.startswith(QUEUE_PREFIX):
        return queue[len(QUEUE_PREFIX) :]
    return DEFAULT_POOL
