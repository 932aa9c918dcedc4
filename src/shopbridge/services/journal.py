"""Journal export: the merchant's chart of accounts as stored, and the journal entries of the payouts and the
couriers' COD remittances of a period, as domain/journal.py builds them, written as CSV for an accounting system.

A period is a range of days, both ends included, each day in the shop's own timezone (ChannelAccount.timezone,
else UTC): an entry is dated the day its money reached the bank, which is the day the books want it."""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Sequence
from dataclasses import replace
from typing import TextIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shopbridge.domain.journal import (
    CSV_COLUMNS,
    Account,
    AccountRole,
    Chart,
    JournalEntry,
    account_role,
    chart_with,
    check_balanced,
    cod_remittance_entry,
    csv_rows,
    payout_entry,
)
from shopbridge.domain.money import CurrencyMismatch, Money
from shopbridge.services import audit, payouts
from shopbridge.store.tables import (
    ChannelAccount,
    CodRemittance,
    CodRemittanceFile,
    Courier,
    FinancePayment,
    LedgerAccount,
)

# No shop is more than 14 hours from UTC: a day of any shop lies within a day either side of the same UTC day.
_ZONE_SLACK = dt.timedelta(days=1)
_CODE_LENGTH = 40  # LedgerAccount.code
_NAME_LENGTH = 200  # LedgerAccount.name


class InvalidAccount(ValueError):
    """An account code or name the chart cannot keep."""


class InvalidPeriod(ValueError):
    """A period that ends before it starts."""


class UnknownTimezone(ValueError):
    """A shop whose timezone is not an IANA name, so its payouts' days cannot be told."""


# --- the chart of accounts ----------------------------------------------------------------------------------------


def chart(session: Session) -> dict[AccountRole, Account]:
    """The chart journals post to: the merchant's accounts where they set one, the defaults elsewhere."""
    roles = {role.value for role in AccountRole}
    stored = {AccountRole(row.role): Account(row.code, row.name)
              for row in session.scalars(select(LedgerAccount)) if row.role in roles}  # fmt: skip
    return chart_with(stored)


def set_account(session: Session, role: str, code: str, name: str, *, actor: str, now: dt.datetime) -> Account:
    """Post ``role`` to the account ``code`` named ``name`` from now on; audited with the account before and after.
    An unknown role is refused with the roles there are. Several roles may share an account (all marketplace fees
    in one, say): the export then has one line per role, each with its own memo."""
    which = account_role(role)
    code, name = code.strip(), name.strip()
    if not code or not name:
        raise InvalidAccount("an account needs a code and a name")
    if len(code) > _CODE_LENGTH or len(name) > _NAME_LENGTH:
        raise InvalidAccount(f"an account code has at most {_CODE_LENGTH} characters, a name at most {_NAME_LENGTH}")
    before = chart(session)[which]
    after = Account(code, name)
    if after == before:
        return before
    row = session.get(LedgerAccount, which.value)
    if row is None:
        session.add(LedgerAccount(role=which.value, code=code, name=name, updated_at=now))
    else:
        row.code, row.name, row.updated_at = code, name, now
    audit.record(session, actor, "ledger_account.set", "ledger_account", which.value, now=now,
                 before={"code": before.code, "name": before.name}, after={"code": code, "name": name})  # fmt: skip
    return after


# --- entries ------------------------------------------------------------------------------------------------------


def _zone(timezone: str | None, shop: str) -> dt.tzinfo:
    if not timezone:
        return dt.UTC
    try:
        return ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise UnknownTimezone(f"{shop}: timezone {timezone!r} is not an IANA timezone name") from None


def _check_period(since: dt.date, until: dt.date) -> None:
    if until < since:
        raise InvalidPeriod(f"the period ends ({until}) before it starts ({since})")


def _entry_of(found: payouts.Payout, day: dt.date) -> JournalEntry:
    """A payout's entry. Where the channel's own total disagrees with the transactions imported (a statement not
    read in full yet, say), the gap goes to suspense, so the bank line is what the channel says it paid."""
    breakdown = found.breakdown
    notes: dict[AccountRole, str] = {}
    if found.difference:
        breakdown = replace(breakdown, unexplained=breakdown.unexplained + found.difference)
        gap = Money.from_minor(found.difference, breakdown.currency)
        notes[AccountRole.UNEXPLAINED] = (f"the channel's total differs from its transactions by {gap} "
                                          "(statements not all imported?)")  # fmt: skip
    bank = [f"account {found.bank_account}"] if found.bank_account else []
    if found.paid_at is None:
        bank.append(f"not paid yet (status {found.status or 'unknown'}), dated the day the payout was created")
    notes[AccountRole.BANK] = "; ".join(bank)
    return payout_entry(breakdown, entry_id=f"payout-{found.id}", date=day, reference=found.external_id,
                        memo=f"{found.shop} payout {found.external_id}",
                        bank_amount=Money.from_minor(found.amount, found.currency), notes=notes)  # fmt: skip


def payout_entries(session: Session, *, since: dt.date, until: dt.date,
                   account_id: int | None = None) -> list[JournalEntry]:  # fmt: skip
    """One entry per payout whose day (paid, else created, in the shop's timezone) is in ``since``..``until``,
    oldest first. Payouts are chosen by that day rather than by when the channel created them, so a payout
    created on the 31st and paid on the 2nd belongs to the month its money arrived in."""
    _check_period(since, until)
    happened = func.coalesce(FinancePayment.paid_at, FinancePayment.created_at)
    start = dt.datetime.combine(since, dt.time(), dt.UTC) - _ZONE_SLACK
    end = dt.datetime.combine(until + dt.timedelta(days=1), dt.time(), dt.UTC) + _ZONE_SLACK
    query = (
        select(FinancePayment.id, ChannelAccount.timezone, ChannelAccount.label)
        .join(ChannelAccount, ChannelAccount.id == FinancePayment.channel_account_id)
        .where(happened >= start, happened < end)
        .order_by(happened, FinancePayment.id)
    )
    if account_id is not None:
        query = query.where(FinancePayment.channel_account_id == account_id)
    entries: list[JournalEntry] = []
    for payment_id, timezone, shop in session.execute(query).all():
        found = payouts.payout(session, payment_id)
        day = (found.paid_at or found.created_at).astimezone(_zone(timezone, shop)).date()
        if since <= day <= until:
            entries.append(_entry_of(found, day))
    entries.sort(key=lambda entry: entry.date)  # stable: within a day, in the order the money arrived
    return entries


def remittance_entries(session: Session, *, since: dt.date, until: dt.date) -> list[JournalEntry]:
    """One entry per courier remittance file whose latest line was remitted in ``since``..``until``, oldest first:
    its lines summed, the bank debited with the file's total (what the courier says it paid)."""
    _check_period(since, until)
    latest = func.max(CodRemittance.remitted_on)
    sums = (func.sum(CodRemittance.collected_minor), func.sum(CodRemittance.fee_minor),
            func.sum(CodRemittance.remitted_minor))  # fmt: skip
    currencies = (func.min(CodRemittance.currency), func.max(CodRemittance.currency))
    query = (
        select(CodRemittanceFile, Courier.code, latest, *sums, *currencies)
        .join(CodRemittance, CodRemittance.file_id == CodRemittanceFile.id)
        .join(Courier, Courier.id == CodRemittanceFile.courier_id)
        .group_by(CodRemittanceFile.id, Courier.id, Courier.code)
        .having(latest >= since, latest <= until)
        .order_by(latest, CodRemittanceFile.id)
    )
    entries: list[JournalEntry] = []
    for file, courier, day, collected, fee, remitted, lowest, highest in session.execute(query).all():
        if {lowest, highest} != {file.currency}:
            raise CurrencyMismatch(f"remittance file {file.filename} of {courier} is in {file.currency} but has "
                                   f"lines in {', '.join(sorted({lowest, highest} - {file.currency}))}")  # fmt: skip
        collected, fee, remitted = int(collected), int(fee), int(remitted)
        note = ""
        if remitted != file.total_minor:
            lines_say = Money.from_minor(remitted, file.currency)
            note = f"its lines remit {lines_say}, its total says {Money.from_minor(file.total_minor, file.currency)}"
        entries.append(cod_remittance_entry(
            collected, fee, file.total_minor, currency=file.currency, entry_id=f"cod-{file.id}", date=day,
            reference=file.filename, memo=f"{courier} COD remittance {file.filename}", note=note,
        ))  # fmt: skip
    return entries


def write_csv(entries: Sequence[JournalEntry], chart: Chart, stream: TextIO) -> int:
    """Write the entries as CSV (a header, then a row per journal line) and return the rows written. Every entry is
    checked balanced before the first row is written, so a refused export leaves nothing half written."""
    for entry in entries:
        check_balanced(entry)
    writer = csv.DictWriter(stream, fieldnames=CSV_COLUMNS)
    writer.writeheader()
    rows = 0
    for row in csv_rows(entries, chart):
        writer.writerow(row)
        rows += 1
    return rows
