"""Journals for the merchant's books: a payout, or a courier's cash-on-delivery remittance, as one double-entry
journal entry on a configurable chart of accounts, and the entries as CSV rows an accounting system imports.

An entry is built from signed amounts (the channel's signs: income positive, charges negative), so it balances by
construction: every component is posted on the side that gives it back, and the bank takes what the components add
up to. ``check_balanced`` is still asserted before anything is written, because an unbalanced journal in the books
is far more expensive than a stopped export.

One entry holds one currency. A payout exchanged before it reached the bank stays in its settlement currency; the
bank line says what arrived, in which currency, in words. Pure: no database, no clock.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum

from shopbridge.domain.finance import Breakdown
from shopbridge.domain.money import Money, minor_digits


class AccountRole(StrEnum):
    """What an account is for in a journal; the merchant's chart says which account code plays each role."""

    SALES = "sales"
    REFUNDS = "refunds"
    PLATFORM_COMMISSION = "platform_commission"
    REFERRAL_FEE = "referral_fee"
    TRANSACTION_FEE = "transaction_fee"
    AFFILIATE_COMMISSION = "affiliate_commission"
    OTHER_FEES = "other_fees"
    SHIPPING = "shipping"
    ADJUSTMENTS = "adjustments"
    UNEXPLAINED = "unexplained"  # suspense: money nobody has explained yet, for a person to reclassify
    RESERVE = "reserve"  # the channel's reserve held back: a receivable until released
    BANK = "bank"
    COD_RECEIVABLE = "cod_receivable"  # cash a courier collected for the merchant and has not remitted yet
    COURIER_FEES = "courier_fees"


@dataclass(frozen=True, slots=True)
class Account:
    """One account of the merchant's chart: its code and name as their accounting system knows them."""

    code: str
    name: str


Chart = Mapping[AccountRole, Account]

# Codes in the ranges small-business charts use (1xxx assets, 4xxx income, 6xxx expenses, 9999 suspense). Names keep
# to ASCII: some accounting imports still read CSV in a legacy code page.
DEFAULT_CHART: Chart = {
    AccountRole.SALES: Account("4000", "Sales"),
    AccountRole.REFUNDS: Account("4010", "Sales returns and refunds"),
    AccountRole.REFERRAL_FEE: Account("6100", "Marketplace fees: referral"),
    AccountRole.PLATFORM_COMMISSION: Account("6110", "Marketplace fees: commission"),
    AccountRole.TRANSACTION_FEE: Account("6120", "Marketplace fees: transaction"),
    AccountRole.AFFILIATE_COMMISSION: Account("6130", "Affiliate commission"),
    AccountRole.OTHER_FEES: Account("6140", "Marketplace fees: other"),
    AccountRole.SHIPPING: Account("6150", "Shipping costs"),
    AccountRole.ADJUSTMENTS: Account("6190", "Marketplace adjustments"),
    AccountRole.COURIER_FEES: Account("6200", "Courier COD fees"),
    AccountRole.BANK: Account("1010", "Bank"),
    AccountRole.COD_RECEIVABLE: Account("1150", "COD receivable"),
    AccountRole.RESERVE: Account("1200", "TikTok reserve held"),
    AccountRole.UNEXPLAINED: Account("9999", "Suspense"),
}

# A payout's components in the order an accountant reads an entry: income, what came off it, the balance sheet.
PAYOUT_COMPONENTS: tuple[tuple[AccountRole, str], ...] = (
    (AccountRole.SALES, "sales"),
    (AccountRole.REFUNDS, "refunds"),
    (AccountRole.REFERRAL_FEE, "referral fees"),
    (AccountRole.PLATFORM_COMMISSION, "platform commission"),
    (AccountRole.TRANSACTION_FEE, "transaction fees"),
    (AccountRole.AFFILIATE_COMMISSION, "affiliate commission"),
    (AccountRole.OTHER_FEES, "other fees"),
    (AccountRole.SHIPPING, "shipping"),
    (AccountRole.ADJUSTMENTS, "adjustments"),
    (AccountRole.UNEXPLAINED, "not explained by the channel"),
    (AccountRole.RESERVE, "reserve"),
)

CSV_COLUMNS = ("entry_id", "date", "currency", "account_code", "account_name", "debit", "credit", "memo", "reference")
# A spreadsheet runs a cell starting with one of these as a formula; text cells get a leading apostrophe instead.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class UnknownAccountRole(ValueError):
    """A role the journals do not post to."""


class UnbalancedEntry(AssertionError):
    """An entry whose debits and credits differ: it must never reach the books."""


def account_role(name: str) -> AccountRole:
    """The role named ``name``, or a refusal that lists the roles there are."""
    try:
        return AccountRole(name)
    except ValueError:
        roles = ", ".join(role.value for role in AccountRole)
        raise UnknownAccountRole(f"no account role {name!r}; the roles are: {roles}") from None


def chart_with(overrides: Mapping[AccountRole, Account]) -> dict[AccountRole, Account]:
    """The default chart with the merchant's own accounts in place of the defaults they changed."""
    return {role: overrides.get(role, DEFAULT_CHART[role]) for role in AccountRole}


@dataclass(frozen=True, slots=True)
class JournalLine:
    """One side of one amount: a debit or a credit (never both, never nothing) in minor units, not negative."""

    account_role: AccountRole
    debit_minor: int
    credit_minor: int
    memo: str

    def __post_init__(self) -> None:
        if self.debit_minor < 0 or self.credit_minor < 0:
            raise ValueError(f"a journal line's amounts are not negative: {self.debit_minor}, {self.credit_minor}")
        if (self.debit_minor > 0) == (self.credit_minor > 0):
            raise ValueError("a journal line is either a debit or a credit")


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One balanced entry in one currency: a payout or a remittance as the books record it."""

    entry_id: str
    date: dt.date
    currency: str
    reference: str
    lines: tuple[JournalLine, ...]

    def __post_init__(self) -> None:
        minor_digits(self.currency)  # refuses what is not an ISO 4217 code

    @property
    def debits(self) -> int:
        return sum(line.debit_minor for line in self.lines)

    @property
    def credits(self) -> int:
        return sum(line.credit_minor for line in self.lines)

    @property
    def balanced(self) -> bool:
        return self.debits == self.credits

    def amount_on(self, role: AccountRole) -> int:
        """What the entry posts to ``role``'s account, debits positive and credits negative."""
        return sum(line.debit_minor - line.credit_minor for line in self.lines if line.account_role == role)


def check_balanced(entry: JournalEntry) -> JournalEntry:
    """The entry, if its debits equal its credits to the minor unit; otherwise a refusal naming it and both totals."""
    if not entry.balanced:
        debits = Money.from_minor(entry.debits, entry.currency)
        credits = Money.from_minor(entry.credits, entry.currency)
        raise UnbalancedEntry(f"journal entry {entry.entry_id} does not balance: debits {debits}, credits {credits}")
    return entry


def _posting(role: AccountRole, debit: int, memo: str) -> list[JournalLine]:
    """A signed amount on its side: positive is a debit, negative a credit of its absolute value, zero no line."""
    if debit == 0:
        return []
    return [JournalLine(role, debit, 0, memo) if debit > 0 else JournalLine(role, 0, -debit, memo)]


def _memo(prefix: str, *words: str) -> str:
    said = "; ".join(word for word in words if word)
    return f"{prefix}: {said}" if prefix else said


def payout_entry(
    breakdown: Breakdown,
    *,
    entry_id: str,
    date: dt.date,
    reference: str,
    memo: str = "",
    bank_amount: Money | None = None,
    notes: Mapping[AccountRole, str] | None = None,
) -> JournalEntry:
    """A payout as one entry in its settlement currency. Each component is credited when positive (sales, a
    reserve released) and debited by its absolute value when negative (refunds, every fee, a reserve held); the
    bank is debited with ``breakdown.paid`` (credited, if the channel took money back). Since the components add up
    to ``paid``, credits less debits of the components is exactly what the bank line offsets.

    ``bank_amount`` is what reached the bank after any exchange: in another currency it is stated in the bank
    line's memo, never posted, since one entry never mixes currencies. ``notes`` add words to a role's line."""
    notes = notes or {}
    currency = breakdown.currency
    lines: list[JournalLine] = []
    for role, label in PAYOUT_COMPONENTS:
        amount: int = getattr(breakdown, role.value)  # a component's role is named as its Breakdown field
        if role is AccountRole.RESERVE:
            label = "reserve held back" if amount < 0 else "reserve released"
        lines += _posting(role, -amount, _memo(memo, label, notes.get(role, "")))
    exchanged = ""
    if bank_amount is not None and bank_amount.currency != currency:
        exchanged = (f"reached the bank as {bank_amount} after exchange; "
                     f"this entry stays in the settlement currency {currency}")  # fmt: skip
    paid = "paid to the bank" if breakdown.paid >= 0 else "taken back from the bank"
    lines += _posting(AccountRole.BANK, breakdown.paid, _memo(memo, paid, exchanged, notes.get(AccountRole.BANK, "")))
    return JournalEntry(entry_id, date, currency, reference, tuple(lines))


def cod_remittance_entry(collected: int, fee: int, remitted: int, *, currency: str, entry_id: str, date: dt.date,
                         reference: str, memo: str = "", note: str = "") -> JournalEntry:  # fmt: skip
    """A courier's remittance as one entry: the bank is debited with what was remitted and courier fees with the
    courier's fee (both positive, as the courier's file states them), and the COD receivable is credited with the
    cash collected, which the sale had put there. Should collected less fee differ from what was remitted, the
    difference goes to suspense (debited when short) with ``note`` saying why, so the entry still balances and
    the gap is in front of a person rather than hidden in the bank."""
    shortfall = collected - fee - remitted
    lines = [
        *_posting(AccountRole.BANK, remitted, _memo(memo, "cash remitted by the courier")),
        *_posting(AccountRole.COURIER_FEES, fee, _memo(memo, "courier's COD fee")),
        *_posting(AccountRole.COD_RECEIVABLE, -collected, _memo(memo, "cash collected on delivery")),
        *_posting(AccountRole.UNEXPLAINED, shortfall,
                  _memo(memo, "collected less fee differs from what was remitted", note)),
    ]  # fmt: skip
    return JournalEntry(entry_id, date, currency, reference, tuple(lines))


def _cell(text: str) -> str:
    return f"'{text}" if text.startswith(_FORMULA_STARTS) else text


def _decimal(minor: int, currency: str) -> str:
    return "" if minor == 0 else f"{Money.from_minor(minor, currency).amount:f}"


def csv_rows(entries: Iterable[JournalEntry], chart: Chart) -> Iterator[dict[str, str]]:
    """Each entry's lines as rows of ``CSV_COLUMNS``: debit and credit as decimals in the currency's precision
    (``12.50``, ``1500`` for yen, ``1.250`` for dinars), the side not taken empty. An entry that does not balance
    stops the rows before any of its lines."""
    for entry in entries:
        check_balanced(entry)
        for line in entry.lines:
            account = chart[line.account_role]
            yield {
                "entry_id": _cell(entry.entry_id), "date": entry.date.isoformat(), "currency": entry.currency,
                "account_code": _cell(account.code), "account_name": _cell(account.name),
                "debit": _decimal(line.debit_minor, entry.currency),
                "credit": _decimal(line.credit_minor, entry.currency),
                "memo": _cell(line.memo), "reference": _cell(entry.reference),
            }  # fmt: skip
