"""Reconciliation: every order of a shop with settlement data checked against its settlements (domain/finance.py),
the exceptions kept in ``finance_exceptions`` with the money at stake.

A run gathers one order at a time in streamed batches: the order, when it was delivered (its status history), what
the hub refunded its buyer (store returns refunded on its channel) and its settlement lines summed in SQL. An
exception found again keeps its first sighting and its acknowledgement (unless its amount changed: a new amount
deserves a new look); one no longer found is cleared. A shop's settings (``settings["finance"]``) hold its fee rates
and settlement delay; without rates, fees are not checked.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import and_, case, func, insert, or_, select, update
from sqlalchemy.orm import Session

from shopbridge.domain.finance import (
    RESERVE,
    ExceptionKind,
    FeeRates,
    Found,
    OrderFacts,
    Policy,
    Settled,
    check_order,
    check_unknown,
)
from shopbridge.domain.orders import OrderStatus
from shopbridge.logs import get_logger
from shopbridge.runtime.jobs import enqueue
from shopbridge.runtime.registry import JobContext
from shopbridge.store.tables import (
    ChannelAccount,
    FinanceException,
    FinanceStatement,
    FinanceTransaction,
    Order,
    OrderStatusChange,
    StoreReturn,
)

RECONCILE = "finance.reconcile"
RECONCILE_SECONDS = 3600.0
BATCH = 2_000
DELIVERED = (OrderStatus.DELIVERED.value, OrderStatus.COMPLETED.value)
CANCELLED = OrderStatus.CANCELLED.value
SETTINGS_KEY = "finance"


log = get_logger("shopbridge.finance")


class FinanceSettingsError(ValueError):
    """A shop's finance settings that cannot be used, naming the setting."""


@dataclass
class RunCounts:
    """One run over one shop: orders checked, exceptions found by kind, new and cleared ones."""

    orders: int = 0
    found: dict[str, int] = field(default_factory=dict)
    at_stake: dict[str, int] = field(default_factory=dict)  # by currency
    new: int = 0
    cleared: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"orders": self.orders, "found": dict(self.found), "at_stake": dict(self.at_stake), "new": self.new,
                "cleared": self.cleared}  # fmt: skip


def policy_of(account: ChannelAccount) -> tuple[FeeRates, Policy]:
    """The shop's fee rates and settlement timing, from its settings."""
    found: Mapping[str, Any] = (account.settings or {}).get(SETTINGS_KEY) or {}
    try:
        rates = FeeRates.from_settings(found)
        delay = int(found.get("settlement_delay_days", 0))
        grace = int(found.get("settlement_grace_days", 2))
    except (InvalidOperation, ValueError, TypeError) as error:
        raise FinanceSettingsError(f"shop {account.label}: finance settings {dict(found)} unusable: {error}") from None
    return rates, Policy(timedelta(days=delay), timedelta(days=grace))


def configure(account: ChannelAccount, changes: Mapping[str, str | int | None]) -> dict[str, Any]:
    """Set (or, with None, remove) finance settings of a shop; checked before they are kept. Answers the before."""
    allowed = {"referral_fee_rate", "platform_commission_rate", "transaction_fee_rate", "fee_tolerance_minor",
               "settlement_delay_days", "settlement_grace_days"}  # fmt: skip
    unknown = sorted(set(changes) - allowed)
    if unknown:
        raise FinanceSettingsError(f"unknown finance setting {', '.join(unknown)}; known: {', '.join(sorted(allowed))}")
    settings = dict(account.settings or {})
    before = dict(settings.get(SETTINGS_KEY) or {})
    after = {**before, **{k: str(v) for k, v in changes.items() if v is not None}}
    for key in [k for k, v in changes.items() if v is None]:
        after.pop(key, None)
    for key, value in after.items():
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            raise FinanceSettingsError(f"{key} {value!r} is not a number") from None
        if number < 0 or (key.endswith("_rate") and number >= 1):
            raise FinanceSettingsError(f"{key} {value} is out of range (rates are fractions such as 0.06)")
        if not key.endswith("_rate") and number != number.to_integral_value():
            raise FinanceSettingsError(f"{key} {value} must be a whole number")
    settings[SETTINGS_KEY] = after
    account.settings = settings
    return before


# Each aggregate below reads its table through the order id range of its batch only: a condition on another column
# (a status, a state) is applied inside the aggregate, not in WHERE, so no planner can prefer an index on that column
# and read every matching row of the hub for each batch (SQLite, which keeps no statistics here, did).


def _delivered(after: int, upto: int) -> Any:
    h = OrderStatusChange
    return (
        select(h.order_id, func.min(case((h.status.in_(DELIVERED), h.occurred_at))).label("delivered_at"))
        .where(h.order_id > after, h.order_id <= upto)
        .group_by(h.order_id)
        .subquery()
    )


def _refunded(after: int, upto: int) -> Any:
    r = StoreReturn
    refunded = r.state == "refunded"
    return (
        select(r.order_id, func.sum(case((refunded, r.refund_minor))).label("refunded"),
               func.max(case((refunded, r.updated_at))).label("refunded_at"))
        .where(r.order_id > after, r.order_id <= upto)
        .group_by(r.order_id)
        .subquery()
    )  # fmt: skip


def _settled(account_id: int, after: int, upto: int) -> Any:
    t = FinanceTransaction
    refund = or_(t.refund_minor != 0, t.revenue_minor < 0)

    def when(condition: Any, value: Any) -> Any:
        return func.sum(case((condition, value), else_=0))

    sale = and_(t.type != RESERVE, ~refund)
    return (
        select(
            t.order_id,
            func.min(t.currency).label("currency_low"),
            func.max(t.currency).label("currency_high"),
            when(sale, t.revenue_minor).label("sale_revenue"),
            when(sale, 1).label("sales"),
            when(sale, t.settlement_minor).label("sale_settlement"),
            func.min(case((sale, t.settled_at), else_=None)).label("first_settled_at"),
            when(sale, t.referral_fee_minor).label("referral_fee"),
            when(sale, t.platform_commission_minor).label("platform_commission"),
            when(sale, t.transaction_fee_minor).label("transaction_fee"),
            when(and_(t.type != RESERVE, refund), -t.refund_minor).label("refund_deducted"),
            when(and_(t.type != RESERVE, refund), 1).label("refunds"),
        )
        # "+ 0": SQLite, which keeps no statistics here, would otherwise read the lines through the (shop, external
        # order) index, every line of the shop for every batch, instead of the batch's range of the order index.
        .where((t.channel_account_id + 0) == account_id, t.order_id > after, t.order_id <= upto)
        .group_by(t.order_id)
        .subquery()
    )


def _facts(row: Sequence[Any]) -> tuple[OrderFacts, Settled | None]:
    # By position, in _batch_query's column order: a named attribute of a Row costs a lookup, and this runs once per
    # order of the shop.
    (order_id, external_id, currency, status, subtotal, total, delivered_at, refunded, refunded_at, _, low, high,
     sale_revenue, sales, sale_settlement, first_settled_at, referral_fee, platform_commission, transaction_fee,
     refund_deducted, refunds) = row  # fmt: skip
    order = OrderFacts(
        order_id=order_id, external_id=external_id, currency=currency, cancelled=status == CANCELLED,
        revenue=subtotal if subtotal is not None else total, paid_by_buyer=total, delivered_at=delivered_at,
        refunded=int(refunded or 0), refunded_at=refunded_at,
    )  # fmt: skip
    if low is None:
        return order, None
    settled = Settled(
        currencies=frozenset({low, high}), sale_revenue=int(sale_revenue or 0), sales=int(sales or 0),
        sale_settlement=int(sale_settlement or 0), first_settled_at=first_settled_at,
        referral_fee=int(referral_fee or 0), platform_commission=int(platform_commission or 0),
        transaction_fee=int(transaction_fee or 0), refund_deducted=int(refund_deducted or 0), refunds=int(refunds or 0),
    )  # fmt: skip
    return order, settled


def order_facts(session: Session, account_id: int) -> Iterator[tuple[OrderFacts, Settled | None]]:
    """The shop's orders that can owe or carry money — delivered, or with settlement lines — in id order, streamed
    in batches of BATCH order ids (keyset on the primary key, every shop's orders counted: without statistics,
    SQLite would read "this shop's orders after id N" through the (shop, external id) index, all of the shop's
    orders for every batch). Each batch's aggregates (delivery, refunds, settlement lines) are taken over its own id
    range only: over the whole shop, every batch would read every settlement line again."""
    after = 0
    while True:
        batch = select(Order.id).where(Order.id > after).order_by(Order.id).limit(BATCH).subquery()
        upto = session.scalar(select(func.max(batch.c.id)))
        if upto is None:
            return
        for row in session.connection().execute(_batch_query(account_id, after, upto)):  # Core: no ORM loading
            yield _facts(row)
        after = upto


def _batch_query(account_id: int, after: int, upto: int) -> Any:
    """The facts of the shop's orders with ids in (after, upto] that can owe or carry money."""
    delivered, refunded, settled = _delivered(after, upto), _refunded(after, upto), _settled(account_id, after, upto)
    return (
        select(
            Order.id, Order.external_id, Order.currency, Order.status, Order.subtotal_minor, Order.total_minor,
            delivered.c.delivered_at, refunded.c.refunded, refunded.c.refunded_at, *settled.c,
        )
        .outerjoin(delivered, delivered.c.order_id == Order.id)
        .outerjoin(refunded, refunded.c.order_id == Order.id)
        .outerjoin(settled, settled.c.order_id == Order.id)
        .where(Order.channel_account_id == account_id, Order.id > after, Order.id <= upto)
        .where(or_(Order.status.in_(DELIVERED), settled.c.order_id.is_not(None)))
        .order_by(Order.id)
    )  # fmt: skip


def link_orders(session: Session, account_id: int) -> int:
    """Point transactions read before their order reached the hub at the order now that it has; answers how many."""
    t = FinanceTransaction
    known = (
        select(Order.id)
        .where(Order.channel_account_id == account_id, Order.external_id == t.external_order_id)
        .scalar_subquery()
    )
    result = session.execute(
        update(t)
        .where(t.channel_account_id == account_id, t.order_id.is_(None), t.external_order_id.is_not(None))
        .where(known.is_not(None))
        .values(order_id=known)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def unknown_orders(session: Session, account_id: int) -> Iterator[Found]:
    """Money settled for orders the hub does not have, per order and currency."""
    t = FinanceTransaction
    query = (
        select(t.external_order_id, t.currency, func.sum(t.settlement_minor), func.count())
        .where(t.channel_account_id == account_id, t.order_id.is_(None), t.external_order_id.is_not(None),
               t.type != RESERVE)
        .group_by(t.external_order_id, t.currency)
        .order_by(t.external_order_id)
    )  # fmt: skip
    for external_order_id, currency, settlement, lines in session.execute(query):
        yield check_unknown(str(external_order_id), currency, int(settlement or 0), int(lines))


def findings(session: Session, account: ChannelAccount, *, now: datetime,
             counts: RunCounts | None = None) -> Iterator[Found]:  # fmt: skip
    """Everything wrong with the shop's money today (link_orders first, so a late order is not unknown); the orders
    checked are counted in ``counts``."""
    rates, policy = policy_of(account)
    for order, settled in order_facts(session, account.id):
        if counts is not None:
            counts.orders += 1
        yield from check_order(order, settled, rates=rates, policy=policy, now=now)
    yield from unknown_orders(session, account.id)


def _key(kind: str, subject: str) -> tuple[str, str]:
    return kind, subject


def reconcile(
    session: Session, account: ChannelAccount, *, now: datetime, counts: RunCounts | None = None
) -> RunCounts:
    """One run over one shop, in the caller's transaction: exceptions upserted, the ones no longer found cleared."""
    counts = counts or RunCounts()
    link_orders(session, account.id)
    held = {
        _key(e.kind, e.subject): e
        for e in session.scalars(select(FinanceException).where(FinanceException.channel_account_id == account.id))
    }
    seen: set[tuple[str, str]] = set()
    fresh: list[dict[str, Any]] = []
    for found in _counted(findings(session, account, now=now, counts=counts), counts):
        key = _key(found.kind.value, found.subject)
        seen.add(key)
        existing = held.get(key)
        values = {
            "order_id": found.order_id, "external_order_id": found.external_order_id, "currency": found.currency,
            "amount_minor": found.at_stake, "expected_minor": found.expected, "actual_minor": found.actual,
            "detail": found.detail, "expected_by": found.expected_by,
        }  # fmt: skip
        if existing is None:
            fresh.append({"channel_account_id": account.id, "kind": found.kind.value, "subject": found.subject,
                          "found_at": now, "last_found_at": now, **values})  # fmt: skip
            continue
        if existing.amount_minor != found.at_stake or existing.currency != found.currency:
            existing.acknowledged_at = existing.acknowledged_by = existing.note = None
        for column, value in values.items():
            setattr(existing, column, value)
        existing.last_found_at = now
        if existing.cleared_at is not None:
            existing.cleared_at = None
            counts.new += 1
    if fresh:
        session.execute(insert(FinanceException), fresh)
        counts.new += len(fresh)
    for key, existing in held.items():
        if key not in seen and existing.cleared_at is None:
            existing.cleared_at = now
            counts.cleared += 1
    session.flush()
    return counts


def _counted(found: Iterator[Found], counts: RunCounts) -> Iterator[Found]:
    for one in found:
        counts.found[one.kind.value] = counts.found.get(one.kind.value, 0) + 1
        counts.at_stake[one.currency] = counts.at_stake.get(one.currency, 0) + one.at_stake
        yield one


def accounts_with_finance(session: Session, account_id: int | None = None) -> list[ChannelAccount]:
    """The channel accounts that have settlement data to reconcile."""
    query = select(ChannelAccount).where(ChannelAccount.id.in_(select(FinanceStatement.channel_account_id).distinct()))
    if account_id is not None:
        query = query.where(ChannelAccount.id == account_id)
    return list(session.scalars(query.order_by(ChannelAccount.id)))


# --- reading and acknowledging -----------------------------------------------------------------------------------


class ExceptionNotFound(LookupError):
    pass


def open_exceptions(session: Session, *, account_id: int | None = None, kind: str | None = None,
                    include_acknowledged: bool = False, limit: int = 500) -> Sequence[FinanceException]:  # fmt: skip
    """Exceptions still found, the most money first."""
    query = select(FinanceException).where(FinanceException.cleared_at.is_(None))
    if account_id is not None:
        query = query.where(FinanceException.channel_account_id == account_id)
    if kind is not None:
        if kind not in {k.value for k in ExceptionKind}:
            raise ValueError(f"unknown exception kind {kind!r}; kinds: {', '.join(k.value for k in ExceptionKind)}")
        query = query.where(FinanceException.kind == kind)
    if not include_acknowledged:
        query = query.where(FinanceException.acknowledged_at.is_(None))
    query = query.order_by(FinanceException.amount_minor.desc(), FinanceException.id).limit(limit)
    return list(session.scalars(query))


def summary(session: Session, *, account_id: int | None = None) -> list[tuple[str, str, int, int, int]]:
    """Open exceptions per kind and currency: (kind, currency, count, at stake, acknowledged)."""
    e = FinanceException
    query = (
        select(e.kind, e.currency, func.count(), func.sum(e.amount_minor),
               func.sum(case((e.acknowledged_at.is_not(None), 1), else_=0)))
        .where(e.cleared_at.is_(None))
        .group_by(e.kind, e.currency)
        .order_by(e.kind, e.currency)
    )  # fmt: skip
    if account_id is not None:
        query = query.where(e.channel_account_id == account_id)
    return [(kind, cur, int(n), int(total or 0), int(ack or 0)) for kind, cur, n, total, ack in session.execute(query)]


def acknowledge(session: Session, exception_id: int, note: str, *, actor: str, now: datetime) -> FinanceException:
    """A person looked at it and says why it is fine (or what they did): kept with who and when. A note is needed."""
    text = note.strip()
    if not text:
        raise ValueError("an acknowledgement needs a note saying why")
    if len(text) > 2000:
        raise ValueError("the note is longer than 2,000 characters")
    found = session.get(FinanceException, exception_id, with_for_update=True)
    if found is None:
        raise ExceptionNotFound(f"finance exception {exception_id} does not exist")
    found.acknowledged_at, found.acknowledged_by, found.note = now, actor, text
    session.flush()
    return found


# --- the job ----------------------------------------------------------------------------------------------------


def reconcile_job(ctx: JobContext) -> None:
    """Reconcile one shop (payload ``{"account_id": id}``) or every shop with settlement data, in the job's
    transaction."""
    wanted = ctx.payload.get("account_id")
    for account in accounts_with_finance(ctx.session, int(wanted) if wanted is not None else None):
        counts = reconcile(ctx.session, account, now=ctx.now)
        log.info("finance.reconciled", channel_account_id=account.id, **counts.as_dict())


def queue_reconcile(session: Session, account_id: int, *, now: datetime) -> int:
    """Reconcile a shop soon (after its settlements changed); one waiting run per shop absorbs the rest."""
    return enqueue(session, RECONCILE, {"account_id": account_id}, now=now, channel_account_id=account_id,
                   identity_key=f"{RECONCILE}:{account_id}", priority=60)  # fmt: skip
