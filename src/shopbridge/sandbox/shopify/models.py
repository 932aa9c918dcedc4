"""The sandbox's world: the shop, its locations, catalogue, inventory, orders and the sandbox's own bookkeeping.

Plain pydantic models persisted as JSON documents in the sandbox's own SQLite file (``state.py``). Ids are the numeric
REST ids as strings; GIDs are derived from them (``ids.py``). Field names follow the REST resources (reference §4.3,
§7.5) so a reader can match state to webhook payloads; the GraphQL views (``views.py``) rename them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

QUANTITY_NAMES = (
    "available",
    "on_hand",
    "committed",
    "reserved",
    "incoming",
    "damaged",
    "safety_stock",
    "quality_control",
)
# on_hand = available + every unavailable state; `incoming` is not on hand (reference §3.1).
ON_HAND_PARTS = ("available", "committed", "reserved", "damaged", "safety_stock", "quality_control")

FulfillmentOrderStatus = Literal["OPEN", "IN_PROGRESS", "SCHEDULED", "ON_HOLD", "INCOMPLETE", "CLOSED", "CANCELLED"]
RestockType = Literal["RETURN", "CANCEL", "NO_RESTOCK"]


class Record(BaseModel):
    """Anything stored in the state file; ``id`` is its key within its kind."""

    id: str


class Settings(Record):
    """Knobs the control API turns (``PATCH /_sandbox/settings``)."""

    id: str = "settings"
    # Cost-based leaky bucket per (app, shop), reference §2.1: Standard plan 2000/100 (legacy 1000/50).
    bucket_size: float = 2000.0
    restore_rate: float = 100.0
    max_query_cost: int = 1000
    # How a throttled GraphQL call is answered: 200 + THROTTLED (what Shopify does) or 429 + Retry-After.
    throttle_status: Literal[200, 429] = 200
    # orderCancel is asynchronous: its Job is done and cancelledAt appears after this delay.
    cancel_delay_seconds: float = 0.2
    # Webhook retries: 8 retries with exponential backoff, base x 2^n (Shopify spreads 8 retries over 4 h, §7.4).
    webhook_retry_base_seconds: float = 1.0
    webhook_max_retries: int = 8
    # Delete an Admin-API subscription whose delivery failed every retry (§7.4, [UNCERTAIN] threshold).
    remove_failing_subscriptions: bool = True
    # Authorization codes and expiring tokens (§1.3-§1.4).
    auth_code_ttl_seconds: float = 600.0
    expiring_access_token_ttl_seconds: float = 3600.0
    refresh_token_ttl_seconds: float = 90 * 86400.0
    client_credentials_ttl_seconds: float = 86399.0
    # Store simulation (traffic.py).
    traffic_enabled: bool = False
    web_orders_per_second: float = 0.2
    in_store_sales_per_second: float = 0.1
    traffic_fulfil: bool = True
    fulfil_delay_min_seconds: float = 1.0
    fulfil_delay_max_seconds: float = 5.0
    foreign_carrier_share: float = 0.1


class ShopRecord(Record):
    id: str = "shop"
    shop_id: str
    name: str
    domain: str
    email: str = "owner@example.com"
    currency: str = "USD"
    timezone: str = "America/Los_Angeles"
    plan_display_name: str = "Basic"
    next_order_number: int = 1001
    app_installed: bool = True
    created_at: float


class Sequence(Record):
    """The last numeric id handed out, so a restarted sandbox never reuses one."""

    id: str = "ids"
    last_id: int


class Address(BaseModel):
    first_name: str | None = None
    last_name: str | None = None
    company: str | None = None
    address1: str | None = None
    address2: str | None = None
    city: str | None = None
    province: str | None = None
    province_code: str | None = None
    country: str | None = None
    country_code: str | None = "US"
    zip: str | None = None
    phone: str | None = None


class Location(Record):
    name: str
    address: Address = Field(default_factory=Address)
    is_active: bool = True
    fulfills_online_orders: bool = True
    created_at: float
    updated_at: float


class Product(Record):
    title: str
    handle: str
    vendor: str = "Sandbox Store"
    product_type: str = ""
    status: Literal["ACTIVE", "ARCHIVED", "DRAFT"] = "ACTIVE"
    tags: list[str] = Field(default_factory=list)
    description_html: str = ""
    variant_ids: list[str] = Field(default_factory=list)
    created_at: float
    updated_at: float


class Variant(Record):
    product_id: str
    inventory_item_id: str
    title: str = "Default Title"
    sku: str | None = None
    barcode: str | None = None
    price: str = "0.00"
    compare_at_price: str | None = None
    inventory_policy: Literal["DENY", "CONTINUE"] = "DENY"
    position: int = 1
    options: list[tuple[str, str]] = Field(default_factory=list)
    created_at: float
    updated_at: float


class InventoryItem(Record):
    variant_id: str
    sku: str | None = None
    tracked: bool = True
    requires_shipping: bool = True
    cost: str | None = None
    created_at: float
    updated_at: float


class InventoryLevel(Record):
    """One item at one location; ``id`` is ``<location id>:<item id>``. ``on_hand`` is derived, never stored."""

    location_id: str
    item_id: str
    quantities: dict[str, int] = Field(default_factory=dict)
    # When each quantity name last changed (InventoryQuantity.updatedAt).
    changed_at: dict[str, float] = Field(default_factory=dict)
    created_at: float
    updated_at: float

    def get(self, name: str) -> int:
        if name == "on_hand":
            return sum(self.quantities.get(n, 0) for n in ON_HAND_PARTS)
        return self.quantities.get(name, 0)


class AdjustmentChange(BaseModel):
    name: str
    delta: int
    quantity_after: int
    item_id: str
    location_id: str
    ledger_document_uri: str | None = None


class AdjustmentGroup(Record):
    """An InventoryAdjustmentGroup: what one inventory mutation (or order event) changed."""

    created_at: float
    reason: str
    reference_document_uri: str | None = None
    app: bool = True
    changes: list[AdjustmentChange] = Field(default_factory=list)


class TaxLine(BaseModel):
    title: str
    rate: str
    price: str


class LineItem(BaseModel):
    id: str
    variant_id: str | None = None
    product_id: str | None = None
    inventory_item_id: str | None = None
    sku: str | None = None
    title: str
    variant_title: str | None = None
    vendor: str | None = None
    quantity: int
    price: str
    requires_shipping: bool = True
    taxable: bool = True
    gift_card: bool = False
    tax_lines: list[TaxLine] = Field(default_factory=list)
    properties: list[dict[str, str]] = Field(default_factory=list)
    refunded_quantity: int = 0

    @property
    def name(self) -> str:
        if self.variant_title and self.variant_title != "Default Title":
            return f"{self.title} - {self.variant_title}"
        return self.title


class ShippingLine(BaseModel):
    id: str
    title: str
    price: str
    code: str | None = None
    source: str | None = None


class Transaction(BaseModel):
    id: str
    kind: Literal["SALE", "AUTHORIZATION", "CAPTURE", "REFUND", "VOID", "CHANGE", "EMV_AUTHORIZATION"]
    status: Literal["SUCCESS", "PENDING", "FAILURE", "ERROR", "AWAITING_RESPONSE", "UNKNOWN"] = "SUCCESS"
    amount: str
    gateway: str = "manual"
    parent_id: str | None = None
    test: bool = False
    created_at: float


class FulfillmentOrderLine(BaseModel):
    id: str
    line_item_id: str
    total_quantity: int
    remaining_quantity: int
    # Units of this line whose inventory the order claimed (available → committed) at the assigned location.
    claimed: int = 0


class FulfillmentOrder(BaseModel):
    id: str
    location_id: str
    status: FulfillmentOrderStatus = "OPEN"
    request_status: str = "UNSUBMITTED"
    line_items: list[FulfillmentOrderLine] = Field(default_factory=list)
    created_at: float
    updated_at: float


class TrackingInfo(BaseModel):
    company: str | None = None
    number: str | None = None
    url: str | None = None


class FulfillmentLine(BaseModel):
    id: str
    line_item_id: str
    quantity: int


class Fulfillment(BaseModel):
    id: str
    name: str
    status: Literal["SUCCESS", "CANCELLED", "ERROR", "FAILURE", "OPEN", "PENDING"] = "SUCCESS"
    location_id: str
    fulfillment_order_ids: list[str] = Field(default_factory=list)
    tracking: list[TrackingInfo] = Field(default_factory=list)
    line_items: list[FulfillmentLine] = Field(default_factory=list)
    notify_customer: bool = False
    message: str | None = None
    created_at: float
    updated_at: float


class RefundLine(BaseModel):
    id: str
    line_item_id: str
    quantity: int
    restock_type: RestockType
    location_id: str | None = None
    restocked: bool = False
    subtotal: str


class Refund(BaseModel):
    id: str
    note: str | None = None
    line_items: list[RefundLine] = Field(default_factory=list)
    transaction_ids: list[str] = Field(default_factory=list)
    shipping_amount: str = "0.00"
    created_at: float


class Customer(BaseModel):
    id: str
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None


class Order(Record):
    number: int
    name: str
    email: str | None = None
    phone: str | None = None
    currency: str = "USD"
    presentment_currency: str = "USD"
    source_name: str | None = None
    source_identifier: str | None = None
    source_url: str | None = None
    tags: list[str] = Field(default_factory=list)
    note: str | None = None
    custom_attributes: list[dict[str, str]] = Field(default_factory=list)
    shipping_address: Address | None = None
    billing_address: Address | None = None
    customer: Customer | None = None
    line_items: list[LineItem] = Field(default_factory=list)
    shipping_lines: list[ShippingLine] = Field(default_factory=list)
    tax_lines: list[TaxLine] = Field(default_factory=list)
    taxes_included: bool = False
    transactions: list[Transaction] = Field(default_factory=list)
    # Given at create (OrderCreateFinancialStatus) or None: then derived from the transactions.
    financial_status: str | None = None
    inventory_behaviour: str = "BYPASS"
    fulfillment_orders: list[FulfillmentOrder] = Field(default_factory=list)
    fulfillments: list[Fulfillment] = Field(default_factory=list)
    refunds: list[Refund] = Field(default_factory=list)
    test: bool = False
    confirmed: bool = True
    created_at: float
    updated_at: float
    processed_at: float
    cancelled_at: float | None = None
    cancel_reason: str | None = None
    closed_at: float | None = None
    staff_note: str | None = None
    # A pending orderCancel job, if any (orders.py).
    cancel_job_id: str | None = None
    # Store simulation: when staff will fulfil it (traffic.py), None when no plan.
    staff_fulfil_at: float | None = None


class Job(Record):
    kind: Literal["order_cancel"]
    order_id: str
    due_at: float
    done: bool = False
    params: dict[str, Any] = Field(default_factory=dict)
    created_at: float


class AuthCode(Record):
    scope: str
    expires_at: float
    expiring: bool = False
    used: bool = False


class Token(Record):
    """An access token; ``id`` is the token string itself."""

    kind: Literal["custom_app", "offline", "expiring", "client_credentials"]
    scope: str
    created_at: float
    expires_at: float | None = None
    revoked: bool = False


class RefreshToken(Record):
    access_token: str
    scope: str
    expires_at: float
    used: bool = False


class WebhookSubscription(Record):
    topic: str
    uri: str
    format: Literal["JSON", "XML"] = "JSON"
    include_fields: list[str] = Field(default_factory=list)
    metafield_namespaces: list[str] = Field(default_factory=list)
    filter: str | None = None
    api_version: str
    created_at: float
    updated_at: float


class Delivery(Record):
    """One webhook delivery and its attempts; ``id`` is ``<webhook id>`` (``#2`` for an injected duplicate)."""

    seq: int
    webhook_id: str
    event_id: str
    topic: str
    subscription_id: str
    uri: str
    body: str
    api_version: str
    triggered_at: float
    next_attempt_at: float
    attempts: int = 0
    status: Literal["PENDING", "HELD", "DELIVERED", "FAILED", "LOST"] = "PENDING"
    duplicate: bool = False
    # A reordered delivery waits for the next event's delivery (or this deadline) before it goes out.
    held_until: float | None = None
    history: list[dict[str, Any]] = Field(default_factory=list)


class LatencySpec(BaseModel):
    distribution: Literal["fixed", "uniform", "exponential"] = "fixed"
    # Milliseconds: fixed uses mean_ms; uniform spans [min_ms, max_ms]; exponential has mean mean_ms.
    mean_ms: float = 0.0
    min_ms: float = 0.0
    max_ms: float = 0.0


class ApiFault(Record):
    """Faults for one GraphQL root field (``orders``, ``inventorySetQuantities``…) or ``*``."""

    latency: LatencySpec = Field(default_factory=LatencySpec)
    error_rate: float = 0.0
    error_status: int = 503
    throttle_rate: float = 0.0


class WebhookFault(Record):
    """Faults for one webhook topic (``orders/create``…) or ``*``."""

    loss_rate: float = 0.0
    duplicate_rate: float = 0.0
    reorder_rate: float = 0.0
    # Longest a reordered delivery waits for a later event before it goes anyway.
    reorder_max_hold_seconds: float = 10.0
    delay_seconds: float = 0.0


class IdempotencyRecord(Record):
    """What a mutation sent with ``@idempotent(key:)`` answered; ``id`` is ``<operation>:<key>``."""

    operation: str
    fingerprint: str
    result: dict[str, Any]
    created_at: float
