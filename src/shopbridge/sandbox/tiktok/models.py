"""The sandbox's world: sellers, shops, products, orders and the sandbox's own bookkeeping.

Plain pydantic models persisted as JSON documents in the sandbox's own SQLite file. Field names follow the
TikTok API so a reader can match state to responses.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, Field

OrderStatus = Literal[
    "UNPAID",
    "ON_HOLD",
    "AWAITING_SHIPMENT",
    "PARTIALLY_SHIPPING",
    "AWAITING_COLLECTION",
    "IN_TRANSIT",
    "DELIVERED",
    "COMPLETED",
    "CANCELLED",
]
ProductStatus = Literal[
    "DRAFT",
    "PENDING",
    "FAILED",
    "ACTIVATE",
    "SELLER_DEACTIVATED",
    "PLATFORM_DEACTIVATED",
    "FREEZE",
    "DELETED",
]
AuditStatus = Literal["NONE", "AUDITING", "FAILED", "PRE_APPROVED", "APPROVED"]
PackageStatus = Literal["TO_FULFILL", "PROCESSING", "FULFILLING", "COMPLETED", "CANCELLED"]


class Record(BaseModel):
    """Anything stored in the state file; `id` is its key within its kind."""

    id: str


class Settings(Record):
    """World-wide knobs the control API can turn."""

    id: str = "settings"
    on_hold_seconds: int = 3600
    audit_delay_seconds: int = 300
    audit_fail_rate: float = 0.0
    # From the end of ON_HOLD to shipping_due_time; the other SLA times are derived from it.
    shipping_window_seconds: int = 3 * 86400
    unpaid_cancel_seconds: int = 2 * 3600
    access_token_ttl_seconds: int = 7 * 86400
    refresh_token_ttl_seconds: int = 365 * 86400
    auth_code_ttl_seconds: int = 1800
    rate_limit_qps: float = 50.0
    rate_limit_burst: int = 50
    # The app's Partner Center callback: every topic goes here unless the shop subscribed its own address.
    app_webhook_address: str | None = None


class Address(BaseModel):
    name: str = "Jane Doe"
    first_name: str = "Jane"
    last_name: str = "Doe"
    phone_number: str = "(+1)213-***-1234"
    address_line1: str = "5800 Bristol Pkwy"
    address_line2: str = "Suite 100"
    city: str = "Culver City"
    state: str = "California"
    postal_code: str = "90230"
    region_code: str = "US"


class Warehouse(BaseModel):
    id: str
    name: str
    is_default: bool = False
    effect_status: str = "ENABLED"
    type: str = "SALES_WAREHOUSE"
    sub_type: str = "DOMESTIC_WAREHOUSE"
    address: Address = Field(default_factory=Address)


class Seller(Record):
    name: str
    base_region: str = "US"
    shop_ids: list[str] = Field(default_factory=list)


class Shop(Record):
    seller_id: str
    name: str
    region: str = "US"
    seller_type: Literal["LOCAL", "CROSS_BORDER"] = "LOCAL"
    cipher: str
    code: str
    # The market's currency (money.MARKET_CURRENCIES): a shop sells and settles in it.
    currency: str = "USD"
    warehouses: list[Warehouse] = Field(default_factory=list)
    # Settlement terms. An order settles `settlement_delay_days` after delivery; each statement with a positive
    # settlement holds `reserve_rate` of it back for `reserve_days`; the referral fee is `referral_fee_rate` of net
    # sales ([INFERRED] round numbers, not TikTok's rate card).
    settlement_delay_days: int = 0
    reserve_rate: Decimal = Decimal(0)
    reserve_days: int = 30
    referral_fee_rate: Decimal = Decimal("0.06")

    def warehouse(self, warehouse_id: str) -> Warehouse | None:
        return next((w for w in self.warehouses if w.id == warehouse_id), None)

    def default_warehouse(self) -> Warehouse:
        return next((w for w in self.warehouses if w.is_default), self.warehouses[0])


class AuthCode(Record):
    seller_id: str
    expires_at: int
    used: bool = False


class Token(Record):
    """An access token; `id` is the token string itself."""

    seller_id: str
    refresh_token: str
    access_expires_at: int
    refresh_expires_at: int
    granted_scopes: list[str]
    refresh_used: bool = False


class Sku(BaseModel):
    id: str
    seller_sku: str = ""
    external_sku_id: str = ""
    price: Decimal
    list_price: Decimal | None = None
    # Absolute quantity per warehouse id: the sandbox's own stock truth for this SKU.
    inventory: dict[str, int] = Field(default_factory=dict)
    sales_attributes: list[dict[str, Any]] = Field(default_factory=list)
    identifier_code: dict[str, Any] | None = None
    status: Literal["NORMAL", "DEACTIVATED"] = "NORMAL"
    price_locked: bool = False


class Product(Record):
    shop_id: str
    title: str
    description: str = ""
    category_id: str
    brand_id: str | None = None
    main_images: list[dict[str, Any]] = Field(default_factory=list)
    product_attributes: list[dict[str, Any]] = Field(default_factory=list)
    package_weight: dict[str, Any] | None = None
    package_dimensions: dict[str, Any] | None = None
    is_cod_allowed: bool = False
    external_product_id: str = ""
    status: ProductStatus
    audit_status: AuditStatus = "NONE"
    audit_due_at: int | None = None
    # Forced outcome for the pending audit (control API); None draws from settings.audit_fail_rate.
    audit_forced: Literal["pass", "fail"] | None = None
    audit_failed_reasons: list[dict[str, Any]] = Field(default_factory=list)
    # Whether an approved version is live: edits of a live product are audited while the old version sells.
    has_live_version: bool = False
    passed_first_review: bool = False
    create_time: int
    update_time: int
    skus: list[Sku] = Field(default_factory=list)

    def sku(self, sku_id: str) -> Sku | None:
        return next((s for s in self.skus if s.id == sku_id), None)

    @property
    def sellable(self) -> bool:
        return self.status == "ACTIVATE" or (self.status == "PENDING" and self.has_live_version)


class LineItem(BaseModel):
    id: str
    sku_id: str
    product_id: str
    product_name: str
    sku_name: str
    seller_sku: str
    warehouse_id: str
    original_price: Decimal
    sale_price: Decimal
    package_id: str
    display_status: str = "UNPAID"
    cancel_user: str | None = None
    cancel_reason: str | None = None
    rts_time: int | None = None


class Package(BaseModel):
    id: str
    warehouse_id: str
    status: PackageStatus = "TO_FULFILL"
    shipping_provider_id: str | None = None
    shipping_provider_name: str | None = None
    tracking_number: str | None = None
    rts_time: int | None = None
    # Seller shipping (own carrier and tracking number) as opposed to a TikTok label.
    self_shipped: bool = False
    handover_method: str | None = None


class SettlementDiscrepancy(BaseModel):
    """Sandbox-only: how the control API made this order's settlement disagree with the order, so a test or the
    benchmark can check that the hub's reconciliation notices. Not part of TikTok's API."""

    # The order never settles: neither it nor its refunds appear on any statement.
    withhold: bool = False
    # Added to the order's revenue (and so to its settlement) when it settles.
    revenue_delta: Decimal = Decimal(0)
    # Days the order settles later than its shop's terms say.
    delay_days: int = 0
    # No refund of this order is ever deducted.
    skip_refund: bool = False
    # The referral fee rate charged instead of the shop's.
    referral_fee_rate: Decimal | None = None

    @property
    def injected(self) -> bool:
        return self != SettlementDiscrepancy()


class Order(Record):
    shop_id: str
    user_id: str
    status: OrderStatus
    currency: str
    create_time: int
    update_time: int
    paid_time: int | None = None
    hold_until: int | None = None
    is_on_hold_order: bool = False
    rts_sla_time: int | None = None
    tts_sla_time: int | None = None
    shipping_due_time: int | None = None
    collection_due_time: int | None = None
    delivery_due_time: int | None = None
    delivery_sla_time: int | None = None
    cancel_order_sla_time: int | None = None
    rts_time: int | None = None
    collection_time: int | None = None
    delivery_time: int | None = None
    cancel_time: int | None = None
    complete_time: int | None = None
    cancel_reason: str | None = None
    cancellation_initiator: Literal["SELLER", "BUYER", "SYSTEM"] | None = None
    is_buyer_request_cancel: bool = False
    request_cancel_time: int | None = None
    is_cod: bool = False
    payment_method_name: str = "CCDC"
    shipping_type: Literal["TIKTOK", "SELLER"] = "TIKTOK"
    shipping_fee: Decimal = Decimal("0")
    tax: Decimal = Decimal("0")
    seller_discount: Decimal = Decimal("0")
    platform_discount: Decimal = Decimal("0")
    buyer_message: str = ""
    buyer_email: str = ""
    recipient_address: Address = Field(default_factory=Address)
    delivery_option_id: str = "7091146663229654785"
    delivery_option_name: str = "Standard shipping"
    line_items: list[LineItem] = Field(default_factory=list)
    packages: list[Package] = Field(default_factory=list)
    # Sandbox bookkeeping: whether the buyer's units are still taken out of stock.
    stock_held: bool = False
    # Share of net sales paid to an affiliate creator (0 for a non-affiliate order).
    affiliate_commission_rate: Decimal = Decimal(0)
    statement_id: str | None = None
    # The shop's settlement delay as it applies to this order while it waits to settle, copied here by finance so
    # that when the order settles can be told from the order alone (None: not copied yet, read as 0).
    settlement_delay_days: int | None = None
    discrepancy: SettlementDiscrepancy = Field(default_factory=SettlementDiscrepancy)


class InventoryUpdate(Record):
    """Truth view: one warehouse quantity the seller pushed, as and when it arrived."""

    # Arrival order; updates are never deleted, so the count so far is a sequence.
    seq: int
    shop_id: str
    product_id: str
    sku_id: str
    warehouse_id: str
    quantity: int
    accepted: bool
    error_code: int | None = None
    arrival_time: float
    arrival_wall_time: float
    request_id: str


class Subscription(Record):
    """A shop's webhook address for one event topic; `id` is `shop_id:event_type`."""

    shop_id: str
    event_type: str
    address: str
    create_time: int
    update_time: int


class Delivery(Record):
    """One webhook delivery attempt chain (the outbox)."""

    notification_id: str
    # Emission order: deliveries due at the same moment go out in the order their events happened.
    seq: int
    shop_id: str
    type: int
    event_type: str
    address: str
    body: str
    created_at: float
    next_attempt_at: float
    attempts: int = 0
    status: Literal["PENDING", "DELIVERED", "FAILED", "DROPPED"] = "PENDING"
    history: list[dict[str, Any]] = Field(default_factory=list)


class LatencySpec(BaseModel):
    distribution: Literal["fixed", "uniform", "normal", "exponential"] = "fixed"
    # Milliseconds: fixed uses `mean_ms`; uniform spans [min_ms, max_ms]; normal uses mean/stddev.
    mean_ms: float = 0.0
    min_ms: float = 0.0
    max_ms: float = 0.0
    stddev_ms: float = 0.0


class EndpointFault(Record):
    """Fault injection for one endpoint; `id` is `METHOD path-template` or `*` for every endpoint."""

    latency: LatencySpec = Field(default_factory=LatencySpec)
    error_rate: float = 0.0
    error_code: int = 36009003
    rate_429: float = 0.0
    timeout_rate: float = 0.0
    timeout_seconds: float = 10.0


class WebhookFault(Record):
    """Fault injection for one webhook stream; `id` is the event topic or `*`."""

    drop_rate: float = 0.0
    duplicate_rate: float = 0.0
    # Deliveries are held back by a random delay in [0, window] sandbox seconds, so they may arrive reordered.
    reorder_window_seconds: float = 0.0


class RateLimit(Record):
    """A bucket size override; `id` is a path template or `*`."""

    qps: float
    burst: int


class Cancellation(Record):
    """A cancellation (buyer request, seller or system cancel); `id` is the cancel_id."""

    order_id: str
    shop_id: str
    cancel_type: Literal["CANCEL", "BUYER_CANCEL"]
    cancel_status: Literal[
        "CANCELLATION_REQUEST_PENDING",
        "CANCELLATION_REQUEST_SUCCESS",
        "CANCELLATION_REQUEST_CANCEL",
        "CANCELLATION_REQUEST_COMPLETE",
    ]
    role: Literal["BUYER", "SELLER", "SYSTEM", "OPERATOR"]
    cancel_reason: str
    cancel_reason_text: str
    line_item_ids: list[str]
    refund_subtotal: Decimal
    refund_shipping_fee: Decimal
    refund_tax: Decimal
    should_replenish_stock: bool = True
    respond_deadline: int | None = None
    create_time: int
    update_time: int


ReturnStatus = Literal[
    "RETURN_OR_REFUND_REQUEST_PENDING",
    "REFUND_OR_RETURN_REQUEST_REJECT",
    "AWAITING_BUYER_SHIP",
    "BUYER_SHIPPED_ITEM",
    "REJECT_RECEIVE_PACKAGE",
    "RETURN_OR_REFUND_REQUEST_SUCCESS",
    "RETURN_OR_REFUND_REQUEST_CANCEL",
    "RETURN_OR_REFUND_REQUEST_COMPLETE",
    "AWAITING_BUYER_RESPONSE",
]


class Return(Record):
    """A return or refund request; `id` is the return_id."""

    order_id: str
    shop_id: str
    return_type: Literal["REFUND", "RETURN_AND_REFUND"]
    return_status: ReturnStatus
    role: Literal["BUYER", "SELLER", "SYSTEM", "OPERATOR"]
    return_reason: str
    return_reason_text: str
    line_item_ids: list[str]
    refund_subtotal: Decimal
    refund_shipping_fee: Decimal = Decimal(0)
    refund_tax: Decimal = Decimal(0)
    partial_refund: Decimal | None = None
    buyer_keep_item: bool = False
    return_tracking_number: str | None = None
    respond_deadline: int | None = None
    records: list[dict[str, Any]] = Field(default_factory=list)
    statement_id: str | None = None
    create_time: int
    update_time: int

    @property
    def refund_total(self) -> Decimal:
        if self.partial_refund is not None:
            return self.partial_refund
        return self.refund_subtotal + self.refund_shipping_fee + self.refund_tax


class Statement(Record):
    """A daily statement; its totals are the sums of its transactions other than RESERVE ones, whose sum is
    `reserve_amount` (negative when more is held than released). The payout is settlement plus reserve."""

    shop_id: str
    statement_time: int
    currency: str
    revenue_amount: Decimal
    fee_amount: Decimal
    adjustment_amount: Decimal
    shipping_cost_amount: Decimal
    net_sales_amount: Decimal
    settlement_amount: Decimal
    reserve_amount: Decimal = Decimal(0)
    payment_id: str
    payment_status: Literal["PROCESSING", "PAID", "FAILED"] = "PROCESSING"
    paid_time: int | None = None


class StatementTransaction(Record):
    """One line of a statement in the flat 202309 shape: amounts are signed (charges negative)."""

    statement_id: str
    shop_id: str
    type: str
    order_id: str | None = None
    order_create_time: int | None = None
    currency: str
    amounts: dict[str, Decimal]
    # Per SKU (sku_id, quantity, settlement) for the per-order view.
    skus: list[dict[str, Any]] = Field(default_factory=list)


class Adjustment(Record):
    """A statement line that is not an order's, waiting for its statement: a platform adjustment (control API), a
    reserve coming back (`type` RESERVE, from `settle_time` on), or an injected ORDER line for an order that does
    not exist (`order_id`, control API discrepancy)."""

    shop_id: str
    type: str
    amount: Decimal
    create_time: int
    # When it may settle if later than create_time: a reserve's release.
    settle_time: int | None = None
    order_id: str | None = None
    # For a reserve release: the statement that held the amount back.
    held_by: str | None = None
    statement_id: str | None = None


class Conversation(Record):
    """A buyer ↔ shop chat."""

    shop_id: str
    buyer_user_id: str
    buyer_im_user_id: str
    buyer_nickname: str
    shop_im_user_id: str
    create_time: int
    unread_count: int = 0
    latest_message_id: str | None = None


class Message(Record):
    conversation_id: str
    shop_id: str
    type: str
    # A JSON-serialised string, exactly as TikTok sends it.
    content: str
    create_time: int
    index: str
    is_visible: bool = True
    sender_role: Literal["BUYER", "SHOP", "CUSTOMER_SERVICE", "SYSTEM", "ROBOT"]
    sender_im_user_id: str
    sender_nickname: str


class Session(Record):
    """A support session: opens on a buyer message, measured until the shop's first answer."""

    conversation_id: str
    shop_id: str
    buyer_nickname: str
    begin_time: int
    end_time: int | None = None
    first_response_time: int | None = None
