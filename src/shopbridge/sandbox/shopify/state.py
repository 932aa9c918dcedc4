"""The world in memory, written through to the sandbox's own SQLite file (``--state``).

Every record is a JSON document keyed by (kind, id) in one table, ``shopify_sandbox_record``, that no product table
shares. All handlers run on the event loop, so the world needs no lock; ``commit()`` flushes what changed since the
last commit. A restarted sandbox reloads the shop as it was: catalogue, stock, orders, subscriptions, tokens and the
webhook outbox (pending deliveries resume).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Column, MetaData, String, Table, Text, create_engine, delete, select
from sqlalchemy.dialects.sqlite import insert
from sqlalchemy.engine import Engine
from sqlalchemy.pool import StaticPool

from .models import (
    AdjustmentGroup,
    ApiFault,
    AuthCode,
    Customer,
    Delivery,
    IdempotencyRecord,
    InventoryItem,
    InventoryLevel,
    Job,
    Location,
    Order,
    Product,
    Record,
    RefreshToken,
    Sequence,
    Settings,
    ShopRecord,
    Token,
    Variant,
    WebhookFault,
    WebhookSubscription,
)

R = TypeVar("R", bound=Record)

KINDS: dict[type[Record], str] = {
    Settings: "settings",
    ShopRecord: "shop",
    Sequence: "sequence",
    Location: "location",
    Product: "product",
    Variant: "variant",
    InventoryItem: "inventory_item",
    InventoryLevel: "inventory_level",
    AdjustmentGroup: "adjustment_group",
    Order: "order",
    Job: "job",
    AuthCode: "auth_code",
    Token: "token",
    RefreshToken: "refresh_token",
    WebhookSubscription: "webhook_subscription",
    Delivery: "delivery",
    ApiFault: "api_fault",
    WebhookFault: "webhook_fault",
    IdempotencyRecord: "idempotency",
}
_BY_NAME = {name: cls for cls, name in KINDS.items()}

_metadata = MetaData()
records_table = Table(
    "shopify_sandbox_record",
    _metadata,
    Column("kind", String(32), primary_key=True),
    Column("id", String(300), primary_key=True),
    Column("body", Text, nullable=False),
)


class Store:
    """The SQLite file. A ``None`` path means a private in-memory database."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        if path is None:
            self.engine: Engine = create_engine(
                "sqlite://", connect_args={"check_same_thread": False}, poolclass=StaticPool
            )
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.engine = create_engine(f"sqlite:///{path}", connect_args={"check_same_thread": False})
        _metadata.create_all(self.engine)

    def load(self) -> list[Record]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(records_table.c.kind, records_table.c.body)).all()
        out: list[Record] = []
        for kind, body in rows:
            cls = _BY_NAME.get(kind)
            if cls is not None:
                out.append(cls.model_validate_json(body))
        return out

    def write(self, upserts: list[tuple[str, str, str]], deletes: list[tuple[str, str]]) -> None:
        with self.engine.begin() as conn:
            for kind, key in deletes:
                conn.execute(delete(records_table).where(records_table.c.kind == kind, records_table.c.id == key))
            if upserts:
                stmt = insert(records_table)
                stmt = stmt.on_conflict_do_update(
                    index_elements=[records_table.c.kind, records_table.c.id],
                    set_={"body": stmt.excluded.body},
                )
                conn.execute(stmt, [{"kind": k, "id": i, "body": b} for k, i, b in upserts])

    def close(self) -> None:
        if self.path is not None:
            self.engine.dispose()


class World:
    """Every record by kind, plus the indexes the resolvers need (SKU → variants, item → levels, open orders)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._tables: dict[str, dict[str, Any]] = {name: {} for name in KINDS.values()}
        self._dirty: dict[tuple[str, str], Record | None] = {}
        self.levels_by_item: dict[str, set[str]] = {}
        self.variant_by_item: dict[str, str] = {}
        self.open_orders: set[str] = set()
        # Ids of an order's parts (line items, fulfillment orders, fulfillments, refunds, transactions) → order id.
        self.order_of: dict[str, str] = {}
        self.customer_by_email: dict[str, Customer] = {}
        for record in store.load():
            self._tables[KINDS[type(record)]][record.id] = record
            self._index(record)
        if "settings" not in self._tables["settings"]:
            self.save(Settings())

    def records(self) -> Iterator[Record]:
        for table in self._tables.values():
            yield from table.values()

    def table(self, cls: type[R]) -> dict[str, R]:
        table: dict[str, R] = self._tables[KINDS[cls]]
        return table

    def get(self, cls: type[R], key: str | None) -> R | None:
        if key is None:
            return None
        return self.table(cls).get(key)

    @property
    def settings(self) -> Settings:
        return self.table(Settings)["settings"]

    @property
    def shop(self) -> ShopRecord:
        return self.table(ShopRecord)["shop"]

    def save(self, record: Record) -> None:
        kind = KINDS[type(record)]
        self._tables[kind][record.id] = record
        self._index(record)
        self._dirty[(kind, record.id)] = record

    def remove(self, cls: type[Record], key: str) -> None:
        kind = KINDS[cls]
        record = self._tables[kind].pop(key, None)
        self._dirty[(kind, key)] = None
        if isinstance(record, InventoryLevel):
            self.levels_by_item.get(record.item_id, set()).discard(record.id)
        elif isinstance(record, Order):
            self.open_orders.discard(record.id)

    def _index(self, record: Record) -> None:
        if isinstance(record, InventoryLevel):
            self.levels_by_item.setdefault(record.item_id, set()).add(record.id)
        elif isinstance(record, InventoryItem):
            self.variant_by_item[record.id] = record.variant_id
        elif isinstance(record, Order):
            unfulfilled = any(fo.status in ("OPEN", "IN_PROGRESS") for fo in record.fulfillment_orders)
            if record.cancelled_at is None and unfulfilled:
                self.open_orders.add(record.id)
            else:
                self.open_orders.discard(record.id)
            parts = [
                *(li.id for li in record.line_items),
                *(fo.id for fo in record.fulfillment_orders),
                *(fl.id for fo in record.fulfillment_orders for fl in fo.line_items),
                *(f.id for f in record.fulfillments),
                *(fl.id for f in record.fulfillments for fl in f.line_items),
                *(r.id for r in record.refunds),
                *(t.id for t in record.transactions),
            ]
            for part in parts:
                self.order_of[part] = record.id
            if record.customer is not None and record.customer.email:
                self.customer_by_email[record.customer.email.lower()] = record.customer

    def commit(self) -> None:
        if not self._dirty:
            return
        upserts = [(k, i, r.model_dump_json()) for (k, i), r in self._dirty.items() if r is not None]
        deletes = [key for key, r in self._dirty.items() if r is None]
        self._dirty.clear()
        self.store.write(upserts, deletes)

    # --- lookups ---------------------------------------------------------------------------------------------

    def levels_of_item(self, item_id: str) -> list[InventoryLevel]:
        table = self.table(InventoryLevel)
        levels = [table[key] for key in self.levels_by_item.get(item_id, ()) if key in table]
        return sorted(levels, key=lambda lv: int(lv.location_id))

    def level(self, location_id: str, item_id: str) -> InventoryLevel | None:
        return self.table(InventoryLevel).get(f"{location_id}:{item_id}")

    def variants_with_sku(self, sku: str) -> list[Variant]:
        return sorted((v for v in self.table(Variant).values() if v.sku == sku), key=lambda v: int(v.id))

    def order_containing(self, part_id: str | None) -> Order | None:
        return self.get(Order, self.order_of.get(part_id or ""))

    def locations(self) -> list[Location]:
        return sorted(self.table(Location).values(), key=lambda loc: int(loc.id))

    def location_named(self, name: str) -> Location | None:
        return next((loc for loc in self.locations() if loc.name.lower() == name.lower()), None)
