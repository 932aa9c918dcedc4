"""Where money closes: a payout broken down to the numbers finance posts, and every order's settlement checked
against what the hub knows of the order.

Amounts are integer minor units of one currency, with the channel's signs: income positive, charges negative (a
fee of 1.20 is -120). A channel's statement transaction is one of three things: an order's sale (revenue positive),
a refund of it (revenue given back, negative, with what the buyer got back), or an adjustment; a ``RESERVE``
transaction holds part of a payout back (negative) or releases it (positive) and is not part of the settlement.

Reconciliation (``check_order``, ``check_unknown``) compares one order at a time, so it streams over any number of
orders; the facts are gathered by services/reconciliation.py. Pure: no database, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from enum import StrEnum

from shopbridge.domain.money import CurrencyMismatch

RESERVE = "RESERVE"  # the channel's transaction type for a reserve held or released
DAY = timedelta(days=1)


class ExceptionKind(StrEnum):
    """What reconciliation found wrong, in the words the API, the CLI and the dashboard use."""

    MISSING_SETTLEMENT = "missing_settlement"  # delivered, but not settled by the date it was due
    AMOUNT_DIFFERENCE = "amount_difference"  # settled for another amount than the order implies
    UNKNOWN_ORDER = "unknown_order"  # settled for an order the hub does not know
    LATE_RELEASE = "late_release"  # settled, but after the date it was due
    REFUND_NOT_DEDUCTED = "refund_not_deducted"  # the hub refunded the buyer; the settlement never took it back
    FEE_OUTSIDE_RATE = "fee_outside_rate"  # a fee charged at another rate than the shop's configured one


# --- a payout's breakdown -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Line:
    """One statement transaction as finance reads it."""

    type: str
    currency: str
    revenue: int
    platform_commission: int
    referral_fee: int
    transaction_fee: int
    affiliate_commission: int
    fee: int  # every fee, the named ones included
    shipping_cost: int
    refund: int  # what the buyer got back (negative), on a refund
    adjustment: int
    settlement: int

    @property
    def is_reserve(self) -> bool:
        return self.type == RESERVE

    @property
    def is_refund(self) -> bool:
        return not self.is_reserve and (self.refund != 0 or self.revenue < 0)


@dataclass(frozen=True, slots=True)
class Breakdown:
    """A payout (or a statement, or an order) in the numbers finance posts. ``net`` is the settlement; ``paid`` is
    what reaches the bank, the reserve held back (or released) included. ``unexplained`` is whatever part of a
    settlement the channel did not attribute to revenue, a fee, shipping or an adjustment (0 when its numbers add
    up), kept so the breakdown always adds up to the settlement it came from."""

    currency: str
    sales: int = 0
    refunds: int = 0
    platform_commission: int = 0
    referral_fee: int = 0
    transaction_fee: int = 0
    affiliate_commission: int = 0
    other_fees: int = 0
    shipping: int = 0
    adjustments: int = 0
    unexplained: int = 0
    reserve: int = 0
    transactions: int = 0
    orders: int = 0

    @property
    def fees(self) -> int:
        return (self.platform_commission + self.referral_fee + self.transaction_fee + self.affiliate_commission
                + self.other_fees)  # fmt: skip

    @property
    def net(self) -> int:
        return self.sales + self.refunds + self.fees + self.shipping + self.adjustments + self.unexplained

    @property
    def paid(self) -> int:
        return self.net + self.reserve

    def __add__(self, other: Breakdown) -> Breakdown:
        if other.currency != self.currency:
            raise CurrencyMismatch(f"cannot add a {other.currency} breakdown to a {self.currency} one")
        summed = {f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self) if f.name != "currency"}
        return Breakdown(self.currency, **summed)

    def as_dict(self) -> dict[str, int | str]:
        out: dict[str, int | str] = {f.name: getattr(self, f.name) for f in fields(self)}
        out.update(fees=self.fees, net=self.net, paid=self.paid)
        return out


# A breakdown's lines as finance reads them, top to bottom: (label, Breakdown.as_dict key).
BREAKDOWN_LINES: tuple[tuple[str, str], ...] = (
    ("Sales", "sales"), ("Refunds", "refunds"), ("Platform commission", "platform_commission"),
    ("Referral fee", "referral_fee"), ("Transaction fee", "transaction_fee"),
    ("Affiliate commission", "affiliate_commission"), ("Other fees", "other_fees"), ("Shipping", "shipping"),
    ("Adjustments", "adjustments"), ("Unexplained", "unexplained"), ("Net settlement", "net"),
    ("Reserve", "reserve"), ("Paid", "paid"),
)  # fmt: skip


def breakdown(lines: Iterable[Line], currency: str) -> Breakdown:
    """Sum transactions into a breakdown; a line in another currency stops it (currencies are never mixed)."""
    sums = dict.fromkeys(("sales", "refunds", "platform_commission", "referral_fee", "transaction_fee",
                          "affiliate_commission", "other_fees", "shipping", "adjustments", "unexplained",
                          "reserve", "transactions"), 0)  # fmt: skip
    for line in lines:
        if line.currency != currency:
            raise CurrencyMismatch(f"a {line.currency} transaction in a {currency} payout")
        sums["transactions"] += 1
        if line.is_reserve:
            sums["reserve"] += line.settlement
            continue
        named = line.platform_commission + line.referral_fee + line.transaction_fee + line.affiliate_commission
        sums["refunds" if line.is_refund else "sales"] += line.revenue
        sums["platform_commission"] += line.platform_commission
        sums["referral_fee"] += line.referral_fee
        sums["transaction_fee"] += line.transaction_fee
        sums["affiliate_commission"] += line.affiliate_commission
        sums["other_fees"] += line.fee - named
        sums["shipping"] += line.shipping_cost
        sums["adjustments"] += line.adjustment
        sums["unexplained"] += line.settlement - (line.revenue + line.fee + line.shipping_cost + line.adjustment)
    return Breakdown(currency, **sums)


# --- reconciliation -----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FeeRates:
    """The fees the shop agreed with the channel, as fractions: the referral fee and platform commission of the
    order's revenue, the transaction (payment) fee of what the buyer paid. None: not configured, not checked.
    ``tolerance`` minor units absorb the channel's rounding."""

    referral_fee: Decimal | None = None
    platform_commission: Decimal | None = None
    transaction_fee: Decimal | None = None
    tolerance: int = 1

    @classmethod
    def from_settings(cls, found: Mapping[str, object]) -> FeeRates:
        def rate(key: str) -> Decimal | None:
            value = found.get(key)
            return None if value in (None, "") else Decimal(str(value))

        return cls(rate("referral_fee_rate"), rate("platform_commission_rate"), rate("transaction_fee_rate"),
                   int(str(found.get("fee_tolerance_minor", 1))))  # fmt: skip


@dataclass(frozen=True, slots=True)
class Policy:
    """When a delivered order's money is due: ``settlement_delay`` after delivery (the channel's rule for the
    shop), on the statement closing that day, plus ``grace`` for the channel to write it."""

    settlement_delay: timedelta = timedelta(0)
    grace: timedelta = timedelta(days=2)

    def due_by(self, delivered_at: datetime) -> datetime:
        return self.deducted_by(delivered_at + self.settlement_delay)

    def deducted_by(self, moment: datetime) -> datetime:
        """Money that moved at ``moment`` (a refund made) is on the statement closing that day, plus the grace."""
        return moment.replace(hour=0, minute=0, second=0, microsecond=0) + DAY + self.grace


@dataclass(frozen=True, slots=True)
class OrderFacts:
    """One hub order of the shop, as reconciliation needs it (minor units of ``currency``)."""

    order_id: int
    external_id: str
    currency: str
    cancelled: bool
    revenue: int  # what the channel owes as revenue: the goods, after the seller's discounts
    paid_by_buyer: int  # the order's total, what a payment fee is charged on
    delivered_at: datetime | None
    refunded: int  # what the hub refunded the buyer (positive)
    refunded_at: datetime | None


@dataclass(frozen=True, slots=True)
class Settled:
    """The order's settlement lines summed: sales and refunds apart."""

    currencies: frozenset[str]
    sale_revenue: int = 0
    sales: int = 0  # sale lines
    sale_settlement: int = 0
    first_settled_at: datetime | None = None
    referral_fee: int = 0  # of the sale lines
    platform_commission: int = 0
    transaction_fee: int = 0
    refund_deducted: int = 0  # what the refund lines say the buyer got back (positive)
    refunds: int = 0  # refund lines


@dataclass(frozen=True, slots=True)
class Found:
    """An exception as one run found it. ``subject`` names what it is about, unique per kind and shop."""

    kind: ExceptionKind
    subject: str
    currency: str
    at_stake: int
    detail: str
    order_id: int | None = None
    external_order_id: str | None = None
    expected: int | None = None
    actual: int | None = None
    expected_by: datetime | None = None


def _fee_rate(rate: Decimal, base: int) -> int:
    """A fee as the channel charges it: negative, rounded half to even on the minor unit."""
    return -int((rate * base).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def _fmt(minor: int, currency: str) -> str:
    from shopbridge.domain.money import Money

    return str(Money.from_minor(minor, currency))


def check_order(order: OrderFacts, settled: Settled | None, *, rates: FeeRates, policy: Policy,
                now: datetime) -> list[Found]:  # fmt: skip
    """Every exception one order has today. A cancelled order owes nothing; a delivered one is due by
    ``policy.due_by`` its delivery; a settled one must carry the order's revenue, its refunds and fees at the
    shop's rates."""
    subject = f"order:{order.external_id}"
    cur = order.currency

    def found(kind: ExceptionKind, at_stake: int, detail: str, *, expected: int | None = None,
              actual: int | None = None, expected_by: datetime | None = None) -> Found:  # fmt: skip
        return Found(kind, subject, cur, abs(at_stake), detail, order.order_id, order.external_id, expected, actual,
                     expected_by)  # fmt: skip

    out: list[Found] = []
    if settled is not None and settled.currencies - {cur}:
        other = ", ".join(sorted(settled.currencies - {cur}))
        return [found(ExceptionKind.AMOUNT_DIFFERENCE, settled.sale_settlement,
                      f"settled in {other}, but the order is in {cur}: currencies are never mixed")]  # fmt: skip
    due = policy.due_by(order.delivered_at) if order.delivered_at is not None else None
    has_sale = settled is not None and settled.sales > 0
    if not has_sale:
        if not order.cancelled and due is not None and now > due:
            out.append(found(ExceptionKind.MISSING_SETTLEMENT, order.revenue,
                             f"delivered {order.delivered_at:%Y-%m-%d}, settlement due by {due:%Y-%m-%d}, none yet",
                             expected=order.revenue, actual=0, expected_by=due))  # fmt: skip
        return out
    assert settled is not None
    expected_revenue = 0 if order.cancelled else order.revenue
    if settled.sale_revenue != expected_revenue:
        difference = settled.sale_revenue - expected_revenue
        out.append(found(ExceptionKind.AMOUNT_DIFFERENCE, difference,
                         f"revenue settled {_fmt(settled.sale_revenue, cur)}, the order implies "
                         f"{_fmt(expected_revenue, cur)} ({'+' if difference > 0 else '-'}"
                         f"{_fmt(abs(difference), cur)})",
                         expected=expected_revenue, actual=settled.sale_revenue))  # fmt: skip
    if due is not None and settled.first_settled_at is not None and settled.first_settled_at > due:
        late = settled.first_settled_at - due
        out.append(found(ExceptionKind.LATE_RELEASE, settled.sale_settlement,
                         f"due by {due:%Y-%m-%d}, released {settled.first_settled_at:%Y-%m-%d} "
                         f"({late.days} day{'s' if late.days != 1 else ''} late)",
                         expected_by=due))  # fmt: skip
    refund_due = policy.deducted_by(order.refunded_at) if order.refunded_at is not None else None
    if order.refunded > settled.refund_deducted and refund_due is not None and now > refund_due:
        missing = order.refunded - settled.refund_deducted
        out.append(found(ExceptionKind.REFUND_NOT_DEDUCTED, missing,
                         f"the buyer was refunded {_fmt(order.refunded, cur)}; settlements deducted "
                         f"{_fmt(settled.refund_deducted, cur)} by {refund_due:%Y-%m-%d}",
                         expected=order.refunded, actual=settled.refund_deducted, expected_by=refund_due))  # fmt: skip
    # Fees are checked on the order's own amounts: a revenue settled short is an amount difference, not a fee.
    for name, rate, base in (("referral fee", rates.referral_fee, order.revenue),
                             ("platform commission", rates.platform_commission, order.revenue),
                             ("transaction fee", rates.transaction_fee, order.paid_by_buyer)):  # fmt: skip
        if rate is None:
            continue
        charged = {"referral fee": settled.referral_fee, "platform commission": settled.platform_commission,
                   "transaction fee": settled.transaction_fee}[name]  # fmt: skip
        expected = _fee_rate(rate, base)
        if abs(charged - expected) > rates.tolerance:
            out.append(Found(ExceptionKind.FEE_OUTSIDE_RATE, f"{subject}:{name.replace(' ', '_')}", cur,
                             abs(charged - expected),
                             f"{name} {_fmt(-charged, cur)} charged; {rate:%} of {_fmt(base, cur)} is "
                             f"{_fmt(-expected, cur)}", order.order_id, order.external_id,
                             expected=expected, actual=charged))  # fmt: skip
    return out


def check_unknown(external_order_id: str, currency: str, settlement: int, lines: int) -> Found:
    """Money settled for an order the hub does not have: someone has to say what it was."""
    return Found(ExceptionKind.UNKNOWN_ORDER, f"order:{external_order_id}", currency, abs(settlement),
                 f"{lines} transaction{'s' if lines != 1 else ''} settled {_fmt(settlement, currency)} for order "
                 f"{external_order_id}, which the hub does not know",
                 external_order_id=external_order_id, actual=settlement)  # fmt: skip
