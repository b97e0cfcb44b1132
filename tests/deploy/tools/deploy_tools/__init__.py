"""Tools the compose test mounts into its containers (tests/deploy/test_compose.py)."""
