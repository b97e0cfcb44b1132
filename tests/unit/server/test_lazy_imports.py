"""What `qasdk serve` imports before serving leaves the heavy packages for first use.

qwen-agent (with openai, numpy, dashscope) loads with the first task that needs
the model, the MCP SDK with the first request to ``/mcp``, griffe with
``--watch``: together most of an idle server's memory (``bench/memory.py``).
``tests/integration/test_idle_imports.py`` checks a running server.
"""

from __future__ import annotations

import json
import subprocess
import sys

LAZY = ("qwen_agent", "openai", "numpy", "dashscope", "mcp", "griffe")

#: The modules of `qasdk serve`, from the command to the app and the embedded worker.
SERVE = (
    "qasdk.cli",
    "qasdk_server.cli",
    "qasdk_server.serve",
    "qasdk_server.app",
    "qasdk_server.reload",
    "qasdk_server.mcp.http",
    "qasdk_server.tasks.worker",
    "qasdk_server.tasks.runner",
)


def test_the_serve_modules_import_no_model_mcp_or_scanner_package() -> None:
    script = (
        "import importlib, json, sys\n"
        f"for name in {SERVE!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    loaded = {m.split(".")[0] for m in json.loads(out.stdout)}
    assert "litestar" in loaded  # the server was imported
    assert sorted(loaded & set(LAZY)) == []
