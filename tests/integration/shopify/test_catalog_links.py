"""A store connected through the API and the OAuth install, its catalogue imported from the Shopify sandbox, its
listings linked to the hub's SKUs, the SKU problems listed, and links made and undone by hand (API and CLI)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import select
from typer.testing import CliRunner

from shopbridge.bootstrap import Hub, build_hub
from shopbridge.channels.shopify import catalog, oauth
from shopbridge.channels.shopify.context import NAME, ShopifyApp, ShopifyContext
from shopbridge.channels.shopify.kinds import IMPORT_CATALOG, PUSH_STOCK
from shopbridge.cli_links import links_app
from shopbridge.config import Settings
from shopbridge.demo.world import free_port, serving
from shopbridge.runtime.jobs import enqueue
from shopbridge.runtime.worker import Worker
from shopbridge.sandbox.shopify import ShopifySandboxConfig, create_app
from shopbridge.services.access import add_user, issue_token, set_password
from shopbridge.services.stock import record_movement
from shopbridge.store.db import transaction
from shopbridge.store.tables import (
    AuditEntry,
    ChannelAccount,
    ChannelListing,
    ChannelWarehouse,
    Job,
    Location,
    OAuthState,
    Product,
    SyncIssue,
    Variant,
)
from shopbridge.web.app import create_app as create_hub_app
from tests.integration.conftest import owner_token

SHOP = "test-store.myshopify.com"
TOKEN = "shpat_test_token"
API_KEY, API_SECRET = "test_key", "test_secret"
runner = CliRunner()


@dataclass
class Store:
    hub: Hub
    context: ShopifyContext
    hub_url: str
    sandbox_url: str
    control: httpx.Client  # the sandbox's /_sandbox control API
    api: httpx.Client  # the hub's API with the owner's token

    def product(self, title: str, *skus: str | None) -> dict[str, Any]:
        variants = [{"sku": sku, "price": "10.00", "options": [["Title", f"{title} {index}"]], "stock": {"default": 5}}
                    for index, sku in enumerate(skus)]  # fmt: skip
        created = self.control.post("/_sandbox/products", json={"title": title, "variants": variants})
        assert created.status_code == 201, created.text
        return dict(created.json())

    def connect(self) -> int:
        answer = self.api.post("/api/v1/connections/shopify", json={"shop": SHOP, "access_token": TOKEN})
        assert answer.status_code == 200, answer.text
        account_id = int(answer.json()["account_id"])
        with self.hub.sessions() as session:
            entry = session.scalar(select(AuditEntry).where(AuditEntry.action == "connection.shopify"))
        assert entry is not None and entry.subject_id == str(account_id) and entry.actor == "owner@example.com"
        return account_id

    def run_import(self, account_id: int) -> None:
        worker = Worker(self.hub.sessions, self.hub.registry, self.hub.clock)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with self.hub.sessions() as session:
                imports = select(Job.state).where(Job.kind == IMPORT_CATALOG, Job.channel_account_id == account_id)
                states = set(session.scalars(imports))
            if states == {"succeeded"}:
                return
            assert "dead" not in states, "the catalogue import failed"
            worker.run_once()
        raise AssertionError("the catalogue import did not finish")

    def listings(self, account_id: int) -> dict[str | None, list[ChannelListing]]:
        with self.hub.sessions() as session:
            rows = session.scalars(select(ChannelListing).where(ChannelListing.channel_account_id == account_id))
            found: dict[str | None, list[ChannelListing]] = {}
            for row in rows:
                found.setdefault(row.seller_sku, []).append(row)
            return found

    def variant_id(self, sku: str) -> int:
        with self.hub.sessions() as session:
            found = session.scalar(select(Variant.id).where(Variant.sku == sku))
            assert found is not None
            return found


def shopify_context(hub: Hub) -> ShopifyContext | None:
    context = getattr(hub.channels.get(NAME), "context", None)
    return context if isinstance(context, ShopifyContext) else None


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    """The sandbox store (Main Warehouse ships online orders, Downtown Store sells over the counter) and a hub
    serving its API, with its Shopify app pointed at the sandbox. Jobs are run by the test, one at a time."""
    sandbox_port, hub_port = free_port(), free_port()
    hub_url = f"http://127.0.0.1:{hub_port}"
    sandbox_app = create_app(ShopifySandboxConfig(
        shop_domain=SHOP, access_token=TOKEN, api_key=API_KEY, api_secret=API_SECRET, random_seed=7,
        redirect_url=f"{hub_url}{oauth.CALLBACK_PATH}",
    ))  # fmt: skip
    with ExitStack() as stack:
        sandbox_url = stack.enter_context(serving(sandbox_app, sandbox_port))
        configured = settings.model_copy(update={
            "shopify_api_key": API_KEY, "shopify_api_secret": SecretStr(API_SECRET),
            "shopify_admin_base_url": sandbox_url, "public_url": hub_url,
            "currency": "USD", "timezone": "America/Los_Angeles",
        })  # fmt: skip
        hub = build_hub(configured)
        stack.callback(hub.close)
        context = shopify_context(hub)
        app_routes = None
        if context is None:  # until the Shopify channel is wired into the composition root
            app = ShopifyApp(API_KEY, API_SECRET, configured.shopify_api_version, sandbox_url,
                             configured.shopify_scopes)  # fmt: skip
            context = ShopifyContext(app, httpx.Client(timeout=15), hub.sessions, hub.inbox_sessions, hub.secrets,
                                     hub.clock, configured)  # fmt: skip
            stack.callback(context.http.close)
            if IMPORT_CATALOG not in hub.registry:
                catalog.register(hub.registry, context)
            app_routes = oauth.web_routes(context, hub.clock)
        web = create_hub_app(hub)
        if app_routes is not None:
            web.include_router(app_routes)
        stack.enter_context(serving(web, hub_port))
        control = stack.enter_context(httpx.Client(base_url=sandbox_url, timeout=15))
        for name, online in (("Main Warehouse", True), ("Downtown Store", False)):
            assert control.post("/_sandbox/locations", json={"name": name, "fulfills_online_orders": online}).is_success
        token = owner_token(hub)  # MAIN, TEE-M and an owner
        api = stack.enter_context(
            httpx.Client(base_url=hub_url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
        )
        yield Store(hub, context, hub_url, sandbox_url, control, api)


def add_variants(hub: Hub, *skus: str) -> None:
    with transaction(hub.sessions) as session:
        product = Product(title="More")
        session.add(product)
        session.flush()
        session.add_all(Variant(product_id=product.id, sku=sku) for sku in skus)


def test_the_import_links_by_sku_maps_locations_and_lists_the_problems(store: Store) -> None:
    add_variants(store.hub, "TEE-L", "MUG", "CAP")
    tee_m_id = store.variant_id("TEE-M")
    with transaction(store.hub.sessions) as session:  # TEE-M's stock is known: its new listing is to be pushed
        main = session.scalar(select(Location.id).where(Location.code == "MAIN"))
        assert main is not None
        record_movement(session, variant_id=tee_m_id, location_id=main, kind="restock",
                        idempotency_key="seed", source="hub", now=store.hub.clock.now(), on_hand_delta=10)  # fmt: skip
    tee = store.product("Cotton tee", "TEE-M", "TEE-L")
    store.product("Mug", "MUG")
    store.product("Gift set", "MUG", None)  # a second MUG, and a variant without a SKU
    store.product("Hat", "HAT")  # not in the hub
    account_id = store.connect()
    store.run_import(account_id)

    listings = store.listings(account_id)
    (tee_m,) = listings["TEE-M"]
    assert tee_m.variant_id == store.variant_id("TEE-M") and tee_m.link == "auto"
    assert tee_m.external_sku_id == tee["variants"][0]["gid"] and tee_m.external_product_id == tee["gid"]
    assert tee_m.external_stock_id == tee["variants"][0]["inventory_item_gid"] and tee_m.status == "ACTIVE"
    assert listings["TEE-L"][0].variant_id == store.variant_id("TEE-L")
    assert [row.variant_id for row in listings["MUG"]] == [None, None], "a duplicate SKU is never linked"
    assert listings["HAT"][0].variant_id is None and listings[None][0].variant_id is None
    assert tee_m.stock_version == 1 and listings["TEE-L"][0].stock_version == 0, "only a known truth is pushed"
    with store.hub.sessions() as session:
        assert session.scalar(select(Job.id).where(Job.kind == PUSH_STOCK)) is not None

    with store.hub.sessions() as session:
        mapped = {name: code for name, code in session.execute(
            select(ChannelWarehouse.name, Location.code).join(Location, Location.id == ChannelWarehouse.location_id)
            .where(ChannelWarehouse.channel_account_id == account_id)).all()}  # fmt: skip
        downtown = session.scalar(select(Location).where(Location.code == mapped["Downtown Store"]))
        assert downtown is not None and downtown.name == "Downtown Store"
        issue = session.scalar(select(SyncIssue).where(SyncIssue.fingerprint == f"link_problems:{account_id}"))
        assert issue is not None and issue.status == "open" and issue.details["not_linked"] == 4
    assert mapped["Main Warehouse"] == "MAIN"
    assert mapped["Downtown Store"].startswith("SHOPIFY-") and mapped["Downtown Store"][8:].isdigit()

    problems = store.api.get("/api/v1/links/problems").json()
    assert sorted((p["reason"], p["sku"]) for p in problems) == [
        ("duplicate_sku", "MUG"), ("missing_sku", None), ("not_in_hub", "HAT"),
    ]  # fmt: skip
    assert all(p["blocking"] and p["message"] for p in problems)

    # Another account (a marketplace shop) lists TEE-M only: what the store has and it has not is shown.
    with transaction(store.hub.sessions) as session:
        shop = ChannelAccount(channel="tiktok", label="TikTok Demo", external_id="7001", settings={})
        session.add(shop)
        session.flush()
        session.add(ChannelListing(channel_account_id=shop.id, external_product_id="p1", external_sku_id="s1",
                                   seller_sku="TEE-M", variant_id=tee_m_id))  # fmt: skip
    one_sided = [p for p in store.api.get("/api/v1/links/problems").json() if p["reason"] == "only_on_some_accounts"]
    assert [p["sku"] for p in one_sided] == ["MUG", "TEE-L"]  # HAT is reported as not in the hub
    assert one_sided[1]["missing_from"] == [shop.id] and not one_sided[1]["blocking"]
    assert one_sided[1]["message"] == (
        "SKU TEE-L is on Shopify Sandbox Store but not on TikTok Demo: list it there too if it should sell there"
    )


def test_links_made_and_undone_by_hand_survive_the_next_import(store: Store) -> None:
    add_variants(store.hub, "MUG", "CAP")
    store.product("Mug", "MUG")
    store.product("Gift set", "MUG", None)
    account_id = store.connect()
    store.run_import(account_id)
    mugs = store.listings(account_id)["MUG"]
    (no_sku,) = store.listings(account_id)[None]

    linked = store.api.post("/api/v1/links", json={"account_id": account_id, "external_sku_id": no_sku.external_sku_id,
                                                   "sku": "CAP"})  # fmt: skip
    assert linked.status_code == 200, linked.text
    assert (linked.json()["link"], linked.json()["sku"]) == ("manual", "CAP")
    unknown = store.api.post("/api/v1/links", json={"account_id": account_id, "external_sku_id": "nope", "sku": "CAP"})
    assert unknown.status_code == 404 and "has no listing 'nope'" in unknown.json()["detail"]
    mug = {"account_id": account_id, "external_sku_id": mugs[0].external_sku_id}
    no_such_sku = store.api.post("/api/v1/links", json={**mug, "sku": "NOPE"})
    assert no_such_sku.status_code == 404 and no_such_sku.json()["detail"] == "the hub has no SKU 'NOPE'"
    taken = store.api.post("/api/v1/links", json={**mug, "sku": "CAP"})
    assert taken.status_code == 409 and "already linked" in taken.json()["detail"]

    # Unlinking one MUG settles the duplicate: the other links by SKU.
    gone = store.api.delete(f"/api/v1/links/{account_id}/{mugs[0].external_sku_id}")
    assert gone.status_code == 200, gone.text
    assert gone.json()["link"] == "unlinked"
    after = {row.external_sku_id: row for row in store.listings(account_id)["MUG"]}
    assert after[mugs[1].external_sku_id].variant_id == store.variant_id("MUG")
    assert store.api.get("/api/v1/links/problems").json() == []
    with store.hub.sessions() as session:
        issue = session.scalar(select(SyncIssue).where(SyncIssue.fingerprint == f"link_problems:{account_id}"))
        assert issue is not None and issue.status == "resolved"

    # The next import keeps what a person set.
    with transaction(store.hub.sessions) as session:
        enqueue(session, IMPORT_CATALOG, {}, now=store.hub.clock.now(), channel_account_id=account_id)
    store.run_import(account_id)
    rows = {row.external_sku_id: row for rows in store.listings(account_id).values() for row in rows}
    assert (rows[no_sku.external_sku_id].link, rows[no_sku.external_sku_id].variant_id) == (
        "manual", store.variant_id("CAP"))  # fmt: skip
    assert (rows[mugs[0].external_sku_id].link, rows[mugs[0].external_sku_id].variant_id) == ("unlinked", None)
    listed = store.api.get("/api/v1/links", params={"account_id": account_id, "state": "manual"}).json()
    assert [row["external_sku_id"] for row in listed] == [no_sku.external_sku_id]


def test_only_operators_change_links(store: Store) -> None:
    with transaction(store.hub.sessions) as session:
        add_user(session, "viewer@example.com", "viewer", now=store.hub.clock.now())
        token = issue_token(session, "viewer@example.com", "tests", now=store.hub.clock.now())
    viewer = {"Authorization": f"Bearer {token}"}
    assert httpx.get(f"{store.hub_url}/api/v1/links", headers=viewer).status_code == 200
    refused = httpx.post(f"{store.hub_url}/api/v1/links", headers=viewer,
                         json={"account_id": 1, "external_sku_id": "x", "sku": "TEE-M"})  # fmt: skip
    assert refused.status_code == 403
    assert httpx.delete(f"{store.hub_url}/api/v1/links/1/x", headers=viewer).status_code == 403
    assert httpx.get(f"{store.hub_url}/api/v1/links/problems").status_code == 401
    connect = httpx.post(f"{store.hub_url}/api/v1/connections/shopify", headers=viewer,
                         json={"shop": SHOP, "access_token": TOKEN})  # fmt: skip
    assert connect.status_code == 403


def test_the_command_line_lists_problems_links_and_unlinks(store: Store, env: Settings) -> None:
    add_variants(store.hub, "MUG", "CAP")
    store.product("Gift set", "MUG", "MUG", None)
    account_id = store.connect()
    store.run_import(account_id)
    mugs = store.listings(account_id)["MUG"]
    (no_sku,) = store.listings(account_id)[None]

    shown = runner.invoke(links_app, ["list", "--problems"])
    assert shown.exit_code == 0, shown.output
    assert "duplicate_sku" in shown.stdout and "missing_sku" in shown.stdout
    linked = runner.invoke(links_app, ["link", str(account_id), no_sku.external_sku_id, "CAP"])
    assert linked.exit_code == 0, linked.output
    assert "now sells CAP" in linked.stdout
    refused = runner.invoke(links_app, ["link", str(account_id), no_sku.external_sku_id, "NOPE"])
    assert (refused.exit_code, refused.stderr.strip()) == (2, "error: the hub has no SKU 'NOPE'")
    unlinked = runner.invoke(links_app, ["unlink", str(account_id), mugs[0].external_sku_id])
    assert unlinked.exit_code == 0, unlinked.output
    assert runner.invoke(links_app, ["list", "--problems"]).stdout.strip() == "no link problems"
    listed = runner.invoke(links_app, ["list", "--account", str(account_id), "--state", "manual", "--json"])
    assert listed.exit_code == 0 and no_sku.external_sku_id in listed.stdout and "CAP" in listed.stdout


def test_a_token_the_store_refuses_connects_nothing(store: Store) -> None:
    answer = store.api.post("/api/v1/connections/shopify", json={"shop": SHOP, "access_token": "shpat_wrong"})
    assert answer.status_code == 400 and "refused the token" in answer.json()["detail"]
    bad_domain = store.api.post("/api/v1/connections/shopify", json={"shop": "evil.example.com", "access_token": TOKEN})
    assert bad_domain.status_code == 400 and "is not a store domain" in bad_domain.json()["detail"]
    with store.hub.sessions() as session:
        assert session.scalar(select(ChannelAccount.id)) is None


def test_the_oauth_install_connects_once_and_a_forged_callback_is_refused(store: Store) -> None:
    forged = httpx.get(f"{store.hub_url}{oauth.CALLBACK_PATH}", params={
        "shop": SHOP, "code": "stolen", "state": "x", "timestamp": str(int(time.time())), "hmac": "0" * 64,
    })  # fmt: skip
    assert forged.status_code == 400 and "did not come from Shopify" in forged.text
    assert httpx.get(f"{store.hub_url}/connect/shopify/start", params={"shop": SHOP}).status_code == 401

    installed = store.api.get("/connect/shopify/start", params={"shop": SHOP}, follow_redirects=True)
    assert installed.status_code == 200, installed.text
    assert "Connected" in installed.text and SHOP in installed.text
    with store.hub.sessions() as session:
        account = session.scalar(select(ChannelAccount).where(ChannelAccount.channel == NAME))
        assert account is not None and account.external_id == SHOP and account.status == "active"
        assert account.credentials is not None and b"shpua_" not in account.credentials
        assert session.scalar(select(OAuthState.channel)) == NAME
    assert store.hub.secrets.open(account.credentials)["access_token"].startswith("shpua_")

    # The same link again (the owner's browser history, or someone who saw it) connects nothing more.
    link = oauth.start(store.context, SHOP)
    first = httpx.get(link, follow_redirects=True, timeout=30)
    assert first.status_code == 200
    again = httpx.get(link, follow_redirects=True, timeout=30)
    assert again.status_code == 400 and "already used" in again.text

    # A genuine callback replayed for another store than the link was made for is refused.
    # (the sandbox answers for its one store whatever the link named).
    other = oauth.start(store.context, "another-store.myshopify.com")
    refused = httpx.get(other, follow_redirects=True, timeout=30)
    assert refused.status_code == 400 and "made for another-store.myshopify.com" in refused.text


def test_a_catalogue_larger_than_a_page_is_read_whole_and_creates_main(store: Store) -> None:
    with transaction(store.hub.sessions) as session:  # a hub without MAIN: the import creates it
        session.query(Variant).delete()
        session.query(Product).delete()
        session.query(Location).delete()
    skus = [f"BULK-{index:03d}" for index in range(260)]
    add_variants(store.hub, *skus)
    for start in range(0, len(skus), 100):
        store.product(f"Bulk {start}", *skus[start : start + 100])
    account_id = store.connect()
    store.run_import(account_id)
    listings = store.listings(account_id)
    assert len(listings) == 260 and all(rows[0].variant_id is not None for rows in listings.values())
    with store.hub.sessions() as session:
        main = session.scalar(select(Location).where(Location.code == "MAIN"))
        assert main is not None
        assert session.scalar(select(ChannelWarehouse.location_id).where(
            ChannelWarehouse.name == "Main Warehouse")) == main.id  # fmt: skip


def test_the_command_line_connects_a_store(store: Store, env: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    from shopbridge.cli import app

    for name, value in (("SHOPIFY_API_KEY", API_KEY), ("SHOPIFY_API_SECRET", API_SECRET),
                        ("SHOPIFY_ADMIN_BASE_URL", store.sandbox_url), ("CURRENCY", "USD"),
                        ("TIMEZONE", "America/Los_Angeles")):  # fmt: skip
        monkeypatch.setenv(f"SHOPBRIDGE_{name}", value)
    connected = runner.invoke(app, ["connect", "shopify", "--shop", SHOP, "--token", TOKEN])
    assert connected.exit_code == 0, connected.output
    assert f"({SHOP})" in connected.stdout
    refused = runner.invoke(app, ["connect", "shopify", "--shop", SHOP, "--token", "shpat_wrong"])
    assert refused.exit_code == 2 and "refused the token" in refused.stderr


def test_an_owner_connects_the_store_from_the_dashboard_by_token_or_by_installing_the_app(store: Store) -> None:
    with transaction(store.hub.sessions) as session:
        set_password(session, "owner@example.com", "owner password 1", now=store.hub.clock.now(), actor="tests")
    with httpx.Client(base_url=store.hub_url, timeout=30, follow_redirects=True) as browser:
        form = browser.get("/sign-in").text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        signed = browser.post("/sign-in", data={"email": "owner@example.com", "password": "owner password 1",
                                                "csrf_token": form})  # fmt: skip
        assert signed.status_code == 200, signed.text  # followed to the queue
        csrf = browser.get("/connections").text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        install = browser.post("/connections/shopify", data={"csrf_token": csrf, "shop": SHOP},
                               follow_redirects=False)  # fmt: skip
        assert install.status_code == 303 and install.headers["location"].startswith(store.sandbox_url)
        assert "/admin/oauth/authorize" in install.headers["location"]
        refused = browser.post("/connections/shopify", data={"csrf_token": csrf, "shop": SHOP,
                                                             "access_token": "shpat_wrong"})  # fmt: skip
        assert "the store refused the token" in refused.text
        connected = browser.post("/connections/shopify", data={"csrf_token": csrf, "shop": SHOP, "access_token": TOKEN,
                                                               "stock_master": "hub"})  # fmt: skip
        assert connected.status_code == 200 and "connected" in connected.text
        assert "healthy" in connected.text and SHOP in connected.text
    with store.hub.sessions() as session:
        entries = session.scalars(select(AuditEntry).where(AuditEntry.action == "connection.shopify")).all()
    assert len(entries) == 2 and all("access_token" not in (entry.after or {}) for entry in entries)
