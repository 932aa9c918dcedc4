"""TikTok webhook deliveries: the envelope, the event types we subscribe to, and their parsing (reference §9)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from shopbridge.web.limits import JSON_DEPTH, nested_deeper_than

ORDER_STATUS_CHANGE = 1
RECIPIENT_ADDRESS_UPDATE = 3
PACKAGE_UPDATE = 4
PRODUCT_STATUS_CHANGE = 5
SELLER_DEAUTHORIZATION = 6
UPCOMING_AUTHORIZATION_EXPIRATION = 7
CANCELLATION_STATUS_CHANGE = 11
RETURN_STATUS_CHANGE = 12
NEW_MESSAGE = 14
PRODUCT_AUDIT_STATUS_CHANGE = 37

# Every event type TikTok documents (reference §9). Known types the hub does not act on yet are kept as processed
# for the flows that will; any other type is kept as ignored, naming the type.
KNOWN_TYPES = frozenset({1, 2, 3, 4, 5, 6, 7, 11, 12, 13, 14, 15, 16, 18, 27, 33, 36, 37, 50, 64, 67, 71})
MAX_TYPE = 2**31 - 1  # event types are small integers; a larger "type" is not TikTok's
MAX_DEPTH = JSON_DEPTH  # TikTok's payloads nest four or five levels; deeper input is refused before parsing
MAX_ID_LENGTH = 200  # as the inbox keeps event ids

# Events that name orders the hub re-reads (webhook status words differ from the API's, so it always re-reads).
ORDER_EVENT_TYPES = (ORDER_STATUS_CHANGE, RECIPIENT_ADDRESS_UPDATE, CANCELLATION_STATUS_CHANGE, RETURN_STATUS_CHANGE,
                     PACKAGE_UPDATE)  # fmt: skip

# The topics shopbridge subscribes to when a shop is connected.
SUBSCRIBED_TOPICS = (
    "ORDER_STATUS_CHANGE",
    "CANCELLATION_STATUS_CHANGE",
    "RETURN_STATUS_CHANGE",
    "PRODUCT_STATUS_CHANGE",
    "PRODUCT_AUDIT_STATUS_CHANGE",
    "NEW_MESSAGE",
    "SELLER_DEAUTHORIZATION",
    "UPCOMING_AUTHORIZATION_EXPIRATION",
    "PACKAGE_UPDATE",
    "RECIPIENT_ADDRESS_UPDATE",
)


class MalformedNotification(ValueError):
    """A signed delivery whose body is not a TikTok notification; kept in the inbox as rejected."""


@dataclass(frozen=True)
class Notification:
    type: int
    notification_id: str
    shop_id: str
    timestamp: int
    data: dict[str, Any]


def notification_id(raw_body: bytes, envelope: dict[str, Any] | None) -> str:
    """``tts_notification_id`` when present; older deliveries lack it (and an id too long to be TikTok's is not
    trusted), so a hash of the exact body stands in."""
    if envelope is not None:
        given = envelope.get("tts_notification_id")
        if isinstance(given, (str, int)) and not isinstance(given, bool) and 0 < len(str(given)) <= MAX_ID_LENGTH:
            return str(given)
    return "sha256:" + hashlib.sha256(raw_body).hexdigest()


def parse(raw_body: bytes) -> Notification:
    if nested_deeper_than(raw_body, MAX_DEPTH):  # before the parser recurses into it
        raise MalformedNotification(f"the JSON is nested deeper than {MAX_DEPTH} levels")
    try:
        envelope = json.loads(raw_body)
    except (ValueError, UnicodeDecodeError):
        raise MalformedNotification("the body is not JSON") from None
    if not isinstance(envelope, dict):
        raise MalformedNotification("the body is not a JSON object")
    kind, shop_id, data = envelope.get("type"), envelope.get("shop_id"), envelope.get("data")
    if not isinstance(kind, int) or isinstance(kind, bool):
        raise MalformedNotification(f"'type' must be an integer, got {_shown(kind)}")
    if not 0 < kind <= MAX_TYPE:
        raise MalformedNotification(f"'type' must be a TikTok event type (1 to {MAX_TYPE}), got {_shown(kind)}")
    if not isinstance(shop_id, (str, int)) or isinstance(shop_id, bool) or not 0 < len(str(shop_id)) <= MAX_ID_LENGTH:
        raise MalformedNotification(f"'shop_id' is missing or not an id, got {_shown(shop_id)}")
    if not isinstance(data, dict):
        raise MalformedNotification("'data' must be an object")
    timestamp = envelope.get("timestamp", 0)
    if not isinstance(timestamp, int) or isinstance(timestamp, bool):
        raise MalformedNotification(f"'timestamp' must be Unix seconds, got {timestamp!r}")
    return Notification(kind, notification_id(raw_body, envelope), str(shop_id), timestamp, data)


def _shown(value: Any) -> str:
    """A value for an error message, cut short: an attacker's input must not fill the log or the inbox."""
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:77]}..."


def order_ids(notification: Notification) -> list[str]:
    """The orders an order event names (a package update names those of every package)."""
    data = notification.data
    if notification.type == PACKAGE_UPDATE:
        return [
            str(order_id)
            for package in data.get("package_list") or []
            for order_id in package.get("order_id_list") or []
        ]
    order_id = data.get("order_id")
    return [str(order_id)] if order_id else []
