"""The FastAPI application: health, readiness, metrics, the OpenAPI document and what every request goes through."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import anyio.to_thread
import structlog
from fastapi import APIRouter, FastAPI, Response
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from pydantic import BaseModel, Field
from sqlalchemy import func, select, text
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shopbridge import __version__
from shopbridge.bootstrap import Hub
from shopbridge.logs import get_logger
from shopbridge.store import migrations
from shopbridge.store.db import reading
from shopbridge.store.tables import WorkerHeartbeat
from shopbridge.web import cancellations, dashboard, drift, errors, links, orders, returns, stock
from shopbridge.web.docs import DOCS_URL, page, serve_docs
from shopbridge.web.limits import BodyLimits
from shopbridge.web.metrics import WORKER_STALE_SECONDS, HttpMetrics, WorkEngineCollector

log = get_logger("shopbridge.web")


def create_app(hub: Hub, *, workers: int = 0, separate_ops: bool = False) -> FastAPI:
    """The hub's web app; with ``workers`` > 0 it also runs that many workers for its lifetime (in a worker process
    of their own unless ``settings.worker_process`` is off, see ``shopbridge.worker_process``). With
    ``separate_ops`` the metrics and the API's docs are left to ``create_ops_app`` (a listener of their own) and this
    app answers 404 there."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Synchronous endpoints run in threads. Forty (AnyIO's default) busy threads in one interpreter mostly wait
        # for each other's turn at the GIL and at SQLite's write lock, which slows whoever holds it; a few threads
        # serve as many requests per second and leave the workers their share.
        anyio.to_thread.current_default_thread_limiter().total_tokens = hub.settings.api_threads
        hub.start_serve_workers(workers)
        for part in channel_webs:
            part.start()
        try:
            yield
        finally:
            for part in channel_webs:
                part.stop()
            hub.stop_workers()

    app = FastAPI(
        title="shopbridge",
        version=__version__,
        openapi_url=None,  # served by serve_docs, here or on the ops listener
        docs_url=None,
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
        lifespan=lifespan,
    )
    app.add_exception_handler(RequestValidationError, errors.validation_refused)
    registry = CollectorRegistry()
    registry.register(WorkEngineCollector(hub.sessions, hub.inbox_sessions, hub.clock))
    registry.register(drift.DriftCollector(hub.sessions, hub.clock))
    http = HttpMetrics(registry)
    webhooks = Counter(
        "shopbridge_webhooks", "Webhook deliveries by outcome (forged ones are never processed).",
        ["channel", "outcome"], registry=registry,
    )  # fmt: skip
    channel_webs = [channel.web(webhooks) for channel in hub.channels.values()]
    for part in channel_webs:
        app.include_router(part.router)
    app.include_router(orders.router(hub))
    app.include_router(stock.router(hub))
    app.include_router(links.router(hub))
    app.include_router(cancellations.router(hub))
    app.include_router(returns.router(hub))
    app.include_router(drift.router(hub))
    dashboard.mount(app, hub)
    health = _health_router(hub)
    operations = _operations_router(registry)
    app.include_router(health)
    app.state.health, app.state.operations, app.state.http = health, operations, http
    if separate_ops:
        app.openapi = lambda: _document(app, operations)  # type: ignore[method-assign]
    else:
        app.include_router(operations)
        serve_docs(app, app.openapi)
    app.add_middleware(BodyLimits)
    app.add_middleware(RequestContext, app=app, http=http, docs_path=None if separate_ops else DOCS_URL)
    return app


def create_ops_app(public: FastAPI) -> FastAPI:
    """The ops listener's app for a hub app made with ``separate_ops``: its metrics (same registry), health,
    readiness and the API's docs and OpenAPI document; nothing else."""
    ops = FastAPI(title="shopbridge operations", version=__version__, openapi_url=None, docs_url=None,
                  redoc_url=None, swagger_ui_oauth2_redirect_url=None)  # fmt: skip
    ops.include_router(public.state.health)
    ops.include_router(public.state.operations)
    serve_docs(ops, public.openapi)
    ops.add_middleware(BodyLimits)
    ops.add_middleware(RequestContext, app=ops, http=public.state.http, docs_path=DOCS_URL)
    return ops


class Readiness(BaseModel):
    ready: bool
    checks: dict[str, dict[str, Any]] = Field(description="database, migrations, workers: each with ok and details.")


def _health_router(hub: Hub) -> APIRouter:
    routes = APIRouter(tags=["operations"])

    @routes.get("/healthz", summary="The process is up.")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @routes.get(
        "/readyz", summary="Database reachable, migrations current, workers alive.", response_model=Readiness,
        responses={503: {"model": Readiness, "description": "Not ready: the failing check says why."}},
    )  # fmt: skip
    def readyz() -> JSONResponse:
        checks = readiness(hub)
        ready = all(check["ok"] for check in checks.values())
        return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)

    return routes


def _operations_router(registry: CollectorRegistry) -> APIRouter:
    routes = APIRouter(tags=["operations"])

    @routes.get(
        "/metrics", summary="Prometheus metrics.", response_class=PlainTextResponse,
        responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
    )  # fmt: skip
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return routes


def _document(app: FastAPI, operations: APIRouter) -> dict[str, Any]:
    """The OpenAPI document of a hub app whose operations routes live on the ops listener: the same document."""
    if not app.openapi_schema:
        app.openapi_schema = get_openapi(
            title=app.title, version=app.version, openapi_version=app.openapi_version,
            routes=[*app.routes, *operations.routes], separate_input_output_schemas=app.separate_input_output_schemas,
        )  # fmt: skip
    return app.openapi_schema


_REQUEST_ID = re.compile(rb"[A-Za-z0-9._-]{1,64}")
_HARDENING = [(b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"),
              (b"referrer-policy", b"no-referrer")]  # fmt: skip
STRICT_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
_INTERNAL_ERROR = json.dumps({"detail": "internal server error"}).encode()
_INTERNAL_ERROR_HEADERS = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(_INTERNAL_ERROR))]


class RequestContext:
    """Plain ASGI middleware (cheaper than Starlette's BaseHTTPMiddleware, which costs every webhook a task and a
    stream): a request id bound to the logs and echoed in ``x-request-id``, the security headers of every response,
    a JSON 500 for an unhandled error, and per-route metrics.

    ``Server-Timing: app;dur=<ms>`` tells the time from the request's arrival to its answer's start (a page is
    rendered by then). A client's ``x-request-id`` is kept when it is a sane id (up to 64 of ``A-Za-z0-9._-``),
    else a fresh one is made. Every answer is ``nosniff``, may not be framed and sends no referrer; its
    Content-Security-Policy allows nothing (JSON and the OAuth callback page need nothing) except on the docs page,
    which loads the hub's own assets, and on a response that sets its own (the dashboard's pages)."""

    def __init__(self, inner: ASGIApp, *, app: FastAPI, http: HttpMetrics, docs_path: str | None) -> None:
        self.inner, self.app, self.http, self.docs_path = inner, app, http, docs_path
        self.headers = [*_HARDENING, (b"content-security-policy", STRICT_CSP.encode())]
        self.docs_headers = [*_HARDENING, (b"content-security-policy", page()[1].encode())]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.inner(scope, receive, send)
            return
        request_id = b""
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                request_id = value
                break
        if not _REQUEST_ID.fullmatch(request_id):
            request_id = uuid.uuid4().hex.encode()
        structlog.contextvars.bind_contextvars(request_id=request_id.decode())
        hardening = self.docs_headers if scope["path"] == self.docs_path else self.headers
        extra = [(b"x-request-id", request_id), *hardening]
        # A page with a policy of its own (the dashboard's) keeps it; every other answer gets the strict one.
        extra_without_policy = [header for header in extra if header[0] != b"content-security-policy"]
        route = _route_template(self.app, scope)
        started = time.perf_counter()
        status = 500
        answered = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, answered
            if message["type"] == "http.response.start":
                status, answered = message["status"], True
                headers = list(message.get("headers", ()))
                spent = (time.perf_counter() - started) * 1000
                headers.append((b"server-timing", b"app;dur=%.1f" % spent))
                own_policy = any(name.lower() == b"content-security-policy" for name, _ in headers)
                message["headers"] = [*headers, *(extra_without_policy if own_policy else extra)]
            await send(message)

        try:
            await self.inner(scope, receive, send_with_id)
        except Exception:
            if not answered:  # Starlette's own 500 would be plain text without these headers
                await send_with_id({"type": "http.response.start", "status": 500, "headers": _INTERNAL_ERROR_HEADERS})
                await send_with_id({"type": "http.response.body", "body": _INTERNAL_ERROR})
            raise
        finally:
            elapsed = time.perf_counter() - started
            self.http.requests.labels(scope["method"], route, str(status)).inc()
            self.http.latency.labels(scope["method"], route).observe(elapsed)
            if route not in ("/healthz", "/metrics"):
                log.info("http.request", method=scope["method"], path=route, status=status, ms=round(elapsed * 1000, 2))
            structlog.contextvars.unbind_contextvars("request_id")


def _route_template(app: FastAPI, scope: Scope) -> str:
    """The matched route's path template, so metrics do not explode with one label per order id."""
    for route in app.router.routes:
        match, _ = route.matches(scope)
        if match == Match.FULL:
            return str(getattr(route, "path", scope["path"]))
    return "unmatched"


def readiness(hub: Hub) -> dict[str, dict[str, Any]]:
    checks: dict[str, dict[str, Any]] = {}
    try:
        with hub.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        checks["database"] = {"ok": True}
    except Exception as error:
        checks["database"] = {"ok": False, "error": f"{type(error).__name__}: {error}"}
        return checks
    current, head = migrations.current_revision(hub.engine), migrations.head_revision(hub.engine)
    checks["migrations"] = {"ok": current == head, "current": current, "head": head}
    if hub.pool is not None:
        checks["workers"] = {"ok": hub.pool.alive(), "embedded": len(hub.pool.workers)}
        return checks
    with reading(hub.sessions) as session:
        recent = session.scalar(
            select(func.count()).where(
                WorkerHeartbeat.last_seen_at >= hub.clock.now() - timedelta(seconds=WORKER_STALE_SECONDS)
            )
        )
    if hub.worker_process is not None:  # its workers run and beat their hearts
        process = hub.worker_process
        checks["workers"] = {"ok": process.alive() and bool(recent), "process": process.pid, "alive": recent or 0}
    else:
        checks["workers"] = {"ok": bool(recent), "alive": recent or 0}
    return checks
