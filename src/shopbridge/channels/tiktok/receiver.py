"""What happens to a signed TikTok delivery: one inbox insert and, in the same transaction, the job that acts on it.
The HTTP route verifies the signature before calling this, and acknowledges once this has committed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from shopbridge.channels.tiktok import webhooks
from shopbridge.channels.tiktok.sync import AUTHORIZATION_EXPIRING, DEAUTHORIZED, SYNC_ORDERS
from shopbridge.runtime import inbox, jobs
from shopbridge.store.tables import ChannelAccount

SOURCE = "tiktok"


@dataclass(frozen=True)
class Receipt:
    outcome: str  # accepted, duplicate, malformed, unknown_shop
    status_code: int
    message: str


def receive(session: Session, raw_body: bytes, *, now: datetime) -> Receipt:
    """Record a verified delivery (the caller commits, then acknowledges)."""
    text = raw_body.decode("utf-8", errors="replace")
    try:
        notification = webhooks.parse(raw_body)
    except webhooks.MalformedNotification as error:
        inbox.record(session, source=SOURCE, event_id=webhooks.notification_id(raw_body, None), payload=text, now=now,
                     status="rejected", error=str(error))  # fmt: skip
        return Receipt("malformed", 400, f"malformed notification: {error}")
    account_id = session.scalar(
        select(ChannelAccount.id).where(
            ChannelAccount.channel == "tiktok", ChannelAccount.external_id == notification.shop_id
        )
    )
    if account_id is None:
        inbox.record(session, source=SOURCE, event_id=notification.notification_id, payload=text, now=now,
                     event_type=str(notification.type), status="rejected",
                     error=f"shop {notification.shop_id} is not connected to this hub")  # fmt: skip
        return Receipt("unknown_shop", 200, f"shop {notification.shop_id} is not connected; kept for inspection")
    recorded = inbox.record(session, source=SOURCE, event_id=notification.notification_id, payload=text, now=now,
                            event_type=str(notification.type), channel_account_id=account_id)  # fmt: skip
    if not recorded.created:
        return Receipt("duplicate", 200, "already received")
    _dispatch(session, account_id, notification, recorded.id, now)
    return Receipt("accepted", 200, "accepted")


def _dispatch(
    session: Session, account_id: int, notification: webhooks.Notification, event_id: int, now: datetime
) -> None:
    kind = notification.type
    if kind in webhooks.ORDER_EVENT_TYPES:
        # The inbox is the queue: the record stays `received` until a sync re-reads its orders. One sync waits per
        # shop and takes every order event received meanwhile, so this write is the same small one under a flash
        # sale as in a quiet hour (one detail call covers up to 50 orders).
        if webhooks.order_ids(notification):
            jobs.enqueue(session, SYNC_ORDERS, {"source": "webhook"}, now=now, channel_account_id=account_id,
                         identity_key=f"{SYNC_ORDERS}:{account_id}", priority=5)  # fmt: skip
            return
        inbox.mark(session, event_id, status="processed", now=now)
        return
    if kind == webhooks.SELLER_DEAUTHORIZATION:
        jobs.enqueue(session, DEAUTHORIZED, {"message": notification.data.get("message")}, now=now,
                     channel_account_id=account_id, priority=1)  # fmt: skip
    elif kind == webhooks.UPCOMING_AUTHORIZATION_EXPIRATION:
        jobs.enqueue(
            session, AUTHORIZATION_EXPIRING, {"expiration_time": notification.data.get("expiration_time")}, now=now,
            channel_account_id=account_id, identity_key=f"{AUTHORIZATION_EXPIRING}:{account_id}",
        )  # fmt: skip
    # Product, message and other events are kept in the inbox for the flows that will act on them.
    inbox.mark(session, event_id, status="processed", now=now)
