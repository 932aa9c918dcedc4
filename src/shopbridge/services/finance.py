"""Finance rows kept idempotently: a channel's statements, their transactions and its payments, upserted on
(channel account, external id) and counted as new, changed or unchanged, so that a re-import changes nothing and
says so. The rows come mapped by the channel (amounts in minor units beside their currency).

A pass is written statement by statement (``store_statement``): a statement's transactions first, then the
statement row with the number of transactions read, so a statement whose transactions were not all stored is never
marked as held in full and the next pass reads it again. Writes are Core statements over the rows' own columns,
never ORM objects: a pass of a million transactions must not grow a session's identity map.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import chain
from operator import itemgetter
from typing import Any

from sqlalchemy import Table, bindparam, func, select, text, update
from sqlalchemy.orm import Session

from shopbridge.store.db import dialect_insert
from shopbridge.store.tables import FinancePayment, FinanceStatement, FinanceTransaction, Order, SyncWatermark

CHUNK = 1000  # rows per SELECT ... IN, UPDATE and INSERT batch: well under SQLite's bound-parameter limit
FinanceTable = type[FinanceStatement] | type[FinanceTransaction] | type[FinancePayment]
Row = Mapping[str, Any]
KEY = ("channel_account_id", "external_id")


@dataclass
class Tally:
    new: int = 0
    changed: int = 0
    unchanged: int = 0

    def add(self, other: Tally) -> None:
        self.new, self.changed, self.unchanged = (self.new + other.new, self.changed + other.changed,
                                                  self.unchanged + other.unchanged)  # fmt: skip

    def __str__(self) -> str:
        return f"{self.new} new, {self.changed} changed, {self.unchanged} unchanged"


@dataclass
class FinanceCounts:
    statements: Tally = field(default_factory=Tally)
    transactions: Tally = field(default_factory=Tally)
    payments: Tally = field(default_factory=Tally)

    def as_dict(self) -> dict[str, dict[str, int]]:
        return {name: vars(getattr(self, name)).copy() for name in ("statements", "transactions", "payments")}


def upsert(session: Session, table: FinanceTable, account_id: int, rows: Sequence[Row], now: datetime) -> Tally:
    """Insert the rows the account does not have, update those that differ (only the keys a row names), leave the
    rest alone. Two imports racing insert each row once (ON CONFLICT DO NOTHING); the rows held are locked while
    compared (FOR UPDATE on PostgreSQL), so of two racing updates the second sees the first's values."""
    tally = Tally()
    columns: Table = table.__table__  # type: ignore[assignment]
    for start in range(0, len(rows), CHUNK):
        chunk = {str(row["external_id"]): row for row in rows[start : start + CHUNK]}
        _upsert_chunk(session, columns, account_id, chunk, now, tally)
    return tally


def _upsert_chunk(session: Session, table: Table, account_id: int, chunk: Mapping[str, Row], now: datetime,
                  tally: Tally) -> None:  # fmt: skip
    names = [key for key in dict.fromkeys(chain.from_iterable(chunk.values())) if key != "external_id"]
    held: dict[str, tuple[Any, ...]] = {
        found[0]: tuple(found[1:])
        for found in session.execute(
            select(table.c.external_id, *(table.c[name] for name in names))
            .where(table.c.channel_account_id == account_id, table.c.external_id.in_(list(chunk)))
            .with_for_update()
        )
    }
    values_of = _values_in(names)
    fresh: list[dict[str, Any]] = []
    changes: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for external_id, row in chunk.items():
        found = held.get(external_id)
        if found is None:
            fresh.append({**row, "channel_account_id": account_id, "updated_at": now})
            continue
        if len(row) == len(names) + 1:  # names every column compared: one tuple comparison
            same = values_of(row) == found
        else:
            same = all(found[names.index(key)] == value for key, value in row.items() if key != "external_id")
        if same:
            tally.unchanged += 1
            continue
        named = tuple(key for key in row if key != "external_id")
        changes.setdefault(named, []).append(
            {**{f"new_{key}": row[key] for key in named}, "match_external_id": external_id, "new_updated_at": now}
        )
        tally.changed += 1
    for named, params in changes.items():
        session.execute(_update_of(table, account_id, named), params)
    if fresh:
        session.execute(dialect_insert(session)(table).on_conflict_do_nothing(index_elements=list(KEY)), fresh)
        tally.new += len(fresh)


def _values_in(names: Sequence[str]) -> Callable[[Row], tuple[Any, ...]]:
    """A row's values of ``names``, as a tuple, read in C (a re-import compares every column of a million rows)."""
    if len(names) < 2:  # itemgetter answers a bare value for one name, and needs one
        return lambda row: tuple(row[name] for name in names)
    return itemgetter(*names)


def _update_of(table: Table, account_id: int, named: Sequence[str]) -> Any:
    """One UPDATE for every changed row naming these columns, run as an executemany (a parameter set per row)."""
    values: dict[str, Any] = {name: bindparam(f"new_{name}") for name in (*named, "updated_at")}
    return (
        update(table)
        .where(table.c.channel_account_id == account_id, table.c.external_id == bindparam("match_external_id"))
        .values(values)
    )


@dataclass(frozen=True)
class StatementStored:
    """What writing one statement with its transactions did."""

    statement: Tally
    transactions: Tally


def store_statement(session: Session, account_id: int, row: Row, lines: Sequence[Row], *,
                    now: datetime) -> StatementStored:  # fmt: skip
    """A statement with every transaction read for it (``lines``, without statement or order ids: they are looked
    up here, the order when the hub has it). The statement row comes first only as the transactions' parent (a new
    one without ``transaction_count``); it is completed once every transaction is stored, with
    ``transaction_count``, and counted then: new, changed or unchanged as a whole, as ``upsert`` counts."""
    table: Table = FinanceStatement.__table__  # type: ignore[assignment]
    external_id = str(row["external_id"])
    complete = {**row, "transaction_count": len(lines)}
    named = [key for key in complete if key != "external_id"]
    held = _held_statement(session, table, account_id, external_id, named)
    created: int | None = None
    if held is None:
        parent = {**row, "transaction_count": None, "channel_account_id": account_id, "updated_at": now}
        insert = dialect_insert(session)(table).values(parent).on_conflict_do_nothing(index_elements=list(KEY))
        created = session.scalar(insert.returning(table.c.id))  # None: a racing pass inserted it first
        held = _held_statement(session, table, account_id, external_id, named) if created is None else {"id": created}
        assert held is not None
    statement_id = int(held["id"])
    transactions = Tally()
    for start in range(0, len(lines), CHUNK):
        chunk = lines[start : start + CHUNK]
        refs = sorted({str(line["external_order_id"]) for line in chunk if line.get("external_order_id")})
        orders = _ids_of(session, Order, account_id, refs)
        linked = [{**line, "statement_id": statement_id, "order_id": orders.get(str(line.get("external_order_id")))}
                  for line in chunk]  # fmt: skip
        transactions.add(upsert(session, FinanceTransaction, account_id, linked, now))
    statement = Tally()
    if created is not None:
        statement.new = 1
        session.execute(update(table).where(table.c.id == statement_id).values(transaction_count=len(lines)))
    elif all(held[key] == complete[key] for key in named):
        statement.unchanged = 1
    else:
        statement.changed = 1
        session.execute(update(table).where(table.c.id == statement_id).values(
            {**{key: complete[key] for key in named}, "updated_at": now}))  # fmt: skip
    return StatementStored(statement, transactions)


def _held_statement(session: Session, table: Table, account_id: int, external_id: str,
                    named: Sequence[str]) -> dict[str, Any] | None:  # fmt: skip
    found = session.execute(
        select(table.c.id, *(table.c[name] for name in named))
        .where(table.c.channel_account_id == account_id, table.c.external_id == external_id)
        .with_for_update()
    ).first()
    return dict(zip(("id", *named), found, strict=True)) if found is not None else None


def refresh_statistics(session: Session) -> None:
    """Bring the planner's statistics of ``finance_transactions`` up to date, on PostgreSQL. Autovacuum refreshes
    them about once a minute; a first import grows the table from nothing faster than that, and with the statistics
    of a near-empty table the planner reads every line of the shop through the (shop, external order) index for each
    chunk ``upsert`` looks up, instead of the chunk's rows through the (shop, external id) one. PostgreSQL's advice
    after a bulk load is an ANALYZE, which samples the table in a fraction of a second. SQLite keeps no statistics
    unless asked, and its plans here do not need them."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("ANALYZE finance_transactions"))


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


def _ids_of(session: Session, table: type[Order], account_id: int, external_ids: list[str]) -> dict[str, int]:
    """The hub's row id of each of an account's external ids found in ``table``."""
    found: dict[str, int] = {}
    for start in range(0, len(external_ids), CHUNK):
        chunk = external_ids[start : start + CHUNK]
        query = select(table.external_id, table.id).where(
            table.channel_account_id == account_id, table.external_id.in_(chunk)
        )
        found.update({external_id: row_id for external_id, row_id in session.execute(query)})
    return found
