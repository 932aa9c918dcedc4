"""The dashboard in a real Chromium: sign in, the queue with three channels' labels, retrying a blocked order, a
viewer who sees but cannot change, sign-out, and the phone-width layout."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from shopbridge.bootstrap import Hub
from shopbridge.demo.world import OWNER
from tests.integration.dashboard_world import (
    PASSWORD,
    add_accounts,
    add_order,
    add_people,
    add_stock,
    audit_count,
    hours,
)


@pytest.fixture
def hub(tiktok_hub: Hub) -> Hub:
    add_people(tiktok_hub)
    accounts = add_accounts(tiktok_hub)
    now = tiktok_hub.clock.now()
    add_order(tiktok_hub, accounts.tiktok, "576461413038785752", dispatch_by=now + hours(2))
    add_order(tiktok_hub, accounts.tiktok, "576461413038785753", dispatch_by=now - hours(1), blocked="unknown_sku",
              sku="MUG-RED")  # fmt: skip
    add_order(tiktok_hub, accounts.tiktok, "576461413038785754", status="on_hold")
    add_order(tiktok_hub, accounts.shopify, "#1042", created_at=now - hours(3))
    add_order(tiktok_hub, accounts.manual, "WA-0007", status="delivered", created_at=now - hours(5))
    add_stock(tiktok_hub, accounts.tiktok)
    return tiktok_hub


def _sign_in(page: Page, base: str, role: str) -> None:
    page.goto(f"{base}/")
    expect(page).to_have_url(f"{base}/sign-in")
    page.get_by_label("E-mail").fill(f"{role}@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Order queue")).to_be_visible()


def test_an_operator_signs_in_sees_every_channel_retries_a_blocked_order_and_signs_out(
    browser: Browser, served: str, hub: Hub, screenshots: Path | None
) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    _sign_in(page, served, "ops")
    rows = page.locator("#rows tr")
    expect(rows).to_have_count(5)
    for label in ("TikTok", "Shopify", "Manual"):
        expect(page.locator("#rows .channel", has_text=label).first).to_be_visible()
    late = page.locator("#rows tr.risk-late")
    expect(late).to_contain_text("576461413038785753")
    expect(late).to_contain_text("unknown_sku")
    if screenshots:
        page.screenshot(path=str(screenshots / "queue.png"), full_page=True)

    page.get_by_label("Select order 576461413038785753").check()
    page.get_by_role("button", name="Retry selected blocked orders").click()
    expect(page.get_by_role("status")).to_have_text("1 order queued for retry")
    assert audit_count(hub, "order.retry") == 1

    page.get_by_role("link", name="576461413038785753").click()
    expect(page.get_by_role("heading", name="Blocked: unknown_sku")).to_be_visible()
    expect(page.get_by_role("cell", name="MUG-RED")).to_be_visible()
    if screenshots:
        page.screenshot(path=str(screenshots / "order.png"), full_page=True)
    page.get_by_role("button", name="Retry").click()
    expect(page.get_by_role("status")).to_have_text("queued for retry")
    assert audit_count(hub, "order.retry") == 2

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{served}/sign-in")
    page.goto(f"{served}/")
    expect(page).to_have_url(f"{served}/sign-in")


def test_a_viewer_sees_the_queue_but_is_offered_no_change_and_is_refused_one(browser: Browser, served: str,
                                                                             hub: Hub) -> None:  # fmt: skip
    page = browser.new_page()
    _sign_in(page, served, "viewer")
    expect(page.locator("#rows tr")).to_have_count(5)
    expect(page.get_by_role("button", name="Retry selected blocked orders")).to_have_count(0)
    page.get_by_role("link", name="576461413038785753").click()
    expect(page.get_by_role("heading", name="Blocked: unknown_sku")).to_be_visible()
    expect(page.get_by_role("button", name="Retry")).to_have_count(0)
    # A hand-made request with the viewer's own session and CSRF token is refused too.
    token = page.locator('input[name="csrf_token"]').first.get_attribute("value")
    answer = page.request.post(f"{served}/orders/2/retry", form={"csrf_token": token or ""}, max_redirects=0)
    assert answer.status == 403
    assert audit_count(hub, "order.retry") == 0


def test_stock_a_rule_edited_and_a_csv_imported_with_its_errors(
    browser: Browser, served: str, hub: Hub, screenshots: Path | None, tmp_path: Path
) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    _sign_in(page, served, "ops")
    page.get_by_role("link", name="Stock", exact=True).click()
    page.get_by_role("link", name="TEE-M").click()
    expect(page.get_by_role("heading", name="What each channel shows")).to_be_visible()
    page.get_by_label("Buffer units").fill("3")
    page.get_by_role("button", name="Save for this SKU").click()
    expect(page.get_by_role("status")).to_contain_text("rule saved")
    if screenshots:
        page.screenshot(path=str(screenshots / "stock.png"), full_page=True)
    bad, good = tmp_path / "bad.csv", tmp_path / "good.csv"
    bad.write_text("sku,location,on_hand\nTEE-M,MAIN,12\nNOPE,MAIN,1\n")
    good.write_text("sku,location,on_hand\nTEE-M,MAIN,12\n")
    page.get_by_role("link", name="Stock", exact=True).click()
    page.get_by_label("File").set_input_files(str(bad))
    page.get_by_role("button", name="Import").click()
    expect(page.get_by_role("alert")).to_contain_text("line 3")
    expect(page.get_by_role("alert")).to_contain_text("Nothing was applied")
    page.goto(f"{served}/stock")
    page.get_by_label("File").set_input_files(str(good))
    page.get_by_role("button", name="Import").click()
    expect(page.get_by_role("status")).to_contain_text("1 applied")
    expect(page.locator("tr", has_text="TEE-M")).to_contain_text("12")
    assert audit_count(hub, "stock.import_counts") == 1 and audit_count(hub, "stock.rule") == 1


def test_the_queue_works_at_a_phones_width_and_from_the_keyboard(browser: Browser, served: str, hub: Hub) -> None:
    page = browser.new_page(viewport={"width": 390, "height": 844})
    _sign_in(page, served, "support")
    expect(page.locator("#rows tr")).to_have_count(5)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390 + 1, "nothing overflows the page"
    page.get_by_label("Search").focus()
    page.keyboard.type("#1042")
    page.keyboard.press("Enter")
    expect(page.locator("#rows tr")).to_have_count(1)
    expect(page.locator("#rows")).to_contain_text("Shopify")


def test_a_whatsapp_order_entered_in_the_browser_joins_the_queue_and_lowers_tiktoks_quantity(
    browser: Browser, database_url: str, tmp_path: Path
) -> None:
    from tests.integration.tiktok.harness import tiktok_world, wait_until
    from tests.integration.tiktok.test_stock_push import mugs_on_sale, on_tiktok

    with tiktok_world(database_url, tmp_path, owner_password=True) as world:
        mugs_on_sale(world)  # 10 MUGs in the hub, TikTok showing 8 (2 held back)
        page = browser.new_page()
        page.goto(f"{world.hub_url}/sign-in")
        page.get_by_label("E-mail").fill(OWNER)
        page.get_by_label("Password").fill(world.owner_password)
        page.get_by_role("button", name="Sign in").click()
        page.get_by_role("link", name="New order").click()
        page.get_by_label("WhatsApp").check()
        page.get_by_role("textbox", name="Name").fill("Siti Rahma")
        page.get_by_role("textbox", name="Phone").fill("+62 812 0000 1111")
        page.get_by_label("SKU of line 1").fill("MUG")
        page.get_by_label("SKU of line 1").dispatch_event("change")
        expect(page.locator("#free-0")).to_have_text("10 free")
        page.get_by_label("Quantity of line 1").fill("3")
        page.get_by_label("Unit price of line 1").fill("8.50")
        page.get_by_label("Cash on delivery").check()
        page.get_by_role("button", name="Save order").click()
        expect(page.get_by_role("status")).to_have_text("order entered")
        expect(page.get_by_role("heading", name="Order WA-000001")).to_be_visible()
        page.get_by_role("link", name="Queue", exact=True).click()
        row = page.locator("#rows tr", has_text="WA-000001")
        expect(row).to_contain_text("Manual")
        wait_until(lambda: on_tiktok(world, "MUG") == 5, message="TikTok showing 5 = 10 - 3 ordered - 2 buffer")
