"""Returns for people: the dashboard's returns page (store returns with their refunds, buyers' return requests with
their deadlines) and its actions, the exceptions page's retry of a refused refund, the order page's returns, and
``POST /api/v1/returns/{id}/retry``; roles, CSRF and the audit entry of each change.

Store returns are recorded the way a channel's returns desk records them (``record_store_return`` on a real order)
and refused or refunded the way the order's channel reports back; no worker runs here, so a retried refund waits as
a queued job (tests/integration/tiktok/test_returns_desk.py runs the whole loop against the TikTok sandbox)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from shopbridge.bootstrap import Hub
from shopbridge.domain.money import Money
from shopbridge.runtime import jobs
from shopbridge.services import exceptions, returns
from shopbridge.services.access import issue_token
from shopbridge.services.returns import ReturnedLine, ReturnIn, record_store_return
from shopbridge.store.db import transaction
from shopbridge.store.tables import AuditEntry, ChannelAccount, Job, ReturnRequest, StoreReturn, SyncIssue
from shopbridge.web.app import create_app
from tests.integration.dashboard_world import add_accounts, add_order, add_people, audit_count, sign_in

TIMES = "\N{MULTIPLICATION SIGN}"
REFUSAL = "TikTok ORDER_STATUS_NOT_SUPPORTED: The order is <b>AWAITING_SHIPMENT</b>."


@dataclass(frozen=True)
class Returns:
    tee_order: int
    mug_order: int
    refused: int
    refunded: int
    unmatched: int
    soon: int  # a pending request due in 5 hours
    later: int  # a pending request due in 40 hours
    late: int  # a pending request whose deadline passed
    approved: int


@pytest.fixture
def hub(tiktok_hub: Hub) -> Hub:
    return tiktok_hub


@pytest.fixture
def client(hub: Hub) -> TestClient:
    add_people(hub)
    return TestClient(create_app(hub))


@pytest.fixture
def world(hub: Hub) -> Returns:
    """Two TikTok orders; a POS returns desk's three returns: a tee (damaged) whose refund TikTok refused, a mug
    refunded, one naming an order the hub does not know; and four buyers' requests on TikTok."""
    accounts = add_accounts(hub)
    tee_order = add_order(hub, accounts.tiktok, "TT-100", sku="TEE-M")
    mug_order = add_order(hub, accounts.tiktok, "TT-200", sku="MUG")
    now = hub.clock.now()

    def taken(number: str, order: str, sku: str, restock: int) -> ReturnIn:
        return ReturnIn(number, "store-mall", {"channel": "tiktok", "order_id": order}, [ReturnedLine(sku, 1, restock)],
                        returned_at=now)  # fmt: skip

    with transaction(hub.sessions) as session:
        pos = ChannelAccount(channel="pos", label="POS Shop Front", external_id="pos-1", created_at=now)
        session.add(pos)
        session.flush()
        refused = record_store_return(session, pos, taken("R-1", "TT-100", "TEE-M", 0), now=now)[0].id
        refunded = record_store_return(session, pos, taken("R-2", "TT-200", "MUG", 1), now=now)[0].id
        unmatched = record_store_return(session, pos, taken("R-3", "TT-999", "TEE-M", 1), now=now)[0].id
        requests = [
            ReturnRequest(channel_account_id=accounts.tiktok, external_id=f"RR-{n}", external_order_id="TT-200",
                          order_id=mug_order, request_type=kind, state=state, next_action="SELLER_RESPOND_REFUND",
                          reason=reason, refund_minor=950, currency="USD", respond_by=now + due,
                          lines={"lines": [{"sku": "MUG", "quantity": 1}]}, requested_at=now, updated_at=now)
            for n, kind, state, reason, due in (
                (1, "REFUND", "pending", "Damaged <i>item</i>", timedelta(hours=5)),
                (2, "RETURN_AND_REFUND", "pending", "Wrong product", timedelta(hours=40)),
                (3, "REFUND", "pending", "Missing item", -timedelta(minutes=1)),
                (4, "REFUND", "approved", "Not as described", timedelta(hours=30)),
            )
        ]  # fmt: skip
        session.add_all(requests)
        session.flush()
        soon, later, late, approved = (request.id for request in requests)
    # TikTok's answers to the two refunds, reported as its refund job does: R-1 refused, R-2 refunded.
    with transaction(hub.sessions) as session:
        claimed = jobs.claim(session, "tests", now=now, lease_seconds=60, limit=10,
                             kinds=frozenset({"tiktok.refund_return"}))  # fmt: skip
        assert sorted(job.payload["return_id"] for job in claimed) == [refused, refunded]
        returns.refund_refused(session, refused, REFUSAL, now=now)
        returns.refunded(session, refunded, external_id="4035", status="RETURN_OR_REFUND_REQUEST_SUCCESS",
                         amount=Money.parse("9.50", "USD"), now=now)  # fmt: skip
        assert all(jobs.complete(session, job, "tests", now=now) for job in claimed)
    return Returns(tee_order, mug_order, refused, refunded, unmatched, soon, later, late, approved)


def row_of(page: str, marker: str) -> str:
    """The table row holding ``marker``."""
    for row in re.findall(r"<tr[ >].*?</tr>", page, flags=re.S):
        if marker in row:
            return str(row)
    raise AssertionError(f"no row holds {marker!r}")


def store_return(hub: Hub, return_id: int) -> StoreReturn:
    with hub.sessions() as session:
        found = session.get(StoreReturn, return_id)
        assert found is not None
        return found


def jobs_of(hub: Hub, kind: str, state: str = "pending") -> list[Job]:
    """The jobs of ``kind`` waiting for a worker (the fixture's first refunds are done)."""
    with hub.sessions() as session:
        return list(session.scalars(select(Job).where(Job.kind == kind, Job.state == state).order_by(Job.id)))


def test_a_viewer_sees_returns_and_requests_and_is_offered_and_allowed_nothing(
    client: TestClient, hub: Hub, world: Returns
) -> None:
    csrf = sign_in(client, "viewer")
    response = client.get("/returns")
    assert response.status_code == 200 and '<a href="/returns" aria-current="page">Returns</a>' in response.text
    page = response.text

    refused = row_of(page, "return R-1")
    assert f'<a href="/orders/{world.tee_order}">TT-100</a>' in refused and "store-mall" in refused
    assert (
        f"TEE-M {TIMES} 1" in refused and "0 restocked, 1 damaged" in refused and "<strong>refused</strong>" in refused
    )
    assert '<span class="error-text">TikTok ORDER_STATUS_NOT_SUPPORTED: The order is' in refused
    assert "&lt;b&gt;AWAITING_SHIPMENT&lt;/b&gt;" in refused and "<b>" not in refused, "TikTok's words are escaped"
    refunded = row_of(page, "return R-2")
    assert f"MUG {TIMES} 1" in refunded and "(1 restocked)" in refunded and "9.50 USD" in refunded
    assert "RETURN_OR_REFUND_REQUEST_SUCCESS, refund 4035" in refunded
    unmatched = row_of(page, "return R-3")
    assert "no matching order" in unmatched and "no order matches channel tiktok, order_id TT-999" in unmatched

    soon, later, late = row_of(page, "request RR-1"), row_of(page, "request RR-2"), row_of(page, "request RR-3")
    assert 'class="risk-at_risk"' in soon and "5 h 0 min left" in soon and "refund" in soon
    assert "Damaged &lt;i&gt;item&lt;/i&gt;" in soon and "9.50 USD" in soon
    assert "risk-" not in later and "1 d 16 h left" in later and "return and refund" in later
    assert 'class="risk-late"' in late and "deadline passed" in late
    assert "request RR-4" not in page, "answered requests are not open"
    assert page.index("request RR-3") < page.index("request RR-1") < page.index("request RR-2"), "due soonest first"
    assert 'method="post" action="/returns' not in page and "<button" not in page.split("<main", 1)[1]

    assert client.get("/returns?requests=approved").text.count("request RR-") == 1
    only_refused = client.get("/returns?state=refused").text
    assert "return R-1" in only_refused and "return R-2" not in only_refused and "return R-3" not in only_refused
    assert "return R-2" in client.get("/returns?state=bogus").text, "an unknown filter shows everything"

    for action in (f"/returns/{world.refused}/retry", f"/returns/requests/{world.soon}/approve",
                   f"/returns/requests/{world.soon}/reject"):  # fmt: skip
        refused_call = client.post(action, data={"csrf_token": csrf}, follow_redirects=False)
        assert refused_call.status_code == 403, action
    assert store_return(hub, world.refused).state == "refused" and jobs_of(hub, "tiktok.answer_return") == []
    assert audit_count(hub, "return.retry_refund") == audit_count(hub, "return_request.approve") == 0
    assert audit_count(hub, "return_request.reject") == 0


def test_ops_retries_a_refused_refund_and_answers_requests_from_the_page(
    client: TestClient, hub: Hub, world: Returns
) -> None:
    csrf = sign_in(client, "ops")
    page = client.get("/returns").text
    assert f'action="/returns/{world.refused}/retry"' in row_of(page, "return R-1")
    assert "Retry the refund" not in row_of(page, "return R-2") + row_of(page, "return R-3")
    assert f'action="/returns/requests/{world.soon}/approve"' in page
    assert "Product is not defective" in row_of(page, "request RR-1")
    assert "Approve" not in row_of(page, "request RR-3"), "past its deadline, the channel decides"

    assert client.post(f"/returns/{world.refused}/retry", follow_redirects=False).status_code == 403, "no CSRF"
    retried = client.post(f"/returns/{world.refused}/retry", data={"csrf_token": csrf, "state": "refused"},
                          follow_redirects=False)  # fmt: skip
    assert retried.status_code == 303
    assert retried.headers["location"].startswith("/returns?state=refused&notice=store+return")
    assert store_return(hub, world.refused).state == "refunding"
    [job] = jobs_of(hub, "tiktok.refund_return")
    assert job.payload == {"return_id": world.refused} and job.state == "pending"
    assert audit_count(hub, "return.retry_refund") == 1
    again = client.post(f"/returns/{world.refused}/retry", data={"csrf_token": csrf}, follow_redirects=True)
    assert "not done: return R-1 is refunding: only a refused refund can be retried" in again.text
    assert audit_count(hub, "return.retry_refund") == 1

    approved = client.post(f"/returns/requests/{world.soon}/approve", data={"csrf_token": csrf}, follow_redirects=True)
    assert f"return request {world.soon} approved" in approved.text
    assert "<strong>approving</strong>" in row_of(approved.text, "request RR-1")
    forged = client.post(f"/returns/requests/{world.later}/reject",
                         data={"csrf_token": csrf, "reason": "<script>x</script>"}, follow_redirects=True)  # fmt: skip
    assert "choose one of the reasons offered" in forged.text and "<script>x" not in forged.text
    rejected = client.post(f"/returns/requests/{world.later}/reject",
                           data={"csrf_token": csrf, "reason": "Product is not defective"},
                           follow_redirects=True)  # fmt: skip
    assert f"return request {world.later} rejected" in rejected.text
    too_late = client.post(f"/returns/requests/{world.late}/approve", data={"csrf_token": csrf},
                           follow_redirects=True)  # fmt: skip
    assert "not done: return request" in too_late.text and "had to be answered by" in too_late.text
    unknown = client.post("/returns/requests/987654/reject", data={"csrf_token": csrf}, follow_redirects=True)
    assert "return request 987654 does not exist" in unknown.text

    assert [job.payload for job in jobs_of(hub, "tiktok.answer_return")] == [
        {"request_id": world.soon, "approve": True},
        {"request_id": world.later, "approve": False, "reason": "Product is not defective"},
    ]
    with hub.sessions() as session:
        states = {row.id: (row.state, row.answered_by) for row in session.scalars(select(ReturnRequest))}
    assert states[world.soon] == ("approving", "ops@example.com") and states[world.later][0] == "rejecting"
    assert states[world.late][0] == "pending"
    assert audit_count(hub, "return_request.approve") == audit_count(hub, "return_request.reject") == 1


def test_the_exceptions_page_retries_a_refused_refund_but_not_an_unmatched_return(
    client: TestClient, hub: Hub, world: Returns
) -> None:
    with hub.sessions() as session:
        refusal = session.scalar(select(SyncIssue).where(SyncIssue.kind == returns.REFUND_REFUSED))
        unmatched = session.scalar(select(SyncIssue).where(SyncIssue.kind == returns.RETURN_UNMATCHED))
        assert refusal is not None and unmatched is not None
        assert exceptions.retry_target(refusal) == ("store_return", world.refused)
        assert exceptions.retry_target(unmatched) is None
    csrf = sign_in(client, "ops")
    page = client.get("/exceptions").text
    assert f"/exceptions/issues/{refusal.id}/retry" in page and f"/exceptions/issues/{unmatched.id}/retry" not in page
    done = client.post(f"/exceptions/issues/{refusal.id}/retry", data={"csrf_token": csrf}, follow_redirects=False)
    assert done.status_code == 303
    assert f"store+return+{world.refused}%3A+its+refund+is+asked+again+%28job+" in done.headers["location"]
    assert store_return(hub, world.refused).state == "refunding"
    assert [job.payload for job in jobs_of(hub, "tiktok.refund_return")] == [{"return_id": world.refused}]
    with hub.sessions() as session:
        entries = audit_count(hub, "return.retry_refund")
        still = session.get(SyncIssue, refusal.id)
    assert entries == 1 and still is not None and still.status == "open", "open until the channel refunds it"
    again = client.post(f"/exceptions/issues/{refusal.id}/retry", data={"csrf_token": csrf}, follow_redirects=False)
    assert "only+a+refused+refund+can+be+retried" in again.headers["location"]
    nothing = client.post(f"/exceptions/issues/{unmatched.id}/retry", data={"csrf_token": csrf},
                          follow_redirects=False)  # fmt: skip
    assert "has+nothing+to+retry" in nothing.headers["location"]
    assert audit_count(hub, "return.retry_refund") == 1


def test_the_order_page_shows_its_store_returns_and_refunds(client: TestClient, hub: Hub, world: Returns) -> None:
    sign_in(client, "viewer")
    tee = client.get(f"/orders/{world.tee_order}").text.split("<h2>Returns</h2>", 1)[1].split("<h2>", 1)[0]
    assert "Taken back in POS Shop Front (return R-1)" in tee and f"TEE-M {TIMES} 1" in tee
    assert "refund <strong>refused</strong>" in tee and "&lt;b&gt;AWAITING_SHIPMENT" in tee
    assert 'href="/returns?state=refused"' in tee
    mug = client.get(f"/orders/{world.mug_order}").text.split("<h2>Returns</h2>", 1)[1].split("<h2>", 1)[0]
    assert "refund <strong>refunded</strong> 9.50 USD" in mug and "RETURN_OR_REFUND_REQUEST_SUCCESS" in mug
    assert "Buyer asked for a refund: <strong>pending</strong>" in mug and "Damaged &lt;i&gt;item&lt;/i&gt;" in mug
    assert "Buyer asked for a return and refund" in mug and "<strong>approved</strong>" in mug


def test_the_api_retries_a_refused_refund_for_operators_only(hub: Hub, world: Returns) -> None:
    add_people(hub)
    with transaction(hub.sessions) as session:
        tokens = {role: issue_token(session, f"{role}@example.com", "returns", now=hub.clock.now())
                  for role in ("viewer", "finance", "ops")}  # fmt: skip
    with TestClient(create_app(hub)) as client:

        def retry(return_id: int, role: str | None = "ops") -> tuple[int, dict[str, object]]:
            headers = {"Authorization": f"Bearer {tokens[role]}"} if role else {}
            response = client.post(f"/api/v1/returns/{return_id}/retry", headers=headers)
            return response.status_code, response.json()

        assert retry(world.refused, None)[0] == 401
        assert retry(world.refused, "viewer")[0] == retry(world.refused, "finance")[0] == 403
        assert store_return(hub, world.refused).state == "refused"
        status, body = retry(world.refused)
        [job] = jobs_of(hub, "tiktok.refund_return")
        assert status == 202 and body == {
            "return_id": world.refused,
            "state": "refunding",
            "job": {"id": job.id, "kind": "tiktok.refund_return", "state": "pending"},
        }
        assert job.payload == {"return_id": world.refused} and store_return(hub, world.refused).state == "refunding"

        status, body = retry(world.refused)
        assert status == 409 and body["detail"] == "return R-1 is refunding: only a refused refund can be retried"
        status, body = retry(world.refunded)
        assert status == 409 and "return R-2 is refunded" in str(body["detail"])
        status, body = retry(world.unmatched)
        assert status == 409 and "return R-3 is unmatched" in str(body["detail"])
        status, body = retry(987654)
        assert status == 404 and body["detail"] == "store return 987654 does not exist"
        assert client.post("/api/v1/returns/0/retry", headers={"Authorization": f"Bearer {tokens['ops']}"}
                           ).status_code == 422  # fmt: skip
    assert len(jobs_of(hub, "tiktok.refund_return")) == 1
    with hub.sessions() as session:
        [entry] = session.scalars(select(AuditEntry).where(AuditEntry.action == "return.retry_refund")).all()
    assert (entry.actor, entry.subject_id, entry.before, entry.after) == (
        "ops@example.com", str(world.refused), {"state": "refused"}, {"state": "refunding"})  # fmt: skip
