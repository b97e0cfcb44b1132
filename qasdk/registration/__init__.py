"""The registration pipeline: discover → scan → declared → merge → validate.

``collect`` runs the stages in that order and returns a :class:`Catalog`;
the last stage, sync, writes it to PostgreSQL (``qasdk.store.methods``).
``rules`` and ``types`` are what every stage checks against. Import-light:
``@tool`` uses ``rules`` in every tool process.
"""
