"""``python -m qasdk`` is the ``qasdk`` command."""

from qasdk.cli import main

main()
