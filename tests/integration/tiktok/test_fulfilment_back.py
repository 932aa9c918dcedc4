"""Tracking back to TikTok: a shipment the store made reaches the sandbox's order as its package's tracking and
carrier, once, with unknown carriers falling back to the shop's default provider. The store is simulated by an
account that does not fulfil orders itself: the test writes the order's link and reports its fulfilments."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from shopbridge.services.fulfilment import Fulfilment, record_shipment
from shopbridge.store.db import transaction
from shopbridge.store.tables import ChannelAccount, Job, JobAttempt, OrderLink, Shipment, SyncIssue, Variant
from tests.integration.tiktok.harness import World, tiktok_world, wait_until

HOLD_SECONDS = 3601


def released(world: World, items: dict[str, int]) -> tuple[str, int]:
    """A seller-shipped TikTok order past its hold, released in the hub: (TikTok id, hub id)."""
    external_id = world.place_order(items, shipping_type="SELLER")
    wait_until(lambda: world.hub_order(external_id), message="the order in the hub")
    world.advance(HOLD_SECONDS)
    order = wait_until(lambda: (found := world.hub_order(external_id)) and found["released_at"] and found,
                       message="the order released")  # fmt: skip
    return external_id, int(order["id"])


def store_account(world: World) -> int:
    with transaction(world.hub.sessions) as session:
        store = ChannelAccount(channel="store-test", label="Test store", external_id="store-1",
                               settings={"fulfils_orders": False})  # fmt: skip
        session.add(store)
        session.flush()
        return store.id


def report_fulfilment(world: World, store_id: int, order_id: int, fulfilment_id: str, *, carrier: str | None,
                      tracking: str, lines: dict[str, int] | None = None) -> int | None:  # fmt: skip
    """What the store's connector does when it sees a fulfilment of a linked order: the shipment, once."""
    now = world.hub.clock.now()
    with transaction(world.hub.sessions) as session:
        link = session.scalar(
            select(OrderLink).where(OrderLink.order_id == order_id, OrderLink.channel_account_id == store_id)
        )
        if link is None:
            link = OrderLink(order_id=order_id, channel_account_id=store_id, external_id=f"S-{order_id}",
                             state="placed", created_at=now, updated_at=now)  # fmt: skip
            session.add(link)
            session.flush()
        variants = dict(session.execute(select(Variant.sku, Variant.id)).all())
        shipped = [{"sku": sku, "variant_id": variants[sku], "quantity": units} for sku, units in (lines or {}).items()]
        return record_shipment(session, link, Fulfilment(fulfilment_id, carrier, tracking, None, shipped,
                                                         shipped_at=now - timedelta(minutes=1)), now=now)  # fmt: skip


def shipment(world: World, shipment_id: int) -> Shipment:
    with world.hub.sessions() as session:
        found = session.get(Shipment, shipment_id)
        assert found is not None
        return found


def sent(world: World, shipment_id: int) -> Shipment:
    return wait_until(lambda: (row := shipment(world, shipment_id)).state == "sent" and row,
                      message=f"shipment {shipment_id} sent")  # fmt: skip


def tracking_on_tiktok(world: World, external_id: str) -> list[tuple[str, str | None, str | None]]:
    order = world.sandbox_order(external_id)
    return [(item["seller_sku"], item.get("tracking_number"), item.get("shipping_provider_name"))
            for item in order["line_items"]]  # fmt: skip


def open_issues(world: World, kind: str) -> list[SyncIssue]:
    with world.hub.sessions() as session:
        return list(session.scalars(select(SyncIssue).where(SyncIssue.kind == kind, SyncIssue.status == "open")))


def jobs(world: World, kind: str) -> list[Job]:
    with world.hub.sessions() as session:
        return list(session.scalars(select(Job).where(Job.kind == kind)))


def set_settings(world: World, **settings: Any) -> None:
    with transaction(world.hub.sessions) as session:
        account = session.scalar(select(ChannelAccount).where(ChannelAccount.channel == "tiktok"))
        assert account is not None
        account.settings = {**(account.settings or {}), **settings}


def test_a_store_shipment_reaches_tiktok_once_with_its_tracking_and_carrier(database_url: str, tmp_path: Path) -> None:
    with tiktok_world(database_url, tmp_path) as world:
        store_id = store_account(world)
        external_id, order_id = released(world, {"TEE-M": 1, "MUG": 1})
        package_id = world.sandbox_order(external_id)["packages"][0]["id"]
        lines = {"TEE-M": 1, "MUG": 1}
        shipment_id = report_fulfilment(world, store_id, order_id, "F-1", carrier="UPS", tracking="1Z999AA10123456784",
                                        lines=lines)  # fmt: skip
        assert shipment_id is not None
        assert report_fulfilment(world, store_id, order_id, "F-1", carrier="UPS", tracking="1Z999AA10123456784",
                                 lines=lines) is None, "a replayed fulfilment is recorded once"  # fmt: skip
        row = sent(world, shipment_id)
        assert (row.provider, row.external_package_id, row.error) == ("UPS", package_id, None)
        truth = world.sandbox_order(external_id)
        assert truth["status"] == "AWAITING_COLLECTION"
        assert sorted(tracking_on_tiktok(world, external_id)) == [("MUG", "1Z999AA10123456784", "UPS"),
                                                                  ("TEE-M", "1Z999AA10123456784", "UPS")]  # fmt: skip
        assert len(jobs(world, "tiktok.ship_order")) == 1
        wait_until(lambda: (order := world.hub_order(external_id)) and order["status"] == "awaiting_collection",
                   message="the hub's order shipped")  # fmt: skip
        assert open_issues(world, "unmapped_carrier") == []


def test_carriers_map_through_the_accounts_settings_and_unknown_ones_fall_back(
    database_url: str, tmp_path: Path
) -> None:
    with tiktok_world(database_url, tmp_path) as world:
        store_id = store_account(world)
        set_settings(world, carrier_map={"Pony Express": "FedEx"}, default_shipping_provider="UPS")
        first, first_id = released(world, {"TEE-L": 1})
        second, second_id = released(world, {"MUG": 2})
        mapped = report_fulfilment(world, store_id, first_id, "F-10", carrier="Pony Express", tracking="PX-0001")
        unknown = report_fulfilment(world, store_id, second_id, "F-11", carrier="DHL Express", tracking="JD0146000")
        assert mapped is not None and unknown is not None
        assert sent(world, mapped).provider == "FedEx"
        assert sent(world, unknown).provider == "UPS", "the account's default provider"
        assert tracking_on_tiktok(world, first) == [("TEE-L", "PX-0001", "FedEx")]
        assert tracking_on_tiktok(world, second) == [("MUG", "JD0146000", "UPS"), ("MUG", "JD0146000", "UPS")]
        [issue] = open_issues(world, "unmapped_carrier")
        assert issue.details["carrier"] == "DHL Express" and issue.details["act"] == "ops"
        assert issue.subject_id == str(unknown)


def test_an_unknown_carrier_without_a_default_takes_tiktoks_first_provider(database_url: str, tmp_path: Path) -> None:
    with tiktok_world(database_url, tmp_path) as world:
        store_id = store_account(world)
        external_id, order_id = released(world, {"MUG": 1})
        shipment_id = report_fulfilment(world, store_id, order_id, "F-20", carrier=None, tracking="9400111899223")
        assert shipment_id is not None
        assert sent(world, shipment_id).provider == "USPS"
        assert tracking_on_tiktok(world, external_id) == [("MUG", "9400111899223", "USPS")]
        assert len(open_issues(world, "unmapped_carrier")) == 1


def test_a_partial_shipment_ships_its_own_lines_as_a_package(database_url: str, tmp_path: Path) -> None:
    with tiktok_world(database_url, tmp_path) as world:
        store_id = store_account(world)
        external_id, order_id = released(world, {"TEE-M": 2, "MUG": 1})
        first = report_fulfilment(world, store_id, order_id, "F-30", carrier="USPS", tracking="PART-0001",
                                  lines={"TEE-M": 1})  # fmt: skip
        assert first is not None
        first_package = sent(world, first).external_package_id
        assert world.sandbox_order(external_id)["status"] == "PARTIALLY_SHIPPING"
        assert sorted(tracking_on_tiktok(world, external_id), key=str) == sorted(
            [("TEE-M", "PART-0001", "USPS"), ("TEE-M", None, None), ("MUG", None, None)], key=str
        )
        second = report_fulfilment(world, store_id, order_id, "F-31", carrier="FedEx", tracking="PART-0002",
                                   lines={"TEE-M": 1, "MUG": 1})  # fmt: skip
        assert second is not None
        assert sent(world, second).external_package_id not in (None, first_package)
        assert world.sandbox_order(external_id)["status"] == "AWAITING_COLLECTION"
        assert sorted(tracking_on_tiktok(world, external_id), key=str) == sorted(
            [("TEE-M", "PART-0001", "USPS"), ("TEE-M", "PART-0002", "FedEx"), ("MUG", "PART-0002", "FedEx")], key=str
        )


def test_shipments_of_one_order_sent_side_by_side_each_ship_their_own_lines(database_url: str, tmp_path: Path) -> None:
    with tiktok_world(database_url, tmp_path, workers=4, job_backoff_base_seconds=0.2) as world:
        store_id = store_account(world)
        external_id, order_id = released(world, {"TEE-M": 2, "TEE-L": 1, "MUG": 1})
        parcels = {"SIDE-0001": {"TEE-M": 1}, "SIDE-0002": {"TEE-M": 1, "TEE-L": 1}, "SIDE-0003": {"MUG": 1}}
        shipment_ids = [
            report_fulfilment(world, store_id, order_id, f"F-6{n}", carrier="USPS", tracking=tracking, lines=lines)
            for n, (tracking, lines) in enumerate(parcels.items())
        ]
        for shipment_id in shipment_ids:
            assert shipment_id is not None
            sent(world, shipment_id)
        assert world.sandbox_order(external_id)["status"] == "AWAITING_COLLECTION"
        shipped = sorted((sku, tracking) for sku, tracking, _ in tracking_on_tiktok(world, external_id))
        assert shipped == [("MUG", "SIDE-0003"), ("TEE-L", "SIDE-0002"), ("TEE-M", "SIDE-0001"), ("TEE-M", "SIDE-0002")]
        assert open_issues(world, "ship_refused") == []


def test_a_shipment_tiktok_refuses_fails_with_tiktoks_message(database_url: str, tmp_path: Path) -> None:
    with tiktok_world(database_url, tmp_path) as world:
        store_id = store_account(world)
        external_id, order_id = released(world, {"MUG": 1})
        shipment_id = report_fulfilment(world, store_id, order_id, "F-40", carrier="USPS", tracking="NOT A TRACKING#")
        assert shipment_id is not None
        failed = wait_until(lambda: (row := shipment(world, shipment_id)).state == "failed" and row,
                            message="the shipment failed")  # fmt: skip
        assert "tracking_number" in (failed.error or "")
        [issue] = wait_until(lambda: open_issues(world, "ship_refused"), message="the refusal as an issue")
        assert "tracking_number" in issue.message and issue.details["act"] == "ops"
        wait_until(lambda: [job.state for job in jobs(world, "tiktok.ship_order")] == ["dead"],
                   message="the job given up (TikTok's refusal is permanent)")  # fmt: skip
        assert world.sandbox_order(external_id)["status"] == "AWAITING_SHIPMENT"


def test_a_shipment_meeting_tiktoks_server_trouble_is_retried_until_sent(database_url: str, tmp_path: Path) -> None:
    with tiktok_world(database_url, tmp_path, job_backoff_base_seconds=0.2) as world:
        store_id = store_account(world)
        external_id, order_id = released(world, {"TEE-M": 1})
        world.control.put("/_sandbox/faults/endpoints", json={
            "endpoint": "POST /fulfillment/202309/packages/{package_id}/ship", "error_rate": 1.0,
        }).raise_for_status()  # fmt: skip
        shipment_id = report_fulfilment(world, store_id, order_id, "F-50", carrier="USPS", tracking="RETRY-0001")
        assert shipment_id is not None

        def outcomes() -> list[str]:
            with world.hub.sessions() as session:
                return list(session.scalars(select(JobAttempt.outcome).join(Job, Job.id == JobAttempt.job_id)
                                            .where(Job.kind == "tiktok.ship_order")))  # fmt: skip

        wait_until(lambda: "retry" in outcomes(), message="a retry after TikTok's internal error")
        assert shipment(world, shipment_id).state == "pending", "server trouble is not the shipment's failure"
        world.control.delete("/_sandbox/faults").raise_for_status()
        sent(world, shipment_id)
        assert tracking_on_tiktok(world, external_id) == [("TEE-M", "RETRY-0001", "USPS")]
        assert open_issues(world, "ship_refused") == []
