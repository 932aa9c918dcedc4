"""TikTok's routes: the webhook receiver and the OAuth callback, and the services the receiver needs while the web
app runs: the group committer writing deliveries to the inbox, and the dispatcher queuing the work they ask for."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse
from jinja2 import Environment
from prometheus_client import Counter
from pydantic import BaseModel

from shopbridge.channels.port import ChannelWeb
from shopbridge.channels.tiktok import connect
from shopbridge.channels.tiktok.receiver import ConnectedShops, Receipt, Work, queue_work, receive, waiting_work
from shopbridge.channels.tiktok.signing import verify_webhook
from shopbridge.logs import get_logger
from shopbridge.runtime.dispatch import Dispatcher
from shopbridge.runtime.group_commit import GroupCommitter
from shopbridge.web.errors import ErrorBody, refusals
from shopbridge.web.limits import WEBHOOK

if TYPE_CHECKING:
    from shopbridge.channels.tiktok.channel import TikTokChannel

log = get_logger("shopbridge.tiktok.routes")

_PAGES = Environment(autoescape=True)  # whatever TikTok or a shop's name says is shown as text, never as markup
_REFUSED = _PAGES.from_string("<h1>The shop was not connected</h1><p>{{ error }}</p>")
_CONNECTED = _PAGES.from_string(
    "<h1>Connected</h1><ul>{% for shop in shops %}<li>{{ shop.name }} ({{ shop.shop_id }}, {{ shop.region }})</li>"
    "{% endfor %}</ul>"
)


class Acknowledged(BaseModel):
    code: int
    message: str


class Refused(BaseModel):
    """What TikTok is answered when a delivery is not taken (TikTok reads only the status)."""

    error: str


_NOTIFICATION = {
    "parameters": [{
        "name": "Authorization", "in": "header", "required": True, "schema": {"type": "string"},
        "description": "Lowercase hex HMAC-SHA256 of app key + raw body, keyed with the app secret (no `Bearer`).",
    }],
    "requestBody": {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "required": ["type", "shop_id", "data"],
        "properties": {"type": {"type": "integer"}, "tts_notification_id": {"type": "string"},
                       "shop_id": {"type": "string"}, "timestamp": {"type": "integer"}, "data": {"type": "object"}},
    }}}},
}  # fmt: skip


def _html(description: str) -> dict[str, object]:
    return {"description": description, "content": {"text/html": {"schema": {"type": "string"}}}}


def web(channel: TikTokChannel, webhooks: Counter) -> ChannelWeb:
    """The routes, with the intake and the dispatcher they hand deliveries to (the dispatcher's first sweep, at
    start, queues what a previous run left received)."""
    context, clock = channel.context, channel.clock
    if context is None:
        return ChannelWeb(router(channel, webhooks, None, None))
    shops = ConnectedShops(context.sessions)
    intake: GroupCommitter[bytes, Receipt] = GroupCommitter(
        context.inbox_sessions, lambda session, raw: receive(session, raw, now=clock.now(), shops=shops),
        name="tiktok-intake",
    )  # fmt: skip
    dispatch: Dispatcher[Work] = Dispatcher(
        lambda works: queue_work(context.sessions, context.inbox_sessions, works, now=clock.now()),
        sweep=lambda: waiting_work(context.sessions, context.inbox_sessions),
        sweep_seconds=channel.settings.inbox_sweep_seconds, name="tiktok-dispatch",
    )  # fmt: skip

    def stop() -> None:
        intake.stop()
        dispatch.stop()

    return ChannelWeb(router(channel, webhooks, intake, dispatch), start=dispatch.start, stop=stop)


def router(
    channel: TikTokChannel,
    webhooks: Counter,
    intake: GroupCommitter[bytes, Receipt] | None,
    dispatch: Dispatcher[Work] | None,
) -> APIRouter:
    routes = APIRouter(tags=["tiktok"])

    @routes.post(
        "/hooks/tiktok", summary="TikTok Shop webhook deliveries (signed).", response_model=None,
        description=f"The raw body is signed (header `Authorization`); at most {WEBHOOK.shown}.",
        openapi_extra=_NOTIFICATION,
        responses={
            200: {"model": Acknowledged, "description": "Taken (committed to the inbox)."},
            400: {"model": Refused, "description": "Signed but not a notification the hub can read."},
            401: {"model": Refused, "description": "The signature does not match the body."},
            413: {"model": ErrorBody, "description": f"The body is larger than {WEBHOOK.shown}."},
            503: {"model": Refused, "description": "No TikTok app is configured on this hub."},
        },
    )  # fmt: skip
    async def tiktok_webhook(request: Request) -> JSONResponse:
        if channel.context is None or intake is None or dispatch is None:
            return JSONResponse({"error": "no TikTok app is configured on this hub"}, status_code=503)
        raw = await request.body()
        app = channel.context.app
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

    @routes.get(
        "/connect/tiktok/callback", summary="Where TikTok sends the seller back after authorizing.",
        response_class=HTMLResponse,
        responses={
            200: _html("The shops connected."), 400: _html("The shop was not connected, and why."),
            503: _html("No TikTok app is configured on this hub."), **refusals(422),
        },
    )  # fmt: skip
    def tiktok_callback(code: str = "", state: str = "") -> HTMLResponse:
        if channel.context is None:
            return HTMLResponse("<h1>No TikTok app is configured on this hub</h1>", status_code=503)
        try:
            shops = connect.complete(channel.context, channel.hub_settings(), code=code, state=state,
                                     now=channel.clock.now())  # fmt: skip
        except connect.SetupError as error:
            log.warning("tiktok.connect_refused", error=str(error))
            return HTMLResponse(_REFUSED.render(error=str(error)), status_code=400)
        log.info("tiktok.connected", shops=[shop.shop_id for shop in shops])
        return HTMLResponse(_CONNECTED.render(shops=shops))

    return routes
