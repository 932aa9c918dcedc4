"""Status drift between the POS, the hub and TikTok, injected without the events that would have told the hub:
each kind is reported by the POS's drift check with the role that should act, what is safe to repair is repaired,
and the check is recorded; a world in step reports nothing."""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from sqlalchemy import select

from shopbridge.demo.world import Pos, World, wait_until
from shopbridge.services.drift import queue_checks
from shopbridge.store.db import transaction
from shopbridge.store.tables import DriftCheck, Job, StoreReturn, SyncIssue
from tests.integration.pos.test_pos_loop import link, pos_world, released, task_for
from tests.integration.tiktok.test_returns import seller_refunds


def drift_world(database_url: str, data_dir: Path) -> AbstractContextManager[tuple[World, Pos]]:
    """The POS loop's world, with the hub's scheduled drift checks an hour apart: the tests ask for each check
    themselves, and a scheduled one would otherwise find (and repair) their drift first."""
    return pos_world(database_url, data_dir, hub_settings={"drift_check_seconds": 3600.0})


def check(world: World) -> DriftCheck:
    """Run the POS's drift check now (suspects confirmed half a second later) and wait for its record."""
    assert world.pos is not None

    def idle() -> bool:
        """No check of the POS is running: one the schedule started may have read the POS before the test's change
        and would be recorded after it."""
        with world.hub.sessions() as session:
            running = select(Job.id).where(Job.kind == "pos.check_drift", Job.state == "running")
            return session.scalar(running.limit(1)) is None

    wait_until(idle, message="no POS drift check running")
    with world.hub.sessions() as session:
        before = session.scalar(select(DriftCheck.id).order_by(DriftCheck.id.desc()).limit(1)) or 0
    with transaction(world.hub.sessions) as session:
        queued = queue_checks(session, {"pos.check_drift"}, now=world.hub.clock.now(), settle_seconds=0.5)
        assert [account.id for account, _ in queued] == [world.pos.account_id]

    def recorded() -> DriftCheck | None:
        with world.hub.sessions() as session:
            row = session.scalar(select(DriftCheck).where(DriftCheck.id > before,
                                                          DriftCheck.channel_account_id == world.pos.account_id))  # type: ignore[union-attr]  # fmt: skip
            if row is not None:
                session.expunge(row)
            return row

    return wait_until(recorded, message="the POS's drift check recorded")  # type: ignore[no-any-return]


def drift_issues(world: World) -> dict[str, SyncIssue]:
    with world.hub.sessions() as session:
        rows = session.scalars(select(SyncIssue).where(SyncIssue.kind == "status_drift", SyncIssue.status == "open"))
        found = {str((row.details or {}).get("drift")): row for row in rows}
        session.expunge_all()
        return found


def shipped_silently(world: World, pos: Pos) -> tuple[str, int, dict[str, Any]]:
    external_id, order_id = released(world, {"TEE-M": 1})
    task = task_for(pos, external_id)
    wait_until(lambda: link(world, order_id).state == "placed", message="placed")
    pos.ship(task["task_id"], silent=True, carrier="UPS", tracking_number="1ZSILENT0001")
    return external_id, order_id, task


def test_a_world_in_step_reports_no_drift(database_url: str, tmp_path: Path) -> None:
    with drift_world(database_url, tmp_path) as (world, pos):
        external_id, order_id = released(world, {"TEE-M": 1})
        task = task_for(pos, external_id)
        wait_until(lambda: link(world, order_id).state == "placed", message="placed")
        _, waiting = released(world, {"MUG": 1})
        wait_until(lambda: link(world, waiting).state == "placed", message="the second placed")
        pos.ship(task["task_id"])
        wait_until(lambda: world.sandbox_order(external_id)["status"] == "AWAITING_COLLECTION", message="shipped")
        wait_until(lambda: world.hub_order(external_id)["status"] != "awaiting_shipment", message="shipped in the hub")  # type: ignore[index]
        # The order still to ship is compared (the shipped one is no longer open), and agrees.
        done = check(world)
        assert (done.orders_checked, done.drifted, done.repaired, done.kinds) == (1, 0, 0, {})
        assert drift_issues(world) == {}


def test_a_shipment_the_hub_never_heard_of_is_reported_and_its_tracking_sent(database_url: str, tmp_path: Path) -> None:
    with drift_world(database_url, tmp_path) as (world, pos):
        external_id, _, _ = shipped_silently(world, pos)
        done = check(world)
        assert (done.drifted, done.repaired, done.kinds) == (1, 1, {"shipped_not_recorded": 1})
        issue = drift_issues(world)["shipped_not_recorded"]
        assert issue.details["act"] == "none" and "1ZSILENT0001" in issue.message
        tracked = wait_until(
            lambda: [item for item in world.sandbox_order(external_id)["line_items"] if item.get("tracking_number")],
            message="the tracking on TikTok",
        )  # fmt: skip
        assert {item["tracking_number"] for item in tracked} == {"1ZSILENT0001"}


def test_a_return_the_hub_never_heard_of_is_reported_and_refunded_once(database_url: str, tmp_path: Path) -> None:
    with drift_world(database_url, tmp_path) as (world, pos):
        external_id, order_id = released(world, {"TEE-M": 1})
        task = task_for(pos, external_id)
        pos.ship(task["task_id"])
        wait_until(lambda: world.sandbox_order(external_id)["status"] == "AWAITING_COLLECTION", message="shipped")
        for step in ("collect", "deliver"):
            world.control.post(f"/_sandbox/orders/{external_id}/{step}").raise_for_status()
        pos.take_return("store-downtown", {"task_ref": task["task_ref"]}, {"TEE-M": (1, 1)}, silent=True)
        done = check(world)
        assert done.kinds == {"returned_not_recorded": 1} and done.repaired == 1
        assert drift_issues(world)["returned_not_recorded"].details["act"] == "none"
        with world.hub.sessions() as session:
            rows = list(session.scalars(select(StoreReturn).where(StoreReturn.order_id == order_id)))
            assert len(rows) == 1
        wait_until(lambda: len(seller_refunds(world, external_id)) == 1, message="refunded on TikTok")
        again = check(world)
        assert again.drifted == 0 and len(seller_refunds(world, external_id)) == 1


def test_a_task_the_store_cancelled_silently_cancels_the_order_on_tiktok(database_url: str, tmp_path: Path) -> None:
    with drift_world(database_url, tmp_path) as (world, pos):
        external_id, order_id = released(world, {"TEE-M": 1})
        task = task_for(pos, external_id)
        wait_until(lambda: link(world, order_id).state == "placed", message="placed")
        pos.cancel_task(task["task_id"], silent=True)
        done = check(world)
        assert done.kinds == {"cancelled_at_fulfiller": 1}
        wait_until(lambda: world.sandbox_order(external_id)["status"] == "CANCELLED", message="cancelled on TikTok")
