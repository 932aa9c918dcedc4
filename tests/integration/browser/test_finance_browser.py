"""The finance page in a real Chromium: a finance user opens it from the navigation, reads a shop's day and the open
reconciliation exceptions (the page fits a phone's width), and acknowledges one with a note (audited)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from shopbridge.bootstrap import Hub
from shopbridge.store.db import transaction
from shopbridge.store.tables import ChannelAccount, FinanceException
from tests.integration.dashboard_world import PASSWORD, add_people, audit_count


@pytest.fixture
def hub(tiktok_hub: Hub) -> Hub:
    """People of every role and a TikTok shop in Jakarta with two open exceptions (the hub's clock: 1 January 2026)."""
    add_people(tiktok_hub)
    found = datetime(2025, 12, 31, 12, 0, tzinfo=UTC)
    with transaction(tiktok_hub.sessions) as session:
        shop = ChannelAccount(channel="tiktok", label="Tees ID", external_id="7495", currency="USD",
                              timezone="Asia/Jakarta")  # fmt: skip
        session.add(shop)
        session.flush()
        session.add_all([
            FinanceException(channel_account_id=shop.id, kind=kind, subject=f"order:{number}",
                             external_order_id=number, currency="USD", amount_minor=minor, detail=detail,
                             found_at=found, last_found_at=found)
            for kind, number, minor, detail in (
                ("missing_settlement", "5770009", 7_00, "delivered, not settled"),
                ("amount_difference", "5770001", 50_00, "settled 86.10 USD, the order implies 136.10 USD"),
            )
        ])  # fmt: skip
    return tiktok_hub


def test_finance_opens_the_page_and_acknowledges_an_exception_with_a_note(
    browser: Browser, served: str, hub: Hub, screenshots: Path | None
) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{served}/finance")
    expect(page).to_have_url(f"{served}/sign-in?next=/finance")
    page.get_by_label("E-mail").fill("finance@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Finance", exact=True)).to_be_visible()
    page.get_by_role("link", name="Queue", exact=True).click()
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Finance").click()
    expect(page.get_by_role("heading", name="Daily check, 2025-12-31")).to_be_visible()
    expect(page.locator("table.daily-check thead")).to_contain_text("Tees ID")
    expect(page.locator("table.daily-check")).to_contain_text("Asia/Jakarta")

    rows = page.locator("table.finance-exceptions tbody tr")
    expect(rows).to_have_count(2)
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth") <= 390 + 1, "wide tables scroll in their box"
    page.set_viewport_size({"width": 1280, "height": 900})
    expect(rows.first).to_contain_text("50.00 USD")
    expect(rows.first).to_contain_text("amount difference")
    if screenshots:
        page.screenshot(path=str(screenshots / "finance.png"), full_page=True)

    larger = rows.first.get_attribute("id") or ""
    number = larger.removeprefix("exception-")
    page.get_by_label(f"Note on exception {number}").fill("TikTok's voucher, paid by the platform")
    page.get_by_role("button", name=f"Acknowledge exception {number}").click()
    expect(page.get_by_role("status")).to_have_text(
        f"exception {number} (amount difference, order:5770001) acknowledged"
    )
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("7.00 USD")
    assert audit_count(hub, "finance.exception_acknowledged") == 1
    with hub.sessions() as session:
        acknowledged = session.get(FinanceException, int(number))
        assert acknowledged is not None
        assert acknowledged.acknowledged_by == "finance@example.com"
        assert acknowledged.note == "TikTok's voucher, paid by the platform"
