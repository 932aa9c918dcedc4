"""The schema. Money is integer minor units beside a currency column; every time is UTC.

Every row that belongs to a shop carries ``channel_account_id`` so the data can later be sharded by shop.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shopbridge.store.types import BigId, JsonDocument, UTCDateTime

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JsonDocument}


def _created() -> Mapped[datetime]:
    return mapped_column(UTCDateTime, server_default=func.current_timestamp())


# --- people -------------------------------------------------------------------------------------------


class User(Base):
    __tablename__ = "users"
    __table_args__ = (CheckConstraint("role IN ('owner', 'ops', 'finance', 'support', 'viewer')", name="role"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = _created()


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    token_hash: Mapped[str] = mapped_column(String(128), unique=True)
    created_at: Mapped[datetime] = _created()
    last_used_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None] = mapped_column(doc="Refused from then on; none: until revoked.")
    revoked_at: Mapped[datetime | None]


class WebSession(Base):
    """A signed-in browser: the cookie's value is shown once and stored only as its SHA-256."""

    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64), doc="Sent back with every form and htmx request.")
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(doc="The absolute end; idleness ends it sooner.")
    ended_at: Mapped[datetime | None]


class SignInLink(Base):
    """A first-time (or reset) sign-in link: used once, before it expires, to set a password."""

    __tablename__ = "sign_in_links"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class SignInFailure(Base):
    """A failed sign-in, counted per e-mail address and per client address to slow password guessing."""

    __tablename__ = "sign_in_failures"
    __table_args__ = (Index(None, "email", "at"), Index(None, "client", "at"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    client: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime]


class AuditEntry(Base):
    """Who changed what, when, with the before and after."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = _created()
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(100))
    subject_type: Mapped[str] = mapped_column(String(50))
    subject_id: Mapped[str] = mapped_column(String(100))
    before: Mapped[dict[str, Any] | None]
    after: Mapped[dict[str, Any] | None]

    __table_args__ = (Index(None, "subject_type", "subject_id"),)


# --- channels and catalogue --------------------------------------------------------------------------


class ChannelAccount(Base):
    """One connected shop or store: a TikTok shop, a Shopify store, a POS, the manual channel."""

    __tablename__ = "channel_accounts"
    __table_args__ = (
        UniqueConstraint("channel", "external_id"),
        CheckConstraint("status IN ('active', 'needs_reauth', 'disconnected')", name="status"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    channel: Mapped[str] = mapped_column(String(20))
    label: Mapped[str] = mapped_column(String(200))
    external_id: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20), default="active")
    status_reason: Mapped[str | None] = mapped_column(Text)
    currency: Mapped[str | None] = mapped_column(String(3))
    timezone: Mapped[str | None] = mapped_column(String(64))
    credentials: Mapped[bytes | None] = mapped_column(LargeBinary, doc="Fernet token; never plain text.")
    credentials_expire_at: Mapped[datetime | None]
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _created()


class Location(Base):
    __tablename__ = "locations"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    code: Mapped[str] = mapped_column(String(50), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str | None] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = _created()


class ChannelWarehouse(Base):
    """A channel's warehouse mapped to one of our locations."""

    __tablename__ = "channel_warehouses"
    __table_args__ = (UniqueConstraint("channel_account_id", "external_warehouse_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    channel_account_id: Mapped[int] = mapped_column(ForeignKey("channel_accounts.id", ondelete="CASCADE"))
    external_warehouse_id: Mapped[str] = mapped_column(String(100))
    location_id: Mapped[int | None] = mapped_column(ForeignKey("locations.id"), index=True)
    name: Mapped[str | None] = mapped_column(String(200))


class Product(Base):
    __tablename__ = "products"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    title: Mapped[str] = mapped_column(String(500))
    description: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="active")
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _created()


class Variant(Base):
    """A sellable unit, identified by its SKU. ``stock_source`` names the single source of stock truth."""

    __tablename__ = "variants"
    __table_args__ = (CheckConstraint("stock_source IN ('hub', 'external')", name="stock_source"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"), index=True)
    sku: Mapped[str] = mapped_column(String(100), unique=True)
    title: Mapped[str | None] = mapped_column(String(500))
    barcode: Mapped[str | None] = mapped_column(String(100))
    price_minor: Mapped[int | None]
    currency: Mapped[str | None] = mapped_column(String(3))
    stock_source: Mapped[str] = mapped_column(String(10), default="hub")
    created_at: Mapped[datetime] = _created()


class ChannelListing(Base):
    """A variant as a channel knows it (TikTok product id + SKU id), with the stock versions pushed and acked."""

    __tablename__ = "channel_listings"
    __table_args__ = (
        UniqueConstraint("channel_account_id", "external_sku_id"),
        CheckConstraint("link IN ('auto', 'manual', 'unlinked')", name="link"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    channel_account_id: Mapped[int] = mapped_column(ForeignKey("channel_accounts.id", ondelete="CASCADE"))
    variant_id: Mapped[int | None] = mapped_column(ForeignKey("variants.id"), index=True)
    external_product_id: Mapped[str] = mapped_column(String(100))
    external_sku_id: Mapped[str] = mapped_column(String(100))
    seller_sku: Mapped[str | None] = mapped_column(String(100), index=True)
    status: Mapped[str] = mapped_column(String(30), default="unknown")
    stock_version: Mapped[int] = mapped_column(default=0, doc="Raised on every change to available-to-sell.")
    acked_stock_version: Mapped[int] = mapped_column(default=0, doc="Newest version the channel confirmed.")
    last_synced_at: Mapped[datetime | None]
    pushed_quantity: Mapped[int | None] = mapped_column(doc="The quantity the channel last confirmed.")
    pushed_at: Mapped[datetime | None]
    push_error: Mapped[str | None] = mapped_column(Text, doc="Why the channel refused this SKU's last push.")
    external_stock_id: Mapped[str | None] = mapped_column(
        String(100), doc="The channel's id for the stock of this listing, where it has one (Shopify's inventory item)."
    )
    link: Mapped[str] = mapped_column(
        String(10), default="auto", doc="auto: linked to the variant by SKU; manual: by a person; unlinked: kept apart."
    )


class StockRuleRow(Base):
    """How much of the stock truth a channel account is shown (domain.stock.StockRule): one row per account
    (``variant_id`` NULL, the default) plus per-SKU overrides."""

    __tablename__ = "stock_rules"
    __table_args__ = (
        Index("uq_stock_rules_account_default", "channel_account_id", unique=True,
              sqlite_where=text("variant_id IS NULL"), postgresql_where=text("variant_id IS NULL")),
        Index("uq_stock_rules_account_variant", "channel_account_id", "variant_id", unique=True,
              sqlite_where=text("variant_id IS NOT NULL"), postgresql_where=text("variant_id IS NOT NULL")),
    )  # fmt: skip

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    channel_account_id: Mapped[int] = mapped_column(ForeignKey("channel_accounts.id", ondelete="CASCADE"))
    variant_id: Mapped[int | None] = mapped_column(ForeignKey("variants.id", ondelete="CASCADE"))
    buffer_units: Mapped[int] = mapped_column(default=0)
    buffer_percent: Mapped[Decimal] = mapped_column(Numeric(5, 2), default=Decimal(0))
    out_of_stock_threshold: Mapped[int] = mapped_column(default=0)
    continue_selling: Mapped[bool] = mapped_column(Boolean, default=False)
    protect_units: Mapped[int] = mapped_column(default=0, doc="Flash-sale guard: extra units held back...")
    protect_until: Mapped[datetime | None] = mapped_column(doc="...until this moment.")
    updated_at: Mapped[datetime] = _created()


# --- stock ---------------------------------------------------------------------------------------------


class StockLevel(Base):
    """On-hand and reserved per SKU and location, derived from the movement ledger."""

    __tablename__ = "stock_levels"

    variant_id: Mapped[int] = mapped_column(ForeignKey("variants.id", ondelete="CASCADE"), primary_key=True)
    location_id: Mapped[int] = mapped_column(ForeignKey("locations.id"), primary_key=True)
    on_hand: Mapped[int] = mapped_column(default=0)
    reserved: Mapped[int] = mapped_column(default=0)
    updated_at: Mapped[datetime] = _created()


class StockMovement(Base):
    """One line of the stock ledger. The idempotency key makes a replayed event move stock only once."""

    __tablename__ = "stock_movements"
    __table_args__ = (
        CheckConstraint(
            "kind IN ('sale', 'return', 'restock', 'adjustment', 'transfer', 'reservation', 'release')",
            name="kind",
        ),
        Index(None, "variant_id", "location_id"),
        # "Does the hub know this SKU's stock?": a movement from a stock source (hub or external), not an order's.
        Index("ix_stock_movements_variant_id_source", "variant_id", "source"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    variant_id: Mapped[int] = mapped_column(ForeignKey("variants.id"))
    location_id: Mapped[int] = mapped_column(ForeignKey("locations.id"))
    kind: Mapped[str] = mapped_column(String(20))
    on_hand_delta: Mapped[int] = mapped_column(default=0)
    reserved_delta: Mapped[int] = mapped_column(default=0)
    source: Mapped[str] = mapped_column(String(50))
    reference: Mapped[str | None] = mapped_column(String(200))
    occurred_at: Mapped[datetime]
    recorded_at: Mapped[datetime] = _created()


# --- orders --------------------------------------------------------------------------------------------


class Order(Base):
    """One order from any channel, upserted on (channel account, external id)."""

    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("channel_account_id", "external_id"),
        Index(None, "status", "updated_at"),
        Index(None, "dispatch_by", "id"),
        Index(None, "external_id"),
        Index(None, "buyer_name"),
        Index(None, "is_cod", "status"),
        Index(None, "channel_account_id", "channel_created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    channel_account_id: Mapped[int] = mapped_column(ForeignKey("channel_accounts.id"))
    external_id: Mapped[str] = mapped_column(String(100))
    channel_status: Mapped[str] = mapped_column(String(50), doc="The channel's own word, verbatim.")
    status: Mapped[str] = mapped_column(String(30), doc="Normalized across channels.")
    currency: Mapped[str] = mapped_column(String(3))
    total_minor: Mapped[int]
    subtotal_minor: Mapped[int | None]
    shipping_minor: Mapped[int | None]
    tax_minor: Mapped[int | None]
    payment_method: Mapped[str | None] = mapped_column(String(100))
    is_cod: Mapped[bool] = mapped_column(Boolean, default=False)
    buyer: Mapped[dict[str, Any]] = mapped_column(default=dict, doc="As received: masked by the channel.")
    recipient: Mapped[dict[str, Any]] = mapped_column(default=dict)
    buyer_name: Mapped[str | None] = mapped_column(
        String(200), doc="The recipient's or buyer's name in search form (domain.orders.buyer_name)."
    )
    deadlines: Mapped[dict[str, Any]] = mapped_column(
        default=dict, doc="The channel's deadlines by name, and dispatch_by, hold_until."
    )
    packages: Mapped[dict[str, Any]] = mapped_column(default=dict)
    dispatch_by: Mapped[datetime | None] = mapped_column(
        doc="The dispatch deadline while the order still has to be shipped; none once shipped or cancelled."
    )
    blocked_reason: Mapped[str | None] = mapped_column(String(50))
    blocked_message: Mapped[str | None] = mapped_column(Text)
    oversold_units: Mapped[int] = mapped_column(default=0, doc="Units ordered that the stock truth no longer had.")
    awaiting_shipment_at: Mapped[datetime | None] = mapped_column(doc="When it first reached AWAITING_SHIPMENT.")
    released_at: Mapped[datetime | None]
    fulfilment_location_id: Mapped[int | None] = mapped_column(
        ForeignKey("locations.id"), doc="Where its units were routed at release, when not its channel warehouse's."
    )
    channel_created_at: Mapped[datetime]
    channel_updated_at: Mapped[datetime]
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _created()


class OrderLine(Base):
    """Lines aggregated per SKU; the channel's per-unit line item ids are kept for partial refunds."""

    __tablename__ = "order_lines"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    variant_id: Mapped[int | None] = mapped_column(ForeignKey("variants.id"))
    sku: Mapped[str | None] = mapped_column(String(100), index=True)
    external_sku_id: Mapped[str | None] = mapped_column(String(100))
    external_product_id: Mapped[str | None] = mapped_column(String(100))
    title: Mapped[str] = mapped_column(String(500))
    quantity: Mapped[int]
    unit_price_minor: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3))
    line_item_ids: Mapped[dict[str, Any]] = mapped_column(default=dict)


class ManualEntry(Base):
    """An order staff entered by hand (WhatsApp, phone, Facebook): its idempotency key, so the same entry sent
    twice makes one order. Its id numbers the order (WA-000042)."""

    __tablename__ = "manual_entries"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    digest: Mapped[str] = mapped_column(
        String(64), doc="SHA-256 of the entry: the same key with other content is refused."
    )
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    entered_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]


class OrderStatusChange(Base):
    __tablename__ = "order_status_history"
    __table_args__ = (Index(None, "status", "occurred_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    channel_status: Mapped[str] = mapped_column(String(50))
    status: Mapped[str] = mapped_column(String(30))
    source: Mapped[str] = mapped_column(String(230), doc="webhook, poll, hub:<who> (a person, by e-mail), ...")
    occurred_at: Mapped[datetime]
    recorded_at: Mapped[datetime] = _created()


class OrderEvent(Base):
    """What happened to an order that other connectors act on (released to fulfilment, cancelled after release).
    Consumers read it in id order; it is written in the same transaction as the change it reports."""

    __tablename__ = "order_events"
    __table_args__ = (UniqueConstraint("order_id", "kind"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    channel_account_id: Mapped[int] = mapped_column(ForeignKey("channel_accounts.id"))
    kind: Mapped[str] = mapped_column(String(50))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime]


class OrderLink(Base):
    """A hub order placed in another channel account to be fulfilled there (a TikTok order in the Shopify store).
    The row is written before the store is asked, so a retry finds the order it placed instead of placing another."""

    __tablename__ = "order_links"
    __table_args__ = (
        UniqueConstraint("order_id", "channel_account_id"),
        CheckConstraint(
            "state IN ('placing', 'placed', 'refused', 'cancel_requested', 'cancelled', 'cancel_refused')",
            name="state",
        ),
        Index(None, "channel_account_id", "external_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    channel_account_id: Mapped[int] = mapped_column(ForeignKey("channel_accounts.id"))
    external_id: Mapped[str | None] = mapped_column(String(100), doc="The order's id in that account.")
    external_name: Mapped[str | None] = mapped_column(String(100), doc="Its name there, e.g. #1042.")
    external_location_id: Mapped[str | None] = mapped_column(
        String(100), doc="The account's location that fulfils it (a POS store), where it has several."
    )
    external_status: Mapped[str | None] = mapped_column(String(30), doc="Its progress there, in the account's word.")
    state: Mapped[str] = mapped_column(String(20), default="placing")
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _created()


class Shipment(Base):
    """A fulfilment made in one channel account (the store shipped a parcel) for an order of another, to be
    reported to the order's own channel with its tracking number."""

    __tablename__ = "shipments"
    __table_args__ = (
        UniqueConstraint("channel_account_id", "external_id"),
        CheckConstraint("state IN ('pending', 'sent', 'failed')", name="state"),
        Index(None, "order_id"),
        Index(None, "tracking_number"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    channel_account_id: Mapped[int] = mapped_column(ForeignKey("channel_accounts.id"), doc="Where it shipped.")
    external_id: Mapped[str] = mapped_column(String(100), doc="The fulfilment's id where it shipped.")
    carrier: Mapped[str | None] = mapped_column(String(200), doc="The carrier as the fulfilling side named it.")
    tracking_number: Mapped[str | None] = mapped_column(String(200))
    tracking_url: Mapped[str | None] = mapped_column(Text)
    lines: Mapped[list[dict[str, Any]]] = mapped_column(JsonDocument, default=list, doc="[{sku, variant_id, quantity}]")
    shipped_at: Mapped[datetime]
    state: Mapped[str] = mapped_column(String(10), default="pending")
    provider: Mapped[str | None] = mapped_column(String(200), doc="The carrier as the order's channel knows it.")
    external_package_id: Mapped[str | None] = mapped_column(String(100), doc="The package on the order's channel.")
    error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = _created()


class StoreReturn(Base):
    """Goods taken back by a channel that fulfils orders (a POS returns desk) for an order of another channel: one
    refund on the order's channel per return, for exactly its lines and units."""

    __tablename__ = "store_returns"
    __table_args__ = (
        UniqueConstraint("channel_account_id", "external_id"),
        CheckConstraint("state IN ('unmatched', 'refunding', 'refunded', 'refused')", name="state"),
        Index(None, "order_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    channel_account_id: Mapped[int] = mapped_column(ForeignKey("channel_accounts.id"), doc="Where it was returned.")
    external_id: Mapped[str] = mapped_column(String(100), doc="The return's id there.")
    external_location_id: Mapped[str | None] = mapped_column(String(100))
    order_ref: Mapped[dict[str, Any]] = mapped_column(default=dict, doc="The original order, as the return named it.")
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    lines: Mapped[dict[str, Any]] = mapped_column(
        default=dict, doc='{"lines": [{sku, variant_id, quantity, restock_quantity}]}'
    )
    state: Mapped[str] = mapped_column(String(12), default="refunding")
    refund_external_id: Mapped[str | None] = mapped_column(String(100), doc="The refund's id on the order's channel.")
    refund_status: Mapped[str | None] = mapped_column(String(50), doc="The order's channel's word for it.")
    refund_minor: Mapped[int | None] = mapped_column(BigInteger, doc="The refund in minor units of ``currency``.")
    currency: Mapped[str | None] = mapped_column(String(3))
    error: Mapped[str | None] = mapped_column(Text)
    returned_at: Mapped[datetime]
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _created()


class ReturnRequest(Base):
    """A buyer's return or refund request on a marketplace, waiting for the seller's answer before its deadline."""

    __tablename__ = "return_requests"
    __table_args__ = (
        UniqueConstraint("channel_account_id", "external_id"),
        CheckConstraint(
            "state IN ('pending', 'approving', 'rejecting', 'approved', 'rejected', 'closed')", name="state"
        ),
        Index(None, "state", "respond_by"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    channel_account_id: Mapped[int] = mapped_column(ForeignKey("channel_accounts.id"))
    external_id: Mapped[str] = mapped_column(String(100), doc="The request's id on the channel.")
    external_order_id: Mapped[str] = mapped_column(String(100))
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    request_type: Mapped[str | None] = mapped_column(String(30), doc="e.g. REFUND, RETURN_AND_REFUND.")
    state: Mapped[str] = mapped_column(String(12), default="pending")
    channel_status: Mapped[str | None] = mapped_column(String(50), doc="The channel's own word, verbatim.")
    next_action: Mapped[str | None] = mapped_column(String(50), doc="What the channel waits for from the seller.")
    reason: Mapped[str | None] = mapped_column(Text)
    refund_minor: Mapped[int | None] = mapped_column(BigInteger)
    currency: Mapped[str | None] = mapped_column(String(3))
    lines: Mapped[dict[str, Any]] = mapped_column(default=dict, doc='{"lines": [{sku, quantity}]}')
    respond_by: Mapped[datetime | None]
    requested_at: Mapped[datetime]
    answered_at: Mapped[datetime | None]
    answered_by: Mapped[str | None] = mapped_column(String(200))
    error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = _created()


class MirroredLevel(Base):
    """The last level an external stock master reported for a SKU at one of its locations, with the location's
    sequence then: a level carrying a lower sequence (a late or replayed event) is not applied."""

    __tablename__ = "mirrored_levels"
    __table_args__ = (UniqueConstraint("channel_account_id", "external_location_id", "sku"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    channel_account_id: Mapped[int] = mapped_column(ForeignKey("channel_accounts.id", ondelete="CASCADE"))
    external_location_id: Mapped[str] = mapped_column(String(100))
    sku: Mapped[str] = mapped_column(String(100))
    sequence: Mapped[int] = mapped_column(BigInteger)
    on_hand: Mapped[int]
    allocated: Mapped[int]
    updated_at: Mapped[datetime] = _created()


class DriftCheck(Base):
    """One run of the status drift detector: how many open orders it compared and how many disagreed."""

    __tablename__ = "drift_checks"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    checked_at: Mapped[datetime] = mapped_column(index=True)
    channel_account_id: Mapped[int | None] = mapped_column(
        ForeignKey("channel_accounts.id", ondelete="CASCADE"), doc="The account whose side was read."
    )
    orders_checked: Mapped[int]
    drifted: Mapped[int]
    repaired: Mapped[int] = mapped_column(default=0)
    kinds: Mapped[dict[str, Any]] = mapped_column(default=dict, doc="Drifted orders per kind of mismatch.")


class CancellationRequest(Base):
    """A buyer's request to cancel an order, waiting for the seller's answer before the channel's deadline."""

    __tablename__ = "cancellation_requests"
    __table_args__ = (
        UniqueConstraint("channel_account_id", "external_id"),
        CheckConstraint(
            "state IN ('pending', 'approving', 'rejecting', 'approved', 'rejected', 'closed')", name="state"
        ),
        Index(None, "state", "respond_by"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    channel_account_id: Mapped[int] = mapped_column(ForeignKey("channel_accounts.id"))
    external_id: Mapped[str] = mapped_column(String(100), doc="The request's id on the channel.")
    external_order_id: Mapped[str] = mapped_column(String(100))
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    state: Mapped[str] = mapped_column(String(12), default="pending")
    channel_status: Mapped[str | None] = mapped_column(String(50), doc="The channel's own word, verbatim.")
    reason: Mapped[str | None] = mapped_column(Text)
    respond_by: Mapped[datetime | None]
    requested_at: Mapped[datetime]
    answered_at: Mapped[datetime | None]
    answered_by: Mapped[str | None] = mapped_column(String(200))
    error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = _created()


# --- finance -------------------------------------------------------------------------------------------
# Amounts keep the channel's signs (income positive, charges negative) in minor units of the row's currency.


class FinanceStatement(Base):
    """A channel's settlement statement (TikTok: one per shop and day): its totals and the payout it is paid by."""

    __tablename__ = "finance_statements"
    __table_args__ = (
        UniqueConstraint("channel_account_id", "external_id"),
        Index(None, "channel_account_id", "statement_time"),
        Index(None, "channel_account_id", "payment_external_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    channel_account_id: Mapped[int] = mapped_column(ForeignKey("channel_accounts.id"))
    external_id: Mapped[str] = mapped_column(String(100), doc="The statement's id on the channel.")
    statement_time: Mapped[datetime]
    payment_status: Mapped[str | None] = mapped_column(String(20), doc="The channel's word, e.g. PROCESSING, PAID.")
    currency: Mapped[str] = mapped_column(String(3))
    settlement_minor: Mapped[int] = mapped_column(BigInteger)
    revenue_minor: Mapped[int] = mapped_column(BigInteger)
    fee_minor: Mapped[int] = mapped_column(BigInteger)
    adjustment_minor: Mapped[int] = mapped_column(BigInteger)
    shipping_cost_minor: Mapped[int] = mapped_column(BigInteger)
    net_sales_minor: Mapped[int] = mapped_column(BigInteger)
    payment_external_id: Mapped[str | None] = mapped_column(String(100), doc="The payout that pays it.")
    paid_at: Mapped[datetime | None]
    transaction_count: Mapped[int | None] = mapped_column(doc="Transactions read in full; none: not yet read.")
    updated_at: Mapped[datetime] = _created()


class FinanceTransaction(Base):
    """One line of a statement: an order's settlement (or a refund of it), an adjustment, a reserve."""

    __tablename__ = "finance_transactions"
    __table_args__ = (
        UniqueConstraint("channel_account_id", "external_id"),
        Index(None, "statement_id"),
        Index(None, "channel_account_id", "external_order_id"),
        Index(None, "order_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    channel_account_id: Mapped[int] = mapped_column(ForeignKey("channel_accounts.id"))
    external_id: Mapped[str] = mapped_column(String(100), doc="The transaction's id on the channel.")
    statement_id: Mapped[int] = mapped_column(ForeignKey("finance_statements.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(60), doc="ORDER, RESERVE or an adjustment's type, verbatim.")
    external_order_id: Mapped[str | None] = mapped_column(String(100))
    order_id: Mapped[int | None] = mapped_column(
        ForeignKey("orders.id", ondelete="SET NULL"), doc="The hub's order, once the hub has it."
    )
    currency: Mapped[str] = mapped_column(String(3))
    revenue_minor: Mapped[int] = mapped_column(BigInteger)
    platform_commission_minor: Mapped[int] = mapped_column(BigInteger)
    referral_fee_minor: Mapped[int] = mapped_column(BigInteger)
    transaction_fee_minor: Mapped[int] = mapped_column(BigInteger)
    affiliate_commission_minor: Mapped[int] = mapped_column(BigInteger)
    fee_minor: Mapped[int] = mapped_column(BigInteger, doc="Every fee, the named ones included.")
    shipping_cost_minor: Mapped[int] = mapped_column(BigInteger)
    refund_minor: Mapped[int] = mapped_column(BigInteger, doc="What the buyer got back.")
    adjustment_minor: Mapped[int] = mapped_column(BigInteger)
    reserve_minor: Mapped[int] = mapped_column(BigInteger)
    settlement_minor: Mapped[int] = mapped_column(BigInteger)
    order_created_at: Mapped[datetime | None]
    settled_at: Mapped[datetime] = mapped_column(doc="The statement's time.")
    updated_at: Mapped[datetime] = _created()


class FinancePayment(Base):
    """A payout to the seller's bank account: one or more statements' settlement, less any reserve."""

    __tablename__ = "finance_payments"
    __table_args__ = (
        UniqueConstraint("channel_account_id", "external_id"),
        Index(None, "channel_account_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    channel_account_id: Mapped[int] = mapped_column(ForeignKey("channel_accounts.id"))
    external_id: Mapped[str] = mapped_column(String(100), doc="The payout's id on the channel.")
    status: Mapped[str | None] = mapped_column(String(20), doc="The channel's word, e.g. PROCESSING, PAID.")
    amount_minor: Mapped[int] = mapped_column(BigInteger, doc="Paid to the bank, after any exchange.")
    currency: Mapped[str] = mapped_column(String(3))
    settlement_minor: Mapped[int | None] = mapped_column(BigInteger, doc="Before exchange, in settlement_currency.")
    settlement_currency: Mapped[str | None] = mapped_column(String(3))
    reserve_minor: Mapped[int | None] = mapped_column(BigInteger, doc="Held back, in settlement_currency.")
    created_at: Mapped[datetime] = mapped_column(doc="When the channel created the payout.")
    paid_at: Mapped[datetime | None]
    bank_account: Mapped[str | None] = mapped_column(String(40), doc="As the channel masks it (the last digits).")
    updated_at: Mapped[datetime] = _created()


class FinanceException(Base):
    """Something reconciliation found wrong with the money of a channel account, with the money at stake: kept
    while it is found, cleared when a later run no longer finds it, acknowledged by a person with a note."""

    __tablename__ = "finance_exceptions"
    __table_args__ = (
        UniqueConstraint("channel_account_id", "kind", "subject"),
        CheckConstraint(
            "kind IN ('missing_settlement', 'amount_difference', 'unknown_order', 'late_release', "
            "'refund_not_deducted', 'fee_outside_rate')",
            name="kind",
        ),
        Index(None, "cleared_at", "acknowledged_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    channel_account_id: Mapped[int] = mapped_column(ForeignKey("channel_accounts.id"))
    kind: Mapped[str] = mapped_column(String(30))
    subject: Mapped[str] = mapped_column(String(200), doc="What it is about, e.g. order:<id>, transaction:<id>.")
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id", ondelete="SET NULL"))
    external_order_id: Mapped[str | None] = mapped_column(String(100))
    statement_external_id: Mapped[str | None] = mapped_column(String(100))
    currency: Mapped[str] = mapped_column(String(3))
    amount_minor: Mapped[int] = mapped_column(BigInteger, doc="The money at stake, never negative.")
    expected_minor: Mapped[int | None] = mapped_column(BigInteger)
    actual_minor: Mapped[int | None] = mapped_column(BigInteger)
    detail: Mapped[str] = mapped_column(Text)
    expected_by: Mapped[datetime | None] = mapped_column(doc="When the money was due, for timing exceptions.")
    found_at: Mapped[datetime]
    last_found_at: Mapped[datetime]
    cleared_at: Mapped[datetime | None] = mapped_column(doc="A later run no longer found it.")
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by: Mapped[str | None] = mapped_column(String(200))
    note: Mapped[str | None] = mapped_column(Text)


class LedgerAccount(Base):
    """The chart of accounts journals post to: one account per role (sales, each fee, refunds, reserve, bank...)."""

    __tablename__ = "ledger_accounts"

    role: Mapped[str] = mapped_column(String(40), primary_key=True)
    code: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[datetime] = _created()


class Courier(Base):
    """A courier that collects cash on delivery and remits it, with how to read its remittance files."""

    __tablename__ = "couriers"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    code: Mapped[str] = mapped_column(String(50), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    currency: Mapped[str] = mapped_column(String(3))
    columns: Mapped[dict[str, Any]] = mapped_column(
        default=dict,
        doc="The file's column for each field: reference, order, collected, fee, remitted, collected_on, "
        "remitted_on, currency (domain/cod.py).",
    )
    date_format: Mapped[str] = mapped_column(String(40), default="%Y-%m-%d")
    created_at: Mapped[datetime] = _created()


class CodRemittanceFile(Base):
    """One remittance file a courier sent, imported once (by its SHA-256)."""

    __tablename__ = "cod_remittance_files"
    __table_args__ = (UniqueConstraint("courier_id", "sha256"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    courier_id: Mapped[int] = mapped_column(ForeignKey("couriers.id"))
    filename: Mapped[str] = mapped_column(String(300))
    sha256: Mapped[str] = mapped_column(String(64))
    rows: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3))
    total_minor: Mapped[int] = mapped_column(BigInteger, doc="What the file says was remitted, fees deducted.")
    imported_at: Mapped[datetime]
    imported_by: Mapped[str] = mapped_column(String(200))


class CodRemittance(Base):
    """One line of a courier's remittance: cash collected for an order, less the courier's fee, paid to the seller."""

    __tablename__ = "cod_remittances"
    __table_args__ = (UniqueConstraint("courier_id", "reference"), Index(None, "order_id"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    courier_id: Mapped[int] = mapped_column(ForeignKey("couriers.id"))
    file_id: Mapped[int] = mapped_column(ForeignKey("cod_remittance_files.id"))
    reference: Mapped[str] = mapped_column(String(100), doc="The courier's line id, or the tracking number.")
    external_order_id: Mapped[str | None] = mapped_column(String(100), doc="The order as the file names it.")
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id", ondelete="SET NULL"))
    currency: Mapped[str] = mapped_column(String(3))
    collected_minor: Mapped[int] = mapped_column(BigInteger, doc="Cash the courier collected.")
    fee_minor: Mapped[int] = mapped_column(BigInteger, doc="The courier's fee, deducted (not negative).")
    remitted_minor: Mapped[int] = mapped_column(BigInteger, doc="Paid to the seller: collected less fee.")
    collected_on: Mapped[date | None] = mapped_column(Date)
    remitted_on: Mapped[date] = mapped_column(Date)


# --- the work engine -----------------------------------------------------------------------------------


class InboundEvent(Base):
    """The inbox: every inbound event, committed before it is acknowledged, once per (source, event id)."""

    __tablename__ = "inbound_events"
    __table_args__ = (
        UniqueConstraint("source", "event_id"),
        CheckConstraint("status IN ('received', 'processed', 'failed', 'rejected', 'ignored')", name="status"),
        Index(None, "status", "received_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    source: Mapped[str] = mapped_column(String(50))
    event_id: Mapped[str] = mapped_column(String(200))
    event_type: Mapped[str | None] = mapped_column(String(100))
    channel_account_id: Mapped[int | None] = mapped_column(ForeignKey("channel_accounts.id"))
    payload: Mapped[str] = mapped_column(Text, doc="The raw body, kept for inspection and replay.")
    status: Mapped[str] = mapped_column(String(20), default="received")
    error: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime]
    processed_at: Mapped[datetime | None]


JOB_STATES = ("pending", "running", "succeeded", "dead", "parked", "superseded")


class Job(Base):
    """Durable work. ``identity_key`` is unique among pending and parked jobs, so the same work is queued once.
    A failed job whose work is meanwhile queued again is ``superseded`` by that job instead of being retried."""

    __tablename__ = "jobs"
    __table_args__ = (
        CheckConstraint("state IN ('pending', 'running', 'succeeded', 'dead', 'parked', 'superseded')", name="state"),
        Index("ix_jobs_claim", "state", "due_at", "priority"),
        Index("ix_jobs_channel_account_id_state", "channel_account_id", "state"),
        Index(
            "uq_jobs_waiting_identity_key",
            "identity_key",
            unique=True,
            sqlite_where=text("state IN ('pending', 'parked')"),
            postgresql_where=text("state IN ('pending', 'parked')"),
        ),
        # Serial kinds run one job per identity key at a time; the claim looks for a running sibling here.
        Index(
            "ix_jobs_order_id",
            "order_id",
            sqlite_where=text("order_id IS NOT NULL"),
            postgresql_where=text("order_id IS NOT NULL"),
        ),
        Index(
            "ix_jobs_running_identity_key",
            "identity_key",
            sqlite_where=text("state = 'running'"),
            postgresql_where=text("state = 'running'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(100), index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    state: Mapped[str] = mapped_column(String(10), default="pending")
    priority: Mapped[int] = mapped_column(Integer, default=100, doc="Lower runs first.")
    due_at: Mapped[datetime]
    channel_account_id: Mapped[int | None] = mapped_column(doc="The partition key: the shop this work is for.")
    identity_key: Mapped[str | None] = mapped_column(String(300))
    attempts: Mapped[int] = mapped_column(default=0)
    max_attempts: Mapped[int]
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_expires_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    replay_of: Mapped[int | None] = mapped_column(doc="The job this one replays.")
    order_id: Mapped[int | None] = mapped_column(BigId, doc="The one hub order this work is about, if it is.")
    created_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]


class JobAttempt(Base):
    __tablename__ = "job_attempts"
    __table_args__ = (
        CheckConstraint(
            "outcome IN ('succeeded', 'retry', 'reauth', 'dead', 'lease_expired', 'superseded')",
            name="outcome",
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    attempt: Mapped[int]
    worker: Mapped[str] = mapped_column(String(100))
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime]
    outcome: Mapped[str] = mapped_column(String(20))
    error_class: Mapped[str | None] = mapped_column(String(20), doc="retryable, reauth or permanent.")
    error_type: Mapped[str | None] = mapped_column(String(200))
    error_message: Mapped[str | None] = mapped_column(Text)


class Schedule(Base):
    """A periodic job and when it last ran; persisted so a restart neither forgets nor stampedes."""

    __tablename__ = "schedules"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    kind: Mapped[str] = mapped_column(String(100))
    interval_seconds: Mapped[float]
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    channel_account_id: Mapped[int | None] = mapped_column(ForeignKey("channel_accounts.id", ondelete="CASCADE"))
    last_run_at: Mapped[datetime | None]
    next_run_at: Mapped[datetime]


class SyncWatermark(Base):
    """How far a poll has read a channel's stream: the largest update time seen, never "now"."""

    __tablename__ = "sync_watermarks"

    channel_account_id: Mapped[int] = mapped_column(
        ForeignKey("channel_accounts.id", ondelete="CASCADE"), primary_key=True
    )
    stream: Mapped[str] = mapped_column(String(50), primary_key=True)
    value: Mapped[datetime]
    updated_at: Mapped[datetime]


class WorkerHeartbeat(Base):
    __tablename__ = "worker_heartbeats"

    worker: Mapped[str] = mapped_column(String(100), primary_key=True)
    hostname: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int]
    started_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]


class SyncIssue(Base):
    """An exception shown to humans: what went wrong, where, and whether it is still open."""

    __tablename__ = "sync_issues"
    __table_args__ = (
        CheckConstraint("severity IN ('info', 'warning', 'error', 'critical')", name="severity"),
        CheckConstraint("status IN ('open', 'resolved', 'ignored')", name="status"),
        Index(
            "uq_sync_issues_open_fingerprint",
            "fingerprint",
            unique=True,
            sqlite_where=text("status = 'open'"),
            postgresql_where=text("status = 'open'"),
        ),
        Index(None, "status", "kind"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(50))
    severity: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(10), default="open")
    fingerprint: Mapped[str] = mapped_column(String(300), doc="One open issue per fingerprint.")
    channel_account_id: Mapped[int | None] = mapped_column(ForeignKey("channel_accounts.id"))
    subject_type: Mapped[str | None] = mapped_column(String(50))
    subject_id: Mapped[str | None] = mapped_column(String(100))
    message: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    occurrences: Mapped[int] = mapped_column(default=1)
    first_seen_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    resolved_at: Mapped[datetime | None]


class OAuthState(Base):
    """An authorization link's state, recorded when its callback arrives: each link connects once."""

    __tablename__ = "oauth_states"

    nonce: Mapped[str] = mapped_column(String(100), primary_key=True)
    channel: Mapped[str] = mapped_column(String(50))
    used_at: Mapped[datetime] = mapped_column(index=True)
