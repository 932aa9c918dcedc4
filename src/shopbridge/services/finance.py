"""Finance rows kept idempotently: a channel's statements, their transactions and its payments, upserted on
(channel account, external id) and counted as new, changed or unchanged, so that a re-import changes nothing and
says so. The rows come mapped by the channel (amounts in minor units beside their currency)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shopbridge.store.db import dialect_insert
from shopbridge.store.tables import FinancePayment, FinanceStatement, FinanceTransaction, Order, SyncWatermark

CHUNK = 500
FinanceRow = FinanceStatement | FinanceTransaction | FinancePayment
FinanceTable = type[FinanceStatement] | type[FinanceTransaction] | type[FinancePayment]
Row = Mapping[str, Any]


@dataclass
class Tally:
    new: int = 0
    changed: int = 0
    unchanged: int = 0

    def __str__(self) -> str:
        return f"{self.new} new, {self.changed} changed, {self.unchanged} unchanged"


@dataclass
class FinanceCounts:
    statements: Tally = field(default_factory=Tally)
    transactions: Tally = field(default_factory=Tally)
    payments: Tally = field(default_factory=Tally)

    def as_dict(self) -> dict[str, dict[str, int]]:
        return {name: vars(getattr(self, name)).copy() for name in ("statements", "transactions", "payments")}


@dataclass(frozen=True)
class FinanceRead:
    """One pass over a channel's finance data: statement rows (with ``transaction_count`` when their transactions
    were read), the transaction rows of those statements by statement external id, and payment rows."""

    statements: Sequence[Row]
    transactions: Mapping[str, Sequence[Row]]
    payments: Sequence[Row]


def upsert(session: Session, table: FinanceTable, account_id: int, rows: Sequence[Row], now: datetime) -> Tally:
    """Insert the rows the account does not have, update those that differ (only the keys a row names), leave the
    rest alone. Two imports racing insert each row once (ON CONFLICT DO NOTHING)."""
    tally = Tally()
    for start in range(0, len(rows), CHUNK):
        chunk = {str(row["external_id"]): row for row in rows[start : start + CHUNK]}
        held: list[FinanceRow] = list(
            session.scalars(
                select(table)
                .where(table.channel_account_id == account_id, table.external_id.in_(list(chunk)))
                .with_for_update()
            )
        )
        existing = {found.external_id: found for found in held}
        fresh = []
        for external_id, row in chunk.items():
            found = existing.get(external_id)
            if found is None:
                fresh.append({**row, "channel_account_id": account_id, "updated_at": now})
                continue
            differs = {key: value for key, value in row.items() if getattr(found, key) != value}
            if not differs:
                tally.unchanged += 1
                continue
            for key, value in differs.items():
                setattr(found, key, value)
            found.updated_at = now
            tally.changed += 1
        if fresh:
            session.execute(
                dialect_insert(session)(table).on_conflict_do_nothing(
                    index_elements=["channel_account_id", "external_id"]
                ),
                fresh,
            )
            tally.new += len(fresh)
    session.flush()
    return tally


def store(session: Session, account_id: int, read: FinanceRead, *, now: datetime, watermark: str) -> FinanceCounts:
    """Write one pass: statements, then their transactions (linked to the hub's orders it knows), then payments;
    then move the account's ``watermark`` stream to the newest statement time read (never back). Called in one
    transaction, so a pass that fails moves nothing."""
    counts = FinanceCounts()
    counts.statements = upsert(session, FinanceStatement, account_id, read.statements, now)
    statement_ids = _ids_of(session, FinanceStatement, account_id, [str(row["external_id"]) for row in read.statements])
    order_refs = sorted({str(row["external_order_id"]) for rows in read.transactions.values() for row in rows
                         if row.get("external_order_id")})  # fmt: skip
    orders = _ids_of(session, Order, account_id, order_refs)
    lines = [
        {**row, "statement_id": statement_ids[statement], "order_id": orders.get(str(row.get("external_order_id")))}
        for statement, rows in read.transactions.items()
        for row in rows
    ]
    counts.transactions = upsert(session, FinanceTransaction, account_id, lines, now)
    counts.payments = upsert(session, FinancePayment, account_id, read.payments, now)
    times = [row["statement_time"] for row in read.statements]
    if times:
        advance_watermark(session, account_id, watermark, max(times), now)
    return counts


def advance_watermark(session: Session, account_id: int, stream: str, value: datetime, now: datetime) -> None:
    mark = session.get(SyncWatermark, (account_id, stream), with_for_update=True)
    if mark is None:
        session.add(SyncWatermark(channel_account_id=account_id, stream=stream, value=value, updated_at=now))
    elif value > mark.value:
        mark.value, mark.updated_at = value, now


def watermark_of(session: Session, account_id: int, stream: str) -> datetime | None:
    mark = session.get(SyncWatermark, (account_id, stream))
    return mark.value if mark is not None else None


def oldest_unpaid(session: Session, account_id: int, pending: str) -> datetime | None:
    """The time of the oldest statement or payment the channel last showed as ``pending``: a pass must read from
    there to see it paid."""
    statement = session.scalar(
        select(func.min(FinanceStatement.statement_time)).where(
            FinanceStatement.channel_account_id == account_id, FinanceStatement.payment_status == pending
        )
    )
    payment = session.scalar(
        select(func.min(FinancePayment.created_at)).where(
            FinancePayment.channel_account_id == account_id, FinancePayment.status == pending
        )
    )
    found = [moment for moment in (statement, payment) if moment is not None]
    return min(found) if found else None


def known_statements(session: Session, account_id: int, since: datetime) -> dict[str, tuple[int, int | None]]:
    """The account's statements from ``since``: external id -> (settlement in minor units, transactions read)."""
    held = select(FinanceStatement.external_id, FinanceStatement.settlement_minor, FinanceStatement.transaction_count)
    rows = session.execute(
        held.where(FinanceStatement.channel_account_id == account_id, FinanceStatement.statement_time >= since)
    )
    return {external_id: (settlement, count) for external_id, settlement, count in rows}


def _ids_of(session: Session, table: type[FinanceStatement] | type[Order], account_id: int,
            external_ids: list[str]) -> dict[str, int]:  # fmt: skip
    """The hub's row id of each of an account's external ids found in ``table`` (statements, or orders)."""
    found: dict[str, int] = {}
    for start in range(0, len(external_ids), CHUNK):
        chunk = external_ids[start : start + CHUNK]
        query = select(table.external_id, table.id).where(
            table.channel_account_id == account_id, table.external_id.in_(chunk)
        )
        found.update({external_id: row_id for external_id, row_id in session.execute(query)})
    return found
