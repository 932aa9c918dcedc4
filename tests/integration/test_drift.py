"""The status drift detector end to end: the TikTok sandbox and the Shopify sandbox (the store that fulfils the
TikTok orders and sells on its own) served over HTTP, the hub with its workers, on the test database. Changes are
made in the sandboxes silently (no webhook), as a lost event would leave them; a check, asked for over the API,
finds each one, names it with who should act, repairs what is safe, and records the check. Orders that changed
with their events are never reported."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from shopbridge.demo.world import Store, World, record_initial_stock, running_world, wait_until
from shopbridge.services.drift import ISSUE_KIND
from shopbridge.store.tables import ChannelAccount, DriftCheck, Job, OrderLink, Shipment, SyncIssue
from tests.integration.tiktok.test_fulfilment_back import HOLD_SECONDS

SKUS = {"TEE-M": "19.90", "MUG": "8.50"}


@contextmanager
def drift_world(database_url: str, data_dir: Path) -> Iterator[tuple[World, Store]]:
    """The store loop, its periodic drift check out of the way (checks are asked for), a suspect confirmed after
    half a second; the order polls (the other backstop, which would repair some drift itself) hourly, once the
    shop's first one (at connect) is done."""

    def stock(hub: Any) -> None:
        record_initial_stock(hub, dict.fromkeys(SKUS, 20), key_prefix="drift")

    settings = {"drift_check_seconds": 3600, "drift_settle_seconds": 0.5, "shopify_poll_seconds": 3600}
    with running_world(database_url, data_dir, skus=SKUS, store=True, prepare_hub=stock, **settings) as world:
        assert world.store is not None

        def polled() -> bool:  # the shop's first poll (at connect) reads what it reads before anything changes
            with world.hub.sessions() as session:
                return session.scalar(select(Job.id).where(Job.kind == "tiktok.poll_orders",
                                                           Job.state == "succeeded").limit(1)) is not None  # fmt: skip

        wait_until(polled, message="the shop's first order poll")
        yield world, world.store


def release(world: World, store: Store, orders: dict[str, dict[str, int]]) -> dict[str, tuple[str, int, str]]:
    """Seller-shipped TikTok orders past their hold, each placed in the store: name -> (TikTok id, hub id, the
    store order's GID)."""
    placed = {name: world.place_order(items, shipping_type="SELLER") for name, items in orders.items()}
    for external_id in placed.values():
        wait_until(lambda: world.hub_order(external_id), message=f"order {external_id} in the hub")  # noqa: B023
    world.advance(HOLD_SECONDS)
    out = {}
    for name, external_id in placed.items():
        order = wait_until(lambda: (found := world.hub_order(external_id)) and found["released_at"] and found,  # noqa: B023
                           message=f"order {external_id} released")  # fmt: skip
        link = wait_until(lambda: (found := link_of(world, int(order["id"]))) and found.state == "placed" and found,  # noqa: B023
                          message=f"order {external_id} placed in the store")  # fmt: skip
        out[name] = (external_id, int(order["id"]), str(link.external_id))
    return out


def link_of(world: World, order_id: int) -> OrderLink | None:
    with world.hub.sessions() as session:
        return session.scalar(select(OrderLink).where(OrderLink.order_id == order_id))


def hub_status(world: World, external_id: str) -> str:
    order = world.hub_order(external_id)
    assert order is not None
    return str(order["status"])


def check(world: World, store: Store, *, rows: int = 3) -> list[DriftCheck]:
    """Ask for a check of every account over the API; the checks it records (TikTok's, and the store's as fulfiller
    and as origin), once all are in."""
    since = world.hub.clock.now()
    answer = world.api.post("/api/v1/drift/check")
    assert answer.status_code == 202, answer.text
    assert {queued["channel"] for queued in answer.json()["queued"]} == {"tiktok", "shopify"}

    def recorded() -> list[DriftCheck]:
        with world.hub.sessions() as session:
            checking = session.scalar(select(Job.id).where(Job.kind.like("%.check_drift"),
                                                           Job.state.in_(("pending", "running"))).limit(1))  # fmt: skip
            found = list(session.scalars(select(DriftCheck).where(DriftCheck.checked_at >= since)
                                         .order_by(DriftCheck.id)))  # fmt: skip
        return found if len(found) >= rows and checking is None else []

    return wait_until(recorded, message="the checks recorded")  # type: ignore[no-any-return]


def drift_issues(world: World, *, status: str = "open") -> dict[tuple[int, str], SyncIssue]:
    with world.hub.sessions() as session:
        issues = session.scalars(select(SyncIssue).where(SyncIssue.kind == ISSUE_KIND, SyncIssue.status == status))
        return {(int(issue.subject_id or 0), str(issue.details["drift"])): issue for issue in issues}


def account_of(world: World, channel: str) -> int:
    with world.hub.sessions() as session:
        return int(session.scalar(select(ChannelAccount.id).where(ChannelAccount.channel == channel)) or 0)


def by_account(checks: list[DriftCheck], account_id: int) -> list[DriftCheck]:
    return [found for found in checks if found.channel_account_id == account_id]


def test_silent_changes_are_found_named_and_repaired_and_nothing_else_is_reported(
    database_url: str, tmp_path: Path
) -> None:
    with drift_world(database_url, tmp_path) as (world, store):
        orders = release(world, store, {
            "shipped_in_store": {"TEE-M": 1}, "cancelled_in_store": {"MUG": 1}, "cancelled_on_tiktok": {"TEE-M": 1},
            "shipped_on_tiktok": {"MUG": 1}, "untouched": {"TEE-M": 1}, "shipped_with_events": {"MUG": 1},
            "cancelled_with_events": {"TEE-M": 1},
        })  # fmt: skip
        own = store.place_order({"MUG": 1})  # a web customer's order in the store
        wait_until(lambda: world.hub_order(own["gid"]), message="the store's own order in the hub")

        # Changes whose events reach the hub: never drift.
        store.fulfil(orders["shipped_with_events"][2], tracking_number="1ZWITHEVENTS")
        world.control.post(f"/_sandbox/orders/{orders['cancelled_with_events'][0]}/platform_cancel").raise_for_status()
        wait_until(lambda: link_of(world, orders["cancelled_with_events"][1]).state == "cancelled",  # type: ignore[union-attr]
                   message="the store order of the order cancelled on TikTok cancelled")  # fmt: skip
        wait_until(lambda: [s for s in world.sandbox_order(orders["shipped_with_events"][0])["line_items"]
                            if s.get("tracking_number") == "1ZWITHEVENTS"],
                   message="the tracking on TikTok")  # fmt: skip

        # Silent changes: the state moves, nothing tells the hub.
        fulfilled = store.control.post(f"/orders/{orders['shipped_in_store'][2]}/fulfil?silent=true",
                                       json={"carrier": "UPS", "tracking_number": "1ZSILENT0001"})  # fmt: skip
        fulfilled.raise_for_status()
        store.control.post(f"/orders/{orders['cancelled_in_store'][2]}/cancel?silent=true",
                           json={"reason": "INVENTORY"}).raise_for_status()  # fmt: skip
        world.control.post(f"/_sandbox/orders/{orders['cancelled_on_tiktok'][0]}/platform_cancel?silent=true"
                           ).raise_for_status()  # fmt: skip
        world.control.post(f"/_sandbox/orders/{orders['shipped_on_tiktok'][0]}/ship?silent=true").raise_for_status()
        store.control.post(f"/orders/{own['gid']}/fulfil?silent=true",
                           json={"carrier": "UPS", "tracking_number": "1ZOWNORDER01"}).raise_for_status()  # fmt: skip
        assert hub_status(world, orders["cancelled_on_tiktok"][0]) == "awaiting_shipment", "the hub did not hear"

        checks = check(world, store)
        tiktok, shopify = account_of(world, "tiktok"), account_of(world, "shopify")
        issues = drift_issues(world)
        order_id = {name: found[1] for name, found in orders.items()}
        own_id = int(world.hub_order(own["gid"])["id"])  # type: ignore[index]
        assert {(order, kind): (issue.details["act"], issue.channel_account_id)
                for (order, kind), issue in issues.items()} == {
            (order_id["shipped_in_store"], "shipped_not_recorded"): ("none", shopify),
            (order_id["cancelled_in_store"], "cancelled_at_fulfiller"): ("none", shopify),
            (order_id["cancelled_on_tiktok"], "cancelled_not_in_hub"): ("none", tiktok),
            (order_id["shipped_on_tiktok"], "shipped_on_channel_only"): ("ops", tiktok),
            (own_id, "shipped_on_channel_only"): ("none", shopify),
        }, "each silent change once, and nothing else"  # fmt: skip
        message = issues[(order_id["shipped_on_tiktok"], "shipped_on_channel_only")].message
        assert orders["shipped_on_tiktok"][0] in message and "AWAITING_COLLECTION" in message
        assert "make sure" in message and "does not ship it again" in message
        assert "1ZSILENT0001" in issues[(order_id["shipped_in_store"], "shipped_not_recorded")].message

        (tiktok_check,) = by_account(checks, tiktok)
        assert (tiktok_check.drifted, tiktok_check.repaired) == (2, 2)
        assert tiktok_check.kinds == {"cancelled_not_in_hub": 1, "shipped_on_channel_only": 1}
        assert tiktok_check.orders_checked == 5, "every TikTok order still to ship"
        store_checks = by_account(checks, shopify)
        assert sorted((found.drifted, found.repaired) for found in store_checks) == [(1, 1), (2, 2)]
        assert {kind for found in store_checks for kind in found.kinds} == {
            "shipped_not_recorded", "cancelled_at_fulfiller", "shipped_on_channel_only"}  # fmt: skip

        # The repairs: what each missed event would have done.
        wait_until(lambda: [item for item in world.sandbox_order(orders["shipped_in_store"][0])["line_items"]
                            if item.get("tracking_number") == "1ZSILENT0001"],
                   message="the store's silent shipment's tracking on TikTok")  # fmt: skip
        wait_until(lambda: world.sandbox_order(orders["cancelled_in_store"][0])["status"] == "CANCELLED",
                   message="the store's silent cancellation taken to TikTok")  # fmt: skip
        cancelled = world.sandbox_order(orders["cancelled_in_store"][0])
        assert (cancelled["cancellation_initiator"], cancelled["cancel_reason"]) == ("SELLER", "Out of stock")
        wait_until(lambda: hub_status(world, orders["cancelled_on_tiktok"][0]) == "cancelled",
                   message="TikTok's silent cancellation read again")  # fmt: skip
        wait_until(lambda: store.order(orders["cancelled_on_tiktok"][2])["cancelled"],
                   message="and the store order cancelled with it")  # fmt: skip
        wait_until(lambda: hub_status(world, orders["shipped_on_tiktok"][0]) == "awaiting_collection",
                   message="TikTok's silent shipment read again")  # fmt: skip
        wait_until(lambda: hub_status(world, own["gid"]) in ("in_transit", "completed"),
                   message="the store's silent fulfilment of its own order read again")  # fmt: skip
        with world.hub.sessions() as session:
            assert session.scalar(select(Shipment.state).where(
                Shipment.order_id == order_id["shipped_in_store"])) in ("pending", "sent")  # fmt: skip

        # Once repaired, the next check finds nothing: what the hub repaired is resolved, ops' issue stays theirs.
        wait_until(lambda: link_of(world, order_id["cancelled_on_tiktok"]).state == "cancelled",  # type: ignore[union-attr]
                   message="the store's cancellation confirmed")  # fmt: skip
        again = check(world, store)
        assert [found.drifted for found in again] == [0, 0, 0]
        assert set(drift_issues(world)) == {(order_id["shipped_on_tiktok"], "shipped_on_channel_only")}
        assert len(drift_issues(world, status="resolved")) == 4


def test_the_drift_page_and_api_show_the_rate_the_checks_and_the_open_drift(database_url: str, tmp_path: Path) -> None:
    with drift_world(database_url, tmp_path) as (world, store):
        orders = release(world, store, {"fine": {"MUG": 1}, "cancelled": {"TEE-M": 1}})
        world.control.post(f"/_sandbox/orders/{orders['cancelled'][0]}/platform_cancel?silent=true").raise_for_status()
        check(world, store)
        summary = world.api.get("/api/v1/drift").json()
        assert summary["last_24h"]["kinds"] == {"cancelled_not_in_hub": 1}
        assert summary["last_24h"]["drifted"] == 1 and summary["last_24h"]["rate"] > 0
        (shown,) = summary["open"]
        assert (shown["kind"], shown["act"], shown["order_id"], shown["external_order_id"], shown["repaired"]) == (
            "cancelled_not_in_hub", "none", orders["cancelled"][1], orders["cancelled"][0], True)  # fmt: skip
        assert {found["channel"] for found in summary["checks"]} >= {"tiktok", "shopify"}
        assert datetime.fromisoformat(summary["checks"][0]["checked_at"])
