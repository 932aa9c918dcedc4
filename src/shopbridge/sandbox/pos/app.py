"""The ASGI app: the POS API, and the ``/_sandbox/`` control API, on one port.

| What | Where | Production equivalent |
|---|---|---|
| POS API (signed, §4) | ``/v1/...`` | the POS's base URL, e.g. ``https://pos.example.com/v1`` |
| Control API | ``/_sandbox/...``, described at ``/docs`` | — (the stores' staff, faults, time) |

Events go the other way, to ``PosSandboxConfig.hub_event_url`` (§3).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, Response

from .api import PosApiGuard, is_api_path
from .api import router as api_router
from .config import PosSandboxConfig
from .control import router as control_router
from .errors import PosError, error_body
from .runtime import PosSandbox
from .seed import seed_demo

HTTP_CODES = {404: "not_found", 405: "method_not_allowed"}


def create_app(config: PosSandboxConfig) -> FastAPI:
    """Build a sandbox. The lifespan starts and stops the background dispatcher (simulation, stores coming back
    online, event deliveries)."""
    sandbox = PosSandbox(config)
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
        title="POS sandbox",
        description="A local point of sale speaking the shopbridge POS protocol (docs/pos-protocol.md): the signed "
        "POS API under `/v1`, events to the hub, and the unsigned `/_sandbox/` control API. See docs/sandbox.md.",
        lifespan=lifespan,
    )
    app.state.sandbox = sandbox

    @app.exception_handler(PosError)
    async def pos_error(_: Request, exc: PosError) -> Response:
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        problems = [
            {"field": ".".join(str(part) for part in error["loc"][1:]) or str(error["loc"][0]),
             "in": str(error["loc"][0]), "message": error["msg"]}
            for error in exc.errors()
        ]  # fmt: skip
        first = problems[0] if problems else {"field": "body", "in": "body", "message": "invalid"}
        code = "invalid_body" if first["in"] == "body" else "invalid_query"
        status = 400 if is_api_path(request.url.path) else 422
        details = {"field": first["field"], "errors": problems}
        return JSONResponse(error_body(code, f"{first['field']}: {first['message']}", details), status)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        if not is_api_path(request.url.path):
            return JSONResponse({"detail": exc.detail}, exc.status_code, headers=exc.headers)
        code = HTTP_CODES.get(exc.status_code, "http_error")
        return JSONResponse(error_body(code, str(exc.detail)), exc.status_code, headers=exc.headers)

    app.include_router(api_router)
    app.include_router(control_router)
    app.add_middleware(PosApiGuard, sandbox=sandbox)
    return app


def sandbox_of(app: FastAPI) -> PosSandbox:
    """The running sandbox behind an app, for in-process tests and benchmarks."""
    sandbox: PosSandbox = app.state.sandbox
    return sandbox
