"""The finance page as finance uses it: the daily check of a shop in Jakarta, what couriers owe for cash on delivery,
the reconciliation exceptions (acknowledged with a note, audited; an empty note refused), the newest payouts and a
payout's page broken down by statement and by order. Owner and finance read it; every other role is refused.

The hub's clock reads 1 January 2026, 00:00 UTC, so the page opens on 31 December 2025 (yesterday in the hub's
timezone, UTC); the shop's own 31 December runs from 17:00 UTC on the 30th."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from shopbridge.bootstrap import Hub
from shopbridge.store.db import transaction
from shopbridge.store.tables import (
    AuditEntry,
    ChannelAccount,
    FinanceException,
    FinancePayment,
    FinanceStatement,
    FinanceTransaction,
    Order,
    OrderStatusChange,
)
from shopbridge.web.app import create_app
from tests.integration.dashboard_world import add_people, audit_count, sign_in

ACKNOWLEDGED = "finance.exception_acknowledged"


def at(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2025, month, day, hour, minute, tzinfo=UTC)


@dataclass(frozen=True)
class Books:
    shop: int
    order: int
    payout: int
    short_payout: int
    large: int  # the exception with the most at stake
    small: int


def add_order(session: Session, shop: int, number: str, *changes: tuple[str, datetime], cod: bool = False,
              total: int = 100_00) -> int:  # fmt: skip
    status = changes[-1][0]
    order = Order(channel_account_id=shop, external_id=number, channel_status=status.upper(), status=status,
                  currency="USD", total_minor=total, subtotal_minor=total, is_cod=cod,
                  channel_created_at=changes[0][1], channel_updated_at=changes[-1][1])  # fmt: skip
    session.add(order)
    session.flush()
    session.add_all([OrderStatusChange(order_id=order.id, channel_status=state.upper(), status=state,
                                       source="webhook", occurred_at=moment) for state, moment in changes])  # fmt: skip
    return order.id


def line(shop: int, statement: FinanceStatement, external_id: str, order: str | None, kind: str = "ORDER", *,
         revenue: int = 0, referral: int = 0, transaction: int = 0, shipping: int = 0, adjustment: int = 0,
         reserve: int = 0, order_id: int | None = None) -> FinanceTransaction:  # fmt: skip
    fee = referral + transaction
    settlement = reserve if kind == "RESERVE" else revenue + fee + shipping + adjustment
    return FinanceTransaction(
        channel_account_id=shop, statement_id=statement.id, external_id=external_id, type=kind,
        external_order_id=order, order_id=order_id, currency="USD", revenue_minor=revenue,
        platform_commission_minor=0, referral_fee_minor=referral, transaction_fee_minor=transaction,
        affiliate_commission_minor=0, fee_minor=fee, shipping_cost_minor=shipping, refund_minor=0,
        adjustment_minor=adjustment, reserve_minor=reserve, settlement_minor=settlement,
        settled_at=statement.statement_time,
    )  # fmt: skip


@pytest.fixture
def books(hub: Hub) -> Books:
    """A TikTok shop in Jakarta paid in USD: an order paid on the 31st (local), a COD order delivered that day that no
    courier has remitted, a payout of two statements (two orders, one the hub does not have, a penalty, a reserve
    held back) paid that day, a payout whose statements are not imported, and two open exceptions."""
    add_people(hub)
    with transaction(hub.sessions) as session:
        shop = ChannelAccount(channel="tiktok", label="Tees ID", external_id="7495", currency="USD",
                              timezone="Asia/Jakarta")  # fmt: skip
        session.add(shop)
        session.flush()
        order = add_order(session, shop.id, "5770001", ("unpaid", at(12, 31, 1)),
                          ("awaiting_shipment", at(12, 31, 1, 5)))  # fmt: skip
        add_order(session, shop.id, "5770100", ("awaiting_shipment", at(12, 29, 3)), ("in_transit", at(12, 30, 8)),
                  ("delivered", at(12, 31, 5)), cod=True, total=45_00)  # fmt: skip
        first, second = (
            FinanceStatement(channel_account_id=shop.id, external_id=external_id, statement_time=moment,
                             payment_status="PAID", currency="USD", settlement_minor=0, revenue_minor=0, fee_minor=0,
                             adjustment_minor=0, shipping_cost_minor=0, net_sales_minor=0,
                             payment_external_id="P-1")
            for external_id, moment in (("S-1", at(12, 30, 0)), ("S-2", at(12, 31, 0)))
        )  # fmt: skip
        session.add_all([first, second])
        session.flush()
        session.add_all([
            line(shop.id, first, "T-1", "5770001", revenue=100_00, referral=-6_00, transaction=-2_90,
                 shipping=-5_00, order_id=order),
            line(shop.id, first, "T-2", "5770002", revenue=50_00, referral=-3_00),
            line(shop.id, first, "T-3", None, "PLATFORM_PENALTY", adjustment=-3_50),
            line(shop.id, first, "T-4", None, "RESERVE", reserve=-10_00),
            line(shop.id, second, "T-5", "5770003", revenue=20_00, transaction=-60),
        ])  # fmt: skip
        payout = FinancePayment(channel_account_id=shop.id, external_id="P-1", status="PAID", amount_minor=139_00,
                                currency="USD", settlement_minor=149_00, settlement_currency="USD",
                                reserve_minor=-10_00, created_at=at(12, 31, 2), paid_at=at(12, 31, 10),
                                bank_account="****1234")  # fmt: skip
        short = FinancePayment(channel_account_id=shop.id, external_id="P-2", status="PROCESSING", amount_minor=10_00,
                               currency="USD", created_at=at(12, 31, 3))  # fmt: skip
        large = FinanceException(channel_account_id=shop.id, kind="amount_difference", subject="order:5770001",
                                 order_id=order, external_order_id="5770001", currency="USD", amount_minor=50_00,
                                 expected_minor=136_10, actual_minor=86_10,
                                 detail="settled <b>86.10 USD</b>, the order implies 136.10 USD",
                                 found_at=at(12, 31, 12), last_found_at=at(12, 31, 12))  # fmt: skip
        small = FinanceException(channel_account_id=shop.id, kind="missing_settlement", subject="order:5770009",
                                 external_order_id="5770009", currency="USD", amount_minor=7_00,
                                 detail="delivered, not settled", found_at=at(12, 31, 12),
                                 last_found_at=at(12, 31, 12))  # fmt: skip
        session.add_all([payout, short, large, small])
        session.flush()
        return Books(shop.id, order, payout.id, short.id, large.id, small.id)


@pytest.fixture
def client(hub: Hub) -> TestClient:
    return TestClient(create_app(hub))


def row_of(page: str, marker: str) -> str:
    """The table row holding ``marker``."""
    for row in re.findall(r"<tr[ >].*?</tr>", page, flags=re.S):
        if marker in row:
            return str(row)
    raise AssertionError(f"no row holds {marker!r}")


def exception(hub: Hub, exception_id: int) -> FinanceException:
    with hub.sessions() as session:
        found = session.get(FinanceException, exception_id)
        assert found is not None
        return found


@pytest.mark.parametrize("role", ["finance", "owner"])
def test_finance_and_the_owner_read_the_day_the_exceptions_and_the_payouts(
    client: TestClient, books: Books, role: str
) -> None:
    sign_in(client, role)
    assert '<a href="/finance" >Finance</a>' in client.get("/").text, "the nav offers the page"
    response = client.get("/finance")
    assert response.status_code == 200
    page = response.text
    assert "<title>Finance · shopbridge</title>" in page and 'href="/finance" aria-current="page">Finance' in page
    assert '<h2 id="daily">Daily check, 2025-12-31</h2>' in page, "yesterday in the hub's timezone"

    assert "Tees ID" in row_of(page, "Figure") and "Asia/Jakarta" in row_of(page, "Figure")
    assert '<td class="num">1</td>' in row_of(page, "Orders placed</th>")
    assert '<td class="num">1</td>' in row_of(page, "Paid</th>")
    assert '<td class="num">0</td>' in row_of(page, "Shipped</th>")
    assert '<td class="num">1</td>' in row_of(page, "Paid, not shipped at the end</th>")
    assert "0 <small>(0.00 %)</small>" in row_of(page, "Cancelled <small>")
    assert "0 <small>(\N{EM DASH})</small>" not in row_of(page, "Refunded <small>"), "one delivery that day"
    assert "0 <small>(0.00 %)</small>" in row_of(page, "Refunded <small>")
    assert "45.00 USD <small>(1 delivered)</small>" in row_of(page, "COD expected</th>")
    assert '<td class="num">0.00 USD</td>' in row_of(page, "COD settled</th>"), "nothing settled yet"
    assert "1<br>139.00 USD" in row_of(page, "Payouts received</th>")
    assert "2<br>57.00 USD at stake" in row_of(page, "Open exceptions</th>")

    owed = row_of(page, "unassigned")
    assert "45.00 USD" in owed and "<small>1 order</small>" in owed and "1 d" in owed, "nobody has remitted it"
    assert "<strong>45.00 USD</strong>" in row_of(page, "All couriers, USD")

    assert page.index('id="exception-' + str(books.large)) < page.index('id="exception-' + str(books.small))
    large = row_of(page, f'id="exception-{books.large}"')
    assert "<strong>50.00 USD</strong>" in large and "amount difference" in large
    assert "settled &lt;b&gt;86.10 USD&lt;/b&gt;" in large and "<b>" not in large, "the detail is escaped"
    assert "expected 136.10 USD, got 86.10 USD" in large and f'<a href="/orders/{books.order}">5770001</a>' in large
    assert f'action="/finance/exceptions/{books.large}/acknowledge"' in large and 'name="note"' in large
    assert "5770009" in row_of(page, f'id="exception-{books.small}"')
    assert "amount difference: 1, 50.00 USD" in page

    paid = row_of(page, f'href="/finance/payouts/{books.payout}"')
    assert ">P-1</a>" in paid and "3 orders" in paid and "<strong>139.00 USD</strong>" in paid
    assert '<td class="num">170.00 USD</td>' in paid and '<td class="num">-12.50 USD</td>' in paid, "sales; fees"
    assert '<td class="num">-8.50 USD</td>' in paid and '<td class="num">-10.00 USD</td>' in paid, "shipping; reserve"
    assert '<span class="adds-up">yes</span>' in paid
    assert "no, off by 10.00 USD" in row_of(page, f'href="/finance/payouts/{books.short_payout}"')


@pytest.mark.parametrize("role", ["ops", "support", "viewer"])
def test_other_roles_are_neither_offered_nor_shown_the_page(
    client: TestClient, hub: Hub, books: Books, role: str
) -> None:
    csrf = sign_in(client, role)
    assert 'href="/finance"' not in client.get("/").text
    for path in ("/finance", f"/finance/payouts/{books.payout}"):
        refused = client.get(path)
        assert refused.status_code == 403 and "it needs one of: owner, finance" in refused.text
    posted = client.post(f"/finance/exceptions/{books.large}/acknowledge", data={"csrf_token": csrf, "note": "fine"},
                         follow_redirects=False)  # fmt: skip
    assert posted.status_code == 403
    assert exception(hub, books.large).acknowledged_at is None and audit_count(hub, ACKNOWLEDGED) == 0


def test_without_a_session_the_page_asks_to_sign_in(client: TestClient, books: Books) -> None:
    response = client.get("/finance?day=2025-12-31", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/sign-in?next=/finance%3Fday%3D2025-12-31"


def test_finance_acknowledges_an_exception_with_a_note_and_it_is_audited(
    client: TestClient, hub: Hub, books: Books
) -> None:
    csrf = sign_in(client, "finance")
    note = "TikTok's <i>voucher</i>, paid by the platform"
    response = client.post(f"/finance/exceptions/{books.large}/acknowledge",
                           data={"csrf_token": csrf, "note": f"  {note} ", "day": "2025-12-30"},
                           follow_redirects=False)  # fmt: skip
    assert response.status_code == 303
    assert response.headers["location"].startswith("/finance?day=2025-12-30&notice=")
    page = client.get(response.headers["location"]).text
    assert f"exception {books.large} (amount difference, order:5770001) acknowledged" in page
    assert "Daily check, 2025-12-30" in page, "back on the day it was acknowledged from"
    assert f'id="exception-{books.large}"' not in page and f'id="exception-{books.small}"' in page
    assert "(1 acknowledged)" in page

    found = exception(hub, books.large)
    assert (found.acknowledged_by, found.note, found.acknowledged_at) == ("finance@example.com", note, hub.clock.now())
    with hub.sessions() as session:
        [entry] = session.scalars(select(AuditEntry).where(AuditEntry.action == ACKNOWLEDGED))
    assert (entry.actor, entry.subject_type, entry.subject_id) == ("finance@example.com", "finance_exception",
                                                                   str(books.large))  # fmt: skip
    assert entry.after == {"kind": "amount_difference", "subject": "order:5770001", "note": note,
                           "amount_minor": 50_00, "currency": "USD"}  # fmt: skip


def test_an_empty_note_an_unknown_exception_and_a_missing_token_are_refused(
    client: TestClient, hub: Hub, books: Books
) -> None:
    csrf = sign_in(client, "owner")
    url = f"/finance/exceptions/{books.small}/acknowledge"
    response = client.post(url, data={"csrf_token": csrf, "note": "   "}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/finance?error=")
    page = client.get(response.headers["location"]).text
    assert '<p class="error" role="alert">' in page
    assert f"exception {books.small} is not acknowledged: write a note saying why it is fine" in page
    assert f'id="exception-{books.small}"' in page and "Daily check, 2025-12-31" in page

    response = client.post("/finance/exceptions/9999/acknowledge", data={"csrf_token": csrf, "note": "fine"})
    assert "exception 9999 is not acknowledged: finance exception 9999 does not exist" in response.text
    response = client.post(url, data={"csrf_token": csrf, "note": "x" * 2001})
    assert "the note is longer than 2,000 characters" in response.text
    assert client.post(url, data={"note": "fine"}).status_code == 403, "no CSRF token"
    assert exception(hub, books.small).acknowledged_at is None and audit_count(hub, ACKNOWLEDGED) == 0


def test_a_payout_broken_down_by_statement_and_by_order_adds_up(client: TestClient, books: Books) -> None:
    sign_in(client, "finance")
    response = client.get(f"/finance/payouts/{books.payout}")
    assert response.status_code == 200
    page = response.text
    assert "<h1>Payout P-1</h1>" in page and "<strong>139.00 USD</strong> to ****1234" in page
    assert '<span class="adds-up">yes</span>: the channel\'s totals equal the sum of its transactions' in page
    assert "3 orders, 5 transactions" in page
    header = row_of(page, '<th scope="col"></th>')
    assert "2025-12-30<br><small>S-1</small>" in header and "2025-12-31<br><small>S-2</small>" in header
    cells = re.compile(r'<td class="num">(?:<strong>)?([^<]+)')
    expected = {
        "Sales</th>": ["150.00 USD", "20.00 USD", "170.00 USD"],
        "Referral fee</th>": ["-9.00 USD", "0.00 USD", "-9.00 USD"],
        "Transaction fee</th>": ["-2.90 USD", "-0.60 USD", "-3.50 USD"],
        "Shipping</th>": ["-5.00 USD", "0.00 USD", "-5.00 USD"],
        "Adjustments</th>": ["-3.50 USD", "0.00 USD", "-3.50 USD"],
        "Net settlement</th>": ["129.60 USD", "19.40 USD", "149.00 USD"],
        "Reserve</th>": ["-10.00 USD", "0.00 USD", "-10.00 USD"],
        "Paid</th>": ["119.60 USD", "19.40 USD", "139.00 USD"],
    }
    for label, amounts in expected.items():
        assert cells.findall(row_of(page, label)) == amounts, label

    sale = row_of(page, f'<a href="/orders/{books.order}">5770001</a>')
    assert cells.findall(sale) == ["100.00 USD", "0.00 USD", "-8.90 USD", "-5.00 USD", "0.00 USD", "86.10 USD"]
    assert "5770002 <small>(not in the hub)</small>" in page
    assert cells.findall(row_of(page, "<em>adjustments and reserve</em>"))[-2:] == ["-13.50 USD", "-13.50 USD"]
    total = row_of(page, "The orders' parts add up to")
    assert "<strong>139.00 USD</strong>" in total and "not the payout's paid" not in total


def test_a_payout_not_imported_does_not_add_up_and_an_unknown_one_is_not_found(
    client: TestClient, books: Books
) -> None:
    sign_in(client, "finance")
    page = client.get(f"/finance/payouts/{books.short_payout}").text
    assert "the channel's totals differ from its transactions by 10.00 USD" in page
    assert "None of this payout's statements is imported yet." in page
    missing = client.get("/finance/payouts/9999")
    assert missing.status_code == 404 and "payout 9999 is not known to the hub" in missing.text


def test_another_day_and_a_day_that_is_not_one(client: TestClient, books: Books) -> None:
    sign_in(client, "finance")
    page = client.get("/finance?day=2025-12-30").text
    assert "Daily check, 2025-12-30" in page and '<td class="num">0</td>' in row_of(page, "Paid</th>")
    assert 'href="/finance?day=2025-12-29" rel="prev"' in page and 'href="/finance?day=2025-12-31" rel="next"' in page
    page = client.get("/finance?day=<b>monday</b>").text
    assert "&#39;&lt;b&gt;monday&lt;/b&gt;&#39; is not a day written YYYY-MM-DD; showing 2025-12-31" in page
    assert "Daily check, 2025-12-31" in page


def test_a_payout_whose_statement_is_in_another_currency_is_named_not_summed(
    client: TestClient, hub: Hub, books: Books
) -> None:
    with transaction(hub.sessions) as session:
        session.add(FinanceStatement(channel_account_id=books.shop, external_id="S-9", statement_time=at(12, 31, 0),
                                     currency="EUR", settlement_minor=0, revenue_minor=0, fee_minor=0,
                                     adjustment_minor=0, shipping_cost_minor=0, net_sales_minor=0,
                                     payment_external_id="P-9"))  # fmt: skip
        odd = FinancePayment(channel_account_id=books.shop, external_id="P-9", amount_minor=5_00, currency="USD",
                             settlement_currency="USD", created_at=at(12, 31, 4))  # fmt: skip
        session.add(odd)
        session.flush()
        odd_id = odd.id
    sign_in(client, "finance")
    page = client.get("/finance").text
    assert "the payouts cannot be broken down: cannot add a EUR breakdown to a USD one" in page
    assert "Daily check, 2025-12-31" in page and f'id="exception-{books.large}"' in page, "the rest of the page stays"
    refused = client.get(f"/finance/payouts/{odd_id}")
    assert refused.status_code == 409 and f"payout {odd_id} cannot be broken down" in refused.text
