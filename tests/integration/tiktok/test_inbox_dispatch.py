"""From the inbox to jobs: what a stopped process recorded but never queued is queued by the dispatcher's sweep."""

from __future__ import annotations

import json

from sqlalchemy import select

from shopbridge.bootstrap import Hub
from shopbridge.channels.tiktok.receiver import Work, queue_work, waiting_work
from shopbridge.runtime import inbox
from shopbridge.runtime.dispatch import Dispatcher
from shopbridge.store.db import transaction
from shopbridge.store.tables import ChannelAccount, InboundEvent, Job


def _event(kind: int, data: dict[str, object]) -> str:
    return json.dumps({"type": kind, "shop_id": "shop-1", "timestamp": 1, "data": data})


def test_the_sweep_queues_the_work_of_events_left_received(hub: Hub) -> None:
    now = hub.clock.now()
    with transaction(hub.sessions) as session:
        account = ChannelAccount(channel="tiktok", label="Shop", external_id="shop-1")
        session.add(account)
        session.flush()
        account_id = account.id
    with transaction(hub.inbox_sessions) as session:  # acknowledged, then the process stopped
        for n in range(3):
            inbox.record(session, source="tiktok", event_id=f"order-{n}", event_type="1", channel_account_id=account_id,
                         payload=_event(1, {"order_id": f"57600{n}"}), now=now)  # fmt: skip
        deauthorized = inbox.record(session, source="tiktok", event_id="deauth", event_type="6",
                                    channel_account_id=account_id, now=now,
                                    payload=_event(6, {"message": "removed by the merchant"})).id  # fmt: skip
        inbox.record(session, source="tiktok", event_id="done", event_type="1", channel_account_id=account_id,
                     payload=_event(1, {"order_id": "576009"}), now=now, status="processed")  # fmt: skip

    dispatcher: Dispatcher[Work] = Dispatcher(
        lambda works: queue_work(hub.sessions, hub.inbox_sessions, works, now=now),
        sweep=lambda: waiting_work(hub.sessions, hub.inbox_sessions), name="test",
    )  # fmt: skip
    assert dispatcher.flush(10), "the first sweep ran on start"
    dispatcher.stop()

    with hub.sessions() as session:
        queued = session.execute(select(Job.kind, Job.identity_key, Job.payload).order_by(Job.kind)).all()
    assert queued == [
        ("tiktok.deauthorized", f"tiktok.deauthorized:{account_id}", {"message": "removed by the merchant"}),
        ("tiktok.sync_orders", f"tiktok.sync_orders:{account_id}", {"source": "webhook"}),
    ], "one sync for the shop's three order events, one job for the deauthorization"
    with hub.inbox_sessions() as session:
        statuses = dict(session.execute(select(InboundEvent.event_id, InboundEvent.status)).all())
    assert statuses["deauth"] == "processed", f"inbox row {deauthorized} is done once its job is queued"
    assert [statuses[f"order-{n}"] for n in range(3)] == ["received"] * 3, "the sync marks order events itself"

    queue_work(hub.sessions, hub.inbox_sessions, waiting_work(hub.sessions, hub.inbox_sessions), now=now)
    with hub.sessions() as session:
        assert len(session.scalars(select(Job)).all()) == 2, "a second sweep joins the waiting jobs"


def test_the_sweep_leaves_a_shop_whose_latest_sync_went_dead(hub: Hub) -> None:
    """A sync that dead-lettered already raised its sync issue; the sweep must not stack a new one every round."""
    now = hub.clock.now()
    with transaction(hub.sessions) as session:
        accounts = [ChannelAccount(channel="tiktok", label=f"Shop {n}", external_id=f"shop-{n}") for n in (1, 2)]
        session.add_all(accounts)
        session.flush()
        broken, healthy = (account.id for account in accounts)
        session.add(Job(kind="tiktok.sync_orders", payload={}, state="dead", priority=5, due_at=now, attempts=8,
                        max_attempts=8, channel_account_id=broken, created_at=now,
                        identity_key=f"tiktok.sync_orders:{broken}"))  # fmt: skip
        # An order TikTok refused, set aside as a dead letter of its own: the healthy shop's syncs go on.
        session.add(Job(kind="tiktok.sync_orders", payload={"order_ids": ["1"]}, state="dead", priority=100,
                        due_at=now, attempts=1, max_attempts=8, channel_account_id=healthy, created_at=now,
                        identity_key=f"tiktok.sync_orders:{healthy}:order:1"))  # fmt: skip
    with transaction(hub.inbox_sessions) as session:
        for account_id in (broken, healthy):
            inbox.record(session, source="tiktok", event_id=f"order-{account_id}", event_type="1",
                         channel_account_id=account_id, payload=_event(1, {"order_id": "576"}), now=now)  # fmt: skip
    assert waiting_work(hub.sessions, hub.inbox_sessions) == [Work(healthy, "tiktok.sync_orders")]
