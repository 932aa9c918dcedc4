"""Journal export against a real database: a TikTok payout's imported statement becomes the entry an accountant
would write by hand, dated in the shop's timezone; a courier's remittance file becomes one entry; the chart of
accounts is changed by the owner or finance only, audited, and the export follows it."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import typer
from sqlalchemy import select
from typer.testing import CliRunner

from shopbridge import cli
from shopbridge.bootstrap import Hub
from shopbridge.cli_journal import journal_app
from shopbridge.config import Settings
from shopbridge.domain.journal import AccountRole, UnknownAccountRole
from shopbridge.services import journal
from shopbridge.services.access import add_user
from shopbridge.store.db import transaction
from shopbridge.store.tables import (
    AuditEntry,
    ChannelAccount,
    CodRemittance,
    CodRemittanceFile,
    Courier,
    FinancePayment,
    FinanceStatement,
    FinanceTransaction,
)

runner = CliRunner()
HEADER = ["entry_id", "date", "currency", "account_code", "account_name", "debit", "credit", "memo", "reference"]
PAID_AT = datetime(2026, 3, 2, 20, 15, tzinfo=UTC)  # 3 March, 03:15 in Jakarta


def shopbridge() -> typer.Typer:
    """The command line as the lead mounts it (``shopbridge --as EMAIL finance journal ...``), in short."""
    root = typer.Typer()
    root.callback()(cli.root)
    root.add_typer(journal_app, name="journal")
    return root


def tx(account_id: int, statement_id: int, external_id: str, kind: str = "ORDER", *, revenue: int = 0,
       referral: int = 0, transaction: int = 0, affiliate: int = 0, other: int = 0, shipping: int = 0,
       refund: int = 0, adjustment: int = 0, reserve: int = 0) -> FinanceTransaction:  # fmt: skip
    """A statement transaction as the TikTok import stores it: ``fee`` is every fee, the named ones included."""
    fee = referral + transaction + affiliate + other
    settlement = reserve if kind == "RESERVE" else revenue + fee + shipping + adjustment
    return FinanceTransaction(
        channel_account_id=account_id, statement_id=statement_id, external_id=external_id, type=kind,
        external_order_id="5770001" if kind == "ORDER" else None, currency="USD", revenue_minor=revenue,
        platform_commission_minor=0, referral_fee_minor=referral, transaction_fee_minor=transaction,
        affiliate_commission_minor=affiliate, fee_minor=fee, shipping_cost_minor=shipping, refund_minor=refund,
        adjustment_minor=adjustment, reserve_minor=reserve, settlement_minor=settlement, settled_at=PAID_AT,
    )  # fmt: skip


@pytest.fixture
def books(env: Settings, hub: Hub) -> int:
    """A TikTok shop in Jakarta with one payout (a sale, its partial refund, a penalty, a reserve held back), a
    payout whose statements are not imported yet (paid in rupiah), and a courier's remittance file of two lines.
    Returns the shop's channel account id."""
    with transaction(hub.sessions) as session:
        shop = ChannelAccount(channel="tiktok", label="Tees ID", external_id="7495", currency="USD",
                              timezone="Asia/Jakarta")  # fmt: skip
        session.add(shop)
        session.flush()
        statement = FinanceStatement(
            channel_account_id=shop.id, external_id="S-1", statement_time=datetime(2026, 3, 1, tzinfo=UTC),
            payment_status="PAID", currency="USD", settlement_minor=57_40, revenue_minor=85_00, fee_minor=-19_10,
            adjustment_minor=-3_50, shipping_cost_minor=-5_00, net_sales_minor=85_00, payment_external_id="P-7001",
            paid_at=PAID_AT, transaction_count=4,
        )  # fmt: skip
        session.add(statement)
        session.flush()
        session.add_all([
            tx(shop.id, statement.id, "T-1", revenue=100_00, referral=-6_00, transaction=-2_90, affiliate=-10_00,
               other=-1_10, shipping=-5_00),
            tx(shop.id, statement.id, "T-2", revenue=-15_00, referral=90, refund=-15_00),
            tx(shop.id, statement.id, "T-3", "PLATFORM_PENALTY", adjustment=-3_50),
            tx(shop.id, statement.id, "T-4", "RESERVE", reserve=-10_00),
            FinancePayment(channel_account_id=shop.id, external_id="P-7001", status="PAID", amount_minor=47_40,
                           currency="USD", settlement_minor=57_40, settlement_currency="USD", reserve_minor=-10_00,
                           created_at=datetime(2026, 3, 2, 1, 0, tzinfo=UTC), paid_at=PAID_AT,
                           bank_account="****1234"),
            FinancePayment(channel_account_id=shop.id, external_id="P-7002", status="PAID", amount_minor=190_000_00,
                           currency="IDR", settlement_minor=12_00, settlement_currency="USD",
                           created_at=datetime(2026, 3, 4, 1, 0, tzinfo=UTC),
                           paid_at=datetime(2026, 3, 5, 2, 0, tzinfo=UTC)),
        ])  # fmt: skip
        courier = Courier(code="JNT", name="J&T Express", currency="PHP", columns={})
        session.add(courier)
        session.flush()
        remittance = CodRemittanceFile(courier_id=courier.id, filename="jnt-0303.csv", sha256="a" * 64, rows=2,
                                       currency="PHP", total_minor=2415_30, imported_at=PAID_AT,
                                       imported_by="finance@example.com")  # fmt: skip
        session.add(remittance)
        session.flush()
        session.add_all([
            CodRemittance(courier_id=courier.id, file_id=remittance.id, reference="JT-1", currency="PHP",
                          collected_minor=1500_00, fee_minor=45_00, remitted_minor=1455_00,
                          remitted_on=date(2026, 3, 2)),
            CodRemittance(courier_id=courier.id, file_id=remittance.id, reference="JT-2", currency="PHP",
                          collected_minor=990_00, fee_minor=29_70, remitted_minor=960_30,
                          remitted_on=date(2026, 3, 3)),
        ])  # fmt: skip
        for email, role in (("finance@example.com", "finance"), ("viewer@example.com", "viewer"),
                            ("ops@example.com", "ops")):  # fmt: skip
            add_user(session, email, role, now=hub.clock.now())
        return shop.id


def export(*arguments: str) -> tuple[list[list[str]], str]:
    result = runner.invoke(shopbridge(), ["journal", "export", *arguments])
    assert result.exit_code == 0, result.output + result.stderr
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == HEADER
    return rows[1:], result.stderr


def payout_id(hub: Hub, external_id: str) -> int:
    with hub.sessions() as session:
        found = session.scalar(select(FinancePayment.id).where(FinancePayment.external_id == external_id))
        assert found is not None
        return found


def test_a_payout_exports_as_the_entry_an_accountant_writes(books: int, hub: Hub) -> None:
    rows, said = export("--since", "2026-03-03", "--until", "2026-03-03", "--shop", str(books))
    entry = f"payout-{payout_id(hub, 'P-7001')}"
    memo = "Tees ID payout P-7001: "

    def row(code: str, name: str, debit: str, credit: str, words: str) -> list[str]:
        return [entry, "2026-03-03", "USD", code, name, debit, credit, memo + words, "P-7001"]

    # Sales 100.00 credited; refund 15.00, fees (referral 6.00 less 0.90 given back, payment 2.90, affiliate 10.00,
    # other 1.10), shipping 5.00, the penalty 3.50 and the reserve 10.00 debited; the bank takes the rest: 47.40.
    assert rows == [
        row("4000", "Sales", "", "100.00", "sales"),
        row("4010", "Sales returns and refunds", "15.00", "", "refunds"),
        row("6100", "Marketplace fees: referral", "5.10", "", "referral fees"),
        row("6120", "Marketplace fees: transaction", "2.90", "", "transaction fees"),
        row("6130", "Affiliate commission", "10.00", "", "affiliate commission"),
        row("6140", "Marketplace fees: other", "1.10", "", "other fees"),
        row("6150", "Shipping costs", "5.00", "", "shipping"),
        row("6190", "Marketplace adjustments", "3.50", "", "adjustments"),
        row("1200", "TikTok reserve held", "10.00", "", "reserve held back"),
        row("1010", "Bank", "47.40", "", "paid to the bank; account ****1234"),
    ]
    assert said.strip() == ("1 journal entries (1 payouts, 0 COD remittances), 10 lines; each entry balanced: "
                            "debits 100.00 USD = credits 100.00 USD")  # fmt: skip
    earlier, _ = export("--since", "2026-03-02", "--until", "2026-03-02")
    assert not [r for r in earlier if r[0] == entry], "paid on 2 March in UTC, but 3 March in Jakarta"


def test_a_payout_not_fully_imported_and_paid_in_another_currency(books: int, hub: Hub) -> None:
    """P-7002: no statement imported yet, settled in dollars, paid in rupiah. The bank line is the channel's
    settlement in dollars with the rupiah in words; the money nobody has explained yet waits in suspense."""
    with hub.sessions() as session:
        (entry,) = journal.payout_entries(session, since=date(2026, 3, 5), until=date(2026, 3, 5), account_id=books)
    assert (entry.entry_id, entry.date, entry.currency) == (f"payout-{payout_id(hub, 'P-7002')}", date(2026, 3, 5),
                                                             "USD")  # fmt: skip
    assert [(line.account_role, line.debit_minor, line.credit_minor) for line in entry.lines] == [
        (AccountRole.UNEXPLAINED, 0, 12_00), (AccountRole.BANK, 12_00, 0),
    ]  # fmt: skip
    assert "the channel's total differs from its transactions by 12.00 USD" in entry.lines[0].memo
    assert "reached the bank as 190000.00 IDR after exchange" in entry.lines[1].memo


def test_a_cod_remittance_file_exports_as_one_entry(books: int, hub: Hub) -> None:
    rows, said = export("--since", "2026-03-03", "--until", "2026-03-03")
    with hub.sessions() as session:
        file_id = session.scalar(select(CodRemittanceFile.id))
    memo = "JNT COD remittance jnt-0303.csv: "
    cod = [r for r in rows if r[0] == f"cod-{file_id}"]
    assert cod == [
        [f"cod-{file_id}", "2026-03-03", "PHP", "1010", "Bank", "2415.30", "", memo + "cash remitted by the courier",
         "jnt-0303.csv"],
        [f"cod-{file_id}", "2026-03-03", "PHP", "6200", "Courier COD fees", "74.70", "", memo + "courier's COD fee",
         "jnt-0303.csv"],
        [f"cod-{file_id}", "2026-03-03", "PHP", "1150", "COD receivable", "", "2490.00",
         memo + "cash collected on delivery", "jnt-0303.csv"],
    ]  # fmt: skip
    assert "2 journal entries (1 payouts, 1 COD remittances), 13 lines" in said
    assert "debits 2490.00 PHP = credits 2490.00 PHP; debits 100.00 USD = credits 100.00 USD" in said
    with hub.sessions() as session:
        assert journal.remittance_entries(session, since=date(2026, 3, 2), until=date(2026, 3, 2)) == [], (
            "dated by its latest line"
        )


def test_a_file_total_that_disagrees_with_its_lines_leaves_the_gap_in_suspense(books: int, hub: Hub) -> None:
    with transaction(hub.sessions) as session:
        session.scalars(select(CodRemittanceFile)).one().total_minor = 2400_00
    with hub.sessions() as session:
        (entry,) = journal.remittance_entries(session, since=date(2026, 3, 1), until=date(2026, 3, 31))
    assert entry.balanced and entry.amount_on(AccountRole.BANK) == 2400_00
    assert entry.amount_on(AccountRole.UNEXPLAINED) == 15_30
    assert entry.lines[-1].memo.endswith("its lines remit 2415.30 PHP, its total says 2400.00 PHP")


def test_the_export_writes_a_file_with_out(books: int, tmp_path: Path) -> None:
    path = tmp_path / "march.csv"
    result = runner.invoke(shopbridge(), ["journal", "export", "--since", "2026-03-01", "--until", "2026-03-31",
                                          "--out", str(path)])  # fmt: skip
    assert result.exit_code == 0, result.output + result.stderr
    assert result.stdout == ""
    rows = list(csv.reader(path.open(newline="", encoding="utf-8")))
    assert rows[0] == HEADER and len(rows) == 1 + 10 + 2 + 3
    assert f"3 journal entries (2 payouts, 1 COD remittances), 15 lines to {path}" in result.stderr


def test_the_export_refuses_a_period_backwards_and_an_unknown_shop(books: int) -> None:
    backwards = runner.invoke(shopbridge(), ["journal", "export", "--since", "2026-03-31", "--until", "2026-03-01"])
    assert backwards.exit_code == 2
    assert "error: the period ends (2026-03-01) before it starts (2026-03-31)" in backwards.stderr
    unknown = runner.invoke(shopbridge(), ["journal", "export", "--since", "2026-03-01", "--until", "2026-03-31",
                                           "--shop", "999"])  # fmt: skip
    assert unknown.exit_code == 2 and "channel account 999 is not known to the hub" in unknown.stderr


def test_changing_an_account_changes_the_export_and_is_audited(books: int, hub: Hub) -> None:
    changed = runner.invoke(shopbridge(), ["--as", "finance@example.com", "journal", "account", "sales", "--code",
                                           "41000", "--name", "TikTok Shop sales"])  # fmt: skip
    assert changed.exit_code == 0, changed.output + changed.stderr
    assert "sales: 4000 Sales -> 41000 TikTok Shop sales" in changed.stdout
    renamed = runner.invoke(shopbridge(), ["journal", "account", "bank", "--name", "Wise USD"])
    assert renamed.exit_code == 0 and "bank: 1010 Bank -> 1010 Wise USD" in renamed.stdout
    rows, _ = export("--since", "2026-03-03", "--until", "2026-03-03", "--shop", str(books))
    assert rows[0][3:5] == ["41000", "TikTok Shop sales"] and rows[-1][3:5] == ["1010", "Wise USD"]
    with hub.sessions() as session:
        audited = session.scalars(select(AuditEntry).where(AuditEntry.action == "ledger_account.set")
                                  .order_by(AuditEntry.id)).all()  # fmt: skip
    assert [(a.actor, a.subject_type, a.subject_id, a.before, a.after) for a in audited] == [
        ("finance@example.com", "ledger_account", "sales", {"code": "4000", "name": "Sales"},
         {"code": "41000", "name": "TikTok Shop sales"}),
        (audited[1].actor, "ledger_account", "bank", {"code": "1010", "name": "Bank"},
         {"code": "1010", "name": "Wise USD"}),
    ]  # fmt: skip
    assert audited[1].actor.startswith("cli:")
    again = runner.invoke(shopbridge(), ["journal", "account", "bank", "--name", "Wise USD"])
    assert again.exit_code == 0 and "already 1010 Wise USD; nothing changed" in again.stdout
    listed = runner.invoke(shopbridge(), ["--as", "viewer@example.com", "journal", "accounts"])
    assert listed.exit_code == 0, listed.output + listed.stderr
    assert "41000" in listed.stdout and "TikTok Shop sales" in listed.stdout and "changed" in listed.stdout


@pytest.mark.parametrize("email", ["viewer@example.com", "ops@example.com"])
def test_only_the_owner_or_finance_changes_the_chart(books: int, hub: Hub, email: str) -> None:
    refused = runner.invoke(shopbridge(), ["--as", email, "journal", "account", "sales", "--code", "1"])
    assert refused.exit_code == 2
    role = email.split("@")[0]
    assert f"{email} is {role}: this change needs one of: owner, finance" in refused.stderr
    with hub.sessions() as session:
        assert journal.chart(session)[AccountRole.SALES].code == "4000"
        assert session.scalars(select(AuditEntry).where(AuditEntry.action == "ledger_account.set")).all() == []


def test_an_unknown_role_is_refused_naming_the_roles(books: int, hub: Hub) -> None:
    refused = runner.invoke(shopbridge(), ["journal", "account", "fees", "--code", "6000"])
    assert refused.exit_code == 2
    assert "no account role 'fees'; the roles are: sales, refunds," in refused.stderr
    with transaction(hub.sessions) as session, pytest.raises(UnknownAccountRole):
        journal.set_account(session, "fees", "6000", "Fees", actor="test", now=hub.clock.now())
    with transaction(hub.sessions) as session, pytest.raises(journal.InvalidAccount):
        journal.set_account(session, "sales", " ", "Sales", actor="test", now=hub.clock.now())
