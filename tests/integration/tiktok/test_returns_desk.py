"""Returns from the ops desk against the TikTok sandbox: a refund TikTok refused is shown with TikTok's reason on the
returns page and asked again from the exceptions page's Retry and from ``POST /api/v1/returns/{id}/retry``, until
TikTok refunds it; a buyer's request is rejected from the returns page with a reason TikTok offers."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from shopbridge.demo.world import OWNER
from shopbridge.services import returns
from tests.integration.dashboard_world import csrf_of
from tests.integration.tiktok.harness import World, tiktok_world
from tests.integration.tiktok.test_returns import (
    buyer_asks,
    deliver,
    delivered_order,
    open_issues,
    paid_order,
    pos_account,
    request_of,
    seller_refunds,
    settled,
    take_back,
)


@contextmanager
def signed_in(world: World) -> Iterator[tuple[httpx.Client, str]]:
    """A browser signed in to the hub's dashboard as the owner, and its CSRF token."""
    with httpx.Client(base_url=world.hub_url, timeout=30) as browser:
        form = csrf_of(browser.get("/sign-in").text)
        answer = browser.post("/sign-in", data={"email": OWNER, "password": world.owner_password, "csrf_token": form})
        assert answer.status_code == 303, answer.text
        yield browser, csrf_of(browser.get("/returns").text)


def test_a_refused_refund_is_retried_from_the_exceptions_page_and_the_api(database_url: str, tmp_path: Path) -> None:
    with tiktok_world(database_url, tmp_path, owner_password=True) as world:
        pos_id = pos_account(world)
        external_id = paid_order(world, {"TEE-M": 2})
        taken = take_back(world, pos_id, "R-1", external_id, {"TEE-M": 2})  # before TikTok shows it delivered
        settled(world, taken, "refused")
        with signed_in(world) as (browser, csrf):
            page = browser.get("/returns", params={"state": "refused"}).text
            assert "return R-1" in page and "TikTok ORDER_STATUS_NOT_SUPPORTED: The order is AWAITING_SHIPMENT." in page
            assert f'action="/returns/{taken}/retry"' in page

            deliver(world, external_id)  # the cause fixed
            [issue] = open_issues(world, returns.REFUND_REFUSED)
            exceptions = browser.get("/exceptions").text
            assert f'action="/exceptions/issues/{issue.id}/retry"' in exceptions
            retried = browser.post(f"/exceptions/issues/{issue.id}/retry", data={"csrf_token": csrf})
            assert retried.status_code == 303 and "its+refund+is+asked+again" in retried.headers["location"]
            row = settled(world, taken, "refunded")
            [refund] = seller_refunds(world, external_id)
            assert (row.refund_external_id, row.refund_minor) == (refund["return_id"], 4180)
            assert open_issues(world, returns.REFUND_REFUSED) == []
            shown = browser.get("/returns", params={"state": "refunded"}).text
            assert "return R-1" in shown and "41.80 USD" in shown and "Retry the refund" not in shown

            # Over the API: another order's return refused, its order delivered, asked again.
            mug_order = paid_order(world, {"MUG": 1})
            mug = take_back(world, pos_id, "R-2", mug_order, {"MUG": 1})
            settled(world, mug, "refused")
            deliver(world, mug_order)
            answer = world.api.post(f"/api/v1/returns/{mug}/retry")
            assert answer.status_code == 202, answer.text
            assert answer.json()["job"]["kind"] == "tiktok.refund_return" and answer.json()["state"] == "refunding"
            refunded = settled(world, mug, "refunded")
            [mug_refund] = seller_refunds(world, mug_order)
            assert refunded.refund_external_id == mug_refund["return_id"]
            again = world.api.post(f"/api/v1/returns/{mug}/retry")
            assert again.status_code == 409 and "is refunded: only a refused refund" in again.json()["detail"]


def test_a_buyers_request_is_rejected_from_the_returns_page(database_url: str, tmp_path: Path) -> None:
    with tiktok_world(database_url, tmp_path, owner_password=True) as world:
        external_id = delivered_order(world, {"TEE-M": 1, "MUG": 1})
        buyer_asks(world, external_id, "REFUND", ["MUG"])
        pending = request_of(world, external_id, "pending")
        with signed_in(world) as (browser, csrf):
            page = browser.get("/returns").text
            row = next(row for row in re.findall(r"<tr[ >].*?</tr>", page, flags=re.S)
                       if f"request {pending['external_id']}" in row)  # fmt: skip
            assert "Damaged item" in row and "left" in row and 'action="/returns/requests/' in row
            rejected = browser.post(f"/returns/requests/{pending['id']}/reject",
                                    data={"csrf_token": csrf, "reason": "Product is not defective"})  # fmt: skip
            assert rejected.status_code == 303 and "rejected" in rejected.headers["location"]
            done = request_of(world, external_id, "rejected")
            assert done["answered_by"] == OWNER and done["error"] is None
            assert done["channel_status"] == "REFUND_OR_RETURN_REQUEST_REJECT"
