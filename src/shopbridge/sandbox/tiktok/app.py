"""The ASGI app: Partner API gateway, OAuth pages and the `/_sandbox/` control API on one port."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from starlette.responses import JSONResponse, Response

from . import (
    cancellations,
    catalog,
    customer_service,
    finance,
    fulfillment,
    oauth,
    orders,
    products,
    returns,
    sellers,
    webhooks,
)
from .config import SandboxConfig
from .control import router as control_router
from .gateway import Gateway, Router
from .runtime import TikTokSandbox
from .seed import seed_demo

ENDPOINTS = [
    *sellers.ENDPOINTS,
    *catalog.ENDPOINTS,
    *products.ENDPOINTS,
    *orders.ENDPOINTS,
    *fulfillment.ENDPOINTS,
    *cancellations.ENDPOINTS,
    *returns.ENDPOINTS,
    *finance.ENDPOINTS,
    *customer_service.ENDPOINTS,
    *webhooks.ENDPOINTS,
]
API_METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH"]


def create_app(config: SandboxConfig) -> FastAPI:
    """Build a sandbox. The lifespan starts and stops the background dispatcher (transitions + webhooks)."""
    sandbox = TikTokSandbox(config)
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
        title="TikTok Shop sandbox",
        description="A local emulator of the TikTok Shop Partner API. The Partner API itself is served on the "
        "same port but is not described here; see docs/sandbox.md. This schema covers the `/_sandbox/` control API.",
        lifespan=lifespan,
    )
    gateway = Gateway(sandbox, Router(ENDPOINTS))
    app.state.sandbox = sandbox
    app.state.gateway = gateway

    @app.get("/open/authorize", tags=["oauth"], summary="The seller's consent page; redirects with a code")
    async def authorize(request: Request) -> Response:
        return oauth.authorize(sandbox, request)

    @app.get("/oauth/authorize", tags=["oauth"], summary="Legacy consent page (app_key instead of service_id)")
    async def authorize_legacy(request: Request) -> Response:
        return oauth.authorize(sandbox, request)

    @app.get("/api/v2/token/get", tags=["oauth"], summary="Exchange an auth code for tokens")
    async def token_get(request: Request) -> JSONResponse:
        return oauth.get_token(sandbox, request)

    @app.get("/api/v2/token/refresh", tags=["oauth"], summary="Refresh (and rotate) tokens")
    async def token_refresh(request: Request) -> JSONResponse:
        return oauth.refresh_token(sandbox, request)

    app.include_router(control_router)

    @app.api_route("/{path:path}", methods=API_METHODS, include_in_schema=False)
    async def partner_api(request: Request) -> JSONResponse:
        return await gateway(request)

    return app


def sandbox_of(app: FastAPI) -> TikTokSandbox:
    """The running sandbox behind an app, for in-process tests and benchmarks."""
    sandbox: TikTokSandbox = app.state.sandbox
    return sandbox
