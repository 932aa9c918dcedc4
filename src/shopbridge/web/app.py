"""The FastAPI application: health, readiness, metrics and the OpenAPI document."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import anyio.to_thread
import structlog
from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from sqlalchemy import func, select, text
from starlette.datastructures import Headers, MutableHeaders
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shopbridge import __version__
from shopbridge.bootstrap import Hub
from shopbridge.channels.tiktok.receiver import ConnectedShops, Receipt, Work, queue_work, receive, waiting_work
from shopbridge.logs import get_logger
from shopbridge.runtime.dispatch import Dispatcher
from shopbridge.runtime.group_commit import GroupCommitter
from shopbridge.store import migrations
from shopbridge.store.db import reading
from shopbridge.store.tables import WorkerHeartbeat
from shopbridge.web import orders, stock, tiktok
from shopbridge.web.metrics import WORKER_STALE_SECONDS, HttpMetrics, WorkEngineCollector

log = get_logger("shopbridge.web")


def create_app(hub: Hub, *, workers: int = 0) -> FastAPI:
    """The hub's web app; with ``workers`` > 0 it also runs that many workers for its lifetime (in a worker process
    of their own unless ``settings.worker_process`` is off, see ``shopbridge.worker_process``)."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Synchronous endpoints run in threads. Forty (AnyIO's default) busy threads in one interpreter mostly wait
        # for each other's turn at the GIL and at SQLite's write lock, which slows whoever holds it; a few threads
        # serve as many requests per second and leave the workers their share.
        anyio.to_thread.current_default_thread_limiter().total_tokens = hub.settings.api_threads
        hub.start_serve_workers(workers)
        if hub.tiktok is not None:
            app.state.tiktok_dispatch.start()  # its first sweep queues what a previous run left received
        try:
            yield
        finally:
            app.state.tiktok_intake.stop()
            app.state.tiktok_dispatch.stop()
            hub.stop_workers()

    app = FastAPI(
        title="shopbridge",
        version=__version__,
        openapi_url="/api/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    registry = CollectorRegistry()
    registry.register(WorkEngineCollector(hub.sessions, hub.inbox_sessions, hub.clock))
    http = HttpMetrics(registry)
    webhooks = Counter(
        "shopbridge_webhooks", "Webhook deliveries by outcome (forged ones are never processed).",
        ["channel", "outcome"], registry=registry,
    )  # fmt: skip
    shops = ConnectedShops(hub.sessions)
    tiktok_intake: GroupCommitter[bytes, Receipt] = GroupCommitter(
        hub.inbox_sessions, lambda session, raw: receive(session, raw, now=hub.clock.now(), shops=shops),
        name="tiktok-intake",
    )  # fmt: skip
    tiktok_dispatch: Dispatcher[Work] = Dispatcher(
        lambda works: queue_work(hub.sessions, hub.inbox_sessions, works, now=hub.clock.now()),
        sweep=lambda: waiting_work(hub.sessions, hub.inbox_sessions), sweep_seconds=hub.settings.inbox_sweep_seconds,
        name="tiktok-dispatch",
    )  # fmt: skip
    app.state.tiktok_intake, app.state.tiktok_dispatch = tiktok_intake, tiktok_dispatch
    app.include_router(tiktok.router(hub, webhooks, tiktok_intake, tiktok_dispatch))
    app.include_router(orders.router(hub))
    app.include_router(stock.router(hub))

    app.add_middleware(RequestContext, app=app, http=http)

    @app.get("/healthz", tags=["operations"], summary="The process is up.")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"], summary="Database reachable, migrations current, workers alive.")
    def readyz() -> JSONResponse:
        checks = readiness(hub)
        ready = all(check["ok"] for check in checks.values())
        return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics.")
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app


class RequestContext:
    """Plain ASGI middleware (cheaper than Starlette's BaseHTTPMiddleware, which costs every webhook a task and a
    stream): a request id bound to the logs and echoed in ``x-request-id``, and per-route metrics."""

    def __init__(self, inner: ASGIApp, *, app: FastAPI, http: HttpMetrics) -> None:
        self.inner, self.app, self.http = inner, app, http

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.inner(scope, receive, send)
            return
        request_id = Headers(scope=scope).get("x-request-id") or uuid.uuid4().hex
        structlog.contextvars.bind_contextvars(request_id=request_id)
        route = _route_template(self.app, scope)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)["x-request-id"] = request_id
            await send(message)

        try:
            await self.inner(scope, receive, send_with_id)
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
