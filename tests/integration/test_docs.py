"""The API docs render in a real browser with no internet, and ``/`` leads to them."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile

import pytest

from tests.integration.harness import Server

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

#: How this machine's closed network wants Chromium started (see the environment notes).
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("QASDK_REQUIRE_BROWSER"):
            pytest.fail("chromium is required here (apt install chromium)")
        pytest.skip("no chromium on this machine: apt install chromium (.ci/run does)")
    return found


def rendered(url: str) -> str:
    """The page's DOM after its scripts ran, in headless Chromium."""
    with tempfile.TemporaryDirectory() as profile:
        result = subprocess.run(
            [
                chromium(),
                *CHROMIUM_FLAGS,
                f"--user-data-dir={profile}",
                "--virtual-time-budget=15000",
                "--dump-dom",
                url,
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


async def test_swagger_ui_renders_from_the_servers_own_assets(served: Server) -> None:
    page = served.http.get("/schema")
    assert page.status_code == 200
    # Nothing from a CDN: no script, style or link points off the server (the schema the
    # page embeds may hold example URLs, such as callback_url's).
    external = re.findall(r"""(?:src|href)\s*=\s*["'](?:https?:)?//[^"']+""", page.text)
    assert external == [], external
    assert "/schema/assets/" in page.text or "swagger-ui-bundle.js" in page.text
    dom = rendered(f"{served.base}/schema")
    assert 'class="swagger-ui"' in dom
    assert "/api/tasks" in dom  # the operations were read from /schema/openapi.json and drawn
    assert "opblock" in dom


async def test_the_root_leads_to_the_console(served: Server) -> None:
    response = served.http.get("/", follow_redirects=False)
    assert response.status_code in (301, 302, 307, 308)
    assert response.headers["location"] == "/console"
