"""The audit log: who changed the registry, the keys and the tasks, and who was turned away.

Rows are appended by the code that makes each change, in the change's own
transaction (:func:`qasdk.store.audit.record`), so a change and its row commit
or roll back together; the table refuses every ``UPDATE`` and keeps rows until
``retention.days`` (migration 0014). :mod:`~qasdk.audit.entry` says what a row
holds and who an actor is; :mod:`~qasdk.audit.diff` what a sync changed, in
bounded size. The task server adds denied requests (aggregated, never a
secret) and ``GET /api/audit``; the CLI ``qasdk audit``.
"""

from qasdk.audit.entry import ACTIONS, Actor, AuditEntry

__all__ = ["ACTIONS", "Actor", "AuditEntry"]
