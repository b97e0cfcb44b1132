"""Where tool code may come from (issue 10: a registry that is data, not code)."""

from __future__ import annotations

from pathlib import Path

import pytest

from qasdk.security.roots import roots_for


@pytest.mark.parametrize(
    "module", ["os", "subprocess", "builtins", "shutil", "importlib", "sys", "ctypes", "pickle"]
)
def test_the_standard_library_is_never_a_tool(tmp_path: Path, module: str) -> None:
    (tmp_path / f"{module}.py").write_text("")  # not even when the root shadows its name
    reason = roots_for(tmp_path).refusal(module, present=False)
    assert reason is not None and "standard-library module" in reason


def test_installed_packages_need_allowing(tmp_path: Path) -> None:
    roots = roots_for(tmp_path)
    reason = roots.refusal("msgspec.json", present=False)
    assert reason is not None and "it is installed at" in reason
    assert roots_for(tmp_path, ("msgspec",)).refusal("msgspec.json") is None
    assert roots_for(tmp_path, ("msgspec.json",)).refusal("msgspec.inspect") is not None


def test_code_under_the_root_runs(tmp_path: Path) -> None:
    (tmp_path / "tools").mkdir()
    (tmp_path / "tools" / "geo.py").write_text("")
    roots = roots_for(tmp_path)
    assert roots.refusal("tools.geo") is None
    assert roots.refusal("elsewhere.geo", present=False) is None  # not on this machine
    assert roots.refusal("elsewhere.geo") is not None  # a process that runs tools
