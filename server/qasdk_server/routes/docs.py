"""The API docs, served without the internet.

Swagger UI's assets come from the ``litestar-offline-docs`` package and are
served by Litestar's static files router, so ``/schema`` renders on an
air-gapped machine (``/`` leads to the console).
"""

from __future__ import annotations

from pathlib import Path

from litestar import Router
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.static_files import create_static_files_router

__all__ = ["DOCS_PATH", "docs_assets", "openapi_config"]

DOCS_PATH = "/schema"
_ASSETS = f"{DOCS_PATH}/assets"
# Litestar's default favicon is on a CDN; an empty data URL keeps the page offline.
_NO_FAVICON = "<link rel='icon' href='data:,'>"


def _asset_folder() -> Path:
    import litestar_offline_docs

    return Path(litestar_offline_docs.__file__).parent / "static"


def openapi_config(version: str) -> OpenAPIConfig:
    """OpenAPI at ``/schema/openapi.json``; Swagger UI at ``/schema`` and ``/schema/swagger``."""
    return OpenAPIConfig(
        title="qasdk",
        version=version,
        description="Submit tasks to qwen-agent with your registered tools.",
        path=DOCS_PATH,
        render_plugins=[
            SwaggerRenderPlugin(
                js_url=f"{_ASSETS}/swagger-ui-bundle.js",
                css_url=f"{_ASSETS}/swagger-ui.css",
                standalone_preset_js_url=f"{_ASSETS}/swagger-ui-standalone-preset.js",
                path=["/", "/swagger"],
                favicon=_NO_FAVICON,
            )
        ],
    )


def docs_assets() -> Router:
    """Swagger UI's JavaScript and CSS, from the installed package."""
    return create_static_files_router(
        path=_ASSETS,
        directories=[_asset_folder()],
        include_in_schema=False,
        name="docs-assets",
        opt={"scope": "public"},
    )
