"""Payouts broken down: each payout of a channel account, its statements and its orders in the numbers finance
posts (domain/finance.py's Breakdown), read from the imported statements and transactions."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from shopbridge.domain.finance import Breakdown, Line, breakdown
from shopbridge.store.tables import ChannelAccount, FinancePayment, FinanceStatement, FinanceTransaction

LINE_COLUMNS = (
    FinanceTransaction.type, FinanceTransaction.currency, FinanceTransaction.revenue_minor,
    FinanceTransaction.platform_commission_minor, FinanceTransaction.referral_fee_minor,
    FinanceTransaction.transaction_fee_minor, FinanceTransaction.affiliate_commission_minor,
    FinanceTransaction.fee_minor, FinanceTransaction.shipping_cost_minor, FinanceTransaction.refund_minor,
    FinanceTransaction.adjustment_minor, FinanceTransaction.settlement_minor,
)  # fmt: skip


class PayoutNotFound(LookupError):
    pass


@dataclass(frozen=True)
class StatementPart:
    external_id: str
    statement_time: datetime
    breakdown: Breakdown


@dataclass(frozen=True)
class OrderPart:
    external_order_id: str | None  # None: the payout's adjustments and reserve, which belong to no order
    order_id: int | None
    breakdown: Breakdown


@dataclass(frozen=True)
class Payout:
    """A payout with its breakdown. ``amount`` is what the bank received, in ``currency`` (after any exchange);
    ``breakdown.paid`` is the same money in the settlement's currency, before exchange. ``checks`` says whether
    the channel's own totals agree with the sum of its transactions."""

    id: int
    channel_account_id: int
    shop: str
    external_id: str
    status: str | None
    created_at: datetime
    paid_at: datetime | None
    amount: int
    currency: str
    bank_account: str | None
    breakdown: Breakdown
    statements: Sequence[StatementPart]
    adds_up: bool
    difference: int  # the channel's own total less the breakdown's (settlement, else amount paid); 0 when it adds up


def _line(row: Sequence[Any]) -> Line:
    return Line(*row)


def _statement_lines(session: Session, statement_ids: Sequence[int]) -> dict[int, list[Line]]:
    out: dict[int, list[Line]] = {sid: [] for sid in statement_ids}
    query = select(FinanceTransaction.statement_id, *LINE_COLUMNS).where(
        FinanceTransaction.statement_id.in_(list(statement_ids))
    )
    for statement_id, *rest in session.execute(query):
        out[statement_id].append(_line(rest))
    return out


def _payout(session: Session, payment: FinancePayment, shop: str) -> Payout:
    statements = list(
        session.scalars(
            select(FinanceStatement)
            .where(
                FinanceStatement.channel_account_id == payment.channel_account_id,
                FinanceStatement.payment_external_id == payment.external_id,
            )
            .order_by(FinanceStatement.statement_time, FinanceStatement.id)
        )
    )
    currency = payment.settlement_currency or (statements[0].currency if statements else payment.currency)
    lines = _statement_lines(session, [s.id for s in statements])
    parts = [StatementPart(s.external_id, s.statement_time, breakdown(lines[s.id], s.currency)) for s in statements]
    total = Breakdown(currency)
    for part in parts:
        total = total + part.breakdown
    statement_ids = [s.id for s in statements]
    orders = session.scalars(
        select(FinanceTransaction.external_order_id)
        .where(FinanceTransaction.statement_id.in_(statement_ids), FinanceTransaction.external_order_id.is_not(None))
        .distinct()
    )
    total = replace(total, orders=len(list(orders)))
    # The channel's own numbers: the settlement (reserve apart) and, when paid in the same currency, the amount.
    differences = []
    if payment.settlement_minor is not None and payment.settlement_currency == currency:
        differences.append(payment.settlement_minor - total.net)
    if payment.currency == currency:
        differences.append(payment.amount_minor - total.paid)
    difference = next((d for d in differences if d), 0)
    return Payout(
        payment.id, payment.channel_account_id, shop, payment.external_id, payment.status, payment.created_at,
        payment.paid_at, payment.amount_minor, payment.currency, payment.bank_account, total, parts,
        adds_up=difference == 0, difference=difference,
    )  # fmt: skip


def payout(session: Session, payment_id: int) -> Payout:
    """One payout by the hub's id, broken down."""
    found = session.execute(
        select(FinancePayment, ChannelAccount.label)
        .join(ChannelAccount, ChannelAccount.id == FinancePayment.channel_account_id)
        .where(FinancePayment.id == payment_id)
    ).one_or_none()
    if found is None:
        raise PayoutNotFound(f"payout {payment_id} is not known to the hub")
    return _payout(session, found[0], found[1])


def _listing(account_id: int | None, since: datetime | None, until: datetime | None) -> Select[FinancePayment, str]:
    query = select(FinancePayment, ChannelAccount.label).join(
        ChannelAccount, ChannelAccount.id == FinancePayment.channel_account_id
    )
    if account_id is not None:
        query = query.where(FinancePayment.channel_account_id == account_id)
    if since is not None:
        query = query.where(FinancePayment.created_at >= since)
    if until is not None:
        query = query.where(FinancePayment.created_at < until)
    return query.order_by(FinancePayment.created_at.desc(), FinancePayment.id.desc())


def payouts(session: Session, *, account_id: int | None = None, since: datetime | None = None,
            until: datetime | None = None, limit: int | None = None) -> Iterator[Payout]:  # fmt: skip
    """Payouts newest first, each broken down."""
    query = _listing(account_id, since, until)
    if limit is not None:
        query = query.limit(limit)
    for payment, shop in session.execute(query).all():
        yield _payout(session, payment, shop)


def order_breakdowns(session: Session, payment_id: int) -> list[OrderPart]:
    """A payout down to its orders: each order's transactions summed; adjustments and reserve as one part."""
    payment = session.get(FinancePayment, payment_id)
    if payment is None:
        raise PayoutNotFound(f"payout {payment_id} is not known to the hub")
    query = (
        select(FinanceTransaction.external_order_id, FinanceTransaction.order_id, *LINE_COLUMNS)
        .join(FinanceStatement, FinanceStatement.id == FinanceTransaction.statement_id)
        .where(
            FinanceStatement.channel_account_id == payment.channel_account_id,
            FinanceStatement.payment_external_id == payment.external_id,
        )
        .order_by(FinanceTransaction.external_order_id, FinanceTransaction.id)
    )
    grouped: dict[str | None, tuple[int | None, list[Line]]] = {}
    for external_order_id, order_id, *rest in session.execute(query):
        held = grouped.setdefault(external_order_id, (order_id, []))
        held[1].append(_line(rest))
    currency = payment.settlement_currency or payment.currency
    return [OrderPart(external, order_id, replace(breakdown(lines, currency), orders=1 if external else 0))
            for external, (order_id, lines) in grouped.items()]  # fmt: skip
