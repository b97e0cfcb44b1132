"""The web console at ``/console``: static files that use the public API, nothing else.

Plain ES modules and CSS shipped in this package (no build step, no CDN) and
served by Litestar's static files router; the pages call ``/api/...`` with the
key the user typed, so what the console can do a script can do. Its responses
carry a strict Content-Security-Policy: scripts and styles from this server
only (no ``unsafe-inline``), requests to this server only.
"""

from __future__ import annotations

from pathlib import Path

from litestar import Response, Router, get
from litestar.datastructures import CacheControlHeader
from litestar.response import Redirect
from litestar.static_files import create_static_files_router

__all__ = ["CONSOLE_PATH", "CSP", "console_assets", "home"]

CONSOLE_PATH = "/console"
ASSETS = Path(__file__).parent / "static"

CSP = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)
_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


async def _secured(response: Response[object]) -> Response[object]:
    for name, value in _HEADERS.items():
        response.headers[name] = value
    return response


def console_assets() -> Router:
    """``/console`` (its ``index.html``) and its scripts and styles; public, like any page."""
    return create_static_files_router(
        path=CONSOLE_PATH,
        directories=[ASSETS],
        html_mode=True,
        include_in_schema=False,
        name="console",
        opt={"scope": "public"},
        after_request=_secured,
        # Revalidated on every load: after an upgrade no browser runs yesterday's modules.
        cache_control=CacheControlHeader(no_cache=True),
    )


@get("/", include_in_schema=False, opt={"scope": "public"})
async def home() -> Redirect:
    """The console, for anyone who opens the server's address in a browser."""
    return Redirect(path=CONSOLE_PATH)
