"""Returns between the hub and TikTok: a return a store took back for a TikTok order is refunded on the sandbox for
exactly its units, once, whatever is retried or lost on the way; TikTok's refusal is an issue whose retry asks
again; buyers' return and refund requests are read into the hub with their deadlines and answered from it."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select
from typer.testing import CliRunner

from shopbridge.bootstrap import Hub
from shopbridge.channels.tiktok.channel import context_of
from shopbridge.channels.tiktok.returns import CREATE_PATH, SEARCH_PATH
from shopbridge.channels.tiktok.shop import Shop
from shopbridge.cli import app
from shopbridge.config import Settings
from shopbridge.runtime.jobs import enqueue
from shopbridge.services import returns
from shopbridge.services.access import add_user
from shopbridge.services.returns import ReturnedLine, ReturnIn, record_store_return
from shopbridge.store.db import transaction
from shopbridge.store.tables import (
    AuditEntry,
    ChannelAccount,
    Job,
    Order,
    ReturnRequest,
    StoreReturn,
    SyncIssue,
)
from tests.integration.tiktok.harness import World, tiktok_world, wait_until

runner = CliRunner()
HOLD_SECONDS = 3601


# --- the world ------------------------------------------------------------------------------------------------


def tiktok_account(world: World) -> int:
    with world.hub.sessions() as session:
        account_id = session.scalar(select(ChannelAccount.id).where(ChannelAccount.channel == "tiktok"))
        assert account_id is not None
        return account_id


def pos_account(world: World) -> int:
    """The POS's account: just its row (the POS connector is not part of these tests)."""
    with transaction(world.hub.sessions) as session:
        pos = ChannelAccount(channel="pos", label="POS Shop Front", external_id="pos-1",
                             settings={"fulfils_orders": False})  # fmt: skip
        session.add(pos)
        session.flush()
        return pos.id


def paid_order(world: World, items: dict[str, int]) -> str:
    """A TikTok order past its hold (AWAITING_SHIPMENT), with 2.00 tax, in the hub: its TikTok id."""
    external_id = world.place_order(items, tax="2.00", shipping_fee="5.00")
    wait_until(lambda: world.hub_order(external_id), message="the order in the hub")
    world.advance(HOLD_SECONDS)
    wait_until(lambda: world.sandbox_order(external_id)["status"] == "AWAITING_SHIPMENT", message="past its hold")
    return external_id


def deliver(world: World, external_id: str) -> None:
    for step in ("ship", "collect", "deliver"):
        world.control.post(f"/_sandbox/orders/{external_id}/{step}").raise_for_status()
    assert world.sandbox_order(external_id)["status"] == "DELIVERED"


def delivered_order(world: World, items: dict[str, int]) -> str:
    external_id = paid_order(world, items)
    deliver(world, external_id)
    return external_id


def take_back(world: World, pos_id: int, number: str, external_id: str, lines: dict[str, int]) -> int:
    """What the POS connector does with a return at its desk: the store return, once; its refund queued."""
    now = world.hub.clock.now()
    taken = ReturnIn(number, None, {"channel": "tiktok", "order_id": external_id},
                     [ReturnedLine(sku, units, units) for sku, units in lines.items()], returned_at=now)  # fmt: skip
    with transaction(world.hub.sessions) as session:
        pos = session.get(ChannelAccount, pos_id)
        assert pos is not None
        row, new = record_store_return(session, pos, taken, now=now)
        assert new and row.state == "refunding", row.error
        return row.id


def store_return(world: World, return_id: int) -> StoreReturn:
    with world.hub.sessions() as session:
        found = session.get(StoreReturn, return_id)
        assert found is not None
        return found


def settled(world: World, return_id: int, state: str) -> StoreReturn:
    return wait_until(lambda: (row := store_return(world, return_id)).state == state and row,
                      message=f"store return {return_id} {state}")  # fmt: skip


def seller_refunds(world: World, external_id: str) -> list[dict[str, Any]]:
    """The refunds TikTok has on the order that the seller opened, as its Partner API lists them."""
    context = context_of(world.hub.channels)
    assert context is not None
    shop = Shop(context, tiktok_account(world))
    return [found for found in shop.pages("POST", SEARCH_PATH, "return_orders", body={"order_ids": [external_id]})
            if found["role"] == "SELLER"]  # fmt: skip


def units(found: dict[str, Any]) -> list[str]:
    return [item["order_line_item_id"] for item in found["return_line_items"]]


def sku_id(world: World, sku: str) -> str:
    return world.sku_ids[sku]


def refund_jobs(world: World, return_id: int) -> list[Job]:
    with world.hub.sessions() as session:
        jobs = session.scalars(select(Job).where(Job.kind == "tiktok.refund_return").order_by(Job.id))
        return [job for job in jobs if job.payload == {"return_id": return_id}]


def creates_answered(world: World) -> int:
    """Create Return calls the sandbox answered (whether or not the answer reached the hub)."""
    calls = world.control.get("/_sandbox/truth/api_calls").json()["calls"]
    return sum(call["count"] for call in calls if call["endpoint"] == f"POST {CREATE_PATH}" and call["code"] == 0)


def open_issues(world: World, kind: str) -> list[SyncIssue]:
    with world.hub.sessions() as session:
        return list(session.scalars(select(SyncIssue).where(SyncIssue.kind == kind, SyncIssue.status == "open")))


def audit(world: World, action: str) -> list[AuditEntry]:
    with world.hub.sessions() as session:
        return list(session.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)))


def requests(world: World, **params: Any) -> list[dict[str, Any]]:
    response = world.api.get("/api/v1/return-requests", params=params)
    response.raise_for_status()
    return list(response.json()["return_requests"])


def request_of(world: World, external_order_id: str, state: str, action: str | None = None) -> dict[str, Any]:
    """The order's request once it shows in ``state`` (and waits for ``action``)."""
    return wait_until(
        lambda: next((found for found in requests(world, state=state) if found["external_order_id"] == external_order_id
                      and (action is None or found["next_action"] == action)), None),
        message=f"the request of {external_order_id} {state}",
    )  # fmt: skip


def buyer_asks(world: World, external_id: str, return_type: str, skus: list[str]) -> dict[str, Any]:
    """The buyer asks TikTok for a refund (or a return and refund) of one unit of each of ``skus``."""
    line_items = world.sandbox_order(external_id)["line_items"]
    chosen = [next(item["id"] for item in line_items if item["seller_sku"] == sku) for sku in skus]
    response = world.control.post(f"/_sandbox/orders/{external_id}/request_return",
                                  json={"return_type": return_type, "line_item_ids": chosen})  # fmt: skip
    response.raise_for_status()
    return dict(response.json())


class LossyTransport(httpx.BaseTransport):
    """The hub's way to the sandbox, which can lose TikTok's answers on one path: the sandbox did the work, the hub
    hears a timeout."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.lose: dict[str, int] = {}
        self.lost = 0
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        with self._lock:
            losing = self.lose.get(request.url.path, 0) > 0
            if losing:
                self.lose[request.url.path] -= 1
                self.lost += 1
        if losing:
            response.read()
            response.close()
            raise httpx.ReadTimeout("the answer was lost on its way back", request=request)
        return response

    def close(self) -> None:
        self.inner.close()


# --- store returns refunded on TikTok -------------------------------------------------------------------------


def test_a_store_return_of_one_unit_refunds_it_once_and_the_next_the_other(database_url: str, tmp_path: Path) -> None:
    with tiktok_world(database_url, tmp_path) as world:
        pos_id = pos_account(world)
        external_id = delivered_order(world, {"TEE-M": 2, "MUG": 1})
        first = take_back(world, pos_id, "R-1", external_id, {"TEE-M": 1})
        row = settled(world, first, "refunded")
        [refund] = seller_refunds(world, external_id)
        assert [item["sku_id"] for item in refund["return_line_items"]] == [sku_id(world, "TEE-M")]
        assert refund["return_type"] == "REFUND" and refund["return_reason"]
        # One tee of two: its price and a third of the order's tax (three units), as TikTok calculated it.
        assert refund["refund_amount"]["refund_total"] == "20.57"
        assert (row.refund_external_id, row.refund_minor, row.currency) == (refund["return_id"], 2057, "USD")
        assert row.refund_status == "RETURN_OR_REFUND_REQUEST_SUCCESS" and row.error is None
        assert creates_answered(world) == 1

        # The job again (a replay): the return is refunded, so TikTok is not asked.
        tiktok_id = tiktok_account(world)
        with transaction(world.hub.sessions) as session:
            enqueue(session, "tiktok.refund_return", {"return_id": first}, now=world.hub.clock.now(),
                    channel_account_id=tiktok_id)  # fmt: skip
        wait_until(lambda: [job.state for job in refund_jobs(world, first)] == ["succeeded", "succeeded"],
                   message="the replayed job done")  # fmt: skip
        # The hub's commit lost after TikTok refunded (a crash): the next run finds the refund instead of a second.
        with transaction(world.hub.sessions) as session:
            lost = session.get(StoreReturn, first)
            assert lost is not None
            lost.state, lost.refund_external_id, lost.refund_status, lost.refund_minor = "refunding", None, None, None
            enqueue(session, "tiktok.refund_return", {"return_id": first}, now=world.hub.clock.now(),
                    channel_account_id=tiktok_id)  # fmt: skip
        again = settled(world, first, "refunded")
        assert (again.refund_external_id, again.refund_minor) == (refund["return_id"], 2057)
        assert len(seller_refunds(world, external_id)) == 1 and creates_answered(world) == 1

        second = take_back(world, pos_id, "R-2", external_id, {"TEE-M": 1})
        other = settled(world, second, "refunded")
        refunds = {found["return_id"]: found for found in seller_refunds(world, external_id)}
        assert set(refunds) == {refund["return_id"], other.refund_external_id}
        assert not set(units(refunds[refund["return_id"]])) & set(units(refunds[str(other.refund_external_id)]))
        assert other.refund_minor == 2057

        listed = world.api.get("/api/v1/returns", params={"state": "refunded"})
        assert listed.status_code == 200, listed.text
        shown = {found["id"]: found for found in listed.json()["returns"]}
        assert set(shown) == {first, second}
        assert shown[first]["refund"] == "20.57" and shown[first]["external_order_id"] == external_id
        assert shown[first]["order_channel"] == "tiktok" and shown[first]["channel_label"] == "POS Shop Front"
        assert shown[second]["lines"] == [{"sku": "TEE-M", "quantity": 1, "restock_quantity": 1}]
        assert world.api.get("/api/v1/returns", params={"state": "lost"}).status_code == 422


def test_answers_lost_on_their_way_back_still_open_one_refund_per_return(database_url: str, tmp_path: Path) -> None:
    with tiktok_world(database_url, tmp_path, worker_process=False) as world:  # workers share this transport
        context = context_of(world.hub.channels)
        assert context is not None
        transport = LossyTransport()
        context.client.http = httpx.Client(transport=transport, timeout=30)
        try:
            pos_id = pos_account(world)
            external_id = delivered_order(world, {"TEE-M": 2})
            transport.lose[CREATE_PATH] = 1
            only = take_back(world, pos_id, "R-1", external_id, {"TEE-M": 1})
            row = settled(world, only, "refunded")
            assert transport.lost == 1
            [refund] = seller_refunds(world, external_id)
            assert row.refund_external_id == refund["return_id"] and row.refund_minor == 2090
            [job] = refund_jobs(world, only)
            assert job.state == "succeeded" and job.attempts == 2  # the lost answer, then the refund found
            assert creates_answered(world) == 1

            # Two returns of the same units of one order wait at once, and one answer is lost: either return could
            # own the refund TikTok opened, so each asks with its own idempotency key, and each unit is refunded once.
            twins = delivered_order(world, {"TEE-M": 2})
            transport.lose[CREATE_PATH] = 1
            now = world.hub.clock.now()
            with transaction(world.hub.sessions) as session:
                pos = session.get(ChannelAccount, pos_id)
                assert pos is not None
                ids = [record_store_return(session, pos, ReturnIn(number, None,
                                                                  {"channel": "tiktok", "order_id": twins},
                                                                  [ReturnedLine("TEE-M", 1, 1)], returned_at=now),
                                           now=now)[0].id for number in ("R-2", "R-3")]  # fmt: skip
            rows = [settled(world, return_id, "refunded") for return_id in ids]
            refunds = {found["return_id"]: found for found in seller_refunds(world, twins)}
            assert transport.lost == 2
            assert {row.refund_external_id for row in rows} == set(refunds) and len(refunds) == 2
            [one, two] = refunds.values()
            assert len(units(one)) == len(units(two)) == 1 and units(one) != units(two)
        finally:
            context.client.http.close()


def test_tiktoks_refusal_is_an_issue_and_its_retry_asks_again(database_url: str, tmp_path: Path) -> None:
    with tiktok_world(database_url, tmp_path) as world:
        pos_id = pos_account(world)
        external_id = paid_order(world, {"TEE-M": 2})
        # Taken back before TikTok shows the order delivered: TikTok offers no refund yet.
        taken = take_back(world, pos_id, "R-1", external_id, {"TEE-M": 2})
        row = settled(world, taken, "refused")
        assert row.error == "TikTok ORDER_STATUS_NOT_SUPPORTED: The order is AWAITING_SHIPMENT."
        [issue] = open_issues(world, returns.REFUND_REFUSED)
        assert issue.subject_id == str(taken) and "AWAITING_SHIPMENT" in issue.message
        assert seller_refunds(world, external_id) == []

        # Delivered now, but the buyer asked TikTok for a refund of one tee meanwhile: one unit is left to refund.
        deliver(world, external_id)
        buyer_asks(world, external_id, "REFUND", ["TEE-M"])
        pending = request_of(world, external_id, "pending")
        with transaction(world.hub.sessions) as session:
            returns.retry_refund(session, taken, now=world.hub.clock.now(), actor="ops@example.com")
        wait_until(lambda: len(refund_jobs(world, taken)) == 2 and refund_jobs(world, taken)[-1].state == "succeeded",
                   message="the retry done")  # fmt: skip
        row = settled(world, taken, "refused")
        assert row.error is not None and "98001004" in row.error and "more units than can be returned" in row.error
        [issue] = open_issues(world, returns.REFUND_REFUSED)
        assert issue.occurrences == 2 and "98001004" in issue.message
        assert seller_refunds(world, external_id) == []

        # The cause fixed: the buyer's request is rejected from the hub, which frees the unit on TikTok.
        rejected = world.api.post(f"/api/v1/return-requests/{pending['id']}/reject",
                                  json={"reason": "Product is not defective"})  # fmt: skip
        assert rejected.status_code == 202, rejected.text
        request_of(world, external_id, "rejected")
        with transaction(world.hub.sessions) as session:
            returns.retry_refund(session, taken, now=world.hub.clock.now(), actor="ops@example.com")
        row = settled(world, taken, "refunded")
        [refund] = seller_refunds(world, external_id)
        assert len(units(refund)) == 2 and refund["refund_amount"]["refund_total"] == "41.80"
        assert (row.refund_external_id, row.refund_minor) == (refund["return_id"], 4180)
        assert open_issues(world, returns.REFUND_REFUSED) == []
        assert [entry.after for entry in audit(world, "return.retry_refund")] == [{"state": "refunding"}] * 2


# --- buyers' return requests ----------------------------------------------------------------------------------


def test_buyers_return_requests_are_read_with_their_deadlines_and_answered(database_url: str, tmp_path: Path) -> None:
    with tiktok_world(database_url, tmp_path) as world:
        external_id = delivered_order(world, {"TEE-M": 1, "MUG": 1})

        buyer_asks(world, external_id, "REFUND", ["MUG"])
        refund = request_of(world, external_id, "pending")
        assert refund["channel"] == "tiktok" and refund["request_type"] == "REFUND"
        assert refund["channel_status"] == "RETURN_OR_REFUND_REQUEST_PENDING"
        assert refund["next_action"] == "SELLER_RESPOND_REFUND" and refund["reason"] == "Damaged item"
        requested_at = datetime.fromisoformat(refund["requested_at"])
        assert datetime.fromisoformat(refund["respond_by"]) - requested_at == timedelta(hours=48)
        assert (refund["refund"], refund["currency"]) == ("9.50", "USD")  # the mug and half the tax
        assert refund["lines"] == [{"sku": "MUG", "sku_id": sku_id(world, "MUG"), "quantity": 1}]
        with world.hub.sessions() as session:
            order_id = session.scalar(select(Order.id).where(Order.external_id == external_id))
        assert refund["order_id"] == order_id

        answered = world.api.post(f"/api/v1/return-requests/{refund['id']}/approve")
        assert answered.status_code == 202, answered.text
        assert answered.json()["state"] == "approving"
        approved = request_of(world, external_id, "approved")
        assert approved["channel_status"] == "RETURN_OR_REFUND_REQUEST_SUCCESS"
        assert approved["answered_by"] == "owner@example.com" and approved["answered_at"] and approved["error"] is None
        again = world.api.post(f"/api/v1/return-requests/{refund['id']}/approve")
        assert again.status_code == 409 and "approved, not pending" in again.json()["detail"]
        assert world.api.post("/api/v1/return-requests/987654/approve").status_code == 404

        # A return and refund: the return is approved, the buyer sends the tee back, and the package is rejected.
        asked = buyer_asks(world, external_id, "RETURN_AND_REFUND", ["TEE-M"])
        tee = request_of(world, external_id, "pending", "SELLER_RESPOND_RETURN")
        assert tee["external_id"] == asked["return_id"] and tee["request_type"] == "RETURN_AND_REFUND"
        assert world.api.post(f"/api/v1/return-requests/{tee['id']}/approve").status_code == 202
        on_its_way = wait_until(lambda: next((found for found in requests(world, state="approved")
                                              if found["id"] == tee["id"]), None),
                                message="the return approved")  # fmt: skip
        assert on_its_way["channel_status"] == "AWAITING_BUYER_SHIP"
        world.control.post(f"/_sandbox/returns/{asked['return_id']}/buyer_ship", json={}).raise_for_status()
        back = request_of(world, external_id, "pending", "SELLER_RESPOND_RECEIVE_PACKAGE")
        assert back["id"] == tee["id"] and back["channel_status"] == "BUYER_SHIPPED_ITEM"
        refused = world.api.post(f"/api/v1/return-requests/{tee['id']}/reject",
                                 json={"reason": "Returned item was damaged by the buyer"})  # fmt: skip
        assert refused.status_code == 202, refused.text
        rejected = wait_until(lambda: next((found for found in requests(world, state="rejected")
                                            if found["id"] == tee["id"]), None),
                              message="the package rejected")  # fmt: skip
        assert rejected["channel_status"] == "REJECT_RECEIVE_PACKAGE" and rejected["error"] is None

        # Asked again and left unanswered: TikTok approves it at its deadline, and the hub follows.
        buyer_asks(world, external_id, "REFUND", ["TEE-M"])
        late = request_of(world, external_id, "pending")
        world.advance(48 * 3600 + 60)
        decided = wait_until(lambda: next((found for found in requests(world, state="approved")
                                           if found["id"] == late["id"]), None),
                             message="the request approved by TikTok")  # fmt: skip
        assert decided["channel_status"] == "RETURN_OR_REFUND_REQUEST_SUCCESS" and decided["answered_by"] is None
        assert world.api.post(f"/api/v1/return-requests/{late['id']}/reject").status_code == 409

        assert [(entry.actor, entry.subject_id) for entry in audit(world, "return_request.approve")] == [
            ("owner@example.com", str(refund["id"])), ("owner@example.com", str(tee["id"]))]  # fmt: skip
        [entry] = audit(world, "return_request.reject")
        assert entry.after == {"state": "rejecting", "reason": "Returned item was damaged by the buyer"}
        assert entry.before == {"state": "pending", "next_action": "SELLER_RESPOND_RECEIVE_PACKAGE"}


# --- the command line -----------------------------------------------------------------------------------------


def test_the_command_line_lists_returns_answers_requests_and_retries_refunds(env: Settings, hub: Hub) -> None:
    now = datetime.now(UTC)
    with transaction(hub.sessions) as session:
        tiktok = ChannelAccount(channel="tiktok", label="TikTok Shop Maomao", external_id="7000")
        pos = ChannelAccount(channel="pos", label="POS Shop Front", external_id="pos-1")
        session.add_all([tiktok, pos])
        session.flush()
        tiktok_id = tiktok.id
        order = Order(channel_account_id=tiktok.id, external_id="577001", channel_status="DELIVERED",
                      status="delivered", currency="USD", total_minor=4180, channel_created_at=now,
                      channel_updated_at=now)  # fmt: skip
        session.add(order)
        session.flush()
        session.add_all([
            StoreReturn(channel_account_id=pos.id, external_id="R-9", order_id=order.id, returned_at=now,
                        lines={"lines": [{"sku": "TEE-M", "quantity": 1, "restock_quantity": 1}]}, state="refused",
                        error="TikTok 98001004: more units than can be returned", created_at=now, updated_at=now),
            StoreReturn(channel_account_id=pos.id, external_id="R-8", order_id=order.id, returned_at=now,
                        lines={"lines": [{"sku": "MUG", "quantity": 1, "restock_quantity": 0}]}, state="refunded",
                        refund_external_id="4035", refund_minor=950, currency="USD", created_at=now,
                        updated_at=now),
            *(ReturnRequest(channel_account_id=tiktok.id, external_id=f"RR-{n}", external_order_id=f"57700{n}",
                            request_type="REFUND", state="pending", next_action="SELLER_RESPOND_REFUND",
                            reason="Damaged item", respond_by=now + timedelta(hours=n), requested_at=now)
              for n in (1, 2)),
            ReturnRequest(channel_account_id=tiktok.id, external_id="RR-3", external_order_id="577003",
                          state="pending", respond_by=now - timedelta(minutes=1), requested_at=now),
        ])  # fmt: skip
        add_user(session, "ops@example.com", "ops", now=now)
        add_user(session, "support@example.com", "support", now=now)
    with hub.sessions() as session:
        refused, refunded = session.scalars(select(StoreReturn.id).order_by(StoreReturn.id)).all()
        first, second, late = session.scalars(select(ReturnRequest.id).order_by(ReturnRequest.id)).all()

    taken = runner.invoke(app, ["returns", "list"])
    assert taken.exit_code == 0, taken.output
    assert "R-9" in taken.output and "more units than can be returned" in taken.output
    assert "9.50 USD 4035" in taken.output and "POS Shop Front" in taken.output
    only_refused = runner.invoke(app, ["returns", "list", "--state", "refused"])
    assert "R-9" in only_refused.output and "R-8" not in only_refused.output
    assert runner.invoke(app, ["returns", "list", "--state", "lost"]).exit_code == 2
    listed = runner.invoke(app, ["returns", "requests"])
    assert listed.exit_code == 0, listed.output
    assert "577001" in listed.output and "577002" in listed.output and "SELLER_RESPOND_REFUND" in listed.output

    refused_role = runner.invoke(app, ["returns", "approve", str(first), "--as", "support@example.com"])
    assert refused_role.exit_code == 2 and "this change needs one of: owner, ops" in refused_role.output
    approved = runner.invoke(app, ["returns", "approve", str(first), "--as", "ops@example.com"])
    assert approved.exit_code == 0, approved.output
    rejected = runner.invoke(app, ["returns", "reject", str(second), "--reason", "Product is not defective"])
    assert rejected.exit_code == 0, rejected.output
    again = runner.invoke(app, ["returns", "reject", str(second)])
    assert again.exit_code == 2 and "rejecting, not pending" in again.output
    too_late = runner.invoke(app, ["returns", "approve", str(late)])
    assert too_late.exit_code == 2 and "had to be answered by" in too_late.output
    assert runner.invoke(app, ["returns", "approve", "987654"]).exit_code == 2

    retried = runner.invoke(app, ["returns", "retry", str(refused), "--as", "ops@example.com"])
    assert retried.exit_code == 0, retried.output
    not_refused = runner.invoke(app, ["returns", "retry", str(refunded)])
    assert not_refused.exit_code == 2 and "only a refused refund can be retried" in not_refused.output

    with hub.sessions() as session:
        answers = session.scalars(select(Job).where(Job.kind == "tiktok.answer_return").order_by(Job.id)).all()
        refunds = session.scalars(select(Job).where(Job.kind == "tiktok.refund_return")).all()
        rows = {row.id: row for row in session.scalars(select(ReturnRequest))}
        retried_row = session.get(StoreReturn, refused)
        entries = [(entry.action, entry.actor) for entry in session.scalars(select(AuditEntry).order_by(AuditEntry.id))
                   if entry.action.startswith("return")]  # fmt: skip
    assert [job.payload for job in answers] == [
        {"request_id": first, "approve": True},
        {"request_id": second, "approve": False, "reason": "Product is not defective"},
    ]
    assert [(job.payload, job.channel_account_id) for job in refunds] == [({"return_id": refused}, tiktok_id)]
    assert (rows[first].state, rows[first].answered_by) == ("approving", "ops@example.com")
    assert rows[second].state == "rejecting" and rows[late].state == "pending"
    assert retried_row is not None and retried_row.state == "refunding"
    assert entries[0] == ("return_request.approve", "ops@example.com")
    assert [action for action, _ in entries] == ["return_request.approve", "return_request.reject",
                                                 "return.retry_refund"]  # fmt: skip
    shown = runner.invoke(app, ["returns", "requests", "--state", ""])
    assert shown.exit_code == 0 and "approving" in shown.output and "rejecting" in shown.output
