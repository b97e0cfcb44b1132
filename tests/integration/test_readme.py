"""Every code example in the README runs, as a user would run it (issue 8).

A Python block whose first line is a ``# path`` comment is a file of a user's
project: the blocks are written into a fresh project and its tests are run with
pytest, in a process of their own.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration]

README = Path(__file__).parents[2] / "README.md"
BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)


def examples() -> dict[str, str]:
    files = {}
    for block in BLOCK.findall(README.read_text(encoding="utf-8")):
        first, _, rest = block.partition("\n")
        if first.startswith("# ") and first.endswith(".py"):
            files[first[2:].strip()] = rest
    return files


def test_the_readme_has_runnable_examples() -> None:
    assert {"tools/weather.py", "tests/test_weather.py"} <= set(examples())


def test_the_readme_examples_run(tmp_path: Path) -> None:
    for path, code in examples().items():
        target = tmp_path / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(code)
    check = subprocess.run(
        [sys.executable, "-m", "qasdk", "check", "tools"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert check.returncode == 0, check.stderr
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
