"""Sync speed: 1,000 tools in 50 files, full sync vs unchanged re-sync.

    python bench/sync.py [--tools 1000] [--files 50] [--repeat 5]

Starts a private embedded PostgreSQL in a temporary folder (or uses
``QASDK_DATABASE_URL``), then measures, median of ``--repeat`` runs:

- full sync: scan + merge + validate + write into an empty registry;
- unchanged re-sync: the same sources again (goal: 0 rows written);
- the same two through the ``qasdk sync`` command (process start included).

Goals on a 2-core machine: full sync <= 1.5 s, unchanged re-sync <= 0.5 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from qasdk.registration.collect import collect
from qasdk.store.connection import connect
from qasdk.store.embedded import ensure_embedded, stop_embedded
from qasdk.store.methods import sync_methods
from qasdk.store.migrate import migrate

STYLES = {
    "google": '''
@tool(tags=["bench"])
def {name}(city: str, days: int = 3, unit: Literal["c", "f"] = "c", tags: list[str] | None = None) -> dict:
    """Tool number {n}: look something up.

    Args:
        city: The city to look up.
        days: How many days ahead.
        unit: Temperature unit.
        tags: Optional labels.
    """
    return {{"city": city}}
''',
    "numpy": '''
@tool
def {name}(expression: str, precision: Optional[int] = 2) -> float:
    """Tool number {n}: evaluate something.

    Parameters
    ----------
    expression : str
        The expression.
    precision : int, optional
        Digits to keep.
    """
    return 0.0
''',
    "sphinx": '''
@tool(timeout=5)
def {name}(text: str, unique: bool = False, limit: float = 1.5) -> int:
    """Tool number {n}: count something.

    :param text: The text.
    :param unique: Distinct only.
    :param limit: An upper bound.
    """
    return 0
''',
}


def generate(
    root: Path, tools: int, files: int, *, folder: str = "bench_tools", prefix: str = "bench_tool"
) -> Path:
    """``tools`` tools named ``prefix_NNNNN``, the three docstring styles in turn, over
    ``files`` modules in ``root / folder``."""
    where = root / folder
    where.mkdir(parents=True)
    per_file = -(-tools // files)
    styles = list(STYLES.values())
    for f in range(files):
        parts = ["from typing import Literal, Optional\n\nfrom qasdk import tool\n"]
        for n in range(f * per_file, min(tools, (f + 1) * per_file)):
            parts.append(styles[n % 3].format(name=f"{prefix}_{n:05d}", n=n))
        (where / f"module_{f:03d}.py").write_text("".join(parts))
    return where


async def reset(url: str) -> None:
    conn = await connect(url)
    async with conn:
        await migrate(conn)
        await conn.execute("DELETE FROM registered_methods WHERE name LIKE 'bench_tool_%'")
        await conn.commit()


async def one_sync(url: str, folder: Path, root: Path) -> tuple[float, int, int]:
    started = time.perf_counter()
    registry = collect([folder], module_root=root)
    conn = await connect(url)
    async with conn:
        report = await sync_methods(conn, registry.configs)
    return time.perf_counter() - started, report.rows_written, len(registry.entries)


def cli_sync(url: str, folder: Path, root: Path) -> tuple[float, dict[str, object]]:
    env = {**os.environ, "QASDK_DATABASE_URL": url}
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "qasdk", "sync", str(folder), "--json"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return time.perf_counter() - started, json.loads(result.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tools", type=int, default=1000)
    parser.add_argument("--files", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="qasdk-bench-"))
    data = root / "pgdata"
    try:
        url = os.environ.get("QASDK_DATABASE_URL") or ensure_embedded(data, database="bench")
        folder = generate(root, args.tools, args.files)
        full, resync, written, cli_full, cli_resync = [], [], [], [], []
        tools = 0
        for _ in range(args.repeat):
            asyncio.run(reset(url))
            seconds, _, tools = asyncio.run(one_sync(url, folder, root))
            full.append(seconds)
            seconds, rows, _ = asyncio.run(one_sync(url, folder, root))
            resync.append(seconds)
            written.append(rows)
        for _ in range(args.repeat):
            asyncio.run(reset(url))
            cli_full.append(cli_sync(url, folder, root)[0])
            seconds, report = cli_sync(url, folder, root)
            cli_resync.append(seconds)
            written.append(int(report["rows_written"]))  # type: ignore[call-overload]
        asyncio.run(reset(url))

        def ms(values: list[float]) -> str:
            return f"{statistics.median(values) * 1000:7.1f} ms (min {min(values) * 1000:.1f})"

        print(f"tools: {tools} in {args.files} files, median of {args.repeat} runs")
        print(f"full sync (in-process):        {ms(full)}   goal <= 1500 ms")
        print(f"unchanged re-sync (in-process):{ms(resync)}   goal <= 500 ms")
        print(f"rows written on re-sync:       {max(written)} (every run)   goal 0")
        print(f"full sync (qasdk sync CLI):    {ms(cli_full)}")
        print(f"unchanged re-sync (CLI):       {ms(cli_resync)}")
    finally:
        if not os.environ.get("QASDK_DATABASE_URL"):
            stop_embedded(data)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
