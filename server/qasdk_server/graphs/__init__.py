"""Graphs a client declares: the ``subtasks`` of ``POST /api/tasks``, checked whole.

The body (``body``) and its checks against the registry (``validate``); what
happens once it is stored is :mod:`qasdk.store.graphs`'s.
"""

from qasdk_server.graphs.body import SubtaskSpec
from qasdk_server.graphs.validate import check_subtasks

__all__ = ["SubtaskSpec", "check_subtasks"]
