"""GraphQL objects over the world's records: every field is computed from the state when it is asked for.

graphql-core's default resolver reads an attribute named like the field, and calls it with the field's arguments
when it is a method; so each view exposes Shopify's field names (camelCase) as properties or methods. Abstract
types (``Node``, the webhook endpoint union) resolve through each view's ``typename``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar
from zoneinfo import ZoneInfo

from graphql import GraphQLResolveInfo

from . import order_math
from .ids import gid, level_gid, parse_gid, parse_level_gid
from .models import (
    Address,
    AdjustmentGroup,
    Customer,
    Fulfillment,
    FulfillmentLine,
    FulfillmentOrder,
    FulfillmentOrderLine,
    InventoryItem,
    InventoryLevel,
    Job,
    LineItem,
    Location,
    Order,
    Product,
    Refund,
    RefundLine,
    ShippingLine,
    TaxLine,
    Transaction,
    Variant,
    WebhookSubscription,
)
from .money import dec, gql_amount, gql_time
from .pagination import Connection, SortValue, paginate
from .search import Matcher, Searcher, number_field, text_field, time_field
from .versions import Version, public_versions

if TYPE_CHECKING:
    from .runtime import ShopifySandbox

Info = GraphQLResolveInfo
T = TypeVar("T")
PAGE_KEYS = ("first", "after", "last", "before", "reverse")


@dataclass
class Ctx:
    """What every resolver of one request sees."""

    sb: ShopifySandbox
    version: Version
    scope: str
    # Warnings from search queries (unknown fields), reported in extensions.search.
    search: list[dict[str, Any]] = field(default_factory=list)

    @property
    def world(self) -> Any:
        return self.sb.world

    @property
    def tz(self) -> str:
        return str(self.sb.world.shop.timezone)

    @property
    def currency(self) -> str:
        return str(self.sb.world.shop.currency)


def connect(items: Sequence[T], sort: Callable[[T], tuple[SortValue, int]], page: dict[str, Any]) -> Connection[T]:
    return paginate(items, sort, **{k: v for k, v in page.items() if k in PAGE_KEYS})


def by_id(view: Any) -> tuple[SortValue, int]:
    return None, int(view.legacy_id)


def filtered(ctx: Ctx, info: Info, searcher: Searcher[T], items: list[T], query: str | None) -> list[T]:
    out = searcher.filter(items, query)
    if searcher.warnings:
        ctx.search.append({"path": [info.field_name], "query": query, "warnings": searcher.warnings})
    return out


def money(amount: Decimal, currency: str) -> dict[str, Any]:
    return {"amount": gql_amount(amount), "currencyCode": currency}


def bag(amount: Decimal, shop_currency: str, presentment: str | None = None) -> dict[str, Any]:
    return {"shopMoney": money(amount, shop_currency), "presentmentMoney": money(amount, presentment or shop_currency)}


# --- shop, app, locations -----------------------------------------------------------------------------------


class ShopView:
    typename = "Shop"

    def __init__(self, ctx: Ctx) -> None:
        self.ctx = ctx
        self.shop = ctx.sb.world.shop
        self.id = gid("Shop", self.shop.shop_id)
        self.name = self.shop.name
        self.email = self.shop.email
        self.contactEmail = self.shop.email
        self.myshopifyDomain = self.shop.domain
        self.url = f"https://{self.shop.domain}"
        self.currencyCode = self.shop.currency
        self.ianaTimezone = self.shop.timezone
        self.createdAt = gql_time(self.shop.created_at)
        self.enabledPresentmentCurrencies = [self.shop.currency]
        self.plan = {"displayName": self.shop.plan_display_name, "partnerDevelopment": False, "shopifyPlus": False}
        self.primaryDomain = {
            "id": gid("Domain", self.shop.shop_id),
            "host": self.shop.domain,
            "url": f"https://{self.shop.domain}",
            "sslEnabled": True,
        }

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.ctx.sb.now(), UTC).astimezone(ZoneInfo(self.shop.timezone))

    @property
    def timezoneAbbreviation(self) -> str:
        return self._now().strftime("%Z")

    @property
    def timezoneOffset(self) -> str:
        return self._now().strftime("%z")

    @property
    def timezoneOffsetMinutes(self) -> int:
        offset = self._now().utcoffset()
        return int(offset.total_seconds() // 60) if offset is not None else 0


class AppInstallationView:
    typename = "AppInstallation"

    def __init__(self, ctx: Ctx) -> None:
        sb = ctx.sb
        self.id = gid("AppInstallation", sb.app_id)
        self.accessScopes = [{"handle": s, "description": s.replace("_", " ")} for s in ctx.scope.split(",") if s]
        self.app = {
            "id": gid("App", sb.app_id),
            "title": "Sandbox app",
            "apiKey": sb.config.api_key,
            "handle": "sandbox-app",
            "typename": "App",
        }
        self.launchUrl = f"https://{sb.world.shop.domain}/admin/apps/sandbox-app"


def api_versions() -> list[dict[str, Any]]:
    return [
        {"handle": v.name, "displayName": v.name if v.name != "unstable" else "unstable", "supported": v.supported}
        for v in public_versions()
    ]


def _address_lines(address: Address, with_name: bool = False, with_company: bool = True) -> list[str]:
    lines = []
    if with_name:
        name = " ".join(p for p in (address.first_name, address.last_name) if p)
        if name:
            lines.append(name)
    if with_company and address.company:
        lines.append(address.company)
    lines.extend(x for x in (address.address1, address.address2) if x)
    area = " ".join(x for x in (address.city, address.province_code, address.zip) if x)
    if area:
        lines.append(area)
    if address.country:
        lines.append(address.country)
    return lines


class LocationView:
    typename = "Location"

    def __init__(self, ctx: Ctx, location: Location) -> None:
        self.ctx = ctx
        self.location = location
        self.legacy_id = location.id
        self.id = gid("Location", location.id)
        self.legacyResourceId = location.id
        self.name = location.name
        self.isActive = location.is_active
        self.activatable = not location.is_active
        self.deactivatable = location.is_active
        self.fulfillsOnlineOrders = location.fulfills_online_orders
        self.shipsInventory = location.fulfills_online_orders
        self.createdAt = gql_time(location.created_at)
        self.updatedAt = gql_time(location.updated_at)
        a = location.address
        self.address = {
            "address1": a.address1,
            "address2": a.address2,
            "city": a.city,
            "country": a.country,
            "countryCode": a.country_code,
            "province": a.province,
            "provinceCode": a.province_code,
            "zip": a.zip,
            "phone": a.phone,
            "formatted": _address_lines(a),
        }

    @property
    def hasActiveInventory(self) -> bool:
        return any(lv.location_id == self.location.id for lv in self.ctx.sb.world.table(InventoryLevel).values())

    def inventoryLevel(self, info: Info, inventoryItemId: str) -> InventoryLevelView | None:
        level = self.ctx.sb.world.level(self.location.id, parse_gid(inventoryItemId, "InventoryItem") or "")
        return InventoryLevelView(self.ctx, level) if level else None

    def inventoryLevels(self, info: Info, query: str | None = None, **page: Any) -> Connection[InventoryLevelView]:
        levels = [
            InventoryLevelView(self.ctx, lv)
            for lv in self.ctx.sb.world.table(InventoryLevel).values()
            if lv.location_id == self.location.id
        ]
        levels = filtered(self.ctx, info, level_searcher(self.ctx), levels, query)
        return connect(levels, lambda v: (None, int(v.level.item_id)), page)


# --- catalogue and inventory --------------------------------------------------------------------------------


class ProductView:
    typename = "Product"

    def __init__(self, ctx: Ctx, product: Product) -> None:
        self.ctx = ctx
        self.product = product
        self.legacy_id = product.id
        self.id = gid("Product", product.id)
        self.legacyResourceId = product.id
        self.title = product.title
        self.handle = product.handle
        self.status = product.status
        self.vendor = product.vendor
        self.productType = product.product_type
        self.tags = product.tags
        self.descriptionHtml = product.description_html
        self.createdAt = gql_time(product.created_at)
        self.updatedAt = gql_time(product.updated_at)

    @property
    def description(self) -> str:
        import re

        return re.sub(r"<[^>]+>", "", self.product.description_html)

    def _variants(self) -> list[Variant]:
        world = self.ctx.sb.world
        return [v for vid in self.product.variant_ids if (v := world.get(Variant, vid)) is not None]

    @property
    def totalInventory(self) -> int:
        world = self.ctx.sb.world
        return sum(lv.get("available") for v in self._variants() for lv in world.levels_of_item(v.inventory_item_id))

    @property
    def tracksInventory(self) -> bool:
        world = self.ctx.sb.world
        return any(
            (item := world.get(InventoryItem, v.inventory_item_id)) is not None and item.tracked
            for v in self._variants()
        )

    @property
    def hasOnlyDefaultVariant(self) -> bool:
        variants = self._variants()
        return len(variants) == 1 and variants[0].title == "Default Title"

    @property
    def variantsCount(self) -> dict[str, Any]:
        return {"count": len(self.product.variant_ids), "precision": "EXACT"}

    def variants(self, info: Info, sortKey: str = "POSITION", **page: Any) -> Connection[VariantView]:
        views = [VariantView(self.ctx, v) for v in self._variants()]
        return connect(views, variant_sort(sortKey), page)


def variant_sort(key: str) -> Callable[[VariantView], tuple[SortValue, int]]:
    if key == "POSITION":
        return lambda v: (v.variant.position, int(v.variant.id))
    if key == "SKU":
        return lambda v: (v.variant.sku or "", int(v.variant.id))
    if key in ("TITLE", "NAME", "FULL_TITLE"):
        return lambda v: (v.displayName, int(v.variant.id))
    return lambda v: (None, int(v.variant.id))


class VariantView:
    typename = "ProductVariant"

    def __init__(self, ctx: Ctx, variant: Variant) -> None:
        self.ctx = ctx
        self.variant = variant
        self.legacy_id = variant.id
        self.id = gid("ProductVariant", variant.id)
        self.legacyResourceId = variant.id
        self.title = variant.title
        self.sku = variant.sku
        self.barcode = variant.barcode
        self.price = gql_amount(dec(variant.price))
        self.compareAtPrice = gql_amount(dec(variant.compare_at_price)) if variant.compare_at_price else None
        self.inventoryPolicy = variant.inventory_policy
        self.position = variant.position
        self.taxable = True
        self.createdAt = gql_time(variant.created_at)
        self.updatedAt = gql_time(variant.updated_at)
        self.selectedOptions = [{"name": n, "value": v} for n, v in variant.options] or [
            {"name": "Title", "value": variant.title}
        ]

    @property
    def displayName(self) -> str:
        product = self.ctx.sb.world.get(Product, self.variant.product_id)
        title = product.title if product else ""
        return title if self.variant.title == "Default Title" else f"{title} - {self.variant.title}"

    @property
    def inventoryQuantity(self) -> int:
        return sum(lv.get("available") for lv in self.ctx.sb.world.levels_of_item(self.variant.inventory_item_id))

    @property
    def sellableOnlineQuantity(self) -> int:
        world = self.ctx.sb.world
        online = {loc.id for loc in world.locations() if loc.fulfills_online_orders and loc.is_active}
        return max(
            0,
            sum(
                lv.get("available")
                for lv in world.levels_of_item(self.variant.inventory_item_id)
                if lv.location_id in online
            ),
        )

    @property
    def availableForSale(self) -> bool:
        return self.variant.inventory_policy == "CONTINUE" or self.sellableOnlineQuantity > 0

    @property
    def product(self) -> ProductView | None:
        product = self.ctx.sb.world.get(Product, self.variant.product_id)
        return ProductView(self.ctx, product) if product else None

    @property
    def inventoryItem(self) -> InventoryItemView | None:
        item = self.ctx.sb.world.get(InventoryItem, self.variant.inventory_item_id)
        return InventoryItemView(self.ctx, item) if item else None


class InventoryItemView:
    typename = "InventoryItem"

    def __init__(self, ctx: Ctx, item: InventoryItem) -> None:
        self.ctx = ctx
        self.item = item
        self.legacy_id = item.id
        self.id = gid("InventoryItem", item.id)
        self.legacyResourceId = item.id
        self.sku = item.sku
        self.tracked = item.tracked
        self.requiresShipping = item.requires_shipping
        self.createdAt = gql_time(item.created_at)
        self.updatedAt = gql_time(item.updated_at)
        self.unitCost = money(dec(item.cost), ctx.currency) if item.cost is not None else None

    @property
    def duplicateSkuCount(self) -> int:
        if not self.item.sku:
            return 0
        return sum(
            1
            for other in self.ctx.sb.world.table(InventoryItem).values()
            if other.sku == self.item.sku and other.id != self.item.id
        )

    @property
    def locationsCount(self) -> dict[str, Any]:
        return {"count": len(self.ctx.sb.world.levels_of_item(self.item.id)), "precision": "EXACT"}

    def inventoryLevel(self, info: Info, locationId: str) -> InventoryLevelView | None:
        level = self.ctx.sb.world.level(parse_gid(locationId, "Location") or "", self.item.id)
        return InventoryLevelView(self.ctx, level) if level else None

    def inventoryLevels(self, info: Info, query: str | None = None, **page: Any) -> Connection[InventoryLevelView]:
        levels = [InventoryLevelView(self.ctx, lv) for lv in self.ctx.sb.world.levels_of_item(self.item.id)]
        levels = filtered(self.ctx, info, level_searcher(self.ctx), levels, query)
        return connect(levels, lambda v: (None, int(v.level.location_id)), page)

    @property
    def variant(self) -> VariantView | None:
        variant = self.ctx.sb.world.get(Variant, self.item.variant_id)
        return VariantView(self.ctx, variant) if variant else None

    def variants(self, info: Info, **page: Any) -> Connection[VariantView]:
        variant = self.variant
        return connect([variant] if variant else [], by_id, page)


class InventoryLevelView:
    typename = "InventoryLevel"

    def __init__(self, ctx: Ctx, level: InventoryLevel) -> None:
        self.ctx = ctx
        self.level = level
        self.id = level_gid(level.location_id, level.item_id)
        self.createdAt = gql_time(level.created_at)
        self.updatedAt = gql_time(level.updated_at)
        self.deactivationAlert = None

    @property
    def canDeactivate(self) -> bool:
        return self.level.get("committed") == 0 and self.level.get("incoming") == 0

    @property
    def item(self) -> InventoryItemView | None:
        item = self.ctx.sb.world.get(InventoryItem, self.level.item_id)
        return InventoryItemView(self.ctx, item) if item else None

    @property
    def location(self) -> LocationView | None:
        location = self.ctx.sb.world.get(Location, self.level.location_id)
        return LocationView(self.ctx, location) if location else None

    def quantities(self, info: Info, names: list[str]) -> list[dict[str, Any]]:
        from graphql import GraphQLError

        from .models import QUANTITY_NAMES

        unknown = [n for n in names if n not in QUANTITY_NAMES]
        if unknown:
            raise GraphQLError(
                f"Invalid quantity name(s): {', '.join(unknown)}. Valid names: {', '.join(QUANTITY_NAMES)}."
            )
        lv = self.level
        return [
            {
                "id": f"gid://shopify/InventoryQuantity/{lv.location_id}?inventory_item_id={lv.item_id}&name={n}",
                "name": n,
                "quantity": lv.get(n),
                "updatedAt": gql_time(lv.changed_at.get(n)),
                "typename": "InventoryQuantity",
            }
            for n in names
        ]


class AdjustmentGroupView:
    typename = "InventoryAdjustmentGroup"

    def __init__(self, ctx: Ctx, group: AdjustmentGroup) -> None:
        self.ctx = ctx
        self.group = group
        self.id = gid("InventoryAdjustmentGroup", group.id)
        self.createdAt = gql_time(group.created_at)
        self.reason = group.reason
        self.referenceDocumentUri = group.reference_document_uri
        self.app = AppInstallationView(ctx).app

    def changes(
        self,
        info: Info,
        inventoryItemIds: list[str] | None = None,
        locationIds: list[str] | None = None,
        quantityNames: list[str] | None = None,
    ) -> list[dict[str, Any]]:
        world = self.ctx.sb.world
        items = {parse_gid(i, "InventoryItem") for i in inventoryItemIds} if inventoryItemIds else None
        locations = {parse_gid(i, "Location") for i in locationIds} if locationIds else None
        out = []
        for c in self.group.changes:
            if items is not None and c.item_id not in items:
                continue
            if locations is not None and c.location_id not in locations:
                continue
            if quantityNames is not None and c.name not in quantityNames:
                continue
            item = world.get(InventoryItem, c.item_id)
            location = world.get(Location, c.location_id)
            out.append(
                {
                    "name": c.name,
                    "delta": c.delta,
                    "quantityAfterChange": c.quantity_after,
                    "ledgerDocumentUri": c.ledger_document_uri,
                    "item": InventoryItemView(self.ctx, item) if item else None,
                    "location": LocationView(self.ctx, location) if location else None,
                }
            )
        return out


# --- orders -------------------------------------------------------------------------------------------------


class CustomerView:
    typename = "Customer"

    def __init__(self, customer: Customer) -> None:
        self.id = gid("Customer", customer.id)
        self.legacyResourceId = customer.id
        self.email = customer.email
        self.firstName = customer.first_name
        self.lastName = customer.last_name
        self.phone = customer.phone
        name = " ".join(p for p in (customer.first_name, customer.last_name) if p)
        self.displayName = name or customer.email or ""


class AddressView:
    typename = "MailingAddress"

    def __init__(self, address: Address, key: str) -> None:
        self.address = address
        self.id = f"gid://shopify/MailingAddress/{key}?model_name=Address"
        self.address1 = address.address1
        self.address2 = address.address2
        self.city = address.city
        self.company = address.company
        self.country = address.country
        self.countryCodeV2 = address.country_code
        self.firstName = address.first_name
        self.lastName = address.last_name
        self.name = " ".join(p for p in (address.first_name, address.last_name) if p) or None
        self.phone = address.phone
        self.province = address.province
        self.provinceCode = address.province_code
        self.zip = address.zip
        self.formattedArea = ", ".join(x for x in (address.city, address.province_code, address.country) if x)

    def formatted(self, info: Info, withName: bool = False, withCompany: bool = True) -> list[str]:
        return _address_lines(self.address, withName, withCompany)


def tax_line(t: TaxLine, currency: str, presentment: str) -> dict[str, Any]:
    return {
        "title": t.title,
        "rate": float(t.rate),
        "ratePercentage": float(Decimal(t.rate) * 100),
        "priceSet": bag(dec(t.price), currency, presentment),
        "channelLiable": False,
    }


class TransactionView:
    typename = "OrderTransaction"

    def __init__(self, ctx: Ctx, order: Order, txn: Transaction) -> None:
        self.ctx = ctx
        self.order = order
        self.txn = txn
        self.legacy_id = txn.id
        self.id = gid("OrderTransaction", txn.id)
        self.kind = txn.kind
        self.status = txn.status
        self.gateway = txn.gateway
        self.amountSet = bag(dec(txn.amount), order.currency, order.presentment_currency)
        self.createdAt = gql_time(txn.created_at)
        self.processedAt = gql_time(txn.created_at)
        self.test = txn.test

    @property
    def parentTransaction(self) -> TransactionView | None:
        parent = next((t for t in self.order.transactions if t.id == self.txn.parent_id), None)
        return TransactionView(self.ctx, self.order, parent) if parent else None


class OrderView:
    typename = "Order"

    def __init__(self, ctx: Ctx, order: Order) -> None:
        self.ctx = ctx
        self.order = order
        o = order
        self.legacy_id = o.id
        self.id = gid("Order", o.id)
        self.legacyResourceId = o.id
        self.name = o.name
        self.number = o.number
        self.email = o.email
        self.phone = o.phone
        self.note = o.note
        self.createdAt = gql_time(o.created_at)
        self.updatedAt = gql_time(o.updated_at)
        self.processedAt = gql_time(o.processed_at)
        self.cancelledAt = gql_time(o.cancelled_at)
        self.closedAt = gql_time(o.closed_at)
        self.cancelReason = o.cancel_reason
        self.closed = o.closed_at is not None
        self.confirmed = o.confirmed
        self.test = o.test
        self.sourceName = o.source_name
        self.sourceIdentifier = o.source_identifier
        self.tags = o.tags
        self.customAttributes = o.custom_attributes
        self.currencyCode = o.currency
        self.presentmentCurrencyCode = o.presentment_currency
        self.taxesIncluded = o.taxes_included
        self.customer = CustomerView(o.customer) if o.customer else None
        self.shippingAddress = AddressView(o.shipping_address, f"{o.id}1") if o.shipping_address else None
        self.billingAddress = AddressView(o.billing_address, f"{o.id}2") if o.billing_address else None
        shop = ctx.sb.world.shop
        self.statusPageUrl = f"https://{shop.domain}/{shop.shop_id}/orders/{int(o.id):x}/authenticate"

    def _bag(self, amount: Decimal) -> dict[str, Any]:
        return bag(amount, self.order.currency, self.order.presentment_currency)

    @property
    def displayFinancialStatus(self) -> str:
        return order_math.financial_status(self.order)

    @property
    def displayFulfillmentStatus(self) -> str:
        return order_math.fulfillment_status(self.order)

    @property
    def fullyPaid(self) -> bool:
        return order_math.received(self.order) >= order_math.total(self.order)

    @property
    def unpaid(self) -> bool:
        return self.displayFinancialStatus in ("PENDING", "AUTHORIZED", "EXPIRED")

    @property
    def fulfillable(self) -> bool:
        return self.order.cancelled_at is None and any(
            order_math.unfulfilled_quantity(self.order, li.id) > 0 for li in self.order.line_items
        )

    @property
    def restockable(self) -> bool:
        return any(li.quantity - li.refunded_quantity > 0 for li in self.order.line_items)

    @property
    def totalPriceSet(self) -> dict[str, Any]:
        return self._bag(order_math.total(self.order))

    @property
    def subtotalPriceSet(self) -> dict[str, Any]:
        return self._bag(order_math.subtotal(self.order))

    @property
    def totalShippingPriceSet(self) -> dict[str, Any]:
        return self._bag(order_math.shipping_total(self.order))

    @property
    def totalTaxSet(self) -> dict[str, Any]:
        return self._bag(order_math.tax_total(self.order))

    @property
    def totalDiscountsSet(self) -> dict[str, Any]:
        return self._bag(Decimal(0))

    @property
    def totalRefundedSet(self) -> dict[str, Any]:
        return self._bag(order_math.refunded(self.order))

    @property
    def totalReceivedSet(self) -> dict[str, Any]:
        return self._bag(order_math.received(self.order))

    @property
    def totalOutstandingSet(self) -> dict[str, Any]:
        if self.order.cancelled_at is not None:
            return self._bag(Decimal(0))
        return self._bag(max(Decimal(0), order_math.total(self.order) - order_math.received(self.order)))

    @property
    def currentTotalPriceSet(self) -> dict[str, Any]:
        return self._bag(order_math.current_total(self.order))

    @property
    def currentSubtotalPriceSet(self) -> dict[str, Any]:
        return self._bag(order_math.current_subtotal(self.order))

    @property
    def subtotalLineItemsQuantity(self) -> int:
        return sum(li.quantity for li in self.order.line_items)

    @property
    def currentSubtotalLineItemsQuantity(self) -> int:
        return sum(li.quantity - li.refunded_quantity for li in self.order.line_items)

    @property
    def paymentGatewayNames(self) -> list[str]:
        return sorted({t.gateway for t in self.order.transactions if t.kind in ("SALE", "CAPTURE", "AUTHORIZATION")})

    @property
    def taxLines(self) -> list[dict[str, Any]]:
        o = self.order
        return [tax_line(t, o.currency, o.presentment_currency) for t in o.tax_lines]

    def lineItems(self, info: Info, **page: Any) -> Connection[LineItemView]:
        views = [LineItemView(self.ctx, self.order, li) for li in self.order.line_items]
        return connect(views, by_id, page)

    def shippingLines(self, info: Info, includeRemovals: bool = False, **page: Any) -> Connection[dict[str, Any]]:
        o = self.order

        def view(s: ShippingLine) -> dict[str, Any]:
            return {
                "id": gid("ShippingLine", s.id),
                "title": s.title,
                "code": s.code,
                "source": s.source,
                "originalPriceSet": self._bag(dec(s.price)),
                "discountedPriceSet": self._bag(dec(s.price)),
                "legacy_id": s.id,
            }

        return connect([view(s) for s in o.shipping_lines], lambda v: (None, int(v["legacy_id"])), page)

    def transactions(
        self,
        info: Info,
        first: int | None = None,
        capturable: bool | None = None,
        manuallyResolvable: bool | None = None,
    ) -> list[TransactionView]:
        views = [TransactionView(self.ctx, self.order, t) for t in self.order.transactions]
        return views[:first] if first is not None else views

    def fulfillmentOrders(
        self, info: Info, query: str | None = None, displayable: bool = False, **page: Any
    ) -> Connection[FulfillmentOrderView]:
        fos = self.order.fulfillment_orders
        if displayable:
            fos = [fo for fo in fos if fo.status not in ("CANCELLED", "CLOSED")]
        views = [FulfillmentOrderView(self.ctx, self.order, fo) for fo in fos]
        views = filtered(self.ctx, info, fulfillment_order_searcher(self.ctx), views, query)
        return connect(views, by_id, page)

    def fulfillments(self, info: Info, first: int | None = None) -> list[FulfillmentView]:
        views = [FulfillmentView(self.ctx, self.order, f) for f in self.order.fulfillments]
        return views[:first] if first is not None else views

    def refunds(self, info: Info, first: int | None = None) -> list[RefundView]:
        views = [RefundView(self.ctx, self.order, r) for r in self.order.refunds]
        return views[:first] if first is not None else views


class LineItemView:
    typename = "LineItem"

    def __init__(self, ctx: Ctx, order: Order, line: LineItem) -> None:
        self.ctx = ctx
        self.order = order
        self.line = line
        self.legacy_id = line.id
        self.id = gid("LineItem", line.id)
        self.name = line.name
        self.title = line.title
        self.sku = line.sku
        self.quantity = line.quantity
        self.currentQuantity = line.quantity - line.refunded_quantity
        self.refundableQuantity = line.quantity - line.refunded_quantity
        self.variantTitle = line.variant_title
        self.vendor = line.vendor
        self.requiresShipping = line.requires_shipping
        self.taxable = line.taxable
        self.isGiftCard = line.gift_card
        self.customAttributes = [{"key": p["name"], "value": p["value"]} for p in line.properties]
        price = dec(line.price)
        self.originalUnitPriceSet = bag(price, order.currency, order.presentment_currency)
        self.discountedUnitPriceSet = self.originalUnitPriceSet
        self.originalTotalSet = bag(price * line.quantity, order.currency, order.presentment_currency)
        self.discountedTotalSet = self.originalTotalSet

    @property
    def unfulfilledQuantity(self) -> int:
        return order_math.unfulfilled_quantity(self.order, self.line.id)

    @property
    def variant(self) -> VariantView | None:
        variant = self.ctx.sb.world.get(Variant, self.line.variant_id)
        return VariantView(self.ctx, variant) if variant else None

    @property
    def product(self) -> ProductView | None:
        product = self.ctx.sb.world.get(Product, self.line.product_id)
        return ProductView(self.ctx, product) if product else None

    def taxLines(self, info: Info, first: int | None = None) -> list[dict[str, Any]]:
        lines = [tax_line(t, self.order.currency, self.order.presentment_currency) for t in self.line.tax_lines]
        return lines[:first] if first is not None else lines


class FulfillmentOrderView:
    typename = "FulfillmentOrder"

    def __init__(self, ctx: Ctx, order: Order, fo: FulfillmentOrder) -> None:
        self.ctx = ctx
        self.order_record = order
        self.fo = fo
        self.legacy_id = fo.id
        self.id = gid("FulfillmentOrder", fo.id)
        self.status = fo.status
        self.requestStatus = fo.request_status
        self.createdAt = gql_time(fo.created_at)
        self.updatedAt = gql_time(fo.updated_at)
        self.fulfillAt = gql_time(fo.created_at)
        self.orderId = gid("Order", order.id)
        self.orderName = order.name
        open_ = fo.status in ("OPEN", "IN_PROGRESS")
        actions = ["CREATE_FULFILLMENT", "REQUEST_FULFILLMENT", "HOLD", "MOVE", "CANCEL_FULFILLMENT_ORDER"]
        self.supportedActions = [{"action": a, "externalUrl": None} for a in actions] if open_ else []
        address = order.shipping_address
        self.destination = (
            None
            if address is None
            else {
                "id": gid("FulfillmentOrderDestination", fo.id),
                "address1": address.address1,
                "address2": address.address2,
                "city": address.city,
                "company": address.company,
                "countryCode": address.country_code,
                "email": order.email,
                "firstName": address.first_name,
                "lastName": address.last_name,
                "phone": address.phone,
                "province": address.province,
                "zip": address.zip,
            }
        )

    @property
    def order(self) -> OrderView:
        return OrderView(self.ctx, self.order_record)

    @property
    def assignedLocation(self) -> dict[str, Any]:
        location = self.ctx.sb.world.get(Location, self.fo.location_id)
        a = location.address if location else Address()
        return {
            "name": location.name if location else "",
            "location": LocationView(self.ctx, location) if location else None,
            "address1": a.address1,
            "address2": a.address2,
            "city": a.city,
            "countryCode": a.country_code or "US",
            "province": a.province,
            "zip": a.zip,
            "phone": a.phone,
        }

    def lineItems(self, info: Info, **page: Any) -> Connection[FulfillmentOrderLineView]:
        views = [FulfillmentOrderLineView(self.ctx, self.order_record, fl) for fl in self.fo.line_items]
        return connect(views, by_id, page)

    def fulfillments(self, info: Info, **page: Any) -> Connection[FulfillmentView]:
        views = [
            FulfillmentView(self.ctx, self.order_record, f)
            for f in self.order_record.fulfillments
            if self.fo.id in f.fulfillment_order_ids
        ]
        return connect(views, by_id, page)


class FulfillmentOrderLineView:
    typename = "FulfillmentOrderLineItem"

    def __init__(self, ctx: Ctx, order: Order, fl: FulfillmentOrderLine) -> None:
        self.ctx = ctx
        self.order = order
        self.fl = fl
        self.legacy_id = fl.id
        self.id = gid("FulfillmentOrderLineItem", fl.id)
        self.totalQuantity = fl.total_quantity
        self.remainingQuantity = fl.remaining_quantity
        line = next(li for li in order.line_items if li.id == fl.line_item_id)
        self.line = line
        self.sku = line.sku
        self.productTitle = line.title
        self.variantTitle = line.variant_title
        self.inventoryItemId = gid("InventoryItem", line.inventory_item_id) if line.inventory_item_id else None

    @property
    def lineItem(self) -> LineItemView:
        return LineItemView(self.ctx, self.order, self.line)

    @property
    def variant(self) -> VariantView | None:
        variant = self.ctx.sb.world.get(Variant, self.line.variant_id)
        return VariantView(self.ctx, variant) if variant else None


class FulfillmentView:
    typename = "Fulfillment"

    def __init__(self, ctx: Ctx, order: Order, fulfillment: Fulfillment) -> None:
        self.ctx = ctx
        self.order_record = order
        self.fulfillment = fulfillment
        f = fulfillment
        self.legacy_id = f.id
        self.id = gid("Fulfillment", f.id)
        self.legacyResourceId = f.id
        self.name = f.name
        self.status = f.status
        self.displayStatus = "CANCELED" if f.status == "CANCELLED" else "FULFILLED"
        self.createdAt = gql_time(f.created_at)
        self.updatedAt = gql_time(f.updated_at)
        self.totalQuantity = sum(fl.quantity for fl in f.line_items)
        self.requiresShipping = True

    @property
    def location(self) -> LocationView | None:
        location = self.ctx.sb.world.get(Location, self.fulfillment.location_id)
        return LocationView(self.ctx, location) if location else None

    @property
    def order(self) -> OrderView:
        return OrderView(self.ctx, self.order_record)

    def trackingInfo(self, info: Info, first: int | None = None) -> list[dict[str, Any]]:
        out = [t.model_dump() for t in self.fulfillment.tracking]
        return out[:first] if first is not None else out

    def fulfillmentLineItems(self, info: Info, **page: Any) -> Connection[FulfillmentLineView]:
        views = [FulfillmentLineView(self.ctx, self.order_record, fl) for fl in self.fulfillment.line_items]
        return connect(views, by_id, page)

    def fulfillmentOrders(self, info: Info, **page: Any) -> Connection[FulfillmentOrderView]:
        views = [
            FulfillmentOrderView(self.ctx, self.order_record, fo)
            for fo in self.order_record.fulfillment_orders
            if fo.id in self.fulfillment.fulfillment_order_ids
        ]
        return connect(views, by_id, page)


class FulfillmentLineView:
    typename = "FulfillmentLineItem"

    def __init__(self, ctx: Ctx, order: Order, fl: FulfillmentLine) -> None:
        self.ctx = ctx
        self.order = order
        self.legacy_id = fl.id
        self.id = gid("FulfillmentLineItem", fl.id)
        self.quantity = fl.quantity
        self.line = next(li for li in order.line_items if li.id == fl.line_item_id)
        total = dec(self.line.price) * fl.quantity
        self.originalTotalSet = bag(total, order.currency, order.presentment_currency)
        self.discountedTotalSet = self.originalTotalSet

    @property
    def lineItem(self) -> LineItemView:
        return LineItemView(self.ctx, self.order, self.line)


class RefundView:
    typename = "Refund"

    def __init__(self, ctx: Ctx, order: Order, refund: Refund) -> None:
        self.ctx = ctx
        self.order_record = order
        self.refund = refund
        self.legacy_id = refund.id
        self.id = gid("Refund", refund.id)
        self.legacyResourceId = refund.id
        self.createdAt = gql_time(refund.created_at)
        self.updatedAt = gql_time(refund.created_at)
        self.note = refund.note
        txns = [t for t in order.transactions if t.id in refund.transaction_ids]
        self._txns = txns
        total = sum((dec(t.amount) for t in txns if t.status == "SUCCESS"), Decimal(0))
        self.totalRefundedSet = bag(total, order.currency, order.presentment_currency)

    @property
    def order(self) -> OrderView:
        return OrderView(self.ctx, self.order_record)

    def refundLineItems(self, info: Info, **page: Any) -> Connection[RefundLineView]:
        views = [RefundLineView(self.ctx, self.order_record, rl) for rl in self.refund.line_items]
        return connect(views, by_id, page)

    def transactions(self, info: Info, **page: Any) -> Connection[TransactionView]:
        views = [TransactionView(self.ctx, self.order_record, t) for t in self._txns]
        return connect(views, by_id, page)


class RefundLineView:
    def __init__(self, ctx: Ctx, order: Order, rl: RefundLine) -> None:
        self.ctx = ctx
        self.order = order
        self.legacy_id = rl.id
        self.id = gid("RefundLineItem", rl.id)
        self.quantity = rl.quantity
        self.restockType = rl.restock_type
        self.restocked = rl.restocked
        self.rl = rl
        line = next(li for li in order.line_items if li.id == rl.line_item_id)
        self.line = line
        self.priceSet = bag(dec(line.price), order.currency, order.presentment_currency)
        self.subtotalSet = bag(dec(rl.subtotal), order.currency, order.presentment_currency)
        self.totalTaxSet = bag(Decimal(0), order.currency, order.presentment_currency)

    @property
    def lineItem(self) -> LineItemView:
        return LineItemView(self.ctx, self.order, self.line)

    @property
    def location(self) -> LocationView | None:
        location = self.ctx.sb.world.get(Location, self.rl.location_id)
        return LocationView(self.ctx, location) if location else None


# --- jobs and webhooks --------------------------------------------------------------------------------------


class JobView:
    typename = "Job"

    def __init__(self, ctx: Ctx, job: Job) -> None:
        self.id = f"gid://shopify/Job/{job.id}"
        self.done = job.done
        self.ctx = ctx

    @property
    def query(self) -> Any:
        from .resolvers import QueryRoot

        return QueryRoot(self.ctx)


class WebhookSubscriptionView:
    typename = "WebhookSubscription"

    def __init__(self, ctx: Ctx, sub: WebhookSubscription) -> None:
        from .webhooks import enum_of

        self.legacy_id = sub.id
        self.sub = sub
        self.id = gid("WebhookSubscription", sub.id)
        self.legacyResourceId = sub.id
        self.topic = enum_of(sub.topic)
        self.uri = sub.uri
        self.callbackUrl = sub.uri
        self.format = sub.format
        self.includeFields = sub.include_fields
        self.metafieldNamespaces = sub.metafield_namespaces
        self.filter = sub.filter
        self.createdAt = gql_time(sub.created_at)
        self.updatedAt = gql_time(sub.updated_at)
        self.apiVersion = {"handle": sub.api_version, "displayName": sub.api_version, "supported": True}
        self.endpoint = {"typename": "WebhookHttpEndpoint", "callbackUrl": sub.uri}


# --- searchers ----------------------------------------------------------------------------------------------


def level_searcher(ctx: Ctx) -> Searcher[InventoryLevelView]:
    return Searcher(
        fields={
            "inventory_item_id": text_field(lambda v: v.level.item_id),
            "location_id": text_field(lambda v: v.level.location_id),
            "updated_at": time_field(lambda v: v.level.updated_at, lambda: ctx.tz),
            "created_at": time_field(lambda v: v.level.created_at, lambda: ctx.tz),
        }
    )


def fulfillment_order_searcher(ctx: Ctx) -> Searcher[FulfillmentOrderView]:
    return Searcher(
        fields={
            "status": text_field(lambda v: v.fo.status),
            "assigned_location_id": text_field(lambda v: v.fo.location_id),
            "updated_at": time_field(lambda v: v.fo.updated_at, lambda: ctx.tz),
        }
    )


def order_searcher(ctx: Ctx) -> Searcher[OrderView]:
    def status(op: str, value: str, v: OrderView) -> bool:
        o = v.order
        wanted = value.lower()
        if wanted == "any":
            return True
        if wanted == "open":
            return o.closed_at is None and o.cancelled_at is None
        if wanted == "closed":
            return o.closed_at is not None
        if wanted in ("cancelled", "canceled"):
            return o.cancelled_at is not None
        if wanted == "not_closed":
            return o.closed_at is None
        return False

    def lines_text(v: OrderView) -> list[str]:
        return [li.sku for li in v.order.line_items if li.sku]

    tags: Matcher[OrderView] = text_field(lambda v: v.order.tags)

    return Searcher(
        fields={
            "updated_at": time_field(lambda v: v.order.updated_at, lambda: ctx.tz),
            "created_at": time_field(lambda v: v.order.created_at, lambda: ctx.tz),
            "processed_at": time_field(lambda v: v.order.processed_at, lambda: ctx.tz),
            "source_identifier": text_field(lambda v: v.order.source_identifier),
            "source_name": text_field(lambda v: v.order.source_name),
            "tag": tags,
            "tag_not": lambda op, value, v: not tags(op, value, v),
            "name": text_field(lambda v: [v.order.name, v.order.name.lstrip("#")]),
            "email": text_field(lambda v: v.order.email),
            "status": status,
            "financial_status": text_field(lambda v: order_math.financial_status(v.order)),
            "fulfillment_status": text_field(
                lambda v: {
                    "UNFULFILLED": ["unfulfilled", "unshipped"],
                    "PARTIALLY_FULFILLED": ["partial"],
                    "FULFILLED": ["fulfilled", "shipped"],
                }[order_math.fulfillment_status(v.order)]
            ),
            "sku": text_field(lines_text),
            "id": number_field(lambda v: int(v.order.id)),
            "test": text_field(lambda v: str(v.order.test).lower()),
        },
        text=lambda v: [v.order.name, v.order.email or "", *lines_text(v), v.order.source_identifier or ""],
    )


def order_sort(key: str) -> Callable[[OrderView], tuple[SortValue, int]]:
    getters: dict[str, Callable[[Order], SortValue]] = {
        "CREATED_AT": lambda o: o.created_at,
        "UPDATED_AT": lambda o: o.updated_at,
        "PROCESSED_AT": lambda o: o.processed_at,
        "ORDER_NUMBER": lambda o: o.number,
        "TOTAL_PRICE": lambda o: float(order_math.total(o)),
        "TOTAL_ITEMS_QUANTITY": lambda o: sum(li.quantity for li in o.line_items),
        "FINANCIAL_STATUS": lambda o: order_math.financial_status(o),
        "FULFILLMENT_STATUS": lambda o: order_math.fulfillment_status(o),
        "CUSTOMER_NAME": lambda o: " ".join(
            p for p in ((o.customer.first_name, o.customer.last_name) if o.customer else ()) if p
        ),
    }
    getter = getters.get(key)
    if getter is None:
        return lambda v: (None, int(v.order.id))
    return lambda v: (getter(v.order), int(v.order.id))


def variant_searcher(ctx: Ctx) -> Searcher[VariantView]:
    return Searcher(
        fields={
            "sku": text_field(lambda v: v.variant.sku),
            "barcode": text_field(lambda v: v.variant.barcode),
            "title": text_field(lambda v: v.variant.title),
            "product_id": text_field(lambda v: v.variant.product_id),
            "id": number_field(lambda v: int(v.variant.id)),
            "inventory_item_id": text_field(lambda v: v.variant.inventory_item_id),
            "inventory_quantity": number_field(lambda v: v.inventoryQuantity),
            "updated_at": time_field(lambda v: v.variant.updated_at, lambda: ctx.tz),
            "created_at": time_field(lambda v: v.variant.created_at, lambda: ctx.tz),
        },
        text=lambda v: [v.variant.sku or "", v.displayName, v.variant.barcode or ""],
    )


def product_searcher(ctx: Ctx) -> Searcher[ProductView]:
    def skus(v: ProductView) -> list[str]:
        return [x.sku for x in v._variants() if x.sku]

    return Searcher(
        fields={
            "title": text_field(lambda v: v.product.title),
            "handle": text_field(lambda v: v.product.handle),
            "sku": text_field(skus),
            "status": text_field(lambda v: v.product.status),
            "vendor": text_field(lambda v: v.product.vendor),
            "product_type": text_field(lambda v: v.product.product_type),
            "tag": text_field(lambda v: v.product.tags),
            "id": number_field(lambda v: int(v.product.id)),
            "updated_at": time_field(lambda v: v.product.updated_at, lambda: ctx.tz),
            "created_at": time_field(lambda v: v.product.created_at, lambda: ctx.tz),
        },
        text=lambda v: [v.product.title, *skus(v)],
    )


def item_searcher(ctx: Ctx) -> Searcher[InventoryItemView]:
    return Searcher(
        fields={
            "sku": text_field(lambda v: v.item.sku),
            "id": number_field(lambda v: int(v.item.id)),
            "updated_at": time_field(lambda v: v.item.updated_at, lambda: ctx.tz),
            "created_at": time_field(lambda v: v.item.created_at, lambda: ctx.tz),
        },
        text=lambda v: [v.item.sku or ""],
    )


def location_searcher(ctx: Ctx) -> Searcher[LocationView]:
    return Searcher(
        fields={
            "name": text_field(lambda v: v.location.name),
            "id": number_field(lambda v: int(v.location.id)),
            "active": text_field(lambda v: str(v.location.is_active).lower()),
            "city": text_field(lambda v: v.location.address.city),
            "province": text_field(lambda v: v.location.address.province),
            "country": text_field(lambda v: v.location.address.country_code),
        },
        text=lambda v: [v.location.name],
    )


def webhook_searcher(ctx: Ctx) -> Searcher[WebhookSubscriptionView]:
    return Searcher(
        fields={
            "topic": text_field(lambda v: [v.topic, v.sub.topic]),
            "uri": text_field(lambda v: v.sub.uri),
            "id": number_field(lambda v: int(v.sub.id)),
            "created_at": time_field(lambda v: v.sub.created_at, lambda: ctx.tz),
            "updated_at": time_field(lambda v: v.sub.updated_at, lambda: ctx.tz),
        }
    )


# --- node lookup --------------------------------------------------------------------------------------------


def node(ctx: Ctx, global_id: str) -> Any:
    """Any object by GID (``node(id:)`` and the typed root fields)."""
    from .ids import gid_kind

    world = ctx.sb.world
    kind = gid_kind(global_id) if global_id else None
    if kind is None:
        return None
    if kind == "InventoryLevel":
        parsed = parse_level_gid(global_id)
        level = world.level(*parsed) if parsed else None
        return InventoryLevelView(ctx, level) if level else None
    key = parse_gid(global_id, kind)
    simple: dict[str, tuple[type[Any], Callable[[Any], Any]]] = {
        "Location": (Location, lambda r: LocationView(ctx, r)),
        "Product": (Product, lambda r: ProductView(ctx, r)),
        "ProductVariant": (Variant, lambda r: VariantView(ctx, r)),
        "InventoryItem": (InventoryItem, lambda r: InventoryItemView(ctx, r)),
        "Order": (Order, lambda r: OrderView(ctx, r)),
        "WebhookSubscription": (WebhookSubscription, lambda r: WebhookSubscriptionView(ctx, r)),
        "InventoryAdjustmentGroup": (AdjustmentGroup, lambda r: AdjustmentGroupView(ctx, r)),
    }
    if kind in simple:
        cls, make = simple[kind]
        record = world.get(cls, key)
        return make(record) if record is not None else None
    if kind == "Shop":
        return ShopView(ctx) if key == world.shop.shop_id else None
    order = world.order_containing(key)
    if order is None:
        return None
    if kind == "LineItem":
        line = next((li for li in order.line_items if li.id == key), None)
        return LineItemView(ctx, order, line) if line else None
    if kind == "FulfillmentOrder":
        fo = next((f for f in order.fulfillment_orders if f.id == key), None)
        return FulfillmentOrderView(ctx, order, fo) if fo else None
    if kind == "FulfillmentOrderLineItem":
        fol = next((x for f in order.fulfillment_orders for x in f.line_items if x.id == key), None)
        return FulfillmentOrderLineView(ctx, order, fol) if fol else None
    if kind == "Fulfillment":
        f = next((x for x in order.fulfillments if x.id == key), None)
        return FulfillmentView(ctx, order, f) if f else None
    if kind == "FulfillmentLineItem":
        fl = next((x for f in order.fulfillments for x in f.line_items if x.id == key), None)
        return FulfillmentLineView(ctx, order, fl) if fl else None
    if kind == "Refund":
        r = next((x for x in order.refunds if x.id == key), None)
        return RefundView(ctx, order, r) if r else None
    if kind == "OrderTransaction":
        t = next((x for x in order.transactions if x.id == key), None)
        return TransactionView(ctx, order, t) if t else None
    return None
