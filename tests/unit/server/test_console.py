"""The console's assets: every file a page loads ships in the package, and none is remote."""

from __future__ import annotations

import re
from pathlib import Path

from qasdk_server.console import ASSETS, CONSOLE_PATH, CSP

IMPORT = re.compile(r"""(?:^|\s)(?:import|export)\s[^;]*?from\s+["']([^"']+)["']""", re.MULTILINE)
LINKED = re.compile(r"""(?:src|href)="(/console/[^"]+)\"""")


def _assets() -> list[Path]:
    return sorted(p for p in ASSETS.rglob("*") if p.is_file())


def test_every_asset_is_local() -> None:
    for path in _assets():
        # The SVG namespace is a name, not a request.
        text = path.read_text(encoding="utf-8").replace("http://www.w3.org/2000/svg", "")
        assert not re.search(r"https?://", text), f"{path.name} names a remote URL"
        assert "@import" not in text and "url(http" not in text


def test_the_page_loads_only_files_that_ship() -> None:
    index = (ASSETS / "index.html").read_text(encoding="utf-8")
    linked = LINKED.findall(index)
    assert f"{CONSOLE_PATH}/app.js" in linked and f"{CONSOLE_PATH}/console.css" in linked
    for url in linked:
        assert (ASSETS / url.removeprefix(f"{CONSOLE_PATH}/")).is_file(), url
    # No inline script or style: the policy allows neither.
    assert "<style" not in index and " style=" not in index
    assert re.findall(r"<script[^>]*>", index) == [
        '<script src="/console/theme.js">',
        '<script type="module" src="/console/app.js">',
    ]


def test_every_module_import_resolves() -> None:
    for module in ASSETS.rglob("*.js"):
        for target in IMPORT.findall(module.read_text(encoding="utf-8")):
            assert target.startswith("."), (
                f"{module.name} imports {target!r}: bare names need a build"
            )
            assert (module.parent / target).resolve().is_file(), f"{module.name}: {target}"


def test_the_policy_forbids_inline_code_and_other_sites() -> None:
    directives = dict(d.split(" ", 1) for d in CSP.split("; "))
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["connect-src"] == "'self'"
    assert directives["default-src"] == "'none'"
    assert directives["frame-ancestors"] == "'none'"


def test_the_readme_quick_start_ends_at_the_console() -> None:
    readme = (Path(__file__).parents[3] / "README.md").read_text(encoding="utf-8")
    quick_start = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    assert quick_start.strip().endswith("open http://127.0.0.1:8000/console")
    assert "![The console's overview](docs/console/overview.png)" in readme
