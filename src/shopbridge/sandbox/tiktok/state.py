"""The world in memory, written through to the sandbox's own SQLite file.

Every record is a JSON document keyed by (kind, id) in one table that no product table shares. All handlers run
on the event loop, so the world needs no lock; `commit()` flushes what changed since the last commit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Column, MetaData, String, Table, Text, create_engine, delete, select
from sqlalchemy.dialects.sqlite import insert
from sqlalchemy.engine import Engine
from sqlalchemy.pool import StaticPool

from .models import (
    Adjustment,
    AuthCode,
    Cancellation,
    Conversation,
    Delivery,
    EndpointFault,
    InventoryUpdate,
    Message,
    Order,
    Product,
    RateLimit,
    Record,
    Return,
    Seller,
    Session,
    Settings,
    Shop,
    Statement,
    StatementTransaction,
    Subscription,
    Token,
    WebhookFault,
)

R = TypeVar("R", bound=Record)

KINDS: dict[type[Record], str] = {
    Settings: "settings",
    Seller: "seller",
    Shop: "shop",
    AuthCode: "auth_code",
    Token: "token",
    Product: "product",
    Order: "order",
    InventoryUpdate: "inventory_update",
    Subscription: "subscription",
    Delivery: "delivery",
    EndpointFault: "endpoint_fault",
    WebhookFault: "webhook_fault",
    RateLimit: "rate_limit",
    Cancellation: "cancellation",
    Return: "return",
    Statement: "statement",
    StatementTransaction: "statement_transaction",
    Adjustment: "adjustment",
    Conversation: "conversation",
    Message: "message",
    Session: "session",
}
_BY_NAME = {name: cls for cls, name in KINDS.items()}

_metadata = MetaData()
records_table = Table(
    "tiktok_sandbox_record",
    _metadata,
    Column("kind", String(32), primary_key=True),
    Column("id", String(200), primary_key=True),
    Column("body", Text, nullable=False),
)


class Store:
    """The SQLite file. `None` path means a private in-memory database."""

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
        # An in-memory database lives only as long as its one connection, so only a file is let go.
        if self.path is not None:
            self.engine.dispose()


class World:
    """Every record by kind, plus the indexes handlers need (cipher → shop, SKU → product)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._tables: dict[str, dict[str, Any]] = {name: {} for name in KINDS.values()}
        self._dirty: dict[tuple[str, str], Record | None] = {}
        # Called with every saved record (the timeline schedules what becomes due).
        self.on_save: Callable[[Record], None] | None = None
        self.shop_by_cipher: dict[str, str] = {}
        self.product_by_sku: dict[str, str] = {}
        self.order_by_package: dict[str, str] = {}
        for record in store.load():
            self._index(record)
            self._tables[KINDS[type(record)]][record.id] = record
        if "settings" not in self._tables["settings"]:
            self.save(Settings())

    def records(self) -> Iterator[Record]:
        for table in self._tables.values():
            yield from table.values()

    def size(self) -> int:
        """How many records the world holds."""
        return sum(len(t) for t in self._tables.values())

    def table(self, cls: type[R]) -> dict[str, R]:
        table: dict[str, R] = self._tables[KINDS[cls]]
        return table

    def get(self, cls: type[R], key: str) -> R | None:
        return self.table(cls).get(key)

    @property
    def settings(self) -> Settings:
        return self.table(Settings)["settings"]

    def save(self, record: Record) -> None:
        kind = KINDS[type(record)]
        self._tables[kind][record.id] = record
        self._index(record)
        self._dirty[(kind, record.id)] = record
        if self.on_save is not None:
            self.on_save(record)

    def remove(self, cls: type[Record], key: str) -> None:
        kind = KINDS[cls]
        self._tables[kind].pop(key, None)
        self._dirty[(kind, key)] = None

    def _index(self, record: Record) -> None:
        if isinstance(record, Shop):
            self.shop_by_cipher[record.cipher] = record.id
        elif isinstance(record, Product):
            for sku in record.skus:
                self.product_by_sku[sku.id] = record.id
        elif isinstance(record, Order):
            for package in record.packages:
                self.order_by_package[package.id] = record.id

    def commit(self) -> None:
        if not self._dirty:
            return
        upserts = [(k, i, r.model_dump_json()) for (k, i), r in self._dirty.items() if r is not None]
        deletes = [key for key, r in self._dirty.items() if r is None]
        self._dirty.clear()
        self.store.write(upserts, deletes)

    def shops_of(self, seller_id: str) -> list[Shop]:
        seller = self.get(Seller, seller_id)
        if seller is None:
            return []
        return [s for sid in seller.shop_ids if (s := self.get(Shop, sid)) is not None]

    def product_of_sku(self, sku_id: str) -> Product | None:
        product_id = self.product_by_sku.get(sku_id)
        return self.get(Product, product_id) if product_id else None
