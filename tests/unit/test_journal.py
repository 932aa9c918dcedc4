"""Journal entries for the books: every payout and remittance posts each amount on the side that gives it back,
the bank takes what the payout paid, and debits equal credits to the minor unit, whatever the numbers."""

from __future__ import annotations

import csv
import io
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shopbridge.domain.finance import Breakdown
from shopbridge.domain.journal import (
    CSV_COLUMNS,
    DEFAULT_CHART,
    PAYOUT_COMPONENTS,
    Account,
    AccountRole,
    JournalEntry,
    JournalLine,
    UnbalancedEntry,
    UnknownAccountRole,
    account_role,
    chart_with,
    check_balanced,
    cod_remittance_entry,
    csv_rows,
    payout_entry,
)
from shopbridge.domain.money import Money

DAY = date(2026, 3, 2)
Role = AccountRole


def entry_of(breakdown: Breakdown, **extra: object) -> JournalEntry:
    return payout_entry(breakdown, entry_id="payout-1", date=DAY, reference="P-7001", memo="Tees payout P-7001",
                        **extra)  # type: ignore[arg-type]  # fmt: skip


def sides(entry: JournalEntry) -> dict[AccountRole, tuple[int, int]]:
    """Each role's (debit, credit); a role appears once per entry."""
    out: dict[AccountRole, tuple[int, int]] = {}
    for line in entry.lines:
        assert line.account_role not in out, f"{line.account_role} posted twice"
        out[line.account_role] = (line.debit_minor, line.credit_minor)
    return out


def test_a_payout_posts_sales_as_credit_and_every_charge_as_debit() -> None:
    breakdown = Breakdown("USD", sales=100_00, refunds=-15_00, platform_commission=-2_00, referral_fee=-6_00,
                          transaction_fee=-2_90, affiliate_commission=-10_00, other_fees=-1_10, shipping=-5_00,
                          adjustments=-3_50, reserve=-10_00)  # fmt: skip
    entry = check_balanced(entry_of(breakdown))
    assert sides(entry) == {
        Role.SALES: (0, 100_00),
        Role.REFUNDS: (15_00, 0),
        Role.PLATFORM_COMMISSION: (2_00, 0),
        Role.REFERRAL_FEE: (6_00, 0),
        Role.TRANSACTION_FEE: (2_90, 0),
        Role.AFFILIATE_COMMISSION: (10_00, 0),
        Role.OTHER_FEES: (1_10, 0),
        Role.SHIPPING: (5_00, 0),
        Role.ADJUSTMENTS: (3_50, 0),
        Role.RESERVE: (10_00, 0),  # held back: the channel owes it, a receivable
        Role.BANK: (44_50, 0),  # 100 - 15 - 2 - 6 - 2.90 - 10 - 1.10 - 5 - 3.50 - 10
    }
    assert breakdown.paid == 44_50
    assert (entry.debits, entry.credits, entry.currency) == (100_00, 100_00, "USD")
    assert entry.lines[0].memo == "Tees payout P-7001: sales"
    assert entry.lines[-1].memo == "Tees payout P-7001: paid to the bank"


def test_the_worked_payout_of_the_finance_guide() -> None:
    """docs/finance.md's worked payout: 23.78 settled, 2.38 held back, 21.40 to the bank."""
    breakdown = Breakdown("USD", sales=62_00, refunds=-25_00, referral_fee=-2_52, transaction_fee=-2_20,
                          affiliate_commission=-5_00, shipping=-1_50, adjustments=-2_00, reserve=-2_38)  # fmt: skip
    rows = list(csv_rows([entry_of(breakdown)], DEFAULT_CHART))
    assert [(row["account_name"], row["debit"], row["credit"]) for row in rows] == [
        ("Sales", "", "62.00"),
        ("Sales returns and refunds", "25.00", ""),
        ("Marketplace fees: referral", "2.52", ""),
        ("Marketplace fees: transaction", "2.20", ""),
        ("Affiliate commission", "5.00", ""),
        ("Shipping costs", "1.50", ""),
        ("Marketplace adjustments", "2.00", ""),
        ("TikTok reserve held", "2.38", ""),
        ("Bank", "21.40", ""),
    ]


@pytest.mark.parametrize(
    ("component", "amount", "expected"),
    [
        ("adjustments", 4_25, (0, 4_25)),  # a compensation from the channel
        ("adjustments", -4_25, (4_25, 0)),  # a penalty
        ("reserve", -20_00, (20_00, 0)),  # held back
        ("reserve", 20_00, (0, 20_00)),  # released
        ("unexplained", 37, (0, 37)),
        ("unexplained", -37, (37, 0)),
        ("shipping", 3_00, (0, 3_00)),  # a shipping subsidy
        ("refunds", 2_00, (0, 2_00)),  # a refund reversed
    ],
)  # fmt: skip
def test_each_sign_of_a_component_lands_on_its_side(component: str, amount: int, expected: tuple[int, int]) -> None:
    breakdown = Breakdown("USD", sales=50_00, **{component: amount})
    entry = check_balanced(entry_of(breakdown))
    role = AccountRole(component)
    assert sides(entry)[role] == expected
    assert sides(entry)[Role.BANK] == (50_00 + amount, 0)


def test_the_reserve_says_whether_it_was_held_or_released() -> None:
    held = entry_of(Breakdown("USD", sales=10_00, reserve=-1_00))
    released = entry_of(Breakdown("USD", reserve=5_00))
    assert [line.memo for line in held.lines if line.account_role == Role.RESERVE] == [
        "Tees payout P-7001: reserve held back"
    ]
    assert [line.memo for line in released.lines if line.account_role == Role.RESERVE] == [
        "Tees payout P-7001: reserve released"
    ]
    assert sides(released) == {Role.RESERVE: (0, 5_00), Role.BANK: (5_00, 0)}


def test_unexplained_money_goes_to_suspense_with_the_note_saying_why() -> None:
    entry = entry_of(Breakdown("USD", sales=10_00, unexplained=-12),
                     notes={Role.UNEXPLAINED: "the channel's total differs"})  # fmt: skip
    (suspense,) = [line for line in entry.lines if line.account_role == Role.UNEXPLAINED]
    assert (suspense.debit_minor, suspense.credit_minor) == (12, 0)
    assert suspense.memo == "Tees payout P-7001: not explained by the channel; the channel's total differs"
    rows = list(csv_rows([entry], DEFAULT_CHART))
    assert [(row["account_code"], row["account_name"]) for row in rows if row["debit"] == "0.12"] == [
        ("9999", "Suspense")
    ]


def test_a_negative_payout_credits_the_bank() -> None:
    """A day of refunds and fees only: the channel took money back from the seller's account."""
    breakdown = Breakdown("USD", refunds=-30_00, referral_fee=1_80, shipping=-4_00)
    entry = check_balanced(entry_of(breakdown))
    assert breakdown.paid == -32_20
    assert sides(entry) == {Role.REFUNDS: (30_00, 0), Role.REFERRAL_FEE: (0, 1_80), Role.SHIPPING: (4_00, 0),
                            Role.BANK: (0, 32_20)}  # fmt: skip
    assert entry.lines[-1].memo == "Tees payout P-7001: taken back from the bank"


def test_zero_components_make_no_line() -> None:
    entry = entry_of(Breakdown("USD", sales=10_00, referral_fee=0, reserve=0))
    assert sides(entry) == {Role.SALES: (0, 10_00), Role.BANK: (10_00, 0)}
    nothing = check_balanced(entry_of(Breakdown("USD")))
    assert nothing.lines == () and nothing.balanced


def test_a_payout_held_back_entirely_posts_no_bank_line() -> None:
    entry = check_balanced(entry_of(Breakdown("USD", sales=10_00, reserve=-10_00)))
    assert sides(entry) == {Role.SALES: (0, 10_00), Role.RESERVE: (10_00, 0)}
    assert entry.amount_on(Role.BANK) == 0


def test_yen_has_no_decimals_in_the_csv() -> None:
    entry = check_balanced(entry_of(Breakdown("JPY", sales=15_000, transaction_fee=-435, referral_fee=-1_200)))
    rows = list(csv_rows([entry], DEFAULT_CHART))
    assert [(row["account_code"], row["debit"], row["credit"]) for row in rows] == [
        ("4000", "", "15000"), ("6100", "1200", ""), ("6120", "435", ""), ("1010", "13365", ""),
    ]  # fmt: skip
    assert {row["currency"] for row in rows} == {"JPY"}


def test_kuwaiti_dinars_keep_three_decimals() -> None:
    entry = check_balanced(entry_of(Breakdown("KWD", sales=12_500, referral_fee=-750, reserve=-1_005)))
    rows = list(csv_rows([entry], DEFAULT_CHART))
    assert [(row["account_code"], row["debit"], row["credit"]) for row in rows] == [
        ("4000", "", "12.500"), ("6100", "0.750", ""), ("1200", "1.005", ""), ("1010", "10.745", ""),
    ]  # fmt: skip


def test_a_payout_exchanged_before_the_bank_stays_in_its_settlement_currency() -> None:
    breakdown = Breakdown("USD", sales=1000_00, referral_fee=-60_00)
    entry = check_balanced(entry_of(breakdown, bank_amount=Money.parse("868.42", "EUR")))
    assert entry.currency == "USD"
    assert sides(entry)[Role.BANK] == (940_00, 0), "the bank line is the settlement's amount, not the euros"
    assert entry.lines[-1].memo == ("Tees payout P-7001: paid to the bank; reached the bank as 868.42 EUR after "
                                    "exchange; this entry stays in the settlement currency USD")  # fmt: skip
    assert {row["currency"] for row in csv_rows([entry], DEFAULT_CHART)} == {"USD"}
    same = entry_of(breakdown, bank_amount=Money.parse("940.00", "USD"))
    assert same.lines[-1].memo == "Tees payout P-7001: paid to the bank"


def test_a_cod_remittance_debits_bank_and_fees_and_credits_the_receivable() -> None:
    entry = check_balanced(cod_remittance_entry(250_000, 7_500, 242_500, currency="PHP", entry_id="cod-3",
                                                date=DAY, reference="jnt-0302.csv", memo="JNT COD"))  # fmt: skip
    assert sides(entry) == {Role.BANK: (242_500, 0), Role.COURIER_FEES: (7_500, 0),
                            Role.COD_RECEIVABLE: (0, 250_000)}  # fmt: skip
    assert [line.memo for line in entry.lines] == [
        "JNT COD: cash remitted by the courier", "JNT COD: courier's COD fee", "JNT COD: cash collected on delivery",
    ]  # fmt: skip


@pytest.mark.parametrize(("remitted", "suspense"), [(240_000, (2_500, 0)), (243_000, (0, 500))])
def test_a_remittance_that_does_not_add_up_puts_the_gap_in_suspense(remitted: int, suspense: tuple[int, int]) -> None:
    entry = check_balanced(cod_remittance_entry(250_000, 7_500, remitted, currency="PHP", entry_id="cod-3", date=DAY,
                                                reference="jnt.csv", note="its total says otherwise"))  # fmt: skip
    assert sides(entry)[Role.UNEXPLAINED] == suspense
    assert sides(entry)[Role.BANK] == (remitted, 0)
    assert entry.lines[-1].memo == "collected less fee differs from what was remitted; its total says otherwise"


def test_an_unbalanced_entry_is_refused_naming_it_and_both_totals() -> None:
    lopsided = JournalEntry("payout-9", DAY, "USD", "P-9", (JournalLine(Role.BANK, 10_01, 0, ""),
                                                           JournalLine(Role.SALES, 0, 10_00, "")))  # fmt: skip
    with pytest.raises(UnbalancedEntry, match=r"payout-9 does not balance: debits 10\.01 USD, credits 10\.00 USD"):
        check_balanced(lopsided)
    rows = csv_rows([entry_of(Breakdown("USD", sales=1)), lopsided], DEFAULT_CHART)
    assert len([next(rows), next(rows)]) == 2, "the balanced entry's two lines"
    with pytest.raises(UnbalancedEntry):
        next(rows)


@pytest.mark.parametrize(("debit", "credit"), [(0, 0), (1, 1), (-1, 0), (0, -5)])
def test_a_line_is_one_side_of_a_positive_amount(debit: int, credit: int) -> None:
    with pytest.raises(ValueError, match="journal line"):
        JournalLine(Role.BANK, debit, credit, "")


def test_an_entry_needs_a_currency_code() -> None:
    with pytest.raises(ValueError, match="ISO 4217"):
        JournalEntry("payout-1", DAY, "usd", "P", ())


# --- every breakdown, whatever its numbers ----------------------------------------------------------------------

BIG = 10**15  # minor units: far beyond any payout, well within a BIGINT and the default Decimal precision
amounts = st.one_of(st.just(0), st.integers(-BIG, -1), st.integers(1, BIG), st.integers(-200, 200))


@st.composite
def breakdowns(draw: st.DrawFn) -> Breakdown:
    currency = draw(st.sampled_from(["USD", "JPY", "KWD", "IDR", "GBP", "VND", "BHD"]))
    return Breakdown(currency, **{role.value: draw(amounts) for role, _ in PAYOUT_COMPONENTS})


@given(breakdowns())
def test_every_payout_entry_balances_and_the_bank_takes_what_was_paid(breakdown: Breakdown) -> None:
    entry = check_balanced(entry_of(breakdown))
    assert entry.debits == entry.credits
    assert entry.amount_on(Role.BANK) == breakdown.paid
    for role, _ in PAYOUT_COMPONENTS:
        assert entry.amount_on(role) == -getattr(breakdown, role.value), "income credited, charges debited"
    assert all((line.debit_minor > 0) != (line.credit_minor > 0) for line in entry.lines)
    rows = list(csv_rows([entry], DEFAULT_CHART))
    debits = sum((Money.parse(row["debit"], entry.currency).to_minor() for row in rows if row["debit"]), 0)
    credits = sum((Money.parse(row["credit"], entry.currency).to_minor() for row in rows if row["credit"]), 0)
    assert debits == credits == entry.debits, "the CSV balances too, read back at the currency's precision"


@given(st.integers(0, BIG), st.integers(0, BIG), st.integers(0, BIG))
def test_every_remittance_entry_balances(collected: int, fee: int, remitted: int) -> None:
    entry = check_balanced(cod_remittance_entry(collected, fee, remitted, currency="THB", entry_id="cod-1", date=DAY,
                                                reference="f.csv"))  # fmt: skip
    assert entry.amount_on(Role.BANK) == remitted
    assert entry.amount_on(Role.COD_RECEIVABLE) == -collected


# --- CSV and the chart ------------------------------------------------------------------------------------------


def test_the_csv_has_the_columns_an_accounting_import_maps() -> None:
    entry = entry_of(Breakdown("USD", sales=1234_56, referral_fee=-74_07))
    stream = io.StringIO()
    writer = csv.DictWriter(stream, fieldnames=CSV_COLUMNS)
    writer.writeheader()
    writer.writerows(csv_rows([entry], DEFAULT_CHART))
    assert stream.getvalue().splitlines() == [
        "entry_id,date,currency,account_code,account_name,debit,credit,memo,reference",
        "payout-1,2026-03-02,USD,4000,Sales,,1234.56,Tees payout P-7001: sales,P-7001",
        "payout-1,2026-03-02,USD,6100,Marketplace fees: referral,74.07,,Tees payout P-7001: referral fees,P-7001",
        "payout-1,2026-03-02,USD,1010,Bank,1160.49,,Tees payout P-7001: paid to the bank,P-7001",
    ]


def test_small_amounts_keep_their_leading_zero_and_whole_ones_their_decimals() -> None:
    rows = list(csv_rows([entry_of(Breakdown("USD", sales=5, referral_fee=-100))], DEFAULT_CHART))
    assert [(row["debit"], row["credit"]) for row in rows] == [("", "0.05"), ("1.00", ""), ("", "0.95")]


def test_a_text_cell_never_starts_a_spreadsheet_formula() -> None:
    entry = payout_entry(Breakdown("USD", sales=1), entry_id="payout-1", date=DAY, reference="=HYPERLINK(1)",
                         memo="@shop")  # fmt: skip
    chart = chart_with({Role.SALES: Account("+4000", "-Sales")})
    (sales, _bank) = csv_rows([entry], chart)
    assert (sales["account_code"], sales["account_name"], sales["memo"], sales["reference"]) == (
        "'+4000", "'-Sales", "'@shop: sales", "'=HYPERLINK(1)"
    )  # fmt: skip


def test_the_merchants_chart_overrides_the_defaults() -> None:
    chart = chart_with({Role.SALES: Account("41000", "TikTok Shop sales"), Role.BANK: Account("1020", "Wise USD")})
    assert chart[Role.SALES] == Account("41000", "TikTok Shop sales")
    assert chart[Role.REFERRAL_FEE] == DEFAULT_CHART[Role.REFERRAL_FEE]
    assert set(chart) == set(AccountRole)
    rows = list(csv_rows([entry_of(Breakdown("USD", sales=10_00, referral_fee=-60))], chart))
    assert [(row["account_code"], row["account_name"]) for row in rows] == [
        ("41000", "TikTok Shop sales"), ("6100", "Marketplace fees: referral"), ("1020", "Wise USD"),
    ]  # fmt: skip


def test_the_default_chart_has_an_account_for_every_role() -> None:
    assert set(DEFAULT_CHART) == set(AccountRole)
    assert DEFAULT_CHART[Role.SALES] == Account("4000", "Sales")
    assert DEFAULT_CHART[Role.UNEXPLAINED] == Account("9999", "Suspense")
    assert {role.value for role, _ in PAYOUT_COMPONENTS} <= set(Breakdown.__dataclass_fields__)


def test_an_unknown_role_is_refused_naming_the_roles() -> None:
    refusal = r"no account role 'fees'; the roles are: sales, refunds, .*, courier_fees$"
    with pytest.raises(UnknownAccountRole, match=refusal):
        account_role("fees")
    assert account_role("referral_fee") is Role.REFERRAL_FEE
