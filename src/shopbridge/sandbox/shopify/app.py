"""The ASGI app: the GraphQL Admin API, OAuth and the ``/_sandbox/`` control API on one port.

| What | Where | Production equivalent |
|---|---|---|
| GraphQL Admin API | ``POST /admin/api/{version}/graphql.json`` | ``https://{shop}.myshopify.com/admin/api/...`` |
| OAuth | ``GET /admin/oauth/authorize``, ``POST /admin/oauth/access_token`` | the same paths on the shop |
| Control API | ``/_sandbox/...``, described at ``/docs`` | — (customers, staff, faults) |
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from starlette.responses import JSONResponse, Response

from . import oauth
from .config import ShopifySandboxConfig
from .control import router as control_router
from .errors import SandboxError
from .gateway import Gateway
from .runtime import ShopifySandbox
from .seed import seed_demo


def create_app(config: ShopifySandboxConfig) -> FastAPI:
    """Build a sandbox. The lifespan starts and stops the background dispatcher (jobs, traffic, webhooks)."""
    sandbox = ShopifySandbox(config)
    if config.seed == "demo":
        seed_demo(sandbox)
    elif config.seed is not None:
        raise ValueError(f"unknown seed {config.seed!r}; the only seed is 'demo'")

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await sandbox.start()
        try:
            yield
        finally:
            await sandbox.stop()

    app = FastAPI(
        title="Shopify sandbox",
        description="A local emulator of the Shopify GraphQL Admin API, OAuth and webhooks. The Admin API "
        "(`POST /admin/api/{version}/graphql.json`) is served on the same port; see docs/sandbox.md. This schema "
        "covers OAuth and the `/_sandbox/` control API.",
        lifespan=lifespan,
    )
    gateway = Gateway(sandbox)
    app.state.sandbox = sandbox
    app.state.gateway = gateway

    @app.exception_handler(SandboxError)
    async def sandbox_error(_: Request, exc: SandboxError) -> JSONResponse:
        return JSONResponse({"detail": exc.message}, status_code=exc.status)

    @app.post("/admin/api/{version}/graphql.json", include_in_schema=False)
    async def graphql(version: str, request: Request) -> Response:
        return await gateway(request, version)

    @app.get("/admin/oauth/authorize", tags=["oauth"], summary="The merchant approves the app; 302 with a code")
    async def authorize(request: Request) -> Response:
        return oauth.authorize(sandbox, request)

    @app.post("/admin/oauth/access_token", tags=["oauth"], summary="Exchange a code, refresh, or client credentials")
    async def access_token(request: Request) -> Response:
        return await oauth.access_token(sandbox, request)

    app.include_router(control_router)
    return app


def sandbox_of(app: FastAPI) -> ShopifySandbox:
    """The running sandbox behind an app, for in-process tests."""
    sandbox: ShopifySandbox = app.state.sandbox
    return sandbox
