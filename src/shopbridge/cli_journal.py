"""`shopbridge finance journal`: journal entries of payouts and COD remittances as CSV for the accounting system,
and the chart of accounts they post to. Mounted under the finance command
(``finance_app.add_typer(journal_app, name="journal")``)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from shopbridge.domain.journal import JournalEntry

journal_app = typer.Typer(help="Journal entries for the books: export them as CSV; the chart of accounts.",
                          no_args_is_help=True)  # fmt: skip

CHART_KEEPERS = ("owner", "finance")  # the chart decides where money lands in the books


def _totals(entries: list[JournalEntry]) -> str:
    """Debits and credits per currency, as the accountant checks them after the import."""
    from shopbridge.domain.money import Money

    debits: dict[str, int] = {}
    credits: dict[str, int] = {}
    for entry in entries:
        debits[entry.currency] = debits.get(entry.currency, 0) + entry.debits
        credits[entry.currency] = credits.get(entry.currency, 0) + entry.credits
    return "; ".join(f"debits {Money.from_minor(debits[c], c)} = credits {Money.from_minor(credits[c], c)}"
                     for c in sorted(debits))  # fmt: skip


@journal_app.command("export")
def journal_export(
    since: Annotated[datetime, typer.Option(formats=["%Y-%m-%d"], metavar="DATE", help="The period's first day.")],
    until: Annotated[
        datetime, typer.Option(formats=["%Y-%m-%d"], metavar="DATE", help="The period's last day, included.")
    ],
    shop: Annotated[
        int | None,
        typer.Option(
            "--shop",
            metavar="ACCOUNT_ID",
            help="Only this shop's payouts (its channel account id); courier remittances, which belong to no shop, "
            "are then left out.",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", metavar="PATH", dir_okay=False, help="Write the CSV to this file, not to stdout."),
    ] = None,
) -> None:
    """Export a period as CSV: one balanced journal entry per payout and per COD remittance file.

    A payout's day is the day it was paid (else created) in its shop's timezone; a remittance file's, the day its
    last line was remitted. The counts and totals go to stderr, so stdout stays a clean CSV."""
    import io
    import sys

    from shopbridge.cli import acting, errors, fail, ready_hub
    from shopbridge.domain.journal import UnbalancedEntry
    from shopbridge.domain.money import CurrencyMismatch
    from shopbridge.services import journal
    from shopbridge.services.access import READERS
    from shopbridge.store.tables import ChannelAccount

    first, last = since.date(), until.date()
    built = ready_hub()
    acting(built, READERS)
    try:
        with built.sessions() as session:
            if shop is not None and session.get(ChannelAccount, shop) is None:
                fail(f"channel account {shop} is not known to the hub")
            accounts = journal.chart(session)
            paid = journal.payout_entries(session, since=first, until=last, account_id=shop)
            remitted = journal.remittance_entries(session, since=first, until=last) if shop is None else []
    except (journal.InvalidPeriod, journal.UnknownTimezone, CurrencyMismatch) as error:
        fail(str(error))
    entries = sorted(paid + remitted, key=lambda entry: entry.date)
    try:
        if out is None:
            rows = journal.write_csv(entries, accounts, sys.stdout)
        else:
            buffer = io.StringIO(newline="")
            rows = journal.write_csv(entries, accounts, buffer)
            out.write_text(buffer.getvalue(), encoding="utf-8", newline="")
    except UnbalancedEntry as error:
        fail(f"{error}; nothing was written")
    except OSError as error:
        fail(f"cannot write {out}: {error.strerror}")
    where = f" to {out}" if out is not None else ""
    errors.print(
        f"{len(entries)} journal entries ({len(paid)} payouts, {len(remitted)} COD remittances), {rows} lines{where}; "
        f"each entry balanced" + (f": {_totals(entries)}" if entries else ""),
        highlight=False,
    )  # fmt: skip


@journal_app.command("accounts")
def journal_accounts() -> None:
    """The chart of accounts journals post to: each role's account code and name, and whether it was changed."""
    from rich.table import Table

    from shopbridge.cli import acting, console, ready_hub
    from shopbridge.domain.journal import DEFAULT_CHART
    from shopbridge.services import journal
    from shopbridge.services.access import READERS

    built = ready_hub()
    acting(built, READERS)
    with built.sessions() as session:
        accounts = journal.chart(session)
    table = Table("code", "name", "role", "", title="chart of accounts")
    for role, account in sorted(accounts.items(), key=lambda item: (item[1].code, item[0].value)):
        table.add_row(account.code, account.name, role.value, "" if account == DEFAULT_CHART[role] else "changed")
    console.print(table)


@journal_app.command("account")
def journal_account(
    role: Annotated[str, typer.Argument(help="The role, e.g. sales, referral_fee, bank (see `accounts`).")],
    code: Annotated[str | None, typer.Option(help="The account code in your books, e.g. 4000.")] = None,
    name: Annotated[str | None, typer.Option(help="The account's name in your books.")] = None,
) -> None:
    """Post a role to another account of your books from now on (owner or finance; audited)."""
    from shopbridge.cli import acting, console, fail, ready_hub
    from shopbridge.domain.journal import UnknownAccountRole, account_role
    from shopbridge.services import journal
    from shopbridge.store.db import transaction

    if code is None and name is None:
        fail("give the account's new --code, its new --name, or both")
    built = ready_hub()
    actor = acting(built, CHART_KEEPERS)
    try:
        with transaction(built.sessions) as session:
            before = journal.chart(session)[account_role(role)]
            after = journal.set_account(session, role, before.code if code is None else code,
                                        before.name if name is None else name, actor=actor,
                                        now=built.clock.now())  # fmt: skip
    except (UnknownAccountRole, journal.InvalidAccount) as error:
        fail(str(error))
    if after == before:
        console.print(f"{role}: already {after.code} {after.name}; nothing changed", highlight=False)
        return
    console.print(f"{role}: {before.code} {before.name} -> {after.code} {after.name}", highlight=False)
