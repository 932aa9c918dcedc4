"""The root fields: ``QueryRoot`` reads the world through the views; ``Mutation`` calls the domain modules
(orders.py, inventory.py, webhooks.py) and wraps their results in payloads.

Mutations honour ``@idempotent(key:)`` (reference §3.7): a retry with the same key and the same arguments answers the
first result again without doing anything; the same key with other arguments answers an
``IDEMPOTENCY_KEY_PARAMETER_MISMATCH`` user error. From 2026-04 the directive is mandatory on the §3.7 mutations
(``inventoryActivate``, ``inventoryAdjustQuantities``, ``inventorySetQuantities``, ``refundCreate``): a call without
it is answered with a top-level error ("an error at runtime"; the exact text is [INFERRED]).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from graphql import GraphQLError, GraphQLResolveInfo, get_directive_values

from . import inventory, orders, webhooks
from .ids import parse_gid
from .models import (
    AdjustmentGroup,
    IdempotencyRecord,
    InventoryItem,
    InventoryLevel,
    Job,
    Order,
    Product,
    Variant,
    WebhookSubscription,
)
from .views import (
    AdjustmentGroupView,
    AppInstallationView,
    Ctx,
    InventoryItemView,
    InventoryLevelView,
    JobView,
    LocationView,
    OrderView,
    ProductView,
    ShopView,
    VariantView,
    WebhookSubscriptionView,
    api_versions,
    by_id,
    connect,
    filtered,
    item_searcher,
    location_searcher,
    node,
    order_searcher,
    order_sort,
    product_searcher,
    variant_searcher,
    variant_sort,
    webhook_searcher,
)

Info = GraphQLResolveInfo
IDEMPOTENCY_REQUIRED = frozenset(
    {"inventoryActivate", "inventoryAdjustQuantities", "inventorySetQuantities", "refundCreate"}
)
MISMATCH = "The same idempotency key cannot be used with different operation parameters."


def _typed(ctx: Ctx, global_id: str | None, typename: str) -> Any:
    found = node(ctx, global_id) if global_id else None
    return found if found is not None and getattr(found, "typename", None) == typename else None


def _count(items: list[Any], limit: int | None) -> dict[str, Any]:
    if limit is not None and len(items) > limit:
        return {"count": limit, "precision": "AT_LEAST"}
    return {"count": len(items), "precision": "EXACT"}


class QueryRoot:
    def __init__(self, ctx: Ctx) -> None:
        self.ctx = ctx
        self.world = ctx.sb.world

    @property
    def shop(self) -> ShopView:
        return ShopView(self.ctx)

    @property
    def currentAppInstallation(self) -> AppInstallationView:
        return AppInstallationView(self.ctx)

    @property
    def publicApiVersions(self) -> list[dict[str, Any]]:
        return api_versions()

    def node(self, info: Info, id: str) -> Any:
        return node(self.ctx, id)

    def nodes(self, info: Info, ids: list[str]) -> list[Any]:
        if len(ids) > 250:
            raise GraphQLError("The ids argument accepts at most 250 ids.")
        return [node(self.ctx, i) for i in ids]

    # --- locations and catalogue -----------------------------------------------------------------------------

    def location(self, info: Info, id: str | None = None) -> LocationView | None:
        if id is None:
            primary = next((loc for loc in self.world.locations() if loc.fulfills_online_orders), None)
            return LocationView(self.ctx, primary) if primary else None
        return _typed(self.ctx, id, "Location")  # type: ignore[no-any-return]

    def locations(
        self,
        info: Info,
        sortKey: str = "NAME",
        query: str | None = None,
        includeInactive: bool = False,
        includeLegacy: bool = False,
        **page: Any,
    ) -> Any:
        views = [LocationView(self.ctx, loc) for loc in self.world.locations() if includeInactive or loc.is_active]
        views = filtered(self.ctx, info, location_searcher(self.ctx), views, query)
        sort: Callable[[LocationView], tuple[Any, int]] = by_id
        if sortKey == "NAME":
            sort = lambda v: (v.name.lower(), int(v.legacy_id))  # noqa: E731
        return connect(views, sort, page)

    def product(self, info: Info, id: str) -> ProductView | None:
        return _typed(self.ctx, id, "Product")  # type: ignore[no-any-return]

    def _products(self, info: Info, query: str | None) -> list[ProductView]:
        views = [ProductView(self.ctx, p) for p in self.world.table(Product).values()]
        return filtered(self.ctx, info, product_searcher(self.ctx), views, query)

    def products(
        self, info: Info, sortKey: str = "ID", query: str | None = None, savedSearchId: str | None = None, **page: Any
    ) -> Any:
        views = self._products(info, query)
        keys: dict[str, Callable[[ProductView], Any]] = {
            "TITLE": lambda v: v.title.lower(),
            "CREATED_AT": lambda v: v.product.created_at,
            "UPDATED_AT": lambda v: v.product.updated_at,
            "PRODUCT_TYPE": lambda v: v.productType,
            "VENDOR": lambda v: v.vendor,
            "INVENTORY_TOTAL": lambda v: v.totalInventory,
        }
        key = keys.get(sortKey)
        return connect(views, (lambda v: (key(v), int(v.legacy_id))) if key else by_id, page)

    def productsCount(self, info: Info, query: str | None = None, limit: int | None = 10000) -> dict[str, Any]:
        return _count(self._products(info, query), limit)

    def productVariant(self, info: Info, id: str) -> VariantView | None:
        return _typed(self.ctx, id, "ProductVariant")  # type: ignore[no-any-return]

    def _variants(self, info: Info, query: str | None) -> list[VariantView]:
        views = [VariantView(self.ctx, v) for v in self.world.table(Variant).values()]
        return filtered(self.ctx, info, variant_searcher(self.ctx), views, query)

    def productVariants(
        self, info: Info, sortKey: str = "ID", query: str | None = None, savedSearchId: str | None = None, **page: Any
    ) -> Any:
        return connect(self._variants(info, query), variant_sort(sortKey), page)

    def productVariantsCount(self, info: Info, query: str | None = None, limit: int | None = 10000) -> dict[str, Any]:
        return _count(self._variants(info, query), limit)

    def inventoryItem(self, info: Info, id: str) -> InventoryItemView | None:
        return _typed(self.ctx, id, "InventoryItem")  # type: ignore[no-any-return]

    def inventoryItems(self, info: Info, query: str | None = None, **page: Any) -> Any:
        views = [InventoryItemView(self.ctx, i) for i in self.world.table(InventoryItem).values()]
        return connect(filtered(self.ctx, info, item_searcher(self.ctx), views, query), by_id, page)

    def inventoryLevel(self, info: Info, id: str) -> InventoryLevelView | None:
        return _typed(self.ctx, id, "InventoryLevel")  # type: ignore[no-any-return]

    # --- orders ----------------------------------------------------------------------------------------------

    def order(self, info: Info, id: str) -> OrderView | None:
        return _typed(self.ctx, id, "Order")  # type: ignore[no-any-return]

    def _orders(self, info: Info, query: str | None) -> list[OrderView]:
        views = [OrderView(self.ctx, o) for o in self.world.table(Order).values()]
        return filtered(self.ctx, info, order_searcher(self.ctx), views, query)

    def orders(
        self,
        info: Info,
        sortKey: str = "PROCESSED_AT",
        query: str | None = None,
        savedSearchId: str | None = None,
        **page: Any,
    ) -> Any:
        return connect(self._orders(info, query), order_sort(sortKey), page)

    def ordersCount(self, info: Info, query: str | None = None, limit: int | None = 10000) -> dict[str, Any]:
        return _count(self._orders(info, query), limit)

    def fulfillmentOrder(self, info: Info, id: str) -> Any:
        return _typed(self.ctx, id, "FulfillmentOrder")

    def fulfillment(self, info: Info, id: str) -> Any:
        return _typed(self.ctx, id, "Fulfillment")

    def refund(self, info: Info, id: str) -> Any:
        return _typed(self.ctx, id, "Refund")

    def job(self, info: Info, id: str) -> JobView | None:
        key = id.rsplit("/", 1)[-1]
        job = self.world.get(Job, key)
        return JobView(self.ctx, job) if job else None

    # --- webhooks --------------------------------------------------------------------------------------------

    def webhookSubscription(self, info: Info, id: str) -> WebhookSubscriptionView | None:
        return _typed(self.ctx, id, "WebhookSubscription")  # type: ignore[no-any-return]

    def webhookSubscriptions(
        self,
        info: Info,
        sortKey: str = "CREATED_AT",
        topics: list[str] | None = None,
        format: str | None = None,
        uri: str | None = None,
        callbackUrl: str | None = None,
        query: str | None = None,
        **page: Any,
    ) -> Any:
        views = [WebhookSubscriptionView(self.ctx, s) for s in self.world.table(WebhookSubscription).values()]
        if topics:
            views = [v for v in views if v.topic in topics]
        if format:
            views = [v for v in views if v.format == format]
        wanted_uri = uri or callbackUrl
        if wanted_uri:
            views = [v for v in views if v.uri == wanted_uri]
        views = filtered(self.ctx, info, webhook_searcher(self.ctx), views, query)
        if sortKey == "CREATED_AT":
            return connect(views, lambda v: (v.sub.created_at, int(v.legacy_id)), page)
        return connect(views, by_id, page)


# --- mutations -----------------------------------------------------------------------------------------------


def _fingerprint(operation: str, args: dict[str, Any]) -> str:
    raw = json.dumps([operation, args], sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(raw.encode()).hexdigest()


class Mutation:
    def __init__(self, ctx: Ctx) -> None:
        self.ctx = ctx
        self.sb = ctx.sb
        self.world = ctx.sb.world

    def _idempotent(
        self,
        info: Info,
        args: dict[str, Any],
        run: Callable[[], dict[str, Any]],
        build: Callable[[dict[str, Any]], dict[str, Any]],
        mismatch_code: str | None = "IDEMPOTENCY_KEY_PARAMETER_MISMATCH",
    ) -> dict[str, Any]:
        """Run a mutation once per ``@idempotent`` key; replay its result for the same key and arguments."""
        operation = info.field_name
        directive = info.schema.get_directive("idempotent")
        assert directive is not None
        values = get_directive_values(directive, info.field_nodes[0], info.variable_values)
        key = values.get("key") if values else None
        if key is None:
            if operation in IDEMPOTENCY_REQUIRED and self.ctx.version.at_least(2026, 4):
                raise GraphQLError(
                    f"The @idempotent directive is required for {operation} from API version 2026-04: "
                    f'add @idempotent(key: "<a UUID>") to the mutation field.',
                    extensions={"code": "BAD_REQUEST"},
                )
            return build(run())
        fingerprint = _fingerprint(operation, args)
        known = self.world.get(IdempotencyRecord, key)
        if known is not None:
            if known.fingerprint == fingerprint:
                return build(known.result)
            return build({"user_errors": [{"field": None, "message": MISMATCH, "code": mismatch_code}]})
        result = run()
        self.world.save(
            IdempotencyRecord(
                id=key, operation=operation, fingerprint=fingerprint, result=result, created_at=self.sb.now()
            )
        )
        return build(result)

    # --- orders ----------------------------------------------------------------------------------------------

    def _order_view(self, order_id: str | None) -> OrderView | None:
        order = self.world.get(Order, order_id)
        return OrderView(self.ctx, order) if order is not None else None

    def orderCreate(self, info: Info, order: dict[str, Any], options: dict[str, Any] | None = None) -> Any:
        return self._idempotent(
            info,
            {"order": order, "options": options},
            lambda: orders.create_order(self.sb, order, options),
            lambda r: {"order": self._order_view(r.get("order_id")), "userErrors": r["user_errors"]},
            mismatch_code="INVALID",
        )

    def orderCancel(
        self,
        info: Info,
        orderId: str,
        reason: str,
        restock: bool,
        notifyCustomer: bool = False,
        staffNote: str | None = None,
        refundMethod: dict[str, Any] | None = None,
        refund: bool | None = None,
    ) -> Any:
        wants_refund = bool(refund) or bool((refundMethod or {}).get("originalPaymentMethodsRefund"))

        def build(r: dict[str, Any]) -> dict[str, Any]:
            job = self.world.get(Job, r.get("job_id"))
            return {
                "job": JobView(self.ctx, job) if job else None,
                "orderCancelUserErrors": r["user_errors"],
                "userErrors": r["user_errors"],
            }

        args = {"orderId": orderId, "reason": reason, "restock": restock, "refund": wants_refund}
        return self._idempotent(
            info,
            args,
            lambda: orders.request_cancel(self.sb, orderId, reason, restock, notifyCustomer, staffNote, wants_refund),
            build,
            mismatch_code="INVALID",
        )

    def orderUpdate(self, info: Info, input: dict[str, Any]) -> Any:
        from .errors import UserErr
        from .orders import _address, _touch
        from .rest import order_json

        order = self.world.get(Order, parse_gid(input.get("id"), "Order"))
        if order is None:
            return {"order": None, "userErrors": [UserErr("Order does not exist", ["id"]).as_dict()]}
        for key, attr in (("email", "email"), ("note", "note"), ("phone", "phone")):
            if key in input:
                setattr(order, attr, input[key])
        if input.get("tags") is not None:
            order.tags = sorted({t.strip() for t in input["tags"] if t.strip()})
        if input.get("customAttributes") is not None:
            order.custom_attributes = [{"key": a["key"], "value": a["value"]} for a in input["customAttributes"]]
        if input.get("shippingAddress") is not None:
            order.shipping_address = _address(input["shippingAddress"])
        _touch(self.sb, order)
        self.sb.webhooks.trigger("orders/updated", order_json(self.sb, order), self.sb.ids.uuid())
        return {"order": OrderView(self.ctx, order), "userErrors": []}

    def _tags(self, id: str, tags: list[str], add: bool) -> dict[str, Any]:
        from .errors import UserErr
        from .orders import _touch
        from .rest import order_json, product_json

        found = node(self.ctx, id)
        if isinstance(found, OrderView):
            record: Any = found.order
        elif isinstance(found, ProductView):
            record = found.product
        else:
            return {
                "node": None,
                "userErrors": [UserErr("Resource does not exist or does not take tags", ["id"]).as_dict()],
            }
        wanted = {t.strip() for t in tags if t.strip()}
        record.tags = sorted(set(record.tags) | wanted) if add else sorted(set(record.tags) - wanted)
        event_id = self.sb.ids.uuid()
        if isinstance(record, Order):
            _touch(self.sb, record)
            self.sb.webhooks.trigger("orders/updated", order_json(self.sb, record), event_id)
            return {"node": OrderView(self.ctx, record), "userErrors": []}
        record.updated_at = self.sb.now()
        self.world.save(record)
        self.sb.webhooks.trigger("products/update", product_json(self.sb, record), event_id)
        return {"node": ProductView(self.ctx, record), "userErrors": []}

    def tagsAdd(self, info: Info, id: str, tags: list[str]) -> Any:
        return self._tags(id, tags, add=True)

    def tagsRemove(self, info: Info, id: str, tags: list[str]) -> Any:
        return self._tags(id, tags, add=False)

    # --- fulfilment ------------------------------------------------------------------------------------------

    def _fulfillment_view(self, fulfillment_id: str | None) -> Any:
        from .ids import gid

        return node(self.ctx, gid("Fulfillment", fulfillment_id)) if fulfillment_id else None

    def fulfillmentCreate(self, info: Info, fulfillment: dict[str, Any], message: str | None = None) -> Any:
        return self._idempotent(
            info,
            {"fulfillment": fulfillment, "message": message},
            lambda: orders.create_fulfillment(self.sb, fulfillment, message),
            lambda r: {"fulfillment": self._fulfillment_view(r.get("fulfillment_id")), "userErrors": r["user_errors"]},
            mismatch_code=None,
        )

    def fulfillmentTrackingInfoUpdate(
        self, info: Info, fulfillmentId: str, trackingInfoInput: dict[str, Any], notifyCustomer: bool | None = None
    ) -> Any:
        r = orders.update_tracking(self.sb, fulfillmentId, trackingInfoInput, bool(notifyCustomer))
        return {"fulfillment": self._fulfillment_view(r.get("fulfillment_id")), "userErrors": r["user_errors"]}

    def fulfillmentCancel(self, info: Info, id: str) -> Any:
        r = orders.cancel_fulfillment(self.sb, id)
        return {"fulfillment": self._fulfillment_view(r.get("fulfillment_id")), "userErrors": r["user_errors"]}

    def refundCreate(self, info: Info, input: dict[str, Any]) -> Any:
        def build(r: dict[str, Any]) -> dict[str, Any]:
            from .ids import gid

            refund_id = r.get("refund_id")
            refund = node(self.ctx, gid("Refund", refund_id)) if refund_id else None
            order = self.world.get(Order, parse_gid(input.get("orderId"), "Order"))
            return {
                "refund": refund,
                "order": OrderView(self.ctx, order) if order is not None and refund is not None else None,
                "userErrors": r["user_errors"],
            }

        return self._idempotent(
            info, {"input": input}, lambda: orders.create_refund(self.sb, input), build, mismatch_code=None
        )

    # --- inventory -------------------------------------------------------------------------------------------

    def _group(self, r: dict[str, Any]) -> dict[str, Any]:
        group = self.world.get(AdjustmentGroup, r.get("group_id"))
        return {
            "inventoryAdjustmentGroup": AdjustmentGroupView(self.ctx, group) if group else None,
            "userErrors": r["user_errors"],
        }

    def inventorySetQuantities(self, info: Info, input: dict[str, Any]) -> Any:
        return self._idempotent(
            info, {"input": input}, lambda: inventory.set_quantities(self.sb, self.ctx.version, input), self._group
        )

    def inventoryAdjustQuantities(self, info: Info, input: dict[str, Any]) -> Any:
        return self._idempotent(
            info, {"input": input}, lambda: inventory.adjust_quantities(self.sb, input), self._group
        )

    def inventoryActivate(
        self,
        info: Info,
        inventoryItemId: str,
        locationId: str,
        available: int | None = None,
        onHand: int | None = None,
        stockAtLegacyLocation: bool = False,
    ) -> Any:
        def build(r: dict[str, Any]) -> dict[str, Any]:
            level = self.world.get(InventoryLevel, r.get("level_id"))
            return {
                "inventoryLevel": InventoryLevelView(self.ctx, level) if level else None,
                "userErrors": r["user_errors"],
            }

        args = {"inventoryItemId": inventoryItemId, "locationId": locationId, "available": available, "onHand": onHand}
        return self._idempotent(
            info,
            args,
            lambda: inventory.activate(self.sb, inventoryItemId, locationId, available, onHand),
            build,
            mismatch_code=None,
        )

    # --- webhooks --------------------------------------------------------------------------------------------

    def _subscription(self, r: dict[str, Any]) -> dict[str, Any]:
        sub = self.world.get(WebhookSubscription, r.get("subscription_id"))
        return {
            "webhookSubscription": WebhookSubscriptionView(self.ctx, sub) if sub else None,
            "userErrors": r["user_errors"],
        }

    def webhookSubscriptionCreate(self, info: Info, topic: str, webhookSubscription: dict[str, Any]) -> Any:
        return self._subscription(webhooks.create_subscription(self.sb, topic, webhookSubscription))

    def webhookSubscriptionUpdate(self, info: Info, id: str, webhookSubscription: dict[str, Any]) -> Any:
        return self._subscription(webhooks.update_subscription(self.sb, id, webhookSubscription))

    def webhookSubscriptionDelete(self, info: Info, id: str) -> Any:
        r = webhooks.delete_subscription(self.sb, id)
        return {"deletedWebhookSubscriptionId": r["deleted_id"], "userErrors": r["user_errors"]}
