"""Orders that cannot be synced are kept Blocked with a reason, and a retry after the fix releases them."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from shopbridge.store.db import reading, transaction
from shopbridge.store.tables import ChannelAccount, ChannelListing, Product, SyncIssue, Variant
from tests.integration.tiktok.harness import World, tiktok_world, wait_until


def _listing(world: World, seller_sku: str) -> bool:
    with reading(world.hub.sessions) as session:
        return session.scalar(select(ChannelListing.id).where(ChannelListing.seller_sku == seller_sku)) is not None


def test_an_unlinked_sku_blocks_the_order_until_it_is_linked_and_retried(database_url: str, tmp_path: Path) -> None:
    with tiktok_world(database_url, tmp_path) as world:
        wait_until(lambda: _listing(world, "MUG"), message="the shop's listings imported")
        with transaction(world.hub.sessions) as session:
            mug = session.scalar(select(Variant).where(Variant.sku == "MUG"))
            assert mug is not None
            mug.sku = "MUG-OLD"  # the hub's catalogue spells the SKU differently...
            listing = session.scalar(select(ChannelListing).where(ChannelListing.seller_sku == "MUG"))
            assert listing is not None
            listing.variant_id = None  # ...and nobody has linked the TikTok listing to it
        order_id = world.place_order({"MUG": 1, "TEE-M": 1})
        world.advance(3601)
        blocked = wait_until(
            lambda: (o := world.hub_order(order_id)) and o["status"] == "awaiting_shipment" and o,
            message="the order past its hold",
        )
        assert blocked["blocked"] == {
            "reason": "unlinked_sku",
            "message": "SKU MUG (Everyday cotton tee and mug / Default) is not linked to a product in the hub",
        }
        assert blocked["released_at"] is None, "a blocked order is not released"
        listed = world.api.get("/api/v1/orders", params={"blocked": "true"}).json()["orders"]
        assert [o["external_id"] for o in listed] == [order_id]
        with world.hub.sessions() as session:
            issue = session.scalar(select(SyncIssue).where(SyncIssue.kind == "order_blocked"))
            assert issue is not None and issue.status == "open"

        with transaction(world.hub.sessions) as session:
            mug = session.scalar(select(Variant).where(Variant.sku == "MUG-OLD"))
            assert mug is not None
            mug.sku = "MUG"
        retried = world.api.post(f"/api/v1/orders/{blocked['id']}/retry")
        assert retried.status_code == 202, retried.text
        released = wait_until(
            lambda: (o := world.hub_order(order_id)) and o["released_at"] and o, message="release after the retry"
        )
        assert released["blocked"] is None
        with world.hub.sessions() as session:
            issue = session.scalar(select(SyncIssue).where(SyncIssue.kind == "order_blocked"))
            assert issue is not None and issue.status == "resolved"


def test_a_deleted_product_blocks_the_order(database_url: str, tmp_path: Path) -> None:
    with tiktok_world(database_url, tmp_path) as world:
        with transaction(world.hub.sessions) as session:
            product = session.scalar(select(Product))
            assert product is not None
            product.status = "deleted"
        order_id = world.place_order({"TEE-L": 1})
        order = wait_until(lambda: world.hub_order(order_id), message="the order")
        assert order["blocked"]["reason"] == "deleted_product"


def test_a_currency_mismatch_blocks_the_order(database_url: str, tmp_path: Path) -> None:
    with tiktok_world(database_url, tmp_path) as world:
        with transaction(world.hub.sessions) as session:
            account = session.scalar(select(ChannelAccount))
            assert account is not None
            account.currency = "EUR"  # the shop was set up in euros; TikTok sends dollars
        order_id = world.place_order({"TEE-L": 1})
        order = wait_until(lambda: world.hub_order(order_id), message="the order")
        assert order["blocked"] == {"reason": "currency_mismatch",
                                    "message": "order currency USD differs from the shop's EUR"}  # fmt: skip


def test_the_shops_extra_hold_delays_the_release(database_url: str, tmp_path: Path) -> None:
    with tiktok_world(database_url, tmp_path) as world:
        with transaction(world.hub.sessions) as session:
            account = session.scalar(select(ChannelAccount))
            assert account is not None
            account.settings = {**account.settings, "extra_hold_seconds": 2}
        order_id = world.place_order({"TEE-M": 1})
        world.advance(3601)
        held = wait_until(
            lambda: (o := world.hub_order(order_id)) and o["status"] == "awaiting_shipment" and o,
            message="the order past TikTok's hold",
        )
        assert held["released_at"] is None, "still inside the shop's own extra hold"
        wait_until(
            lambda: (o := world.hub_order(order_id)) and o["released_at"], message="release after the extra hold"
        )


def test_the_api_needs_a_token_and_the_right_role(database_url: str, tmp_path: Path) -> None:
    import httpx

    from shopbridge.services.access import add_user, issue_token

    with tiktok_world(database_url, tmp_path) as world:
        assert httpx.get(f"{world.hub_url}/api/v1/orders").status_code == 401
        bad = httpx.get(f"{world.hub_url}/api/v1/orders", headers={"authorization": "Bearer nope"})
        assert bad.status_code == 401
        with transaction(world.hub.sessions) as session:
            add_user(session, "viewer@example.com", "viewer", now=world.hub.clock.now())
            token = issue_token(session, "viewer@example.com", "t", now=world.hub.clock.now())
        viewer = {"authorization": f"Bearer {token}"}
        assert httpx.get(f"{world.hub_url}/api/v1/orders", headers=viewer).status_code == 200
        refused = httpx.post(f"{world.hub_url}/api/v1/orders/1/retry", headers=viewer)
        assert refused.status_code == 403
        assert "role viewer may not do this" in refused.json()["detail"]
