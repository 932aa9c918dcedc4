"""Every route that changes something, taken from the app's route table, against every role and no credentials:
the roles outside the route's own are refused (the viewer everywhere), a dashboard change without its CSRF token is
refused, and an allowed change leaves exactly one audit entry.

A new mutating route fails ``test_every_mutating_route_is_in_the_matrix`` until it is added here."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from shopbridge.bootstrap import Hub
from shopbridge.runtime import jobs
from shopbridge.runtime.jobs import set_aside
from shopbridge.services import returns
from shopbridge.services.access import ROLES, issue_token
from shopbridge.services.returns import ReturnedLine, ReturnIn, record_store_return
from shopbridge.store.db import transaction
from shopbridge.store.sync_issues import raise_issue
from shopbridge.store.tables import (
    CancellationRequest,
    ChannelAccount,
    ChannelListing,
    FinanceException,
    Location,
    Product,
    ReturnRequest,
    StockLevel,
    Variant,
)
from shopbridge.web.app import create_app
from shopbridge.web.auth import ENTERERS, OPERATORS, READERS
from shopbridge.web.dashboard.finance import FINANCE
from tests.integration.dashboard_world import PASSWORD, add_accounts, add_order, add_people, audit_count, form_token

MUTATING = {"POST", "PUT", "PATCH", "DELETE"}
OWNER = ("owner",)

# Routes anyone may call: webhooks prove themselves by signature, sign-in by password or a one-time link.
PUBLIC = {"POST /hooks/tiktok", "POST /hooks/shopify", "POST /hooks/pos", "POST /sign-in", "POST /sign-in/link/{token}"}


@dataclass(frozen=True)
class Case:
    url: str
    roles: tuple[str, ...]
    dashboard: bool = False
    json: Any = None
    form: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    files: dict[str, Any] = field(default_factory=dict)
    audited: bool = True  # False: the allowed call needs a live store; tests/integration/shopify checks its entry
    audits: int = 1  # entries one allowed call leaves (adding a user also makes their sign-in link)


CASES = {
    "POST /api/v1/orders/{order_id}/retry": Case("/api/v1/orders/1/retry", OPERATORS),
    "POST /api/v1/orders/{order_id}/cancel": Case("/api/v1/orders/1/cancel", OPERATORS, json={"reason": "staff"}),
    "POST /api/v1/stock/movements": Case("/api/v1/stock/movements", OPERATORS, json={
        "sku": "TEE-M", "location": "MAIN", "kind": "restock", "quantity": 3, "idempotency_key": "matrix-1"}),
    "PUT /api/v1/stock/levels": Case("/api/v1/stock/levels", OPERATORS, json={
        "counts": [{"sku": "TEE-M", "location": "MAIN", "on_hand": 7}], "reference": "matrix"}),
    "POST /api/v1/links": Case("/api/v1/links", OPERATORS, json={
        "account_id": 1, "external_sku_id": "L-LINK", "sku": "TEE-M"}),
    "DELETE /api/v1/links/{account_id}/{external_sku_id:path}": Case("/api/v1/links/1/L-UNLINK", OPERATORS),
    "POST /api/v1/cancellations/{request_id}/approve": Case("/api/v1/cancellations/1/approve", OPERATORS),
    "POST /api/v1/cancellations/{request_id}/reject": Case("/api/v1/cancellations/2/reject", OPERATORS, json={}),
    "POST /api/v1/return-requests/{request_id}/approve": Case("/api/v1/return-requests/1/approve", OPERATORS),
    "POST /api/v1/return-requests/{request_id}/reject": Case("/api/v1/return-requests/2/reject", OPERATORS, json={}),
    "POST /api/v1/returns/{return_id}/retry": Case("/api/v1/returns/1/retry", OPERATORS),
    "POST /returns/{return_id}/retry": Case("/returns/1/retry", OPERATORS, dashboard=True),
    "POST /returns/requests/{request_id}/approve": Case("/returns/requests/1/approve", OPERATORS, dashboard=True),
    "POST /returns/requests/{request_id}/reject": Case("/returns/requests/2/reject", OPERATORS, dashboard=True,
                                                       form={"reason": "Product is not defective"}),
    "POST /api/v1/connections/shopify": Case("/api/v1/connections/shopify", OWNER, audited=False, json={
        "shop": "matrix.myshopify.com", "access_token": "shpat_x"}),
    "POST /api/v1/connections/shopify/install": Case("/api/v1/connections/shopify/install", OWNER, audited=False,
                                                     json={"shop": "matrix.myshopify.com"}),
    "POST /api/v1/orders": Case("/api/v1/orders", ENTERERS, headers={"Idempotency-Key": "matrix-api"}, json={
        "source": "whatsapp", "customer": {"name": "Siti"}, "lines": [{"sku": "TEE-M", "quantity": 1}],
        "payment": "cod"}),
    "POST /orders/new": Case("/orders/new", ENTERERS, dashboard=True, form={
        "key": "matrix-entry", "source": "phone", "name": "Budi", "sku": "TEE-M", "quantity": "1", "payment": "paid"}),
    "POST /exceptions/issues/{issue_id}/resolve": Case("/exceptions/issues/1/resolve", OPERATORS, dashboard=True),
    "POST /exceptions/issues/{issue_id}/retry": Case("/exceptions/issues/2/retry", OPERATORS, dashboard=True),
    "POST /exceptions/jobs/{job_id}/retry": Case("/exceptions/jobs/1/retry", OPERATORS, dashboard=True),
    "POST /exceptions/jobs/{job_id}/replay": Case("/exceptions/jobs/1/replay", OPERATORS, dashboard=True),
    "POST /stock/{sku:path}/rule": Case("/stock/TEE-M/rule", OPERATORS, dashboard=True, form={
        "account_id": "1", "buffer_units": "2", "buffer_percent": "0", "out_of_stock_threshold": "0",
        "protect_units": "0", "protect_until": ""}),
    "POST /stock/import": Case("/stock/import", OPERATORS, dashboard=True, form={"mode": "counts"},
                               files={"file": ("count.csv", b"sku,location,on_hand\nTEE-M,MAIN,4\n", "text/csv")}),
    "POST /admin/users": Case("/admin/users", OWNER, dashboard=True, form={"email": "m@example.com", "role": "ops"},
                              audits=2),
    "POST /admin/users/{user_id}/link": Case("/admin/users/4/link", OWNER, dashboard=True),
    "POST /admin/users/{user_id}/disable": Case("/admin/users/5/disable", OWNER, dashboard=True),
    "POST /admin/tokens": Case("/admin/tokens", OWNER, dashboard=True, form={"email": "ops@example.com", "name": "m"}),
    "POST /admin/tokens/{token_id}/revoke": Case("/admin/tokens/1/revoke", OWNER, dashboard=True),
    "POST /connections/{channel}": Case("/connections/tiktok", OWNER, dashboard=True),
    "POST /sign-out": Case("/sign-out", READERS, dashboard=True),
    "POST /account/password": Case("/account/password", READERS, dashboard=True, form={
        "current_password": PASSWORD, "password": "another long secret", "again": "another long secret"}),
    "POST /orders/retry": Case("/orders/retry", OPERATORS, dashboard=True, form={"order_id": "1"}),
    "POST /orders/{order_id}/retry": Case("/orders/1/retry", OPERATORS, dashboard=True),
    "POST /orders/{order_id}/cancel": Case("/orders/1/cancel", OPERATORS, dashboard=True, form={"reason": "staff"}),
    "POST /orders/{order_id}/delivered": Case("/orders/2/delivered", OPERATORS, dashboard=True, form={"at": ""}),
    "POST /orders/{order_id}/cancellation/{request_id}": Case("/orders/1/cancellation/1", OPERATORS, dashboard=True,
                                                              form={"decision": "approve"}),
    "POST /api/v1/drift/check": Case("/api/v1/drift/check", OPERATORS),
    "POST /drift/check": Case("/drift/check", OPERATORS, dashboard=True),
    "POST /finance/exceptions/{exception_id}/acknowledge": Case("/finance/exceptions/1/acknowledge", FINANCE,
                                                                 dashboard=True, form={"note": "matrix"}),
}  # fmt: skip


def route_table(app: FastAPI) -> Iterator[tuple[str, set[str]]]:
    """(path, methods) of every route, included routers flattened."""

    def walk(routes: Iterable[Any], prefix: str) -> Iterator[tuple[str, set[str]]]:
        for route in routes:
            if hasattr(route, "original_router"):  # an included router
                yield from walk(route.original_router.routes, prefix + route.include_context.prefix)
            elif hasattr(route, "path"):
                yield prefix + route.path, set(getattr(route, "methods", None) or ())

    yield from walk(app.routes, "")


@pytest.fixture
def hub(tiktok_hub: Hub) -> Hub:
    """People of every role, a blocked TikTok order, a WhatsApp order in transit, SKUs and listings to link and
    unlink, two buyer cancellation requests, two return requests, a reconciliation exception about the order, and a
    store return of the order whose refund TikTok refused."""
    add_people(tiktok_hub)
    accounts = add_accounts(tiktok_hub)
    add_order(tiktok_hub, accounts.tiktok, "TT-1", blocked="unknown_sku")
    add_order(tiktok_hub, accounts.manual, "WA-2", status="in_transit")  # order 2: shipped, to be marked delivered
    now = tiktok_hub.clock.now()
    with transaction(tiktok_hub.sessions) as session:
        session.add(Location(code="MAIN", name="Main"))
        product = Product(title="Tee")
        session.add(product)
        session.flush()
        tee = Variant(product_id=product.id, sku="TEE-M", price_minor=1990, currency="USD")
        mug = Variant(product_id=product.id, sku="MUG-1")
        session.add_all([tee, mug])
        session.flush()
        main = session.scalar(select(Location.id).where(Location.code == "MAIN"))
        session.add(StockLevel(variant_id=tee.id, location_id=main, on_hand=10, reserved=0))
        session.add_all([
            ChannelListing(channel_account_id=accounts.tiktok, external_product_id="P1", external_sku_id="L-LINK"),
            ChannelListing(channel_account_id=accounts.tiktok, external_product_id="P1", external_sku_id="L-UNLINK",
                           variant_id=mug.id, link="manual"),
            *(CancellationRequest(channel_account_id=accounts.tiktok, external_id=f"C{n}", external_order_id="TT-1",
                                  order_id=1, requested_at=now, updated_at=now) for n in (1, 2)),
            *(ReturnRequest(channel_account_id=accounts.tiktok, external_id=f"R{n}", external_order_id="TT-1",
                            order_id=1, next_action="SELLER_RESPOND_REFUND", requested_at=now, updated_at=now)
              for n in (1, 2)),
        ])  # fmt: skip
        raise_issue(session, kind="stock_mismatch", severity="warning", fingerprint="matrix:1", now=now,
                    message="TikTok shows 3, the hub 5")  # fmt: skip
        raise_issue(session, kind="order_blocked", severity="error", fingerprint="matrix:2", now=now,
                    message="blocked", subject_type="order", subject_id="1")  # fmt: skip
        set_aside(session, "tiktok.push_stock", {"product_id": "P1"}, error=ValueError("refused"), now=now)
        issue_token(session, "ops@example.com", "to revoke", now=now)
        session.add(FinanceException(channel_account_id=accounts.tiktok, kind="missing_settlement",
                                     subject="order:TT-1", order_id=1, currency="USD", amount_minor=2500,
                                     detail="delivered, not settled", found_at=now, last_found_at=now))  # fmt: skip
    with transaction(tiktok_hub.sessions) as session:
        pos = ChannelAccount(channel="pos", label="POS", external_id="pos-1", created_at=now)
        session.add(pos)
        session.flush()
        taken = ReturnIn("R-1", None, {"channel": "tiktok", "order_id": "TT-1"}, [ReturnedLine("TEE-M", 1, 1)], now)
        record_store_return(session, pos, taken, now=now)
    with transaction(tiktok_hub.sessions) as session:  # TikTok's refusal, reported as its refund job does
        [job] = jobs.claim(session, "matrix", now=now, lease_seconds=60, limit=1,
                           kinds=frozenset({"tiktok.refund_return"}))  # fmt: skip
        returns.refund_refused(session, job.payload["return_id"], "TikTok ORDER_STATUS_NOT_SUPPORTED", now=now)
        assert jobs.complete(session, job, "matrix", now=now)
    return tiktok_hub


def _tokens(hub: Hub) -> dict[str, str]:
    with transaction(hub.sessions) as session:
        return {role: issue_token(session, f"{role}@example.com", "matrix", now=hub.clock.now()) for role in ROLES}


def _signed_in(app: FastAPI, role: str) -> tuple[TestClient, str]:
    client = TestClient(app)
    answer = client.post("/sign-in", data={"email": f"{role}@example.com", "password": PASSWORD, **form_token(client)},
                         follow_redirects=False)  # fmt: skip
    assert answer.status_code == 303
    page = client.get("/account").text
    csrf = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    return client, csrf


def test_every_mutating_route_is_in_the_matrix(hub: Hub) -> None:
    found = {f"{method} {path}" for path, methods in route_table(create_app(hub)) for method in methods & MUTATING}
    assert found == PUBLIC | set(CASES), "classify every new mutating route in CASES or PUBLIC"
    assert all("viewer" not in case.roles or case.roles == READERS for case in CASES.values())


@pytest.mark.parametrize("route", sorted(CASES))
def test_role_matrix(hub: Hub, route: str) -> None:
    method = route.split(" ", 1)[0]
    case = CASES[route]
    app = create_app(hub)
    before = audit_count(hub)

    def call(client: TestClient, headers: dict[str, str] | None = None, csrf: str | None = None) -> int:
        form = {**case.form, **({"csrf_token": csrf} if csrf else {})}
        kwargs: dict[str, Any] = {"headers": {**case.headers, **(headers or {})}, "follow_redirects": False}
        if case.dashboard:
            kwargs["data"] = form
            if case.files:
                kwargs["files"] = case.files
        elif case.json is not None:
            kwargs["json"] = case.json
        return client.request(method, case.url, **kwargs).status_code

    if case.dashboard:
        anonymous = call(TestClient(app))
        assert anonymous == 303, f"{route} without a session answered {anonymous}"
        for role in ROLES:
            client, csrf = _signed_in(app, role)
            if role not in case.roles:
                assert call(client, csrf=csrf) == 403, f"{route} let {role} through"
        allowed, csrf = _signed_in(app, case.roles[-1] if case.roles != READERS else "viewer")
        assert call(allowed) == 403, f"{route} ran without its CSRF token"
        sign_ins = audit_count(hub) - before
        assert call(allowed, csrf=csrf) < 400
        assert audit_count(hub) - before - sign_ins == case.audits, f"{route} left no single audit entry"
        return

    tokens = _tokens(hub)
    created = audit_count(hub) - before
    assert call(TestClient(app)) == 401
    with TestClient(app) as client:
        for role in ROLES:
            if role not in case.roles:
                status = call(client, {"Authorization": f"Bearer {tokens[role]}"})
                assert status == 403, f"{route} answered {role} with {status}"
        assert audit_count(hub) - before == created, "a refused call left an audit entry"
        if case.audited:
            status = call(client, {"Authorization": f"Bearer {tokens[case.roles[-1]]}"})
            assert status < 400, f"{route} refused {case.roles[-1]}: {status}"
            assert audit_count(hub) - before - created == 1, f"{route} left no single audit entry"
