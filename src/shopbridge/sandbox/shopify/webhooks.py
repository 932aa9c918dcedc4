"""Webhooks (reference §7): subscriptions, the delivery outbox and its dispatcher.

* **Subscriptions** are created with ``webhookSubscriptionCreate(topic, webhookSubscription{uri format
  includeFields filter})`` (the older ``callbackUrl`` is accepted too). ``http://`` addresses are accepted so local
  receivers need no certificate (Shopify itself wants https).
* **Payloads** are the REST resource of the topic (§7.5, ``rest.py``), captured when the event happens: a retry
  carries the original payload (§7.4). ``includeFields`` trims it (dotted paths reach into nested objects and lists);
  ``filter`` (search syntax on the payload's fields) drops events that do not match.
* **Headers** (§7.2): ``X-Shopify-Topic``, ``X-Shopify-Hmac-Sha256`` (base64 HMAC-SHA256 of the raw body with the
  app's secret, §7.3), ``X-Shopify-Shop-Domain``, ``X-Shopify-API-Version`` (the app's webhook version),
  ``X-Shopify-Webhook-Id`` (unique per delivery, kept on retries and on injected duplicates),
  ``X-Shopify-Triggered-At`` and ``X-Shopify-Event-Id`` (shared by every delivery one merchant action produced).
* **Delivery**: asynchronous, at most ``webhook_concurrency`` in flight, 1 s to connect and 5 s to answer; any
  non-2xx (3xx included, redirects are not followed) or network error is a failure, retried ``webhook_max_retries``
  (8) times with exponential backoff ``base x 2^n``; a subscription whose delivery failed every retry is removed
  (``remove_failing_subscriptions``).
* **Faults** per topic (or ``*``): ``loss_rate`` (recorded as LOST, never sent), ``duplicate_rate`` (the same
  Webhook-Id delivered twice), ``reorder_rate`` (held back until the next event's delivery has gone), and a fixed
  ``delay_seconds``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx

from ..sender import SenderProcess
from . import search
from .errors import UserErr, errors_json
from .ids import parse_gid
from .models import Delivery, WebhookFault, WebhookSubscription
from .money import gql_time

if TYPE_CHECKING:
    from .runtime import ShopifySandbox

log = logging.getLogger(__name__)

# Finished deliveries (delivered, failed, lost) kept in the log; older ones are forgotten so a long traffic run does
# not grow the world without bound.
DELIVERY_LOG_SIZE = 20_000
FINAL = ("DELIVERED", "FAILED", "LOST")

RESOURCES = (
    "app",
    "bulk_operations",
    "customers",
    "fulfillment_events",
    "fulfillment_orders",
    "fulfillments",
    "inventory_items",
    "inventory_levels",
    "locations",
    "order_transactions",
    "orders",
    "products",
    "refunds",
    "returns",
    "shop",
)


def topic_of(enum_name: str) -> str:
    """``ORDERS_PARTIALLY_FULFILLED`` → ``orders/partially_fulfilled`` (§7.1)."""
    lower = enum_name.lower()
    for resource in sorted(RESOURCES, key=len, reverse=True):
        if lower.startswith(resource + "_"):
            return f"{resource}/{lower[len(resource) + 1 :]}"
    head, _, tail = lower.partition("_")
    return f"{head}/{tail}"


def enum_of(topic: str) -> str:
    return topic.replace("/", "_").upper()


def hmac_sha256_base64(secret: str, body: bytes) -> str:
    """§7.3: base64(HMAC-SHA256(key = app secret, msg = raw body))."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


# --- payload shaping ----------------------------------------------------------------------------------------


def include_fields(payload: Any, fields: list[str]) -> Any:
    if not fields:
        return payload
    tree: dict[str, Any] = {}
    for path in fields:
        node = tree
        parts = path.split(".")
        for index, part in enumerate(parts):
            if index == len(parts) - 1:
                node[part] = True
            else:
                child = node.get(part)
                if child is True:
                    break
                node = node.setdefault(part, {})

    def pick(value: Any, spec: Any) -> Any:
        if spec is True:
            return value
        if isinstance(value, list):
            return [pick(v, spec) for v in value]
        if isinstance(value, dict):
            return {k: pick(value[k], sub) for k, sub in spec.items() if k in value}
        return value

    return pick(payload, tree)


def _leaves(value: Any, path: list[str]) -> list[Any]:
    if not path:
        return [x for v in value for x in _leaves(v, [])] if isinstance(value, list) else [value]
    if isinstance(value, list):
        return [x for v in value for x in _leaves(v, path)]
    if isinstance(value, dict) and path[0] in value:
        return _leaves(value[path[0]], path[1:])
    return []


def matches_filter(payload: dict[str, Any], text: str | None) -> bool:
    """A subscription ``filter`` (search syntax, §7.1) evaluated against the payload's (dotted) fields."""
    node = search.parse(text)
    if node is None:
        return True

    def term(t: search.Term) -> bool:
        if t.field is None:
            return t.value.lower() in json.dumps(payload).lower()
        for leaf in _leaves(payload, t.field.split(".")):
            if leaf is None:
                continue
            try:
                left: float | str = float(leaf)
                right: float | str = float(t.value)
            except (TypeError, ValueError):
                left, right = str(leaf).lower(), t.value.lower()
            if isinstance(leaf, bool):
                left, right = str(leaf).lower(), t.value.lower()
            if t.op == ":" and left == right:
                return True
            if t.op != ":" and type(left) is type(right) and search._compare(t.op, left, right):
                return True
        return False

    def evaluate(n: search.Node) -> bool:
        if isinstance(n, search.Term):
            return term(n)
        if isinstance(n, search.Not):
            return not evaluate(n.inner)
        if isinstance(n, search.And):
            return all(evaluate(p) for p in n.parts)
        return any(evaluate(p) for p in n.parts)

    return evaluate(node)


# --- subscriptions ------------------------------------------------------------------------------------------


def _check_input(sb: ShopifySandbox, data: dict[str, Any], topic: str, current: str | None) -> list[UserErr]:
    uri = data.get("uri") or data.get("callbackUrl")
    errors: list[UserErr] = []
    if not uri:
        return [UserErr("Address can't be blank", ["webhookSubscription", "uri"])]
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        errors.append(
            UserErr(
                "Address is invalid: the sandbox delivers to http(s) URLs only (no Pub/Sub or EventBridge).",
                ["webhookSubscription", "uri"],
            )
        )
    if data.get("format") == "XML":
        errors.append(UserErr("Format XML is not served by the sandbox; use JSON.", ["webhookSubscription", "format"]))
    try:
        search.parse(data.get("filter"))
    except search.SearchSyntaxError as exc:
        errors.append(UserErr(f"Filter is invalid: {exc}", ["webhookSubscription", "filter"]))
    taken = any(
        s.topic == topic and s.uri == uri and s.id != current for s in sb.world.table(WebhookSubscription).values()
    )
    if taken:
        errors.append(UserErr("Address for this topic has already been taken", ["webhookSubscription", "uri"]))
    return errors


def create_subscription(sb: ShopifySandbox, topic_enum: str, data: dict[str, Any]) -> dict[str, Any]:
    topic = topic_of(topic_enum)
    errors = _check_input(sb, data, topic, None)
    if errors:
        return {"subscription_id": None, "user_errors": errors_json(errors)}
    now = sb.now()
    sub = WebhookSubscription(
        id=sb.new_id(),
        topic=topic,
        uri=data.get("uri") or data["callbackUrl"],
        format=data.get("format") or "JSON",
        include_fields=list(data.get("includeFields") or []),
        metafield_namespaces=list(data.get("metafieldNamespaces") or []),
        filter=data.get("filter"),
        api_version=sb.config.webhook_api_version,
        created_at=now,
        updated_at=now,
    )
    sb.world.save(sub)
    return {"subscription_id": sub.id, "user_errors": []}


def update_subscription(sb: ShopifySandbox, sub_gid: str, data: dict[str, Any]) -> dict[str, Any]:
    sub = sb.world.get(WebhookSubscription, parse_gid(sub_gid, "WebhookSubscription"))
    if sub is None:
        return {
            "subscription_id": None,
            "user_errors": [UserErr("Webhook subscription does not exist", ["id"]).as_dict()],
        }
    merged = {
        "uri": sub.uri,
        "format": sub.format,
        "filter": sub.filter,
        **{k: v for k, v in data.items() if v is not None},
    }
    errors = _check_input(sb, merged, sub.topic, sub.id)
    if errors:
        return {"subscription_id": None, "user_errors": errors_json(errors)}
    sub.uri = merged.get("uri") or merged["callbackUrl"]
    sub.format = merged["format"]
    sub.filter = merged.get("filter")
    if data.get("includeFields") is not None:
        sub.include_fields = list(data["includeFields"])
    if data.get("metafieldNamespaces") is not None:
        sub.metafield_namespaces = list(data["metafieldNamespaces"])
    sub.updated_at = sb.now()
    sb.world.save(sub)
    return {"subscription_id": sub.id, "user_errors": []}


def delete_subscription(sb: ShopifySandbox, sub_gid: str) -> dict[str, Any]:
    key = parse_gid(sub_gid, "WebhookSubscription")
    if sb.world.get(WebhookSubscription, key) is None:
        return {"deleted_id": None, "user_errors": [UserErr("Webhook subscription does not exist", ["id"]).as_dict()]}
    assert key is not None
    sb.world.remove(WebhookSubscription, key)
    return {"deleted_id": sub_gid, "user_errors": []}


# --- outbox and dispatcher ----------------------------------------------------------------------------------


class Webhooks:
    def __init__(self, sandbox: ShopifySandbox) -> None:
        self.sb = sandbox
        deliveries = sandbox.world.table(Delivery).values()
        self._seq = max((d.seq for d in deliveries), default=0)
        self._waiting = {d.id for d in deliveries if d.status in ("PENDING", "HELD")}
        self._finished: deque[str] = deque(d.id for d in sorted(deliveries, key=lambda d: d.seq) if d.status in FINAL)
        self._in_flight: set[str] = set()
        self._gate: asyncio.Semaphore | None = None
        self.sender: SenderProcess | None = None  # posts from a process of its own (sandbox/sender.py); else here
        # Called when a delivery is queued, so the dispatcher sends it now rather than at its next pass.
        self.on_queued: Callable[[], None] | None = None
        self.silent = False  # while set, changes send no webhook (see silenced)

    @contextmanager
    def silenced(self) -> Iterator[None]:
        """Changes made inside send no webhook (counted as ``silent``): the state changes and nothing tells the app,
        which is how tests and benchmarks inject drift for the hub's backstops to find."""
        self.silent = True
        try:
            yield
        finally:
            self.silent = False

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def trigger(self, topic: str, payload: dict[str, Any], event_id: str) -> list[Delivery]:
        """Queue one delivery per subscription to ``topic``, applying its includeFields, filter and the faults."""
        sb = self.sb
        subs = sorted(
            (s for s in sb.world.table(WebhookSubscription).values() if s.topic == topic), key=lambda s: int(s.id)
        )
        if not subs or (not sb.world.shop.app_installed and topic != "app/uninstalled"):
            return []
        if self.silent:
            sb.stats.webhook(topic, "silent")
            return []
        now = sb.now()
        fault = sb.world.get(WebhookFault, topic) or sb.world.get(WebhookFault, "*") or WebhookFault(id="*")
        out: list[Delivery] = []
        for sub in subs:
            if not matches_filter(payload, sub.filter):
                continue
            body = json.dumps(include_fields(payload, sub.include_fields), separators=(",", ":"))
            webhook_id = sb.ids.uuid()
            lost = sb.rng.random() < fault.loss_rate
            copies = 2 if not lost and sb.rng.random() < fault.duplicate_rate else 1
            held = not lost and sb.rng.random() < fault.reorder_rate
            for copy in range(copies):
                delivery = Delivery(
                    id=webhook_id if copy == 0 else f"{webhook_id}#{copy + 1}",
                    seq=self._next_seq(),
                    webhook_id=webhook_id,
                    event_id=event_id,
                    topic=topic,
                    subscription_id=sub.id,
                    uri=sub.uri,
                    body=body,
                    api_version=sub.api_version,
                    triggered_at=now,
                    next_attempt_at=now + fault.delay_seconds,
                    status="LOST" if lost else ("HELD" if held else "PENDING"),
                    duplicate=copy > 0,
                    held_until=now + fault.reorder_max_hold_seconds if held else None,
                )
                out.append(delivery)
        for delivery in out:
            if delivery.status == "PENDING":
                self._release_held(delivery)
        for delivery in out:
            sb.world.save(delivery)
            sb.stats.webhook(delivery.topic, "lost" if delivery.status == "LOST" else "queued")
            if delivery.duplicate:
                sb.stats.webhook(delivery.topic, "duplicated")
            if delivery.status != "LOST":
                self._waiting.add(delivery.id)
            else:
                self._finish(delivery)
        if self.on_queued is not None and any(d.status == "PENDING" for d in out):
            self.on_queued()
        return out

    def _release_held(self, after: Delivery) -> None:
        """A later event is going out: held deliveries follow it, so they arrive after it (reordered)."""
        table = self.sb.world.table(Delivery)
        for key in list(self._waiting):
            held = table.get(key)
            if held is not None and held.status == "HELD" and held.seq < after.seq:
                held.status = "PENDING"
                held.held_until = None
                held.next_attempt_at = max(held.next_attempt_at, after.next_attempt_at) + 0.05
                held.seq = self._next_seq()
                self.sb.world.save(held)

    def due(self) -> list[Delivery]:
        now = self.sb.now()
        table = self.sb.world.table(Delivery)
        out = []
        for key in self._waiting - self._in_flight:
            d = table.get(key)
            if d is None or d.status not in ("PENDING", "HELD"):
                self._waiting.discard(key)
                continue
            if d.status == "HELD" and d.held_until is not None and d.held_until <= now:
                d.status = "PENDING"
                d.held_until = None
                self.sb.world.save(d)
            if d.status == "PENDING" and d.next_attempt_at <= now:
                out.append(d)
        return sorted(out, key=lambda d: (d.next_attempt_at, d.seq))

    def headers(self, delivery: Delivery, body: bytes) -> dict[str, str]:
        sb = self.sb
        return {
            "Content-Type": "application/json",
            "User-Agent": "Shopify-Captain-Hook",
            "X-Shopify-Topic": delivery.topic,
            "X-Shopify-Hmac-Sha256": hmac_sha256_base64(sb.config.api_secret, body),
            "X-Shopify-Shop-Domain": sb.world.shop.domain,
            "X-Shopify-API-Version": delivery.api_version,
            "X-Shopify-Webhook-Id": delivery.webhook_id,
            "X-Shopify-Triggered-At": gql_time(delivery.triggered_at) or "",
            "X-Shopify-Event-Id": delivery.event_id,
        }

    async def dispatch_due(self, client: httpx.AsyncClient) -> int:
        """Attempt every delivery that is due, at most ``webhook_concurrency`` at once; returns how many."""
        due = self.due()
        if not due:
            return 0
        if self._gate is None:
            self._gate = asyncio.Semaphore(self.sb.config.webhook_concurrency)
        gate = self._gate
        keys = {d.id for d in due}
        self._in_flight |= keys
        try:
            results = await asyncio.gather(*(self._attempt(client, d, gate) for d in due))
        finally:
            self._in_flight -= keys
        sb = self.sb
        settings = sb.world.settings
        for delivery, outcome in results:
            delivery.attempts += 1
            delivery.history.append(outcome)
            ok = 200 <= outcome.get("status_code", 0) < 300
            if ok:
                delivery.status = "DELIVERED"
                self._waiting.discard(delivery.id)
                sb.stats.webhook(delivery.topic, "sent")
            elif delivery.attempts > settings.webhook_max_retries:
                delivery.status = "FAILED"
                self._waiting.discard(delivery.id)
                sb.stats.webhook(delivery.topic, "failed")
                if settings.remove_failing_subscriptions and not delivery.duplicate:
                    sb.world.remove(WebhookSubscription, delivery.subscription_id)
            else:
                sb.stats.webhook(delivery.topic, "retried")
                backoff = settings.webhook_retry_base_seconds * 2 ** (delivery.attempts - 1)
                delivery.next_attempt_at = sb.now() + backoff
            sb.world.save(delivery)
            if delivery.status in FINAL:
                self._finish(delivery)
        sb.world.commit()
        return len(results)

    def _finish(self, delivery: Delivery) -> None:
        self._finished.append(delivery.id)
        while len(self._finished) > DELIVERY_LOG_SIZE:
            self.sb.world.remove(Delivery, self._finished.popleft())

    async def _attempt(
        self, client: httpx.AsyncClient, delivery: Delivery, gate: asyncio.Semaphore
    ) -> tuple[Delivery, dict[str, Any]]:
        body = delivery.body.encode()
        async with gate:
            outcome: dict[str, Any] = {"at": self.sb.now()}
            if self.sender is not None:
                outcome.update(await self.sender.post(delivery.uri, body, self.headers(delivery, body)))
                return delivery, outcome
            started = time.perf_counter()
            try:
                response = await client.post(delivery.uri, content=body, headers=self.headers(delivery, body))
                outcome["status_code"] = response.status_code
            except httpx.HTTPError as exc:
                outcome["error"] = type(exc).__name__
            except Exception as exc:  # a malformed address must not kill the dispatcher
                log.warning("webhook delivery to %s failed: %s", delivery.uri, exc)
                outcome["error"] = type(exc).__name__
            outcome["response_ms"] = round((time.perf_counter() - started) * 1000, 3)
        return delivery, outcome
