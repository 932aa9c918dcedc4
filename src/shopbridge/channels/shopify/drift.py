"""The store's side of the status drift detector (services/drift.py): ``shopify.check_drift`` reads what the store
shows of the orders the hub placed there (as their fulfiller) and of its own open orders (as their origin), and
hands both to the hub to compare.

Orders are read by id (``nodes``, twenty per query): whether each is cancelled, how far it is fulfilled, and its
fulfillments with their tracking. A fulfillment the hub has not recorded has its lines read as the order sync reads
them (intake.py), so the hub can record it as a shipment. An order whose sync is waiting or running (a webhook
named it) is in flight.

Handlers call Shopify before they touch ctx.session (see stock.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

from sqlalchemy import select

from shopbridge.channels.shopify import intake, webhooks
from shopbridge.channels.shopify.client import ShopifyClient
from shopbridge.channels.shopify.context import NAME, ShopifyContext, store_client
from shopbridge.channels.shopify.kinds import SYNC_ORDER
from shopbridge.channels.shopify.mapping import cancel_reason_in
from shopbridge.domain.drift import FulfillerStatus
from shopbridge.runtime.errors import PermanentError
from shopbridge.runtime.registry import JobContext, JobRegistry
from shopbridge.services import drift
from shopbridge.services.drift import FulfillerReading, OriginReading
from shopbridge.services.fulfilment import Fulfilment
from shopbridge.store.db import reading
from shopbridge.store.tables import ChannelAccount, ChannelListing, Job, Shipment

CHECK_DRIFT = drift.check_kind(NAME)
ORDERS_PER_READ = 20
ORDER_COST = 45  # requested: the order, and 20 fulfillments with one tracking each
STATE = """query ($ids: [ID!]!) { nodes(ids: $ids) { ... on Order { id name cancelledAt cancelReason closed
  displayFinancialStatus displayFulfillmentStatus
  fulfillments(first: 20) { id createdAt status trackingInfo(first: 1) { company number url } } } } }"""


def fulfiller_status(node: Mapping[str, Any] | None) -> FulfillerStatus:
    """Where the store is with an order the hub placed there."""
    if node is None:
        return "missing"
    if node.get("cancelledAt"):
        return "cancelled"
    shipped = node.get("displayFulfillmentStatus")
    if shipped == "FULFILLED":
        return "shipped"
    if shipped in ("PARTIALLY_FULFILLED", "IN_PROGRESS"):
        return "in_progress"
    return "open"


def read_states(client: ShopifyClient, order_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The named store orders by id (those the store no longer has are left out)."""
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(order_ids), ORDERS_PER_READ):
        chunk = list(order_ids[start : start + ORDERS_PER_READ])
        for node in client.query(STATE, {"ids": chunk}, cost=2 + ORDER_COST * len(chunk)).get("nodes") or []:
            if node and node.get("id"):
                found[str(node["id"])] = dict(node)
    return found


def _shipments(context: ShopifyContext, client: ShopifyClient, account_id: int,
               nodes: Sequence[dict[str, Any]]) -> dict[str, list[Fulfilment]]:  # fmt: skip
    """Each order's shipments the hub has not recorded yet, with their lines read (as the order sync reads them)."""
    ids = [shipment.external_id for node in nodes for shipment in intake.fulfilments(node, {})]
    with reading(context.sessions) as session:
        recorded = set(session.scalars(select(Shipment.external_id).where(
            Shipment.channel_account_id == account_id, Shipment.external_id.in_(ids)))) if ids else set()  # fmt: skip
    new = [external_id for external_id in ids if external_id not in recorded]
    if not new:
        return {}
    lines = intake.read_fulfilment_lines(client, new)
    variants = sorted({str(variant) for found in lines.values() for line in found
                       if (variant := ((line.get("lineItem") or {}).get("variant") or {}).get("id"))})  # fmt: skip
    with reading(context.sessions) as session:
        hub_variants = {str(sku_id): int(variant_id) for sku_id, variant_id in session.execute(
            select(ChannelListing.external_sku_id, ChannelListing.variant_id).where(
                ChannelListing.channel_account_id == account_id, ChannelListing.external_sku_id.in_(variants),
                ChannelListing.variant_id.is_not(None))) if variant_id is not None} if variants else {}  # fmt: skip
    shipments: dict[str, list[Fulfilment]] = {}
    for node in nodes:
        for fulfilment in node.get("fulfillments") or ():
            if fulfilment.get("id") in lines:
                fulfilment["fulfillmentLineItems"] = {"nodes": lines[fulfilment["id"]]}
        made = [shipment for shipment in intake.fulfilments(node, hub_variants) if shipment.external_id in lines]
        if made:
            shipments[str(node["id"])] = made
    return shipments


def _syncing(context: ShopifyContext, account_id: int, order_ids: Sequence[str]) -> set[str]:
    """The store orders whose sync is waiting or running: a webhook named them, and the hub is applying it."""
    keys = {webhooks.sync_identity(account_id, order_id): order_id for order_id in order_ids}
    with reading(context.sessions) as session:
        busy = set(session.scalars(select(Job.identity_key).where(
            Job.identity_key.in_(sorted(keys)), Job.state.in_(("pending", "running"))))) if keys else set()  # fmt: skip
    return {order_id for key, order_id in keys.items() if key in busy}


def check_drift(context: ShopifyContext, ctx: JobContext) -> None:
    """Read what the store shows of the orders the hub placed there (``drift.links_to_check``) and of its own open
    orders (``drift.orders_to_check``), and compare both with the hub; the payload is the check's."""
    if ctx.channel_account_id is None:
        raise PermanentError(f"{ctx.kind} job {ctx.job_id} names no channel account")
    account_id = ctx.channel_account_id
    with reading(context.sessions) as session:
        account = session.get(ChannelAccount, account_id)
        if account is None or account.status != "active":
            return  # a store being reconnected is checked once it is back
        links = [(link.id, link.external_id) for link in drift.links_to_check(session, account_id, ctx.payload,
                                                                              now=ctx.now)
                 if link.external_id] if drift.wants(ctx.payload, drift.FULFILLER) else None  # fmt: skip
        own = [(order.id, order.external_id) for order in drift.orders_to_check(session, account_id, ctx.payload,
                                                                                now=ctx.now)
               ] if drift.wants(ctx.payload, drift.ORIGIN) else None  # fmt: skip
    _, client = store_client(context, account_id)
    named = [str(store_order) for _, store_order in links or ()] + [external for _, external in own or ()]
    nodes = read_states(client, list(dict.fromkeys(named)))
    shipments = _shipments(
        context,
        client,
        account_id,
        [nodes[str(store_order)] for _, store_order in links or () if str(store_order) in nodes],
    )
    syncing = _syncing(context, account_id, named)
    session, now = ctx.session, ctx.write_time()
    account = session.get(ChannelAccount, account_id)
    assert account is not None
    if links is not None:
        fulfilled = []
        for link_id, store_order in links:
            node = nodes.get(str(store_order))
            fulfilled.append(FulfillerReading(
                link_id=link_id, status=fulfiller_status(node), shipments=tuple(shipments.get(str(store_order), ())),
                words=intake.channel_status(node) if node is not None else None,
                pending_event=str(store_order) in syncing,
                cancel_reason=cancel_reason_in(node.get("cancelReason")).value if node is not None else None,
            ))  # fmt: skip
        drift.record_fulfiller_readings(session, account, fulfilled, payload=ctx.payload, now=now)
    if own is not None:
        ordered = []
        for order_id, external_id in own:
            node = nodes.get(external_id)
            ordered.append(OriginReading(
                order_id=order_id, status=intake.order_status(node) if node is not None else None,
                words=intake.channel_status(node) if node is not None else "", pending_event=external_id in syncing,
            ))  # fmt: skip
        drift.record_origin_readings(session, account, ordered, resync_kind=SYNC_ORDER, payload=ctx.payload,
                                     now=now)  # fmt: skip


def register(registry: JobRegistry, context: ShopifyContext) -> None:
    registry.register(CHECK_DRIFT, partial(check_drift, context), priority=drift.PRIORITY, serial=True)
