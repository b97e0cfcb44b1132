"""A tool whose side effect the compose test can read: which container ran it, and when."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

from qasdk import tool

#: A folder the test mounts writable into every worker container.
LEDGER = Path(os.environ.get("DEPLOY_LEDGER", "/app/ledger"))


@tool(timeout=120)
def mark(token: str, seconds: float = 0.0) -> dict[str, str]:
    """Note that this container started a call, wait, then note that it finished it.

    :param token: Names the call in the ledger.
    :param seconds: How long to wait between the two notes.
    :returns: The token and the host name of the container that finished it.
    """
    host = socket.gethostname()
    with (LEDGER / f"{token}.log").open("a", encoding="utf-8") as ledger:
        ledger.write(f"start {host}\n")
    time.sleep(seconds)
    with (LEDGER / f"{token}.log").open("a", encoding="utf-8") as ledger:
        ledger.write(f"end {host}\n")
    return {"token": token, "host": host}
