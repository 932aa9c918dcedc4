"""One order TikTok refuses must not stall a shop: it is set aside as a dead letter of its own, with TikTok's reason,
and the shop's other orders keep arriving by webhook."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from shopbridge.channels.tiktok.sync import POLL_ORDERS, SYNC_ORDERS
from shopbridge.runtime import jobs
from shopbridge.store.db import reading, transaction
from shopbridge.store.tables import ChannelAccount, InboundEvent, Job, SyncIssue
from tests.integration.tiktok.harness import World, tiktok_world, wait_until

REFUSED = "21008111"  # The order or package does not belong to the current seller.


def _notice(world: World, notification_id: str, **data: object) -> dict[str, object]:
    return {"type": 1, "tts_notification_id": notification_id, "shop_id": world.shop_id, "timestamp": 1, "data": data}


def _dead_syncs(world: World) -> list[Job]:
    with reading(world.hub.sessions) as session:
        return list(session.scalars(select(Job).where(Job.kind == SYNC_ORDERS, Job.state == "dead").order_by(Job.id)))


def _event(world: World, notification_id: str) -> InboundEvent:
    with reading(world.hub.inbox_sessions) as session:
        event = session.scalar(select(InboundEvent).where(InboundEvent.event_id == notification_id))
    assert event is not None
    return event


def test_an_order_tiktok_refuses_is_set_aside_and_later_orders_arrive_by_webhook(
    database_url: str, tmp_path: Path
) -> None:
    with tiktok_world(database_url, tmp_path) as world:  # the poll runs hourly: whatever arrives, a webhook brought
        wait_until(lambda: _polled(world), message="the first poll, run at connection, done")
        assert world.send_webhook(_notice(world, "poison-1", order_id="1")).status_code == 200
        dead = wait_until(lambda: _dead_syncs(world), message="the refused order set aside as a dead letter")
        assert len(dead) == 1 and dead[0].payload == {"order_ids": ["1"], "source": "retry"}
        assert dead[0].last_error is not None and "order 1" in dead[0].last_error and REFUSED in dead[0].last_error
        failed = wait_until(lambda: (event := _event(world, "poison-1")).status == "failed" and event)
        assert failed.error is not None and REFUSED in failed.error

        placed = [world.place_order({"TEE-M": 1}), world.place_order({"MUG": 2})]
        for order_id in placed:
            order = wait_until(lambda order_id=order_id: world.hub_order(order_id), timeout=10, message=order_id)
            assert order["history"][0]["source"] == "webhook"
        assert len(_dead_syncs(world)) == 1, "the shop's own syncs succeed; only the refused order is dead"
        with reading(world.hub.sessions) as session:
            issue = session.scalar(select(SyncIssue).where(SyncIssue.fingerprint == f"job:{dead[0].id}"))
        assert issue is not None and issue.kind == "dead_letter" and REFUSED in issue.message


def test_a_batch_naming_a_refused_order_still_stores_the_others(database_url: str, tmp_path: Path) -> None:
    with tiktok_world(database_url, tmp_path) as world:
        wait_until(lambda: _polled(world), message="the first poll, run at connection, done")
        world.webhook_faults(drop_rate=1.0)  # only the hand-made delivery below names the orders
        good = world.place_order({"TEE-L": 1})
        package_update = {"type": 4, "tts_notification_id": "package-1", "shop_id": world.shop_id, "timestamp": 1,
                          "data": {"package_list": [{"package_id": "9", "order_id_list": ["1", good]}]}}  # fmt: skip
        assert world.send_webhook(package_update).status_code == 200
        order = wait_until(lambda: world.hub_order(good), message="the readable order of the batch")
        assert order["history"][0]["source"] == "webhook"
        dead = wait_until(lambda: _dead_syncs(world), message="the refused order set aside")
        assert [job.payload["order_ids"] for job in dead] == [["1"]]
        assert wait_until(lambda: _event(world, "package-1").status == "processed"), "it named a readable order too"


def test_a_retried_dead_letter_of_a_refused_order_dies_again_on_its_own(database_url: str, tmp_path: Path) -> None:
    with tiktok_world(database_url, tmp_path) as world:
        assert world.send_webhook(_notice(world, "poison-2", order_id="2")).status_code == 200
        dead = wait_until(lambda: _dead_syncs(world), message="the refused order set aside")[0]
        with transaction(world.hub.sessions) as session:
            jobs.retry_dead(session, dead.id, now=world.hub.clock.now())
        wait_until(lambda: (job := _job(world, dead.id)).state == "dead" and job.attempts == 1, message="dead again")
        assert len(_dead_syncs(world)) == 1, "retrying it makes no second dead letter"
        with reading(world.hub.sessions) as session:
            account = session.scalar(select(ChannelAccount))
        assert account is not None and account.status == "active"


def _polled(world: World) -> bool:
    with reading(world.hub.sessions) as session:
        return session.scalar(select(Job.id).where(Job.kind == POLL_ORDERS, Job.state == "succeeded")) is not None


def _job(world: World, job_id: int) -> Job:
    with reading(world.hub.sessions) as session:
        job = session.get(Job, job_id)
    assert job is not None
    return job
