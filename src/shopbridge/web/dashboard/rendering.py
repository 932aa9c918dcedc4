"""Server-rendered pages: Jinja2 with autoescaping, times shown in the shop's timezone, and the dashboard's own
Content-Security-Policy (its scripts and styles are the hub's files, nothing inline, nothing from elsewhere)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from shopbridge import __version__
from shopbridge.services.access import BrowserSession

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
STATIC = Path(__file__).resolve().parent.parent / "static"
DASHBOARD_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

CHANNEL_LABELS = {"tiktok": "TikTok", "shopify": "Shopify", "manual": "Manual", "pos": "POS"}
STATUS_LABELS = {
    "unpaid": "Unpaid", "on_hold": "On hold", "awaiting_shipment": "Awaiting shipment",
    "partially_shipped": "Partially shipped", "awaiting_collection": "Awaiting collection",
    "in_transit": "In transit", "delivered": "Delivered", "completed": "Completed", "cancelled": "Cancelled",
}  # fmt: skip


def work_label(kind: str) -> str:
    """A job kind as people read it: ``tiktok.ship_order`` is "TikTok: ship order"."""
    owner, _, work = kind.rpartition(".")
    words = work.replace("_", " ")
    return f"{CHANNEL_LABELS.get(owner, owner.replace('_', ' ').capitalize())}: {words}" if owner else words


class Pages:
    def __init__(self, timezone: str) -> None:
        self.zone = ZoneInfo(timezone)
        self.env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(default=True),
                               trim_blocks=True, lstrip_blocks=True)  # fmt: skip
        self.env.filters["local"] = self.local
        self.env.filters["channel_label"] = lambda channel: CHANNEL_LABELS.get(channel, channel)
        self.env.filters["status_label"] = lambda status: STATUS_LABELS.get(status, status)
        self.env.filters["work_label"] = work_label
        self.env.globals.update(version=__version__, timezone=timezone, statuses=STATUS_LABELS)

    def local(self, moment: datetime | str | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
        if moment is None:
            return ""
        if isinstance(moment, str):
            moment = datetime.fromisoformat(moment)
        return moment.astimezone(self.zone).strftime(fmt)

    def render(self, request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        browser: BrowserSession | None = getattr(request.state, "browser", None)
        given = {"request": request, "user": browser.caller if browser else None,
                 "csrf_token": browser.csrf_token if browser else ""}  # fmt: skip
        html = self.env.get_template(template).render({**given, **context})
        return HTMLResponse(html, status_code=status_code, headers={"content-security-policy": DASHBOARD_CSP,
                                                                    "cache-control": "no-store"})  # fmt: skip
