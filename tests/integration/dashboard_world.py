"""A hub with users of every role and orders of three channels, for the dashboard's tests (and its browser tests)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from shopbridge.bootstrap import Hub
from shopbridge.services.access import ROLES, add_user, set_password
from shopbridge.services.stock import apply_external_movement
from shopbridge.store.db import transaction
from shopbridge.store.tables import (
    AuditEntry,
    ChannelAccount,
    ChannelListing,
    ChannelWarehouse,
    Location,
    Order,
    OrderLine,
    Product,
    Variant,
)

PASSWORD = "correct horse battery"


@dataclass(frozen=True)
class Accounts:
    tiktok: int
    shopify: int
    manual: int


def add_people(hub: Hub) -> None:
    """One user per role, ``<role>@example.com``, each with PASSWORD."""
    now = hub.clock.now()
    with transaction(hub.sessions) as session:
        for role in ROLES:
            add_user(session, f"{role}@example.com", role, now=now)
            set_password(session, f"{role}@example.com", PASSWORD, now=now, actor="tests")


def add_accounts(hub: Hub) -> Accounts:
    with transaction(hub.sessions) as session:
        rows = [
            ChannelAccount(
                channel=channel, label=label, external_id=f"{channel}-1", currency="USD", created_at=hub.clock.now()
            )
            for channel, label in (("tiktok", "TikTok US"), ("shopify", "My store"), ("manual", "WhatsApp"))
        ]
        session.add_all(rows)
        session.flush()
        return Accounts(*(row.id for row in rows))


def add_order(
    hub: Hub,
    account_id: int,
    external_id: str,
    *,
    status: str = "awaiting_shipment",
    dispatch_by: datetime | None = None,
    blocked: str | None = None,
    sku: str = "TEE-M",
    created_at: datetime | None = None,
) -> int:
    now = hub.clock.now()
    with transaction(hub.sessions) as session:
        order = Order(
            channel_account_id=account_id,
            external_id=external_id,
            channel_status=status.upper(),
            status=status,
            currency="USD",
            total_minor=2500,
            subtotal_minor=2500,
            buyer={},
            recipient={},
            deadlines={"dispatch_by": int(dispatch_by.timestamp())} if dispatch_by else {},
            packages={},
            dispatch_by=dispatch_by,
            blocked_reason=blocked,
            blocked_message=f"{blocked} for {sku}" if blocked else None,
            channel_created_at=created_at or now,
            channel_updated_at=created_at or now,
            created_at=now,
            updated_at=now,
        )
        session.add(order)
        session.flush()
        session.add(
            OrderLine(
                order_id=order.id,
                sku=sku,
                title="Cotton tee",
                quantity=1,
                unit_price_minor=2500,
                currency="USD",
                line_item_ids={"ids": ["1"]},
            )
        )
        return order.id


def form_token(client: TestClient, page: str = "/sign-in") -> dict[str, str]:
    """The CSRF field of a form used before signing in (the page sets its cookie in the client)."""
    return {"csrf_token": csrf_of(client.get(page).text)}


def sign_in(client: TestClient, role: str) -> str:
    """Sign in as the role's user; returns the session's CSRF token (read from the queue page)."""
    response = client.post(
        "/sign-in",
        data={"email": f"{role}@example.com", "password": PASSWORD, **form_token(client)},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return csrf_of(client.get("/").text)


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "the page carries no CSRF token"
    return found.group(1)


def audit_count(hub: Hub, action: str | None = None) -> int:
    with hub.sessions() as session:
        query = select(func.count()).select_from(AuditEntry)
        if action:
            query = query.where(AuditEntry.action == action)
        return int(session.scalar(query) or 0)


def hours(n: float) -> timedelta:
    return timedelta(hours=n)


def add_stock(hub: Hub, tiktok_account: int) -> int:
    """SKUs TEE-M (10 restocked at MAIN) and MUG, TEE-M listed on the TikTok account, whose warehouse ships from
    MAIN; returns the listing's id."""
    with transaction(hub.sessions) as session:
        main = Location(code="MAIN", name="Main")
        product = Product(title="Merch")
        session.add_all([main, product])
        session.flush()
        session.add(ChannelWarehouse(channel_account_id=tiktok_account, external_warehouse_id="W1",
                                     location_id=main.id, name="US warehouse"))  # fmt: skip
        tee = Variant(product_id=product.id, sku="TEE-M", title="Cotton tee")
        session.add_all([tee, Variant(product_id=product.id, sku="MUG")])
        session.flush()
        apply_external_movement(session, sku="TEE-M", location_code="MAIN", kind="restock", quantity=10,
                                idempotency_key="first-count", origin="hub", now=hub.clock.now())  # fmt: skip
        listing = ChannelListing(channel_account_id=tiktok_account, external_product_id="P1",
                                 external_sku_id="S1", variant_id=tee.id)  # fmt: skip
        session.add(listing)
        session.flush()
        return listing.id
