"""Webhooks: shop subscriptions (`/event/202309/webhooks`), the delivery outbox and its dispatcher (§9)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, Field

from ..sender import SenderProcess, post_once
from .errors import invalid_parameter
from .gateway import Call, Endpoint
from .models import Delivery, Subscription, WebhookFault
from .signing import webhook_signature

if TYPE_CHECKING:
    from .runtime import TikTokSandbox

log = logging.getLogger(__name__)

# Numeric `type` ↔ topic name, per the reference's §9.3 table.
TOPICS: dict[int, str] = {
    1: "ORDER_STATUS_CHANGE",
    2: "REVERSE_STATUS_UPDATE",
    3: "RECIPIENT_ADDRESS_UPDATE",
    4: "PACKAGE_UPDATE",
    5: "PRODUCT_STATUS_CHANGE",
    6: "SELLER_DEAUTHORIZATION",
    7: "UPCOMING_AUTHORIZATION_EXPIRATION",
    11: "CANCELLATION_STATUS_CHANGE",
    12: "RETURN_STATUS_CHANGE",
    13: "NEW_CONVERSATION",
    14: "NEW_MESSAGE",
    15: "PRODUCT_INFORMATION_CHANGE",
    16: "PRODUCT_CREATION",
    18: "PRODUCT_CATEGORY_CHANGE",
    37: "PRODUCT_AUDIT_STATUS_CHANGE",
}
EVENT_TYPES = frozenset(TOPICS.values())

# Unacknowledged deliveries are retried 2 min, 30 min, 3 h and 12 h later (sandbox time), then given up.
RETRY_SCHEDULE: tuple[int, ...] = (120, 1800, 3 * 3600, 12 * 3600)


class Webhooks:
    def __init__(self, sandbox: TikTokSandbox) -> None:
        self.sb = sandbox
        deliveries = sandbox.world.table(Delivery).values()
        self._seq = max((d.seq for d in deliveries), default=0)
        # Ids of deliveries still to attempt, so a dispatcher pass never walks the delivered history.
        self._pending = {d.id for d in deliveries if d.status == "PENDING"}
        # Ids being attempted by a pass still running: passes overlap, and none sends what another is sending.
        self._in_flight: set[str] = set()
        self._gate: asyncio.Semaphore | None = None  # webhook_concurrency across overlapping passes
        # Called when a delivery is queued, so the dispatcher sends it now rather than at its next interval.
        self.on_queued: Callable[[], None] | None = None
        self.sender: SenderProcess | None = None  # posts from a process of its own (sender.py); else in this loop
        self.silent = False  # while set, changes send no webhook (see silenced)

    @contextmanager
    def silenced(self) -> Iterator[None]:
        """Changes made inside send no webhook: the state changes and nothing tells the seller's app, which is how
        tests and benchmarks inject drift for the hub's backstops to find."""
        self.silent = True
        try:
            yield
        finally:
            self.silent = False

    def emit(self, shop_id: str, type_: int, data: dict[str, Any]) -> list[Delivery]:
        """Queue one event for the shop's subscribed address, applying the stream's faults."""
        sb = self.sb
        if self.silent:
            return []
        topic = TOPICS[type_]
        sub = sb.world.get(Subscription, f"{shop_id}:{topic}")
        address = sub.address if sub is not None else sb.world.settings.app_webhook_address
        if address is None:
            return []
        now = sb.clock.now()
        envelope = {
            "type": type_,
            "tts_notification_id": sb.ids.generic(),
            "shop_id": shop_id,
            "timestamp": int(now),
            "data": data,
        }
        body = json.dumps(envelope, separators=(",", ":"))
        fault = sb.world.get(WebhookFault, topic) or sb.world.get(WebhookFault, "*") or WebhookFault(id="*")
        dropped = sb.rng.random() < fault.drop_rate
        copies = 2 if not dropped and sb.rng.random() < fault.duplicate_rate else 1
        out = []
        for _ in range(copies):
            delay = sb.rng.uniform(0.0, fault.reorder_window_seconds) if fault.reorder_window_seconds else 0.0
            delivery = Delivery(
                id=sb.ids.generic(),
                notification_id=str(envelope["tts_notification_id"]),
                seq=self._next_seq(),
                shop_id=shop_id,
                type=type_,
                event_type=topic,
                address=address,
                body=body,
                created_at=now,
                next_attempt_at=now + delay,
                status="DROPPED" if dropped else "PENDING",
            )
            sb.world.save(delivery)
            if delivery.status == "PENDING":
                self._pending.add(delivery.id)
            out.append(delivery)
        if self.on_queued is not None and any(d.status == "PENDING" for d in out):
            self.on_queued()
        return out

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def due(self) -> list[Delivery]:
        now = self.sb.clock.now()
        table = self.sb.world.table(Delivery)
        pending = [
            d for key in self._pending - self._in_flight if (d := table.get(key)) is not None and d.status == "PENDING"
        ]
        return sorted((d for d in pending if d.next_attempt_at <= now), key=lambda d: (d.next_attempt_at, d.seq))

    async def dispatch_due(self, client: httpx.AsyncClient) -> int:
        """Attempt every delivery that is due, up to ``webhook_concurrency`` at once (a real platform does not
        wait for one receiver's answer before sending the next); returns how many were attempted."""
        due = self.due()
        if not due:
            return 0
        if self._gate is None:
            self._gate = asyncio.Semaphore(self.sb.config.webhook_concurrency)
        gate = self._gate
        sending = {delivery.id for delivery in due}
        self._in_flight |= sending
        try:
            results = await asyncio.gather(*(self._attempt(client, delivery, gate) for delivery in due))
        finally:
            self._in_flight -= sending
        sb = self.sb
        for delivery, ok, outcome in results:
            delivery.attempts += 1
            delivery.history.append(outcome)
            if ok:
                delivery.status = "DELIVERED"
                self._pending.discard(delivery.id)
            elif delivery.attempts > len(RETRY_SCHEDULE):
                delivery.status = "FAILED"
                self._pending.discard(delivery.id)
            else:
                delivery.next_attempt_at = sb.clock.now() + RETRY_SCHEDULE[delivery.attempts - 1]
            sb.world.save(delivery)
        sb.world.commit()
        return len(results)

    async def _attempt(
        self, client: httpx.AsyncClient, delivery: Delivery, gate: asyncio.Semaphore
    ) -> tuple[Delivery, bool, dict[str, Any]]:
        sb = self.sb
        raw = delivery.body.encode()
        headers = {
            "Authorization": webhook_signature(sb.config.app_key, sb.config.app_secret, raw),
            "Content-Type": "application/json",
        }
        async with gate:
            outcome: dict[str, Any] = {"at": sb.clock.now(), "wall": sb.clock.wall()}
            if self.sender is not None:
                outcome.update(await self.sender.post(delivery.address, raw, headers))
            else:
                outcome.update(await post_once(client, delivery.address, raw, headers))
            ok = 200 <= outcome.get("status_code", 0) < 300
        return delivery, ok, outcome


# --- subscription endpoints -------------------------------------------------------------------------------


class UpdateWebhookBody(BaseModel):
    address: str = Field(min_length=1, max_length=255)
    event_type: str


class DeleteWebhookBody(BaseModel):
    event_type: str


def _check_event_type(event_type: str) -> None:
    if event_type not in EVENT_TYPES:
        raise invalid_parameter("event_type", f"unknown event type {event_type!r}", "a webhook topic name")


def get_webhooks(call: Call) -> dict[str, Any]:
    shop = call.require_shop()
    subs = [s for s in call.world.table(Subscription).values() if s.shop_id == shop.id]
    subs.sort(key=lambda s: s.event_type)
    return {
        "total_count": len(subs),
        "webhooks": [
            {
                "event_type": s.event_type,
                "address": s.address,
                "create_time": s.create_time,
                "update_time": s.update_time,
            }
            for s in subs
        ],
    }


def update_webhook(call: Call) -> dict[str, Any]:
    shop = call.require_shop()
    body = call.body(UpdateWebhookBody)
    _check_event_type(body.event_type)
    parts = urlsplit(body.address)
    # The real gateway wants https; the sandbox also takes http so local receivers need no certificate.
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise invalid_parameter("address", "not an http(s) URL", "an https URL of at most 255 characters")
    now = call.sb.clock.now_s()
    key = f"{shop.id}:{body.event_type}"
    existing = call.world.get(Subscription, key)
    call.world.save(
        Subscription(
            id=key,
            shop_id=shop.id,
            event_type=body.event_type,
            address=body.address,
            create_time=existing.create_time if existing else now,
            update_time=now,
        )
    )
    # A success carries an object, empty when there is nothing to say (§2.3); `null` is for errors only.
    return {}


def delete_webhook(call: Call) -> dict[str, Any]:
    shop = call.require_shop()
    body = call.body(DeleteWebhookBody)
    _check_event_type(body.event_type)
    # Succeeds even when nothing is configured, as documented.
    call.world.remove(Subscription, f"{shop.id}:{body.event_type}")
    return {}


ENDPOINTS = [
    Endpoint("GET", "/event/202309/webhooks", get_webhooks),
    Endpoint("PUT", "/event/202309/webhooks", update_webhook),
    Endpoint("DELETE", "/event/202309/webhooks", delete_webhook),
]
