"""TikTok's side of the store loop (services/fulfilment.py): a shipment the store made goes to TikTok as its
package's tracking (reference §6), and a seller cancellation of the hub's goes to TikTok with a seller reason (§7.1).

Handlers call TikTok before they first touch ctx.session (see sync.py). A refusal a person must see is written in a
transaction of its own before the error goes back to the engine, which rolls the job's unit of work back.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from sqlalchemy import select

from shopbridge.channels.tiktok.errors import TikTokPermanent, about_the_request
from shopbridge.channels.tiktok.inventory import CANCEL_PATH
from shopbridge.channels.tiktok.shop import Shop, TikTokContext
from shopbridge.channels.tiktok.sync import ORDER_DETAIL_PATH
from shopbridge.domain.orders import CancelReason
from shopbridge.logs import get_logger
from shopbridge.runtime.errors import PermanentError, RetryableError
from shopbridge.runtime.registry import JobContext, JobRegistry
from shopbridge.services.fulfilment import cancel_kind, note, ship_kind, shipment_sent
from shopbridge.store.db import WriteLane, reading, transaction
from shopbridge.store.sync_issues import raise_issue, resolve_issue
from shopbridge.store.tables import ChannelAccount, Order, OrderLine, Shipment

SHIP_ORDER = ship_kind("tiktok")
CANCEL_ORDER = cancel_kind("tiktok")
DELIVERY_OPTIONS_PATH = "/logistics/202309/warehouses/{warehouse_id}/delivery_options"
SHIPPING_PROVIDERS_PATH = "/logistics/202309/delivery_options/{delivery_option_id}/shipping_providers"
SHIP_PACKAGE_PATH = "/fulfillment/202309/packages/{package_id}/ship"
MARK_SHIPPED_PATH = "/fulfillment/202309/orders/{order_id}/packages"

UNMAPPED_CARRIER = "unmapped_carrier"
SHIP_REFUSED = "ship_refused"
CANCEL_REFUSED = "cancel_refused"

SHIPPABLE = ("AWAITING_SHIPMENT", "PARTIALLY_SHIPPING")
NOT_YET_SHIPPABLE = ("UNPAID", "ON_HOLD")

# The hub's reasons as TikTok's seller cancel reasons. TikTok's list (reasons.py of the sandbox; the reference
# documents only the out-of-stock key) has no key for fraud, a declined payment or a buyer asking elsewhere: those
# take the generic "unable to deliver". An account's settings may override any of them (``cancel_reason_map``).
SELLER_CANCEL_REASONS = {
    CancelReason.OUT_OF_STOCK: "seller_cancel_reason_out_of_stock",
    CancelReason.UNDELIVERABLE: "seller_cancel_reason_unable_to_deliver",
    CancelReason.STAFF: "seller_cancel_reason_wrong_price",
}
GENERIC_SELLER_REASON = "seller_cancel_reason_unable_to_deliver"

log = get_logger("shopbridge.tiktok.fulfilment")


# --- mapping ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShippingProvider:
    """A carrier as TikTok knows it (Get Shipping Providers)."""

    id: str
    name: str


def match_provider(
    carrier: str | None, providers: Sequence[ShippingProvider], carrier_map: Mapping[str, str] | None = None
) -> ShippingProvider | None:
    """TikTok's provider for a carrier as the store names it: the account's ``carrier_map`` (store name → TikTok
    name) first, then the same name ignoring case, then a provider named as a word of the carrier's name ("FedEx
    Ground" → FedEx), then the one provider whose name holds the carrier's. None when nothing matches."""
    if carrier is None or not carrier.strip():
        return None
    wanted = carrier.strip().casefold()
    by_name = {provider.name.strip().casefold(): provider for provider in providers}
    for store_name, tiktok_name in (carrier_map or {}).items():
        if store_name.strip().casefold() == wanted:
            mapped = by_name.get(str(tiktok_name).strip().casefold())
            if mapped is not None:
                return mapped
    if wanted in by_name:
        return by_name[wanted]
    inside = [provider for name, provider in by_name.items() if _as_words(name, wanted)]
    if inside:
        return max(inside, key=lambda provider: len(provider.name))
    around = [provider for name, provider in by_name.items() if _as_words(wanted, name)]
    return around[0] if len(around) == 1 else None


def _as_words(part: str, whole: str) -> bool:
    """Whether ``part`` appears in ``whole`` as whole words ("ups" is not in "groups")."""
    return re.search(rf"(?<!\w){re.escape(part)}(?!\w)", whole) is not None


def default_provider(providers: Sequence[ShippingProvider], name: str | None) -> ShippingProvider | None:
    """The shop's fallback: the provider named by the account's ``default_shipping_provider``, else TikTok's first."""
    if name:
        for provider in providers:
            if provider.name.strip().casefold() == name.strip().casefold():
                return provider
    return providers[0] if providers else None


def seller_cancel_reason(reason: str | None, overrides: Mapping[str, str] | None = None) -> str:
    """TikTok's seller cancel reason key for one of the hub's ``CancelReason`` values (an unknown one counts as
    ``other``); ``overrides`` is the account's ``cancel_reason_map``."""
    try:
        known = CancelReason(str(reason or CancelReason.OTHER))
    except ValueError:
        known = CancelReason.OTHER
    override = (overrides or {}).get(known.value)
    if override:
        return str(override)
    return SELLER_CANCEL_REASONS.get(known, GENERIC_SELLER_REASON)


# --- shipping -----------------------------------------------------------------------------------------------


class ShipmentRefused(PermanentError):
    """What TikTok's order makes impossible to send (cancelled there, nothing left to ship), found before asking."""


@dataclass(frozen=True)
class Sent:
    package_id: str | None
    provider: str | None
    unmapped: bool = False


@dataclass(frozen=True)
class _HubLine:
    variant_id: int | None
    sku: str | None
    external_sku_id: str | None


def ship_order(context: TikTokContext, ctx: JobContext) -> None:
    """Send a shipment's tracking number and carrier to TikTok (payload ``{"shipment_id"}``): the package it
    covers is shipped with the store's tracking (Ship Package, seller shipping), or, when the shipment holds only
    some of a package's line items, those items become a package of their own (Mark Package As Shipped with their
    line ids). Sent once: a shipment already sent, or whose tracking TikTok already shows, is done."""
    shipment_id = int(ctx.payload.get("shipment_id") or 0)
    with reading(context.sessions) as session:
        shipment = session.get(Shipment, shipment_id)
        if shipment is None:
            raise PermanentError(f"shipment {shipment_id} does not exist")
        if shipment.state == "sent":
            return
        order = session.get(Order, shipment.order_id)
        assert order is not None
        account = session.get(ChannelAccount, order.channel_account_id)
        assert account is not None
        hub_lines = [
            _HubLine(variant_id, sku, external_sku_id)
            for variant_id, sku, external_sku_id in session.execute(
                select(OrderLine.variant_id, OrderLine.sku, OrderLine.external_sku_id).where(
                    OrderLine.order_id == order.id
                )
            )
        ]
    settings = account.settings or {}
    try:
        sent = _send(Shop(context, account.id), order.external_id, shipment, hub_lines, settings)
    except (ShipmentRefused, TikTokPermanent) as error:
        if isinstance(error, TikTokPermanent) and not about_the_request(error):
            raise
        _refused(context, ctx, shipment, order, str(error))
        raise
    session, now = ctx.session, ctx.write_time()
    row = session.get(Shipment, shipment_id)
    assert row is not None
    shipment_sent(session, row, package_id=sent.package_id, provider=sent.provider, now=now)
    resolve_issue(session, f"{SHIP_REFUSED}:{shipment_id}", now)
    if sent.unmapped:
        raise_issue(
            session, kind=UNMAPPED_CARRIER, severity="warning",
            fingerprint=f"{UNMAPPED_CARRIER}:{account.id}:{(shipment.carrier or '').strip().casefold()}",
            message=f"{account.label} has no TikTok shipping provider for carrier {shipment.carrier!r}: "
            f"{sent.provider} was sent instead; map it in the account's carrier_map",
            now=now, channel_account_id=account.id, subject_type="shipment", subject_id=str(shipment_id),
            details={"carrier": shipment.carrier, "provider": sent.provider, "act": "ops"},
        )  # fmt: skip


def _send(shop: Shop, external_id: str, shipment: Shipment, hub_lines: list[_HubLine],
          settings: Mapping[str, Any]) -> Sent:  # fmt: skip
    tracking = (shipment.tracking_number or "").strip()
    if not tracking:
        raise ShipmentRefused(f"shipment {shipment.id} has no tracking number to send to TikTok")
    detail = _order_detail(shop, external_id)
    done = _shipped_with(detail, tracking)
    if done is not None:
        return done
    status = str(detail.get("status") or "")
    if status in NOT_YET_SHIPPABLE:
        raise RetryableError(f"TikTok order {external_id} is {status}; it can be shipped once it is not")
    if status not in SHIPPABLE:
        raise ShipmentRefused(f"TikTok order {external_id} is {status}: nothing can be shipped there")
    providers = _providers(shop, detail)
    provider = match_provider(shipment.carrier, providers, settings.get("carrier_map"))
    unmapped = provider is None
    if provider is None:
        provider = default_provider(providers, settings.get("default_shipping_provider"))
    if provider is None:
        raise ShipmentRefused(f"TikTok lists no shipping provider for order {external_id}")
    items = _items_to_ship(detail, shipment.lines or [], hub_lines)
    self_shipment = {"tracking_number": tracking, "shipping_provider_id": provider.id}
    whole = _whole_package(detail, items)
    try:
        if whole is not None:
            shop.call("POST", SHIP_PACKAGE_PATH.format(package_id=whole), body={"self_shipment": self_shipment})
            package_id: str | None = whole
        else:
            data = shop.call("POST", MARK_SHIPPED_PATH.format(order_id=external_id),
                             body={**self_shipment, "order_line_item_ids": items})  # fmt: skip
            package_id = str(data.get("package_id") or "") or None
    except TikTokPermanent as error:
        if not about_the_request(error):
            raise
        current = _order_detail(shop, external_id)
        # A send that landed before its job could commit: TikTok now refuses it, and shows our tracking.
        if (again := _shipped_with(current, tracking)) is not None:
            return Sent(again.package_id, again.provider, unmapped)
        # Another shipment of the order went meanwhile (its job ran beside this one): choose again, later.
        if _open_ids(current) != _open_ids(detail):
            raise RetryableError(f"TikTok order {external_id} changed while it was shipped: {error}") from error
        raise
    return Sent(package_id, provider.name, unmapped)


def _order_detail(shop: Shop, external_id: str) -> dict[str, Any]:
    orders = shop.call("GET", ORDER_DETAIL_PATH, query={"ids": [external_id]}).get("orders") or []
    for order in orders:
        if str(order.get("id")) == external_id:
            return dict(order)
    raise ShipmentRefused(f"TikTok did not return order {external_id}")


def _shipped_with(detail: dict[str, Any], tracking: str) -> Sent | None:
    """The package TikTok already shows with this tracking number, if any."""
    for item in detail.get("line_items") or []:
        if str(item.get("tracking_number") or "").strip() == tracking:
            return Sent(str(item.get("package_id") or "") or None, item.get("shipping_provider_name"))
    return None


def _providers(shop: Shop, detail: dict[str, Any]) -> list[ShippingProvider]:
    """The carriers of the order's delivery option (reference §6.2); an order that names none takes its
    warehouse's first delivery option."""
    option = str(detail.get("delivery_option_id") or "")
    if not option and detail.get("warehouse_id"):
        path = DELIVERY_OPTIONS_PATH.format(warehouse_id=detail["warehouse_id"])
        options = shop.call("GET", path).get("delivery_options") or []
        option = str(options[0].get("id") or "") if options else ""
    if not option:
        raise ShipmentRefused(f"TikTok names no delivery option for order {detail.get('id')}")
    data = shop.call("GET", SHIPPING_PROVIDERS_PATH.format(delivery_option_id=option))
    return [ShippingProvider(str(provider["id"]), str(provider.get("name") or provider["id"]))
            for provider in data.get("shipping_providers") or [] if provider.get("id")]  # fmt: skip


def _open_items(detail: dict[str, Any]) -> list[dict[str, Any]]:
    """Line items (one per unit) neither cancelled nor shipped yet."""
    return [
        item for item in detail.get("line_items") or []
        if not item.get("cancel_user") and item.get("display_status") != "CANCELLED"
        and not item.get("tracking_number") and item.get("package_status", "TO_FULFILL") == "TO_FULFILL"
    ]  # fmt: skip


def _open_ids(detail: dict[str, Any]) -> set[str]:
    return {str(item["id"]) for item in _open_items(detail)}


def _items_to_ship(detail: dict[str, Any], lines: list[dict[str, Any]], hub_lines: list[_HubLine]) -> list[str]:
    """TikTok's line item ids for the shipment's units, counted per SKU among the open ones. A shipment that
    names no lines ships every open item."""
    open_items = _open_items(detail)
    if not open_items:
        raise ShipmentRefused(f"nothing is left to ship on TikTok order {detail.get('id')}")
    if not lines:
        return [str(item["id"]) for item in open_items]
    by_seller_sku = {str(item.get("seller_sku")): str(item.get("sku_id")) for item in open_items}
    wanted: dict[str, int] = {}
    for line in lines:
        hub = next((h for h in hub_lines if line.get("variant_id") and h.variant_id == line.get("variant_id")), None)
        hub = hub or next((h for h in hub_lines if line.get("sku") and h.sku == line.get("sku")), None)
        sku_id = (hub.external_sku_id if hub else None) or by_seller_sku.get(str(line.get("sku")))
        if sku_id:
            wanted[sku_id] = wanted.get(sku_id, 0) + int(line.get("quantity") or 0)
    chosen = []
    for item in open_items:
        sku_id = str(item.get("sku_id"))
        if wanted.get(sku_id, 0) > 0:
            wanted[sku_id] -= 1
            chosen.append(str(item["id"]))
    if not chosen:
        raise ShipmentRefused(f"none of the shipment's lines is left to ship on TikTok order {detail.get('id')}")
    if any(left > 0 for left in wanted.values()):
        log.info("tiktok.shipment_more_than_open", order=detail.get("id"), units_left=wanted)
    return chosen


def _whole_package(detail: dict[str, Any], chosen: list[str]) -> str | None:
    """The package the chosen items make up entirely (shipped as it is), or None when they are a part of one or
    span several (they become a package of their own)."""
    items = [item for item in detail.get("line_items") or [] if str(item["id"]) in chosen]
    packages = {str(item.get("package_id") or "") for item in items}
    if len(packages) != 1 or "" in packages:
        return None
    package_id = packages.pop()
    live = {str(item["id"]) for item in detail.get("line_items") or []
            if str(item.get("package_id") or "") == package_id and not item.get("cancel_user")}  # fmt: skip
    return package_id if live == set(chosen) else None


def _refused(context: TikTokContext, ctx: JobContext, shipment: Shipment, order: Order, message: str) -> None:
    """The shipment failed for a reason a person must see: recorded before the error goes back to the engine."""
    with transaction(context.sessions, lane=WriteLane.ENGINE) as session:
        row = session.get(Shipment, shipment.id)
        if row is None or row.state == "sent":
            return
        row.state, row.error = "failed", message
        raise_issue(
            session, kind=SHIP_REFUSED, severity="error", fingerprint=f"{SHIP_REFUSED}:{shipment.id}",
            message=f"the tracking {shipment.tracking_number} of TikTok order {order.external_id} was not sent: "
            f"{message}",
            now=ctx.write_time(), channel_account_id=order.channel_account_id, subject_type="shipment",
            subject_id=str(shipment.id),
            details={"order_id": order.id, "external_id": order.external_id, "carrier": shipment.carrier,
                     "tracking_number": shipment.tracking_number, "act": "ops"},
        )  # fmt: skip


# --- seller cancellations -----------------------------------------------------------------------------------


def cancel_order(context: TikTokContext, ctx: JobContext) -> None:
    """Cancel the hub order's TikTok order as the seller (payload ``{"order_id", "reason", "source"?}``), with
    the seller reason for the hub's ``CancelReason``. An order already cancelled on TikTok is done; a refusal (it
    shipped meanwhile) is a ``cancel_refused`` issue with TikTok's words. The cancellation itself comes back
    through the order's webhook."""
    order_id = int(ctx.payload.get("order_id") or 0)
    reason = str(ctx.payload.get("reason") or CancelReason.OTHER)
    with reading(context.sessions) as session:
        order = session.get(Order, order_id)
        account = session.get(ChannelAccount, order.channel_account_id) if order is not None else None
    if order is None or account is None:
        raise PermanentError(f"order {order_id} does not exist")
    if account.channel != "tiktok":
        raise PermanentError(f"order {order_id} is not a TikTok order")
    cancel_reason = seller_cancel_reason(reason, (account.settings or {}).get("cancel_reason_map"))
    shop = Shop(context, account.id)
    detail = _order_detail(shop, order.external_id)
    refusal: str | None = None
    cancel_id = None
    if detail.get("status") != "CANCELLED":
        try:
            data = shop.call("POST", CANCEL_PATH, body={"order_id": order.external_id, "cancel_reason": cancel_reason})
            cancel_id = data.get("cancel_id")
        except TikTokPermanent as error:
            if not about_the_request(error):
                raise
            detail = _order_detail(shop, order.external_id)
            if detail.get("status") != "CANCELLED":
                refusal = str(error)
    session, now = ctx.session, ctx.write_time()
    fingerprint = f"{CANCEL_REFUSED}:{order.id}"
    if refusal is not None:
        raise_issue(
            session, kind=CANCEL_REFUSED, severity="error", fingerprint=fingerprint,
            message=f"TikTok refused to cancel order {order.external_id} ({reason}): {refusal}",
            now=now, channel_account_id=account.id, subject_type="order", subject_id=str(order.id),
            details={"external_id": order.external_id, "reason": reason, "cancel_reason": cancel_reason,
                     "tiktok_status": detail.get("status"), "source": ctx.payload.get("source"), "act": "ops"},
        )  # fmt: skip
        return
    resolve_issue(session, fingerprint, now)
    if cancel_id is not None:
        row = session.get(Order, order.id)
        assert row is not None
        note(session, row, "seller_cancel_requested", {"cancel_id": cancel_id, "reason": reason,
                                                       "cancel_reason": cancel_reason}, now=now)  # fmt: skip


def register(registry: JobRegistry, context: TikTokContext) -> None:
    registry.register(SHIP_ORDER, partial(ship_order, context), priority=10)
    registry.register(CANCEL_ORDER, partial(cancel_order, context), priority=20)
