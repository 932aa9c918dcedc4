"""Orders the hub places in the store for other channels (services/fulfilment.py): a released marketplace order
becomes a paid store order (reference §4.1), and its cancellation on the marketplace cancels that order (§4.4).

**PLACE_ORDER never places twice.** Its ``order_links`` row was written before the job was queued. The job first
looks the order up in the store (``sourceIdentifier`` is the marketplace's order id, and the ``shopbridge_order_id``
attribute the hub's), so an order created by an attempt whose answer was lost is found, not created again. Its
``orderCreate`` carries an ``@idempotent`` key made of the link, the placement round (the link's ``updated_at`` when
it became ``placing``) and the input: two attempts in flight at once, or one the store's search does not show yet,
create one order, and a retry after a refusal is a new request, not a replay of the refusal Shopify kept under the
old key. The order commits its units in the
store (``DECREMENT_IGNORING_POLICY``): the hub already holds them for the order (stock.py counts them as held), and
an order the marketplace sold must be fulfilled even where the store shows none left. A refusal (a variant deleted
from the store, a line it has no listing for, any userError) is no failure of the job: the link is ``refused`` and
the order Blocked with ``store_refused`` until a retry of the order places it again.

**CANCEL_ORDER** cancels the store order with restock and no refund (the buyer is refunded on the marketplace). A
store that refuses (the order has fulfilments) leaves the link ``cancel_refused`` with an issue for ops.

Handlers call Shopify before they first touch ctx.session (see stock.py); reads go through store.db.reading().
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from functools import partial
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shopbridge.channels.shopify.client import ShopifyClient, ShopifyPermanent, UserError, UserErrors
from shopbridge.channels.shopify.context import ShopifyContext, setting, store_client
from shopbridge.channels.shopify.kinds import CANCEL_ORDER, PLACE_ORDER
from shopbridge.channels.shopify.mapping import HUB_ORDER_ATTRIBUTE, cancel_reason_out
from shopbridge.domain.money import Money
from shopbridge.domain.orders import CancelReason
from shopbridge.logs import get_logger
from shopbridge.runtime.errors import PermanentError, RetryableError
from shopbridge.runtime.registry import JobContext, JobRegistry
from shopbridge.services.fulfilment import cancel_confirmed, cancel_refused_by_store, placed_in_store, refused_by_store
from shopbridge.services.links import GONE
from shopbridge.store.db import reading
from shopbridge.store.tables import ChannelAccount, ChannelListing, Order, OrderLine, OrderLink

TAG = "shopbridge"
SELLER_DISCOUNTS, ALL_DISCOUNTS = "seller", "all"  # the account's ``discounts`` setting (context.py)
OPTIONS = {"inventoryBehaviour": "DECREMENT_IGNORING_POLICY", "sendReceipt": False, "sendFulfillmentReceipt": False}
CANCELLABLE = ("cancel_requested", "cancel_refused")  # cancel_refused: a replayed job tries again
CONCURRENT = "IDEMPOTENCY_CONCURRENT_REQUEST"

FIND_ORDERS = """query ($query: String!) { orders(first: 10, query: $query) {
  nodes { id name cancelledAt customAttributes { key value } } } }"""
CREATE_ORDER = """mutation ($order: OrderCreateOrderInput!, $options: OrderCreateOptionsInput, $key: String!) {
  orderCreate(order: $order, options: $options) @idempotent(key: $key) {
    order { id name } userErrors { field message code } } }"""
CANCEL = """mutation ($id: ID!, $reason: OrderCancelReason!, $note: String, $key: String!) {
  orderCancel(orderId: $id, reason: $reason, restock: true, notifyCustomer: false,
              refundMethod: {originalPaymentMethodsRefund: false}, staffNote: $note) @idempotent(key: $key) {
    job { id done } orderCancelUserErrors { field message code } } }"""
CANCELLED_AT = """query ($id: ID!) { order(id: $id) { id cancelledAt } }"""

log = get_logger("shopbridge.shopify.orders")


# --- the store order, built from the hub's (pure) ------------------------------------------------------------


@dataclass(frozen=True)
class LineToPlace:
    variant_gid: str  # the store's ProductVariant
    sku: str | None
    title: str
    quantity: int
    unit_price_minor: int


@dataclass(frozen=True)
class Placement:
    """What a store order is built from: the hub's order, the channel it came from, its lines as the store lists
    them. ``buyer`` and ``recipient`` are as the origin channel sent them (TikTok's words, masked by TikTok)."""

    order_id: int
    external_id: str
    origin_channel: str
    origin_label: str
    currency: str
    subtotal_minor: int | None
    shipping_minor: int | None
    tax_minor: int | None
    created_at: datetime
    lines: tuple[LineToPlace, ...]
    buyer: Mapping[str, Any] = field(default_factory=dict)
    recipient: Mapping[str, Any] = field(default_factory=dict)


def unit_prices(placement: Placement, discounts: str = SELLER_DISCOUNTS) -> list[int]:
    """Each line's unit price in minor units. ``seller``: as the origin channel sold it, after the seller's own
    discounts (a discount the platform funds is paid to the seller by the platform, so the store books what the
    seller is paid). ``all``: the order's subtotal spread over the lines, so every discount is off (to the cent)."""
    prices = [line.unit_price_minor for line in placement.lines]
    listed = sum(price * line.quantity for price, line in zip(prices, placement.lines, strict=True))
    if discounts != ALL_DISCOUNTS or placement.subtotal_minor is None or not 0 <= placement.subtotal_minor < listed:
        return prices
    share = Decimal(placement.subtotal_minor) / Decimal(listed)
    return [int((price * share).to_integral_value(ROUND_HALF_EVEN)) for price in prices]


def order_input(placement: Placement, *, discounts: str = SELLER_DISCOUNTS, now: datetime) -> dict[str, Any]:
    """``OrderCreateOrderInput`` for a paid order of another channel: the lines by the store's variants at the
    prices the discounts setting names, the shipping and tax the buyer paid, one successful sale for the total,
    the address and e-mail where the channel gave them, and the origin named in the source fields, a tag and
    attributes. ``processedAt`` is when the channel took the order, never later than ``now`` (a clock ahead of the
    store's would be refused)."""
    currency = placement.currency

    def money(minor: int) -> dict[str, Any]:
        return {"shopMoney": {"amount": str(Money.from_minor(minor, currency).amount), "currencyCode": currency}}

    prices = unit_prices(placement, discounts)
    goods = sum(price * line.quantity for price, line in zip(prices, placement.lines, strict=True))
    shipping, tax = placement.shipping_minor or 0, placement.tax_minor or 0
    origin = placement.origin_label
    order: dict[str, Any] = {
        "currency": currency,
        "lineItems": [{"variantId": line.variant_gid, "quantity": line.quantity, "priceSet": money(price)}
                      for price, line in zip(prices, placement.lines, strict=True)],
        "financialStatus": "PAID",
        "transactions": [{"kind": "SALE", "status": "SUCCESS", "gateway": placement.origin_channel,
                          "amountSet": money(goods + shipping + tax)}],
        "sourceName": placement.origin_channel,
        "sourceIdentifier": placement.external_id,
        "tags": [origin, TAG],
        "customAttributes": [{"key": HUB_ORDER_ATTRIBUTE, "value": str(placement.order_id)},
                             {"key": f"{placement.origin_channel}_order_id", "value": placement.external_id}],
        "note": f"{origin} order {placement.external_id}, placed by shopbridge to be fulfilled here. The buyer paid "
        f"on {origin}; refunds are made there.",
        "processedAt": min(placement.created_at, now).isoformat(),
    }  # fmt: skip
    if placement.shipping_minor is not None:
        order["shippingLines"] = [{"title": f"{origin} shipping", "source": placement.origin_channel,
                                   "priceSet": money(shipping)}]  # fmt: skip
    if tax:
        rate = (Decimal(tax) / Decimal(goods)).quantize(Decimal("0.0001")) if goods else Decimal(0)
        order["taxLines"] = [{"title": "Tax", "rate": str(rate), "priceSet": money(tax)}]
    email = placement.buyer.get("buyer_email") or placement.buyer.get("email")
    if email:
        order["email"] = str(email)
    address = shipping_address(placement.recipient)
    if address:
        order["shippingAddress"] = address
    return order


def shipping_address(recipient: Mapping[str, Any]) -> dict[str, str] | None:
    """``MailingAddressInput`` from a recipient as the origin channel gave it (TikTok's ``recipient_address``:
    ``address_line1``, ``postal_code``, ``region_code``, ``district_info`` by level), or None without a street. The
    province goes as a code only where the channel gives one (``iso_code`` "US-CA"); a masked phone is left out."""
    street = recipient.get("address_line1")
    if not street:
        return None
    first, last = recipient.get("first_name"), recipient.get("last_name")
    if not (first or last) and recipient.get("name"):
        first, _, last = str(recipient["name"]).partition(" ")
    levels = {d.get("address_level"): d for d in recipient.get("district_info") or [] if isinstance(d, Mapping)}
    city = recipient.get("city") or (levels.get("L3") or levels.get("L2") or {}).get("address_name")
    province = str((levels.get("L1") or {}).get("iso_code") or "").rpartition("-")[2]
    phone = str(recipient.get("phone_number") or "")
    address = {
        "firstName": first, "lastName": last, "address1": street, "address2": recipient.get("address_line2"),
        "city": city, "zip": recipient.get("postal_code"), "countryCode": recipient.get("region_code"),
        "provinceCode": province if 0 < len(province) <= 3 else None, "phone": phone if "*" not in phone else None,
    }  # fmt: skip
    return {key: str(value) for key, value in address.items() if value}


def place_key(link_id: int, placement_round: str, order: Mapping[str, Any]) -> str:
    """The ``@idempotent`` key of one placement: the link, its round (a retry after a refusal starts another), and
    the input itself, since Shopify refuses a key reused with other arguments."""
    text = json.dumps(order, sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(f"{placement_round}|{text}".encode()).hexdigest()[:32]
    return f"shopbridge-place-{link_id}-{digest}"


def explain(errors: Sequence[UserError], lines: Sequence[LineToPlace]) -> str:
    """What Shopify said, a line item named by its SKU rather than its index in the input."""
    said = []
    for error in errors:
        path = error.field or []
        where = ".".join(path)
        if len(path) >= 3 and path[1] == "lineItems" and path[2].isdigit() and int(path[2]) < len(lines):
            line = lines[int(path[2])]
            where = f"line {line.sku or line.title}"
        text = f"{where}: {error.message}" if where else error.message
        said.append(f"{text} ({error.code})" if error.code else text)
    return "; ".join(said)


# --- reading the hub and the store ---------------------------------------------------------------------------


def read_placement(session: Session, link: OrderLink, store: ChannelAccount) -> tuple[Placement, list[str]]:
    """The placement of a link's order, and why the store cannot take it (a line without a listing there, a
    variant the store deleted, another currency): empty when it can."""
    order = session.get(Order, link.order_id)
    assert order is not None
    origin = session.get(ChannelAccount, order.channel_account_id)
    assert origin is not None
    rows = session.scalars(select(OrderLine).where(OrderLine.order_id == order.id).order_by(OrderLine.id)).all()
    listings = session.execute(
        select(ChannelListing.variant_id, ChannelListing.external_sku_id, ChannelListing.status)
        .where(ChannelListing.channel_account_id == store.id, ChannelListing.link != "unlinked",
               ChannelListing.variant_id.in_(sorted({row.variant_id for row in rows if row.variant_id is not None})))
        .order_by(ChannelListing.id)
    ).all()  # fmt: skip
    listed: dict[int | None, str] = {}
    deleted: set[int | None] = set()
    for variant_id, listed_gid, status in listings:
        if status == GONE:
            deleted.add(variant_id)
        else:
            listed.setdefault(variant_id, listed_gid)
    problems: list[str] = []
    if store.currency and store.currency != order.currency:
        problems.append(f"the order is in {order.currency} and the store sells in {store.currency}")
    lines = []
    for row in rows:
        variant_gid = listed.get(row.variant_id)
        label = row.sku or row.title
        if variant_gid is None:
            problems.append(f"SKU {label} was deleted from the store" if row.variant_id in deleted
                            else f"SKU {label} has no listing in the store")  # fmt: skip
            continue
        lines.append(LineToPlace(variant_gid, row.sku, row.title, row.quantity, row.unit_price_minor))
    placement = Placement(
        order.id, order.external_id, origin.channel, origin.label, order.currency, order.subtotal_minor,
        order.shipping_minor, order.tax_minor, order.channel_created_at, tuple(lines), order.buyer or {},
        order.recipient or {},
    )  # fmt: skip
    return placement, problems


def find_placed(client: ShopifyClient, external_id: str, order_id: int) -> dict[str, Any] | None:
    """The store order the hub placed for its order ``order_id`` (origin id ``external_id``), if there is one."""
    data = client.query(FIND_ORDERS, {"query": f"source_identifier:{json.dumps(external_id)}"})
    for node in (data.get("orders") or {}).get("nodes") or []:
        attributes = {a.get("key"): a.get("value") for a in node.get("customAttributes") or []}
        if attributes.get(HUB_ORDER_ATTRIBUTE) == str(order_id):
            return dict(node)
    return None


# --- the jobs ------------------------------------------------------------------------------------------------


def place_order(context: ShopifyContext, ctx: JobContext) -> None:
    """Place a released order of another channel in the store, once (see the module's docstring). Does nothing for
    a link no longer ``placing`` (placed, refused, or cancelled before it was placed)."""
    link_id = _payload_id(ctx, "link_id")
    with reading(context.sessions) as session:
        link = session.get(OrderLink, link_id)
        if link is None or link.state != "placing":
            log.info("shopify.place_skipped", link_id=link_id, state=link.state if link else None)
            return
        store = session.get(ChannelAccount, link.channel_account_id)
        assert store is not None
        placement, problems = read_placement(session, link, store)
        placement_round = link.updated_at.isoformat()
    account, client = store_client(context, store.id)
    found = find_placed(client, placement.external_id, placement.order_id)
    if found is not None:
        log.info("shopify.place_found", link_id=link_id, order=found.get("name"))
        placed_in_store(ctx.session, link_id, external_id=str(found["id"]), external_name=found.get("name"),
                        now=ctx.write_time())  # fmt: skip
        return
    if problems:
        refused_by_store(ctx.session, link_id, "; ".join(problems), now=ctx.write_time())
        return
    order = order_input(placement, discounts=str(setting(account, "discounts", SELLER_DISCOUNTS)), now=ctx.now)
    variables = {"order": order, "options": OPTIONS, "key": place_key(link_id, placement_round, order)}
    try:
        created = client.mutate(CREATE_ORDER, variables, "orderCreate").get("order") or {}
    except UserErrors as refusal:
        if any(error.code == CONCURRENT for error in refusal.errors):
            raise RetryableError("another attempt to place this order is in flight at the store") from refusal
        refused_by_store(ctx.session, link_id, explain(refusal.errors, placement.lines), now=ctx.write_time())
        return
    except ShopifyPermanent as refusal:  # input the API itself rejects (a value outside an enum, a missing scope)
        refused_by_store(ctx.session, link_id, refusal.platform_message, now=ctx.write_time())
        return
    if not created.get("id"):
        raise RetryableError("orderCreate answered neither an order nor a refusal")
    log.info("shopify.placed", link_id=link_id, order=created.get("name"))
    placed_in_store(ctx.session, link_id, external_id=str(created["id"]), external_name=created.get("name"),
                    now=ctx.write_time())  # fmt: skip


def cancel_order(context: ShopifyContext, ctx: JobContext) -> None:
    """Cancel the store order placed for an order cancelled on its channel: restocked, no refund, no e-mail. A link
    without a store order is looked up in the store first (its placement's answer may have been lost); with none
    there, nothing was placed and the link is simply cancelled."""
    link_id = _payload_id(ctx, "link_id")
    with reading(context.sessions) as session:
        link = session.get(OrderLink, link_id)
        if link is None or link.state not in CANCELLABLE:
            log.info("shopify.cancel_skipped", link_id=link_id, state=link.state if link else None)
            return
        order = session.get(Order, link.order_id)
        assert order is not None
        origin = session.get(ChannelAccount, order.channel_account_id)
        assert origin is not None
        store_id, store_order, store_name = link.channel_account_id, link.external_id, link.external_name
        cancel_round = link.updated_at.isoformat()
    _, client = store_client(context, store_id)
    found = None
    if store_order is None:
        found = find_placed(client, order.external_id, order.id)
        if found is None:
            cancel_confirmed(ctx.session, link_id, now=ctx.write_time())
            return
        store_order, store_name = str(found["id"]), found.get("name")
    reason = cancel_reason_out(str(ctx.payload.get("reason") or CancelReason.OTHER))
    variables = {
        "id": store_order,
        "reason": reason,
        "key": f"shopbridge-cancel-{link_id}-{cancel_round}",
        "note": f"Cancelled on {origin.label} (order {order.external_id}); the buyer is refunded there.",
    }
    refusal: str | None = None
    try:
        client.mutate(CANCEL, variables, "orderCancel", errors_key="orderCancelUserErrors")
    except UserErrors as refused:  # nothing left to cancel if it is cancelled already, or gone
        state = client.query(CANCELLED_AT, {"id": store_order}).get("order")
        refusal = None if state is None or state.get("cancelledAt") else explain(refused.errors, [])
    session, now = ctx.session, ctx.write_time()
    if found is not None:
        placed_in_store(session, link_id, external_id=store_order, external_name=store_name, now=now)
    if refusal is None:
        log.info("shopify.cancelled", link_id=link_id, order=store_name)
        cancel_confirmed(session, link_id, now=now)
    else:
        cancel_refused_by_store(session, link_id, refusal, now=now)


def _payload_id(ctx: JobContext, key: str) -> int:
    value = ctx.payload.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise PermanentError(f"{ctx.kind} job {ctx.job_id} has no {key} in its payload")
    return value


def register(registry: JobRegistry, context: ShopifyContext) -> None:
    registry.register(PLACE_ORDER, partial(place_order, context), serial=True)
    registry.register(CANCEL_ORDER, partial(cancel_order, context), serial=True)
