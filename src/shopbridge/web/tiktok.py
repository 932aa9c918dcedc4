"""TikTok's routes: the webhook receiver and the OAuth callback."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse
from prometheus_client import Counter

from shopbridge.bootstrap import Hub
from shopbridge.channels.tiktok import connect
from shopbridge.channels.tiktok.receiver import Receipt, Work
from shopbridge.channels.tiktok.signing import verify_webhook
from shopbridge.logs import get_logger
from shopbridge.runtime.dispatch import Dispatcher
from shopbridge.runtime.group_commit import GroupCommitter

log = get_logger("shopbridge.web.tiktok")


def router(
    hub: Hub, webhooks: Counter, intake: GroupCommitter[bytes, Receipt], dispatch: Dispatcher[Work]
) -> APIRouter:
    routes = APIRouter(tags=["tiktok"])

    @routes.post("/hooks/tiktok", summary="TikTok Shop webhook deliveries (signed).")
    async def tiktok_webhook(request: Request) -> JSONResponse:
        if hub.tiktok is None:
            return JSONResponse({"error": "no TikTok app is configured on this hub"}, status_code=503)
        raw = await request.body()
        app = hub.tiktok.app
        if not verify_webhook(app.app_key, app.app_secret, raw, request.headers.get("authorization")):
            webhooks.labels("tiktok", "forged").inc()
            log.warning("webhook.forged", channel="tiktok", bytes=len(raw))
            return JSONResponse({"error": "the Authorization signature does not match the body"}, status_code=401)
        receipt = await asyncio.wrap_future(intake.submit(raw))  # committed (with its batch) before we answer
        webhooks.labels("tiktok", receipt.outcome).inc()
        if receipt.work is not None:
            dispatch.notify((receipt.work,))  # queued off this request's path (runtime/dispatch.py)
        if receipt.status_code >= 400:
            return JSONResponse({"error": receipt.message}, status_code=receipt.status_code)
        return JSONResponse({"code": 0, "message": receipt.message})

    @routes.get("/connect/tiktok/callback", summary="Where TikTok sends the seller back after authorizing.")
    def tiktok_callback(code: str = "", state: str = "") -> HTMLResponse:
        if hub.tiktok is None:
            return HTMLResponse("<h1>No TikTok app is configured on this hub</h1>", status_code=503)
        settings = hub.settings
        hub_settings = connect.HubSettings.of(settings)
        try:
            shops = connect.complete(hub.tiktok, hub_settings, code=code, state=state, now=hub.clock.now())
        except connect.SetupError as error:
            log.warning("tiktok.connect_refused", error=str(error))
            return HTMLResponse(f"<h1>The shop was not connected</h1><p>{_escape(str(error))}</p>", status_code=400)
        items = "".join(f"<li>{_escape(shop.name)} ({shop.shop_id}, {shop.region})</li>" for shop in shops)
        log.info("tiktok.connected", shops=[shop.shop_id for shop in shops])
        return HTMLResponse(f"<h1>Connected</h1><ul>{items}</ul>")

    return routes


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
