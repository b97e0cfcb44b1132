"""The task side: submit → queue → run → record.

``queue`` is Procrastinate's job for a task, ``worker`` takes jobs and keeps
them safe across dead workers, ``runner`` runs one task (direct or through the
agent), ``trace`` records every step; ``processes`` runs more workers (child
processes) beside a process's own one.
"""
