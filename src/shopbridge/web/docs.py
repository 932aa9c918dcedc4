"""The API's documentation page, Swagger UI served from the hub itself (the fastapi-swagger package ships its
JavaScript, stylesheet and icon), so it works on a machine without internet access and loads nothing from elsewhere.
Its inline start-up script is allowed by its hash in the page's own Content-Security-Policy."""

from __future__ import annotations

import base64
import hashlib
import importlib.resources
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse

DOCS_URL = "/api/docs"
OPENAPI_URL = "/api/openapi.json"
ASSETS_URL = f"{DOCS_URL}/assets"
ASSETS = ("swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png")
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def _assets_folder() -> Path:
    return Path(str(importlib.resources.files("fastapi_swagger").joinpath("resources")))


def page() -> tuple[str, str]:
    """The docs page and the Content-Security-Policy it needs: scripts, styles and images from the hub only."""
    html = bytes(
        get_swagger_ui_html(
            openapi_url=OPENAPI_URL,
            title="shopbridge API",
            swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_URL}/favicon-32x32.png",
            swagger_ui_parameters={"validatorUrl": None},  # Swagger UI would ask validator.swagger.io otherwise
        ).body
    ).decode()
    hashes = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()}'"
        for script in _INLINE_SCRIPT.findall(html)
    )
    policy = (
        f"default-src 'none'; script-src 'self' {hashes}; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    )
    return html, policy


def serve_docs(app: FastAPI, document: Callable[[], dict[str, Any]]) -> None:
    """Add the OpenAPI document, the docs page and its assets to ``app`` (the hub's app, or its ops app)."""
    html, _ = page()
    folder = _assets_folder()

    @app.get(OPENAPI_URL, include_in_schema=False)
    def openapi() -> JSONResponse:
        return JSONResponse(document())

    @app.get(DOCS_URL, include_in_schema=False)
    def docs() -> HTMLResponse:
        return HTMLResponse(html)

    @app.get(ASSETS_URL + "/{name}", include_in_schema=False)
    def asset(name: str) -> FileResponse:
        if name not in ASSETS:
            raise HTTPException(404, "Not Found")
        return FileResponse(folder / name)
