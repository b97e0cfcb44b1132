"""Task graphs: sub-tasks with dependencies, and the references between their results.

Pure Python (no database, no server): the plan's checks (``plan``) run when a
graph is submitted, the references (``refs``) are resolved by the store when a
sub-task becomes ready, in the transaction that records its last dependency.
"""

from qasdk.graphs.plan import Subtask, check_graph
from qasdk.graphs.refs import RefError, find_refs, resolve_params, resolve_text, template_refs

__all__ = [
    "RefError",
    "Subtask",
    "check_graph",
    "find_refs",
    "resolve_params",
    "resolve_text",
    "template_refs",
]
