"""Order intake from the TikTok sandbox: webhooks plus poll, idempotent, ON_HOLD-gated."""

from __future__ import annotations

from pathlib import Path

import httpx
from sqlalchemy import select

from shopbridge.channels.tiktok.signing import webhook_signature
from shopbridge.demo.world import APP_KEY, APP_SECRET
from shopbridge.store.db import reading, transaction
from shopbridge.store.tables import ChannelAccount, InboundEvent, Job, JobAttempt
from tests.integration.tiktok.harness import World, tiktok_world, wait_until


def test_an_order_appears_through_its_webhook(database_url: str, tmp_path: Path) -> None:
    with tiktok_world(database_url, tmp_path) as world:
        order_id = world.place_order({"TEE-M": 2, "MUG": 1})
        order = wait_until(lambda: world.hub_order(order_id), message="the order in the hub")
        assert order["status"] == "on_hold" and order["channel_status"] == "ON_HOLD"
        assert {line["sku"]: line["quantity"] for line in order["lines"]} == {"TEE-M": 2, "MUG": 1}
        assert len(order["lines"][0]["line_item_ids"]) in (1, 2)
        assert order["released_at"] is None, "never released while ON_HOLD"
        assert order["history"][0]["source"] in ("webhook", "poll")


def test_a_webhook_is_acknowledged_while_another_writer_holds_the_hubs_database(
    database_url: str, tmp_path: Path
) -> None:
    """The inbox does not share the hub's write lock (on SQLite it is a file of its own): a delivery is recorded
    and answered while a long transaction holds the hub's database, and its order syncs once that one commits."""
    with tiktok_world(database_url, tmp_path) as world:
        world.webhook_faults(drop_rate=1.0)  # only the delivery sent below reaches the hub
        order_id = world.place_order({"TEE-M": 1})
        notice = {"type": 1, "tts_notification_id": "held-1", "shop_id": world.shop_id, "timestamp": 1,
                  "data": {"order_id": order_id, "order_status": "ON_HOLD"}}  # fmt: skip
        with transaction(world.hub.sessions) as session:
            session.connection()  # on SQLite: BEGIN IMMEDIATE, the hub's write lock is ours until the block ends
            response = world.send_webhook(notice)
            assert response.status_code == 200, response.text
            with reading(world.hub.inbox_sessions) as inbox:
                event = inbox.scalar(select(InboundEvent).where(InboundEvent.event_id == "held-1"))
            assert event is not None and event.status == "received"
        order = wait_until(lambda: world.hub_order(order_id), message="the order synced after the writer finished")
        assert order["history"][0]["source"] == "webhook"


def test_with_every_webhook_dropped_the_poll_finds_the_order(database_url: str, tmp_path: Path) -> None:
    with tiktok_world(database_url, tmp_path, poll_seconds=1.0) as world:
        world.webhook_faults(drop_rate=1.0)
        order_id = world.place_order({"TEE-L": 1})
        order = wait_until(lambda: world.hub_order(order_id), message="the order found by the poll")
        assert order["history"][0]["source"] == "poll"


def test_an_order_is_released_only_after_the_hold(database_url: str, tmp_path: Path) -> None:
    with tiktok_world(database_url, tmp_path) as world:
        order_id = world.place_order({"TEE-M": 1})
        wait_until(lambda: world.hub_order(order_id), message="the order in the hub")
        world.advance(1800)
        assert world.sandbox_order(order_id)["status"] == "ON_HOLD"
        held = world.hub_order(order_id)
        assert held is not None and held["released_at"] is None
        world.advance(1801)
        released = wait_until(
            lambda: (order := world.hub_order(order_id)) and order["released_at"] and order,
            message="release after the hold",
        )
        assert released["status"] == "awaiting_shipment"
        assert [event["kind"] for event in released["events"]] == ["released"]
        assert released["recipient"], "the address arrives once the hold is over"


def test_an_order_cancelled_during_the_hold_is_never_released(database_url: str, tmp_path: Path) -> None:
    with tiktok_world(database_url, tmp_path) as world:
        order_id = world.place_order({"MUG": 3})
        wait_until(lambda: world.hub_order(order_id), message="the order in the hub")
        world.buyer_cancel(order_id)
        cancelled = wait_until(
            lambda: (order := world.hub_order(order_id)) and order["status"] == "cancelled" and order,
            message="the cancellation in the hub",
        )
        world.advance(7200)
        world.place_order({"MUG": 1})  # traffic after the hold, to prove the workers kept running
        wait_until(lambda: len(world.hub_orders()) == 2, message="the second order")
        final = world.hub_order(order_id)
        assert final is not None and final["released_at"] is None and final["events"] == []
        assert cancelled["channel_status"] == "CANCELLED"


def test_a_forged_webhook_gets_401_and_changes_nothing(database_url: str, tmp_path: Path) -> None:
    with tiktok_world(database_url, tmp_path) as world:
        forged = {"type": 1, "tts_notification_id": "1", "shop_id": world.shop_id, "timestamp": 1,
                  "data": {"order_id": "576000000000000001", "order_status": "AWAITING_SHIPMENT"}}  # fmt: skip
        assert world.send_webhook(forged, signature="0" * 64).status_code == 401
        assert world.send_webhook(forged, signature="").status_code == 401
        with world.hub.sessions() as session:
            assert session.scalars(select(Job).where(Job.kind == "tiktok.sync_orders")).all() == []
        metrics = world.api.get("/metrics").text
        assert 'shopbridge_webhooks_total{channel="tiktok",outcome="forged"} 2.0' in metrics


def test_a_malformed_signed_webhook_is_kept_and_named(database_url: str, tmp_path: Path) -> None:
    with tiktok_world(database_url, tmp_path) as world:
        response = world.send_webhook({"type": "one", "shop_id": world.shop_id, "data": {}})
        assert response.status_code == 400
        assert "'type' must be an integer" in response.json()["error"]


def test_deauthorization_parks_the_shops_jobs(database_url: str, tmp_path: Path) -> None:
    with tiktok_world(database_url, tmp_path) as world:
        notice = {"type": 6, "tts_notification_id": "deauth-1", "shop_id": world.shop_id, "timestamp": 1,
                  "data": {"message": "Shop is deauthorized from your APP by merchant."}}  # fmt: skip
        assert world.send_webhook(notice).status_code == 200

        def account() -> ChannelAccount:
            with world.hub.sessions() as session:
                found = session.scalar(select(ChannelAccount))
                assert found is not None
                return found

        wait_until(lambda: account().status == "needs_reauth", message="the account flagged")
        assert "deauthorized" in (account().status_reason or "")
        world.place_order({"TEE-M": 1})  # its webhook arrives, but the shop's work waits
        wait_until(lambda: _jobs(world, "tiktok.sync_orders", "parked"), message="the sync job parked")


def test_an_access_token_expiring_mid_run_is_refreshed_without_a_failed_job(database_url: str, tmp_path: Path) -> None:
    with tiktok_world(database_url, tmp_path) as world:
        first = world.place_order({"TEE-M": 1})
        wait_until(lambda: world.hub_order(first), message="the first order")
        world.advance(8 * 24 * 3600)  # past the 7-day access token
        second = world.place_order({"TEE-L": 1})
        wait_until(lambda: world.hub_order(second), message="the order after the token expired")
        with world.hub.sessions() as session:
            outcomes = set(session.scalars(select(JobAttempt.outcome)))
            account = session.scalar(select(ChannelAccount))
        assert outcomes == {"succeeded"}
        assert account is not None and account.status == "active"


def _jobs(world: World, kind: str, state: str) -> list[Job]:
    with world.hub.sessions() as session:
        return list(session.scalars(select(Job).where(Job.kind == kind, Job.state == state)))


def test_duplicated_and_reordered_webhooks_give_exactly_one_hub_order_each(database_url: str, tmp_path: Path) -> None:
    """500 orders, 30% of webhooks duplicated and deliveries reordered within 2 s: every order once, with the
    sandbox's own status, once the stream settles."""
    with tiktok_world(database_url, tmp_path) as world:
        world.webhook_faults(duplicate_rate=0.3, reorder_window_seconds=2.0)
        skus = ["TEE-M", "TEE-L", "MUG"]
        placed = [world.place_order({skus[n % 3]: 1 + n % 2}) for n in range(500)]
        for order_id in placed[::5]:
            world.buyer_cancel(order_id)
        world.advance(3601)  # the rest leave ON_HOLD, at once
        truth = {order_id: world.sandbox_order(order_id)["status"] for order_id in placed}

        def settled() -> bool:
            hub = {order["external_id"]: order["channel_status"] for order in world.hub_orders()}
            return hub == truth

        wait_until(settled, timeout=120, message="500 hub orders matching the sandbox")
        hub = {order["external_id"]: order for order in world.hub_orders()}
        assert len(world.hub_orders()) == 500
        assert sum(status == "CANCELLED" for status in truth.values()) == 100
        assert all(hub[order_id]["released_at"] is None for order_id in placed[::5])
        assert all(hub[order_id]["released_at"] for order_id in placed if truth[order_id] == "AWAITING_SHIPMENT")
        metrics = world.api.get("/metrics").text
        assert 'shopbridge_webhooks_total{channel="tiktok",outcome="duplicate"}' in metrics


def test_a_signed_webhook_nested_too_deep_is_refused_and_kept(database_url: str, tmp_path: Path) -> None:
    with tiktok_world(database_url, tmp_path) as world:
        deep = b'{"type":1,"tts_notification_id":"deep-1","shop_id":"' + world.shop_id.encode() + b'","data":'
        deep += b"[" * 100_000 + b"]" * 100_000 + b"}"
        response = httpx.post(f"{world.hub_url}/hooks/tiktok", content=deep,
                              headers={"authorization": webhook_signature(APP_KEY, APP_SECRET, deep)})  # fmt: skip
        assert response.status_code == 400, response.text
        assert "nested deeper than" in response.json()["error"]
        nested: object = 1
        for _ in range(40):  # just past the limit of 32 levels: refused by the hub's own check, not Python's
            nested = [nested]
        assert world.send_webhook(_notice(world, "deep-2", order_id=nested)).status_code == 400
        with reading(world.hub.inbox_sessions) as session:
            rejected = session.scalars(select(InboundEvent).where(InboundEvent.status == "rejected")).all()
        assert len(rejected) == 2 and all("nested deeper than" in (event.error or "") for event in rejected)


def test_unknown_webhook_types_are_kept_as_ignored_and_absurd_ones_refused(database_url: str, tmp_path: Path) -> None:
    with tiktok_world(database_url, tmp_path) as world:
        assert world.send_webhook({**_notice(world, "odd-1"), "type": 9999}).status_code == 200
        assert world.send_webhook({**_notice(world, "known-1"), "type": 15}).status_code == 200
        huge = world.send_webhook({**_notice(world, "huge-1"), "type": 2**200})
        assert huge.status_code == 400 and "'type' must be a TikTok event type" in huge.json()["error"]
        with reading(world.hub.inbox_sessions) as session:
            events = {event.event_id: event for event in session.scalars(select(InboundEvent))}
        assert events["odd-1"].status == "ignored" and events["odd-1"].error == "unknown TikTok event type 9999"
        assert events["known-1"].status == "processed", "a documented type is kept for the flows that will use it"
        assert events[next(key for key in events if key.startswith("sha256:"))].status == "rejected"


def _notice(world: World, notification_id: str, **data: object) -> dict[str, object]:
    return {"type": 1, "tts_notification_id": notification_id, "shop_id": world.shop_id, "timestamp": 1, "data": data}
