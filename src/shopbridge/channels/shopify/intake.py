"""A store's orders as jobs (reference §4.5, §5, §8.1): what its webhooks name, and the poll that catches what they
missed.

Every store order the hub reads is one of two kinds:

- **placed by the hub** for an order of another channel (customAttribute ``shopbridge_order_id`` = the hub's order
  id, or the store order an ``order_links`` row already names): its fulfillments become shipments of that order
  (``fulfilment.record_shipment``, which sends the tracking to the order's channel) and its cancellation cancels it
  there (``fulfilment.cancelled_in_store``). It is never taken as an order of the store: its units are reserved by
  the order it was placed for, and reserving them again would count them twice;
- **the store's own order** (a web or POS customer's): mapped to a hub order of the channel ``shopify`` and upserted
  like any channel's (``services.orders.upsert_order``), so its units are reserved in the hub and every marketplace
  is shown the lower quantity.

``SYNC_ORDER`` re-reads the orders its payload names (``order_ids``: store order GIDs or legacy ids); the webhook
intake (webhooks.py) queues one per order, coalesced while it waits, and an order's retry queues it with ``source:
retry``. The order is always read again from the Admin API: a webhook's payload may be stale, repeated, or older
than one already processed (reference §7.4, §9). ``POLL_ORDERS`` (periodic per store, connect.py) reads every order
updated since the store's watermark less an overlap, processes them the same way, and only then moves the watermark
to the newest update time it saw (never to "now", so a late write is not skipped). It also queues what inbox events
of the store were recorded but never handed to their jobs (webhooks.queue_waiting).

Handlers call Shopify before they write: reads go through store.db.reading(), writes through transactions of their
own a few orders at a time (as channels/tiktok/sync.py), and the job's own session is touched last.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from shopbridge.channels.shopify import webhooks
from shopbridge.channels.shopify.client import ShopifyClient
from shopbridge.channels.shopify.context import NAME, ShopifyContext, gid, store_client
from shopbridge.channels.shopify.kinds import POLL_ORDERS, SYNC_ORDER, UNINSTALLED
from shopbridge.channels.shopify.mapping import HUB_ORDER_ATTRIBUTE, cancel_reason_in
from shopbridge.domain.money import InvalidAmount, Money
from shopbridge.domain.orders import Order, OrderLine, OrderStatus
from shopbridge.logs import get_logger
from shopbridge.runtime.errors import PermanentError, RetryableError
from shopbridge.runtime.jobs import enqueue, park_account
from shopbridge.runtime.registry import JobContext, JobRegistry
from shopbridge.services import fulfilment
from shopbridge.services.fulfilment import Fulfilment
from shopbridge.services.orders import Settlement, block_unreadable, create_orders, read_catalogue, upsert_order
from shopbridge.store.db import WriteLane, dialect_insert, is_sqlite, reading, transaction
from shopbridge.store.sync_issues import raise_issue
from shopbridge.store.tables import ChannelAccount, ChannelListing, OrderLink, Shipment, SyncWatermark
from shopbridge.store.tables import Order as OrderRow

log = get_logger("shopbridge.shopify.intake")

WATERMARK_STREAM = "orders"
POLL_OVERLAP = timedelta(minutes=5)  # each poll reads again this far behind its watermark (late commits)
INITIAL_LOOKBACK = timedelta(hours=24)  # a store's first poll: its open orders of the last day reserve their units
PLACING_RECHECK = timedelta(seconds=5)  # a hub-placed order whose placing has not committed: read it again then

# Requested cost (reference §2.1; the actual cost, far lower, is what the bucket keeps being charged): an order with
# its four money bags, 50 line items at 6 points, 3 fulfillment orders and 20 fulfillments comes to about 370
# points, so two orders per read stay under the 1000 a query may ask.
LINES_PER_READ = 50
ORDERS_PER_READ = 2
ORDER_COST = 380
ORDER_PAGE = 250  # the poll's listing: id, update time and status words only, one point each
FULFILLMENT_LINES_PER_READ = 50
FULFILLMENTS_PER_READ = 6
FULFILLMENT_COST = 155

MONEY = "shopMoney { amount currencyCode }"
LINE_FIELDS = f"""id sku title quantity variant {{ id }}
  originalUnitPriceSet {{ {MONEY} }} discountedUnitPriceSet {{ {MONEY} }}"""
ORDER_FIELDS = f"""id name createdAt updatedAt processedAt cancelledAt cancelReason closed
  displayFinancialStatus displayFulfillmentStatus currencyCode sourceIdentifier paymentGatewayNames
  customAttributes {{ key value }}
  totalPriceSet {{ {MONEY} }} subtotalPriceSet {{ {MONEY} }} totalShippingPriceSet {{ {MONEY} }}
  totalTaxSet {{ {MONEY} }}
  customer {{ id email displayName }}
  shippingAddress {{ name address1 address2 city province provinceCode zip countryCodeV2 phone }}
  lineItems(first: {LINES_PER_READ}) {{ nodes {{ {LINE_FIELDS} }} pageInfo {{ hasNextPage }} }}
  fulfillmentOrders(first: 3) {{ nodes {{ assignedLocation {{ location {{ id }} }} }} }}
  fulfillments(first: 20) {{ id createdAt status trackingInfo(first: 1) {{ company number url }} }}"""
ORDERS = f"query ($ids: [ID!]!) {{ nodes(ids: $ids) {{ ... on Order {{ {ORDER_FIELDS} }} }} }}"
MORE_LINES = f"""query ($id: ID!, $first: Int!, $after: String) {{ order(id: $id) {{
  lineItems(first: $first, after: $after) {{ nodes {{ {LINE_FIELDS} }} pageInfo {{ hasNextPage endCursor }} }} }} }}"""
UPDATED_SINCE = """query ($first: Int!, $after: String, $query: String) {
  orders(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) {
    nodes { id updatedAt cancelledAt closed displayFinancialStatus displayFulfillmentStatus }
    pageInfo { hasNextPage endCursor } } }"""
FULFILLMENT_LINE_FIELDS = "quantity lineItem { sku variant { id } }"
FULFILLMENT_LINES = f"""query ($ids: [ID!]!) {{ nodes(ids: $ids) {{ ... on Fulfillment {{ id
  fulfillmentLineItems(first: {FULFILLMENT_LINES_PER_READ}) {{ nodes {{ {FULFILLMENT_LINE_FIELDS} }}
    pageInfo {{ hasNextPage }} }} }} }} }}"""
MORE_FULFILLMENT_LINES = f"""query ($id: ID!, $first: Int!, $after: String) {{ fulfillment(id: $id) {{
  fulfillmentLineItems(first: $first, after: $after) {{ nodes {{ {FULFILLMENT_LINE_FIELDS} }}
    pageInfo {{ hasNextPage endCursor }} }} }} }}"""

# displayFinancialStatus values under which the store has the buyer's money (or its authorization): the order waits
# for shipment. PENDING, EXPIRED, VOIDED and no status at all mean it is not paid.
PAID = frozenset({"PAID", "AUTHORIZED", "PARTIALLY_PAID", "PARTIALLY_REFUNDED", "REFUNDED"})
SHIPPED_FULFILMENT = "SUCCESS"  # FulfillmentStatus of a fulfillment that left (CANCELLED, ERROR, FAILURE did not)


# --- pure mapping ------------------------------------------------------------------------------------------------


class StoreOrderUnreadable(ValueError):
    """A store order the hub cannot map: names the order and the field."""

    def __init__(self, order_id: str, field: str, problem: str) -> None:
        super().__init__(f"store order {order_id}: {field} {problem}")
        self.field = field


def hub_order_id(order: Mapping[str, Any]) -> int | None:
    """The hub order a store order was placed for (its ``shopbridge_order_id`` attribute), or None for the store's
    own order. An attribute that is not a number is no hub order id (a merchant may have typed one)."""
    for attribute in order.get("customAttributes") or ():
        if isinstance(attribute, Mapping) and attribute.get("key") == HUB_ORDER_ATTRIBUTE:
            value = str(attribute.get("value") or "").strip()
            return int(value) if value.isdigit() else None
    return None


def order_status(order: Mapping[str, Any]) -> OrderStatus:
    """The hub's status of a store order: cancelled first; then what left the store (a closed, fulfilled order is
    complete); then whether it is paid."""
    if order.get("cancelledAt"):
        return OrderStatus.CANCELLED
    shipped = order.get("displayFulfillmentStatus")
    if shipped == "FULFILLED":
        return OrderStatus.COMPLETED if order.get("closed") else OrderStatus.IN_TRANSIT
    if shipped == "PARTIALLY_FULFILLED":
        return OrderStatus.PARTIALLY_SHIPPED
    if order.get("displayFinancialStatus") in PAID:
        return OrderStatus.AWAITING_SHIPMENT
    return OrderStatus.UNPAID


def channel_status(order: Mapping[str, Any]) -> str:
    """The store's own words for the order's state, kept verbatim beside the hub's: ``PAID/UNFULFILLED``,
    ``PAID/FULFILLED/CLOSED``, ``CANCELLED``."""
    if order.get("cancelledAt"):
        return "CANCELLED"
    words = [str(order.get("displayFinancialStatus") or "NONE"), str(order.get("displayFulfillmentStatus") or "NONE")]
    if order.get("closed"):
        words.append("CLOSED")
    return "/".join(words)


def map_order(order: Mapping[str, Any]) -> Order:
    """The hub order for one of the store's own orders (the ``nodes`` answer of ORDER_FIELDS, with every line item
    read). Amounts are the shop's money in the order's currency; a line is a variant (several line items of one
    variant are one line, their ids kept) or, for a custom line item without a variant, the line item itself (it
    links to nothing, so the order is Blocked until a person looks). StoreOrderUnreadable names what is wrong."""
    order_id = _text(order, "id", "?")
    currency = _text(order, "currencyCode", order_id)
    total = _money(order.get("totalPriceSet"), currency, order_id, "totalPriceSet")
    if total is None:
        raise StoreOrderUnreadable(order_id, "totalPriceSet", "is missing")
    created = _time(order.get("processedAt") or order.get("createdAt"), order_id, "processedAt")
    locations = [
        str(((node.get("assignedLocation") or {}).get("location") or {}).get("id") or "")
        for node in ((order.get("fulfillmentOrders") or {}).get("nodes") or ())
        if isinstance(node, Mapping)
    ]
    customer: Mapping[str, Any] = order.get("customer") or {}
    address = order.get("shippingAddress")
    gateways = [str(name) for name in order.get("paymentGatewayNames") or () if name]
    return Order(
        channel=NAME,
        external_id=order_id,
        channel_status=channel_status(order),
        status=order_status(order),
        currency=currency,
        total=total,
        subtotal=_money(order.get("subtotalPriceSet"), currency, order_id, "subtotalPriceSet"),
        shipping=_money(order.get("totalShippingPriceSet"), currency, order_id, "totalShippingPriceSet"),
        tax=_money(order.get("totalTaxSet"), currency, order_id, "totalTaxSet"),
        lines=_lines(order, currency, order_id),
        created_at=created,
        updated_at=_time(order.get("updatedAt") or order.get("createdAt"), order_id, "updatedAt"),
        payment_method=", ".join(gateways)[:100] or None,
        buyer={key: value for key, value in {"name": order.get("name"), "customer_id": customer.get("id"),
                                             "email": customer.get("email"),
                                             "customer_name": customer.get("displayName")}.items() if value},
        recipient=dict(address) if isinstance(address, Mapping) else {},
        warehouse_id=next((location for location in locations if location), None),
    )  # fmt: skip


def _lines(order: Mapping[str, Any], currency: str, order_id: str) -> tuple[OrderLine, ...]:
    items = (order.get("lineItems") or {}).get("nodes")
    if not isinstance(items, list) or not items:
        raise StoreOrderUnreadable(order_id, "lineItems", "is missing or empty")
    grouped: dict[str, list[Mapping[str, Any]]] = {}
    for index, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise StoreOrderUnreadable(order_id, f"lineItems[{index}]", "is not an object")
        line_id = _text(item, "id", order_id)
        variant = (item.get("variant") or {}).get("id")
        grouped.setdefault(str(variant) if variant else line_id, []).append(item)
    lines = []
    for key, same in grouped.items():
        first = same[0]
        quantity = 0
        for item in same:
            units = item.get("quantity")
            if not isinstance(units, int) or isinstance(units, bool) or units < 0:
                raise StoreOrderUnreadable(order_id, f"lineItems {item.get('id')}.quantity", f"is {units!r}")
            quantity += units
        price = _money(first.get("discountedUnitPriceSet"), currency, order_id, "lineItems.discountedUnitPriceSet")
        price = price or _money(first.get("originalUnitPriceSet"), currency, order_id, "lineItems.originalUnitPriceSet")
        if price is None:
            raise StoreOrderUnreadable(order_id, f"lineItems {first.get('id')}.originalUnitPriceSet", "is missing")
        sku = str(first.get("sku") or "").strip() or None
        lines.append(OrderLine(external_sku_id=key, seller_sku=sku, title=str(first.get("title") or sku or key),
                               quantity=quantity, unit_price=price,
                               line_item_ids=tuple(str(item["id"]) for item in same)))  # fmt: skip
    return tuple(lines)


def fulfilments(order: Mapping[str, Any], hub_variants: Mapping[str, int]) -> list[Fulfilment]:
    """The shipments a store order's fulfillments make: each fulfillment that left (status SUCCESS) with a tracking
    number, its lines as ``{sku, variant_id, quantity}`` (``variant_id`` the hub's variant, from the store's
    listings in ``hub_variants`` by variant GID; None for a variant the hub does not know). A fulfillment still
    without a tracking number is left for a later read: the order's channel needs one, and a shipment is recorded
    once per fulfillment."""
    shipped = []
    for node in order.get("fulfillments") or ():
        if not isinstance(node, Mapping) or node.get("status") != SHIPPED_FULFILMENT:
            continue
        tracking = next((info for info in node.get("trackingInfo") or () if isinstance(info, Mapping)), {})
        number = str(tracking.get("number") or "").strip()
        if not number:
            continue
        fulfilment_id = _text(node, "id", str(order.get("id")))
        lines = []
        for line in (node.get("fulfillmentLineItems") or {}).get("nodes") or ():
            variant = _variant_of(line)
            lines.append({"sku": (line.get("lineItem") or {}).get("sku") or None,
                          "variant_id": hub_variants.get(variant) if variant else None,
                          "quantity": int(line.get("quantity") or 0)})  # fmt: skip
        shipped.append(Fulfilment(
            external_id=fulfilment_id, carrier=str(tracking.get("company") or "").strip() or None,
            tracking_number=number, tracking_url=str(tracking.get("url") or "").strip() or None, lines=lines,
            shipped_at=_time(node.get("createdAt"), fulfilment_id, "createdAt"),
        ))  # fmt: skip
    return shipped


def _text(record: Mapping[str, Any], key: str, order_id: str) -> str:
    value = record.get(key)
    if not isinstance(value, str) or not value:
        raise StoreOrderUnreadable(order_id, key, "is missing")
    return value


def _time(value: Any, order_id: str, field_name: str) -> datetime:
    if not isinstance(value, str):
        raise StoreOrderUnreadable(order_id, field_name, f"is not a date-time: {value!r}")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise StoreOrderUnreadable(order_id, field_name, f"is not a date-time: {value!r}") from None
    if moment.tzinfo is None:
        raise StoreOrderUnreadable(order_id, field_name, f"has no time zone: {value!r}")
    return moment.astimezone(UTC)


def _money(bag: Any, currency: str, order_id: str, field_name: str) -> Money | None:
    if bag is None:
        return None
    shop = bag.get("shopMoney") if isinstance(bag, Mapping) else None
    if not isinstance(shop, Mapping):
        raise StoreOrderUnreadable(order_id, field_name, "has no shopMoney")
    if shop.get("currencyCode") != currency:
        raise StoreOrderUnreadable(order_id, field_name, f"is in {shop.get('currencyCode')}, the order in {currency}")
    try:
        return Money.parse(Decimal(str(shop.get("amount"))).normalize(), currency)
    except (InvalidAmount, ArithmeticError) as error:
        raise StoreOrderUnreadable(order_id, field_name, str(error)) from None


# --- reading the store -------------------------------------------------------------------------------------------


def read_orders(client: ShopifyClient, order_ids: Sequence[str]) -> list[dict[str, Any]]:
    """The named orders with every line item (orders the store no longer has are left out)."""
    found: list[dict[str, Any]] = []
    for start in range(0, len(order_ids), ORDERS_PER_READ):
        chunk = list(order_ids[start : start + ORDERS_PER_READ])
        nodes = client.query(ORDERS, {"ids": chunk}, cost=2 + ORDER_COST * len(chunk)).get("nodes") or []
        for node in nodes:
            if not node:
                continue
            connection = node.get("lineItems") or {}
            if (connection.get("pageInfo") or {}).get("hasNextPage"):
                node["lineItems"] = {"nodes": list(client.nodes(MORE_LINES, {"id": node["id"]},
                                                                ("order", "lineItems"), page_size=100))}  # fmt: skip
            found.append(node)
    return found


def read_fulfilment_lines(client: ShopifyClient, fulfilment_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """Each fulfillment's line items (what left in it), read only for fulfillments the hub has not recorded yet."""
    lines: dict[str, list[dict[str, Any]]] = {}
    for start in range(0, len(fulfilment_ids), FULFILLMENTS_PER_READ):
        chunk = list(fulfilment_ids[start : start + FULFILLMENTS_PER_READ])
        data = client.query(FULFILLMENT_LINES, {"ids": chunk}, cost=2 + FULFILLMENT_COST * len(chunk))
        for node in data.get("nodes") or []:
            if not node:
                continue
            connection = node.get("fulfillmentLineItems") or {}
            if (connection.get("pageInfo") or {}).get("hasNextPage"):
                lines[node["id"]] = list(
                    client.nodes(
                        MORE_FULFILLMENT_LINES,
                        {"id": node["id"]},
                        ("fulfillment", "fulfillmentLineItems"),
                        page_size=100,
                    )
                )
            else:
                lines[node["id"]] = list(connection.get("nodes") or [])
    return lines


# --- sorting what was read -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Placed:
    """A store order the hub placed, with its link and the shipments its fulfillments make."""

    order_id: str  # the store order's GID
    link_id: int
    shipments: list[Fulfilment]
    cancel_reason: str | None  # the hub's reason, when the store cancelled it


@dataclass
class Sorted:
    own: list[Order | tuple[str, str | None, str]] = field(default_factory=list)  # or (gid, its status, problem)
    placed: list[Placed] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)  # hub-placed orders whose placing has not committed yet
    strays: list[tuple[str, str]] = field(default_factory=list)  # (gid, why) hub-placed orders the hub cannot pair


def _links(session: Session, account_id: int, nodes: Sequence[Mapping[str, Any]]) -> list[OrderLink]:
    hub_ids = sorted({number for node in nodes if (number := hub_order_id(node)) is not None})
    ids = [str(node["id"]) for node in nodes]
    return list(session.scalars(
        select(OrderLink).where(OrderLink.channel_account_id == account_id,
                                or_(OrderLink.order_id.in_(hub_ids), OrderLink.external_id.in_(ids)))
    ))  # fmt: skip


def sort_orders(context: ShopifyContext, client: ShopifyClient, account_id: int,
                nodes: Sequence[dict[str, Any]]) -> Sorted:  # fmt: skip
    """Tell the hub's placed orders from the store's own, and read what recording the placed ones needs: the lines
    of their new fulfillments, and the hub variants those lines are. Reads only (no write lock held)."""
    result = Sorted()
    with reading(context.sessions) as session:
        links = _links(session, account_id, nodes)
    by_order = {link.order_id: link for link in links}
    by_store_order = {link.external_id: link for link in links if link.external_id}
    pending: list[tuple[dict[str, Any], OrderLink]] = []
    for node in nodes:
        store_order = str(node["id"])
        hub_id = hub_order_id(node)
        link = by_store_order.get(store_order) or (by_order.get(hub_id) if hub_id is not None else None)
        if link is None and hub_id is None:
            try:
                result.own.append(map_order(node))
            except StoreOrderUnreadable as error:
                result.own.append((store_order, node.get("displayFinancialStatus"), str(error)))
        elif link is None:
            result.strays.append(
                (store_order, f"it names hub order {hub_id}, which the hub never placed in this store")
            )
        elif link.external_id is None:
            result.waiting.append(store_order)
        elif link.external_id != store_order:
            result.strays.append((store_order, f"hub order {link.order_id} was placed as {link.external_id}; this "
                                               "is a second store order for it (cancel one in the store)"))  # fmt: skip
        else:
            pending.append((node, link))
    if pending:
        result.placed = _placed(context, client, account_id, pending)
    return result


def _placed(context: ShopifyContext, client: ShopifyClient, account_id: int,
            pending: list[tuple[dict[str, Any], OrderLink]]) -> list[Placed]:  # fmt: skip
    fulfilment_ids = [f.external_id for order, _ in pending for f in fulfilments(order, {})]
    with reading(context.sessions) as session:
        recorded = set(session.scalars(select(Shipment.external_id).where(
            Shipment.channel_account_id == account_id, Shipment.external_id.in_(fulfilment_ids)
        ))) if fulfilment_ids else set()  # fmt: skip
    new = [fulfilment_id for fulfilment_id in fulfilment_ids if fulfilment_id not in recorded]
    lines = read_fulfilment_lines(client, new) if new else {}
    variants = sorted({variant for found in lines.values() for line in found if (variant := _variant_of(line))})
    with reading(context.sessions) as session:
        hub_variants = {str(sku_id): int(variant_id) for sku_id, variant_id in session.execute(
            select(ChannelListing.external_sku_id, ChannelListing.variant_id).where(
                ChannelListing.channel_account_id == account_id, ChannelListing.external_sku_id.in_(variants),
                ChannelListing.variant_id.is_not(None))
        ) if variant_id is not None} if variants else {}  # fmt: skip
    placed = []
    for order, link in pending:
        for node in order.get("fulfillments") or ():
            if node.get("id") in lines:
                node["fulfillmentLineItems"] = {"nodes": lines[node["id"]]}
        shipments = [shipment for shipment in fulfilments(order, hub_variants) if shipment.external_id in lines]
        reason = cancel_reason_in(order.get("cancelReason")).value if order.get("cancelledAt") else None
        placed.append(Placed(str(order["id"]), link.id, shipments, reason))
    return placed


def _variant_of(fulfilment_line: Mapping[str, Any]) -> str | None:
    variant = ((fulfilment_line.get("lineItem") or {}).get("variant") or {}).get("id")
    return str(variant) if variant else None


# --- writing ---------------------------------------------------------------------------------------------------


def _write_chunk(context: ShopifyContext) -> int:
    """Orders per transaction: twenty on SQLite (one writer, each transaction waits its turn), one on PostgreSQL
    (no transaction holds the stock rows of several orders), as channels/tiktok/sync.py."""
    return 20 if is_sqlite(context.sessions.kw["bind"]) else 1


def store(context: ShopifyContext, ctx: JobContext, account_id: int, read: Sorted, source: str) -> None:
    """Write what was read, a few orders per transaction: the store's own orders upserted (an unreadable one kept
    Blocked with the field named), the hub's placed orders' shipments and cancellations recorded, and an issue for
    each hub-placed order the hub cannot pair with what it placed. Every step is idempotent, so a crash between
    transactions only means a re-read."""
    with reading(context.sessions) as session:
        account = session.get(ChannelAccount, account_id)
        catalogue = read_catalogue(session, account_id, [order for order in read.own if isinstance(order, Order)])
    if account is None:
        raise PermanentError(f"channel account {account_id} no longer exists")
    chunk = _write_chunk(context)
    work: list[Order | tuple[str, str | None, str] | Placed] = [*read.own, *read.placed]
    for start in range(0, len(work), chunk):
        with transaction(context.sessions, lane=WriteLane.ENGINE) as session:
            session.connection()  # stamp after taking the write lock, so updated_at follows commit order
            now = ctx.write_time()
            settlement = Settlement()
            part = work[start : start + chunk]
            for item in part:
                if isinstance(item, tuple):
                    order_id, status, problem = item
                    block_unreadable(session, account, order_id, status, problem, now=now)
                elif isinstance(item, Placed):
                    _record_placed(session, item, now)
            readable = [item for item in part if isinstance(item, Order)]
            for order in create_orders(
                session, account, readable, source=source, now=now, catalogue=catalogue, settlement=settlement
            ):
                upsert_order(session, account, order, source=source, now=now, force=source == "retry",
                             catalogue=catalogue, settlement=settlement, known=True)  # fmt: skip
            settlement.write(session, now=now)
    if read.strays:
        with transaction(context.sessions, lane=WriteLane.ENGINE) as session:
            for order_id, why in read.strays:
                raise_issue(session, kind="store_order_unpaired", severity="error",
                            fingerprint=f"store_order_unpaired:{account_id}:{order_id}",
                            message=f"{account.label} order {order_id} carries a hub order id but {why}",
                            now=ctx.write_time(), channel_account_id=account_id, subject_type="store_order",
                            subject_id=order_id, details={"act": "ops"})  # fmt: skip


def _record_placed(session: Session, placed: Placed, now: datetime) -> None:
    link = session.get(OrderLink, placed.link_id, with_for_update=True)
    if link is None:  # links are removed only with their order
        return
    for shipment in placed.shipments:
        fulfilment.record_shipment(session, link, shipment, now=now)
    if placed.cancel_reason is not None and link.state != "cancelled":
        fulfilment.cancelled_in_store(session, link, placed.cancel_reason, now=now)


# --- the jobs ------------------------------------------------------------------------------------------------


def sync_order(context: ShopifyContext, ctx: JobContext) -> None:
    """Re-read the store orders the payload names and bring the hub in line with them. A hub-placed order whose
    placing has not committed yet (its link has no store order id) is read again after a short wait."""
    account_id = _account_id(ctx)
    named = [gid("Order", str(order_id)) for order_id in ctx.payload.get("order_ids") or ()]
    if not named:
        raise PermanentError(f"{ctx.kind} job {ctx.job_id} names no order (payload order_ids)")
    _, client = store_client(context, account_id)
    nodes = read_orders(client, list(dict.fromkeys(named)))
    gone = set(named) - {str(node["id"]) for node in nodes}
    if gone:  # orders/delete, or an order the store no longer shows: nothing in it to act on
        log.info("shopify.order_gone", account_id=account_id, orders=sorted(gone))
    read = sort_orders(context, client, account_id, nodes)
    store(context, ctx, account_id, read, str(ctx.payload.get("source") or "webhook"))
    if read.waiting:
        raise RetryableError(
            f"store order(s) {', '.join(read.waiting)} were placed by the hub, whose placing has not committed yet; "
            "reading again shortly", retry_after=PLACING_RECHECK.total_seconds(),
        )  # fmt: skip


def poll_orders(context: ShopifyContext, ctx: JobContext) -> None:
    """The backstop: every order updated since the watermark less POLL_OVERLAP (INITIAL_LOOKBACK back on the first
    run), the store's own ones the hub already has at that update time left out; then the watermark moves to the
    newest update time seen. Inbox events of the store that were never handed to their jobs are queued first."""
    account_id = _account_id(ctx)
    webhooks.queue_waiting(context, account_id, now=ctx.write_time())
    with reading(context.sessions) as session:
        watermark = session.get(SyncWatermark, (account_id, WATERMARK_STREAM))
    since = watermark.value - POLL_OVERLAP if watermark is not None else ctx.now - INITIAL_LOOKBACK
    _, client = store_client(context, account_id)
    search = f"updated_at:>='{since.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%SZ')}'"
    listed = list(client.nodes(UPDATED_SINCE, {"query": search}, ("orders",), page_size=ORDER_PAGE))
    changed = _changed(context, account_id, listed)
    read = sort_orders(context, client, account_id, read_orders(client, changed))
    store(context, ctx, account_id, read, "poll")
    for order_id in read.waiting:  # its own job waits for the placing to commit; the poll moves on
        enqueue(ctx.session, SYNC_ORDER, {"order_ids": [order_id], "source": "poll"}, now=ctx.now,
                due_at=ctx.now + PLACING_RECHECK, channel_account_id=account_id,
                identity_key=webhooks.sync_identity(account_id, order_id))  # fmt: skip
    seen = [_time(node.get("updatedAt"), str(node.get("id")), "updatedAt") for node in listed if node.get("updatedAt")]
    if seen and (watermark is None or max(seen) > watermark.value):
        newest = max(seen)
        ctx.session.execute(
            dialect_insert(ctx.session)(SyncWatermark)
            .values(channel_account_id=account_id, stream=WATERMARK_STREAM, value=newest, updated_at=ctx.now)
            .on_conflict_do_update(index_elements=["channel_account_id", "stream"],
                                   set_={"value": newest, "updated_at": ctx.now})
        )  # fmt: skip


def _changed(context: ShopifyContext, account_id: int, listed: Iterable[Mapping[str, Any]]) -> list[str]:
    """The listed orders to read: all but the store's own orders the hub already holds as listed (the poll's overlap
    re-lists them every time). Update times are whole seconds, so one listed at the second the hub holds is read
    again if its status words differ (a cancellation in the second it was created), as upsert_order itself decides.
    Hub-placed orders have no such row and are always read."""
    listed = [node for node in listed if node.get("id")]
    ids = [str(node["id"]) for node in listed]
    known: dict[str, tuple[datetime, str]] = {}
    with reading(context.sessions) as session:
        for start in range(0, len(ids), 500):
            rows = session.execute(
                select(OrderRow.external_id, OrderRow.channel_updated_at, OrderRow.channel_status).where(
                    OrderRow.channel_account_id == account_id, OrderRow.external_id.in_(ids[start : start + 500]))
            ).all()  # fmt: skip
            known.update((external_id, (updated, words)) for external_id, updated, words in rows)
    wanted = []
    for node in listed:
        held = known.get(str(node["id"]))
        if held is None or not isinstance(node.get("updatedAt"), str):
            wanted.append(str(node["id"]))
            continue
        held_at = held[0] if held[0].tzinfo else held[0].replace(tzinfo=UTC)
        updated = _time(node["updatedAt"], str(node["id"]), "updatedAt")
        if updated > held_at or (updated == held_at and channel_status(node) != held[1]):
            wanted.append(str(node["id"]))
    return list(dict.fromkeys(wanted))


def uninstalled(ctx: JobContext) -> None:
    """app/uninstalled: the store revoked the hub's token. Its account's waiting work is parked and the account
    flagged for reconnection (runtime.jobs.park_account, as a TikTok deauthorization)."""
    account_id = _account_id(ctx)
    park_account(ctx.session, account_id, reason="the app was uninstalled from the store (app/uninstalled)",
                 now=ctx.now)  # fmt: skip


def _account_id(ctx: JobContext) -> int:
    if ctx.channel_account_id is None:
        raise PermanentError(f"{ctx.kind} job {ctx.job_id} names no channel account")
    return ctx.channel_account_id


def register(registry: JobRegistry, context: ShopifyContext) -> None:
    registry.register(SYNC_ORDER, partial(sync_order, context), priority=5, serial=True)
    registry.register(POLL_ORDERS, partial(poll_orders, context))
    registry.register(UNINSTALLED, uninstalled, priority=1)
