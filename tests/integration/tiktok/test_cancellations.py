"""Cancellations between the hub and TikTok: the hub's seller cancellations reach the sandbox with their reason,
and buyers' cancellation requests are read into the hub, listed by the API and the CLI, and answered there."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from typer.testing import CliRunner

from shopbridge.bootstrap import Hub
from shopbridge.channels.tiktok.cancellations import queue_cancellation_sync
from shopbridge.cli import app
from shopbridge.config import Settings
from shopbridge.runtime.jobs import enqueue
from shopbridge.services import order_views
from shopbridge.services.access import add_user, issue_token
from shopbridge.services.fulfilment import cancelled_in_store
from shopbridge.store.db import transaction
from shopbridge.store.tables import (
    AuditEntry,
    CancellationRequest,
    ChannelAccount,
    Job,
    OrderEvent,
    OrderLink,
    SyncIssue,
)
from tests.integration.tiktok.harness import World, tiktok_world, wait_until
from tests.integration.tiktok.test_fulfilment_back import released, store_account

runner = CliRunner()


def tiktok_account(world: World) -> int:
    with world.hub.sessions() as session:
        account_id = session.scalar(select(ChannelAccount.id).where(ChannelAccount.channel == "tiktok"))
        assert account_id is not None
        return account_id


def cancel_from_store(world: World, store_id: int, order_id: int, reason: str) -> None:
    """The store cancelled the order it had placed for TikTok's order (the store connector's call)."""
    now = world.hub.clock.now()
    with transaction(world.hub.sessions) as session:
        link = OrderLink(order_id=order_id, channel_account_id=store_id, external_id=f"S-{order_id}", state="placed",
                         created_at=now, updated_at=now)  # fmt: skip
        session.add(link)
        session.flush()
        assert cancelled_in_store(session, link, reason, now=now)


def cancel_jobs(world: World) -> list[Job]:
    with world.hub.sessions() as session:
        return list(session.scalars(select(Job).where(Job.kind == "tiktok.cancel_order").order_by(Job.id)))


def open_issues(world: World, kind: str) -> list[SyncIssue]:
    with world.hub.sessions() as session:
        return list(session.scalars(select(SyncIssue).where(SyncIssue.kind == kind, SyncIssue.status == "open")))


def test_a_seller_cancellation_reaches_tiktok_with_its_reason(database_url: str, tmp_path: Path) -> None:
    with tiktok_world(database_url, tmp_path) as world:
        store_id = store_account(world)
        external_id, order_id = released(world, {"TEE-M": 1, "MUG": 2})
        cancel_from_store(world, store_id, order_id, "out_of_stock")
        wait_until(lambda: world.sandbox_order(external_id)["status"] == "CANCELLED", message="cancelled on TikTok")
        truth = world.sandbox_order(external_id)
        assert truth["cancellation_initiator"] == "SELLER"
        assert {item["cancel_reason"] for item in truth["line_items"]} == {"Out of stock"}
        order = wait_until(lambda: (found := world.hub_order(external_id)) and found["status"] == "cancelled" and found,
                           message="the hub's order cancelled")  # fmt: skip
        with world.hub.sessions() as session:
            event = session.scalar(select(OrderEvent).where(OrderEvent.order_id == order["id"],
                                                            OrderEvent.kind == "seller_cancel_requested"))  # fmt: skip
        assert event is not None
        assert event.payload["cancel_reason"] == "seller_cancel_reason_out_of_stock"
        # Asked again (a replayed job): TikTok's order is cancelled already, so nothing more happens.
        with transaction(world.hub.sessions) as session:
            enqueue(session, "tiktok.cancel_order", {"order_id": order_id, "reason": "out_of_stock"},
                    now=world.hub.clock.now(), channel_account_id=tiktok_account(world))  # fmt: skip
        wait_until(lambda: [job.state for job in cancel_jobs(world)] == ["succeeded", "succeeded"],
                   message="both cancellation jobs done")  # fmt: skip
        assert open_issues(world, "cancel_refused") == []


def test_staff_cancel_a_tiktok_order_from_the_hub_and_its_page_shows_the_work(database_url: str,
                                                                              tmp_path: Path) -> None:  # fmt: skip
    with tiktok_world(database_url, tmp_path) as world:
        external_id, order_id = released(world, {"TEE-M": 1})
        asked = world.api.post(f"/api/v1/orders/{order_id}/cancel", json={"reason": "staff"})
        assert asked.status_code == 202, asked.text
        assert asked.json()["done"] is False and "TikTok" in asked.json()["message"]
        wait_until(lambda: world.sandbox_order(external_id)["status"] == "CANCELLED", message="cancelled on TikTok")
        assert {item["cancel_reason"] for item in world.sandbox_order(external_id)["line_items"]} == {"Pricing error"}
        wait_until(lambda: (found := world.hub_order(external_id)) and found["status"] == "cancelled",
                   message="the hub's order cancelled")  # fmt: skip
        with world.hub.sessions() as session:
            work = order_views.sync_attempts(session, order_id)
        cancelling = [job for job in work if job["kind"] == "tiktok.cancel_order"]
        assert cancelling and cancelling[0]["state"] == "succeeded"
        assert [attempt["outcome"] for attempt in cancelling[0]["attempts"]] == ["succeeded"]
        again = world.api.post(f"/api/v1/orders/{order_id}/cancel", json={"reason": "staff"})
        assert again.status_code == 409 and "cancelled already" in again.json()["detail"]
        unknown = world.api.post("/api/v1/orders/987654/cancel", json={"reason": "staff"})
        assert unknown.status_code == 404
        wrong = world.api.post(f"/api/v1/orders/{order_id}/cancel", json={"reason": "bored"})
        assert wrong.status_code == 422
        with world.hub.sessions() as session:
            entry = session.scalar(select(AuditEntry).where(AuditEntry.action == "order.cancel"))
        assert entry is not None and entry.after == {"reason": "staff", "done": False}


def test_a_cancellation_tiktok_refuses_is_an_issue_with_tiktoks_reason(database_url: str, tmp_path: Path) -> None:
    with tiktok_world(database_url, tmp_path) as world:
        store_id = store_account(world)
        external_id, order_id = released(world, {"TEE-L": 1})
        world.control.post(f"/_sandbox/orders/{external_id}/ship").raise_for_status()  # shipped meanwhile
        cancel_from_store(world, store_id, order_id, "staff")
        [issue] = wait_until(lambda: open_issues(world, "cancel_refused"), message="the refusal as an issue")
        assert "cannot be cancelled" in issue.message and external_id in issue.message
        assert issue.details["cancel_reason"] == "seller_cancel_reason_wrong_price"
        assert issue.details["tiktok_status"] == "AWAITING_COLLECTION" and issue.details["act"] == "ops"
        assert world.sandbox_order(external_id)["status"] == "AWAITING_COLLECTION"


def requests(world: World, **params: Any) -> list[dict[str, Any]]:
    response = world.api.get("/api/v1/cancellations", params=params)
    response.raise_for_status()
    return list(response.json()["cancellations"])


def buyer_request(world: World, items: dict[str, int]) -> tuple[str, dict[str, Any]]:
    """A released order whose buyer asks to cancel it, read into the hub (the order's webhook, then its sync, which
    sees the request and reads the shop's requests): (TikTok id, the listed request)."""
    external_id, order_id = released(world, items)
    world.buyer_cancel(external_id)
    listed = wait_until(
        lambda: [found for found in requests(world, state="pending") if found["external_order_id"] == external_id],
        message="the buyer's request listed",
    )  # fmt: skip
    assert listed[0]["order_id"] == order_id
    return external_id, listed[0]


def test_a_buyers_request_is_listed_and_approving_it_cancels_the_order(database_url: str, tmp_path: Path) -> None:
    with tiktok_world(database_url, tmp_path) as world:
        external_id, request = buyer_request(world, {"MUG": 1})
        assert request["channel"] == "tiktok" and request["channel_status"] == "CANCELLATION_REQUEST_PENDING"
        assert request["reason"] == "Changed my mind"
        requested_at = datetime.fromisoformat(request["requested_at"])
        assert datetime.fromisoformat(request["respond_by"]) - requested_at == timedelta(hours=24)
        answered = world.api.post(f"/api/v1/cancellations/{request['id']}/approve")
        assert answered.status_code == 202, answered.text
        assert answered.json()["state"] == "approving"
        wait_until(lambda: world.sandbox_order(external_id)["status"] == "CANCELLED", message="cancelled on TikTok")
        [approved] = wait_until(lambda: requests(world, state="approved"), message="the request approved")
        assert approved["answered_by"] == "owner@example.com" and approved["answered_at"]
        again = world.api.post(f"/api/v1/cancellations/{request['id']}/approve")
        assert again.status_code == 409 and "approved, not pending" in again.json()["detail"]
        assert world.api.post("/api/v1/cancellations/987654/approve").status_code == 404
        with world.hub.sessions() as session:
            audit = session.scalar(select(AuditEntry).where(AuditEntry.action == "cancellation.approve"))
        assert audit is not None and audit.actor == "owner@example.com"
        wait_until(lambda: (order := world.hub_order(external_id)) and order["status"] == "cancelled",
                   message="the hub's order cancelled")  # fmt: skip


def test_rejecting_a_buyers_request_keeps_the_order(database_url: str, tmp_path: Path) -> None:
    with tiktok_world(database_url, tmp_path) as world:
        external_id, request = buyer_request(world, {"TEE-M": 1})
        assert world.sandbox_order(external_id)["is_buyer_request_cancel"] is True
        answered = world.api.post(f"/api/v1/cancellations/{request['id']}/reject",
                                  json={"reason": "Package has been shipped"})  # fmt: skip
        assert answered.status_code == 202, answered.text
        [rejected] = wait_until(lambda: requests(world, state="rejected"), message="the request rejected")
        assert rejected["channel_status"] == "CANCELLATION_REQUEST_CANCEL" and rejected["error"] is None
        truth = world.sandbox_order(external_id)
        assert truth["status"] == "AWAITING_SHIPMENT" and truth["is_buyer_request_cancel"] is False


def test_a_request_settled_on_tiktok_is_closed_and_cannot_be_answered(database_url: str, tmp_path: Path) -> None:
    with tiktok_world(database_url, tmp_path) as world:
        external_id, request = buyer_request(world, {"TEE-L": 1})
        world.advance(24 * 3600 + 60)  # unanswered: TikTok approves it at its deadline
        assert world.sandbox_order(external_id)["status"] == "CANCELLED"
        with transaction(world.hub.sessions) as session:
            queue_cancellation_sync(session, tiktok_account(world), now=world.hub.clock.now())
        [closed] = wait_until(lambda: requests(world, state="closed"), message="the request closed")
        assert closed["id"] == request["id"] and closed["channel_status"] == "CANCELLATION_REQUEST_SUCCESS"
        refused = world.api.post(f"/api/v1/cancellations/{request['id']}/reject")
        assert refused.status_code == 409 and "closed" in refused.json()["detail"]


def test_only_operators_answer_requests(database_url: str, tmp_path: Path) -> None:
    with tiktok_world(database_url, tmp_path) as world:
        _, request = buyer_request(world, {"MUG": 1})
        with transaction(world.hub.sessions) as session:
            add_user(session, "viewer@example.com", "viewer", now=world.hub.clock.now())
            token = issue_token(session, "viewer@example.com", "tests", now=world.hub.clock.now())
        viewer = {"authorization": f"Bearer {token}"}
        assert world.api.get("/api/v1/cancellations", headers=viewer).status_code == 200
        refused = world.api.post(f"/api/v1/cancellations/{request['id']}/approve", headers=viewer)
        assert refused.status_code == 403
        assert requests(world, state="pending")[0]["id"] == request["id"]
        bad_state = world.api.get("/api/v1/cancellations", params={"state": "maybe"})
        assert bad_state.status_code == 422


def test_the_command_line_lists_and_answers_requests(env: Settings, hub: Hub) -> None:
    now = datetime.now(UTC)
    with transaction(hub.sessions) as session:
        account = ChannelAccount(channel="tiktok", label="TikTok Shop Maomao", external_id="7000")
        session.add(account)
        session.flush()
        for number in (1, 2):
            session.add(CancellationRequest(channel_account_id=account.id, external_id=f"C-{number}",
                                            external_order_id=f"57700{number}", state="pending",
                                            reason="Changed my mind", respond_by=now + timedelta(hours=number),
                                            requested_at=now))  # fmt: skip
        add_user(session, "ops@example.com", "ops", now=now)
        add_user(session, "support@example.com", "support", now=now)
    listed = runner.invoke(app, ["cancellations", "list"])
    assert listed.exit_code == 0, listed.output
    assert "577001" in listed.output and "577002" in listed.output and "Changed my mind" in listed.output
    with hub.sessions() as session:
        first, second = session.scalars(select(CancellationRequest.id).order_by(CancellationRequest.id)).all()
    refused = runner.invoke(app, ["cancellations", "approve", str(first), "--as", "support@example.com"])
    assert (
        refused.exit_code == 2
        and "support@example.com is support: this change needs one of: owner, ops" in refused.output
    )
    approved = runner.invoke(app, ["cancellations", "approve", str(first), "--as", "ops@example.com"])
    assert approved.exit_code == 0, approved.output
    rejected = runner.invoke(app, ["cancellations", "reject", str(second), "--reason", "Product has been packed"])
    assert rejected.exit_code == 0, rejected.output
    again = runner.invoke(app, ["cancellations", "reject", str(second)])
    assert again.exit_code == 2 and "rejecting, not pending" in again.output
    with hub.sessions() as session:
        rows = {row.id: row for row in session.scalars(select(CancellationRequest))}
        answers = session.scalars(select(Job).where(Job.kind == "tiktok.answer_cancellation").order_by(Job.id)).all()
    assert (rows[first].state, rows[first].answered_by) == ("approving", "ops@example.com")
    assert rows[second].state == "rejecting" and rows[second].answered_by.startswith("cli:")
    assert [job.payload for job in answers] == [
        {"request_id": first, "approve": True},
        {"request_id": second, "approve": False, "reason": "Product has been packed"},
    ]
    shown = runner.invoke(app, ["cancellations", "list", "--state", ""])
    assert shown.exit_code == 0 and "approving" in shown.output and "rejecting" in shown.output
