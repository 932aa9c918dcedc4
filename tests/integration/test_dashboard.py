"""The dashboard over HTTP: sign-in, sessions, CSRF, roles, the queue (labels, deadlines, filters, search, keyset
pages), the order page, retry with its audit entry, and API tokens' expiry and revocation."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from shopbridge.bootstrap import Hub, build_hub
from shopbridge.runtime.inbox import record as inbox_record
from shopbridge.runtime.jobs import set_aside
from shopbridge.services.access import FAILURES_PER_EMAIL, create_sign_in_link, disable_user, issue_token, revoke_token
from shopbridge.services.connections import SILENCE_CHECK, check_silence
from shopbridge.store.db import transaction
from shopbridge.store.sync_issues import raise_issue
from shopbridge.store.tables import (
    CancellationRequest,
    ChannelAccount,
    ChannelListing,
    Job,
    StockLevel,
    StockRuleRow,
    SyncIssue,
)
from shopbridge.web.app import create_app
from shopbridge.web.dashboard.guard import COOKIE
from tests.integration.dashboard_world import (
    PASSWORD,
    add_accounts,
    add_order,
    add_people,
    add_stock,
    audit_count,
    csrf_of,
    form_token,
    hours,
    sign_in,
)


@pytest.fixture
def hub(tiktok_hub: Hub) -> Hub:
    """TikTok's channel configured, so a blocked TikTok order can be re-synced."""
    return tiktok_hub


@pytest.fixture
def client(hub: Hub) -> TestClient:
    add_people(hub)
    return TestClient(create_app(hub))


def test_the_queue_asks_for_sign_in_and_a_wrong_password_is_refused(client: TestClient) -> None:
    response = client.get("/", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/sign-in"
    assert client.get("/orders/1", follow_redirects=False).headers["location"] == "/sign-in?next=/orders/1"
    htmx = client.get("/queue/rows", headers={"HX-Request": "true"})
    assert htmx.status_code == 401 and htmx.headers["HX-Redirect"].startswith("/sign-in")
    refused = client.post(
        "/sign-in", data={"email": "ops@example.com", "password": "wrong password!", **form_token(client)}
    )
    assert refused.status_code == 401 and "wrong e-mail or password" in refused.text
    unknown = client.post("/sign-in", data={"email": "nobody@example.com", "password": PASSWORD, **form_token(client)})
    assert unknown.status_code == 401 and "wrong e-mail or password" in unknown.text
    assert COOKIE not in client.cookies


def test_signing_in_sets_a_safe_cookie_and_goes_where_asked_but_never_off_site(client: TestClient) -> None:
    response = client.post(
        "/sign-in",
        data={"email": "OPS@example.com", "password": PASSWORD, "next": "//evil.test", **form_token(client)},
        follow_redirects=False,
    )
    assert response.status_code == 303 and response.headers["location"] == "/"
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie  # plain http here
    page = client.get("/")
    assert page.status_code == 200 and "ops@example.com" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["content-security-policy"].count("default-src") == 1
    client.cookies.clear()
    again = client.post(
        "/sign-in",
        data={"email": "ops@example.com", "password": PASSWORD, "next": "/account", **form_token(client)},
        follow_redirects=False,
    )
    assert again.headers["location"] == "/account"


def test_signing_in_needs_the_forms_own_token(client: TestClient, hub: Hub) -> None:
    """Another site cannot sign a browser in to an account of its choosing: the post must carry the token its page
    set in the browser's own cookie."""
    bare = client.post("/sign-in", data={"email": "ops@example.com", "password": PASSWORD}, follow_redirects=False)
    assert bare.status_code == 403 and "this form expired" in bare.text and COOKIE not in client.cookies
    attacker = TestClient(client.app)
    foreign = form_token(attacker)  # a token of the attacker's own browser
    forged = client.post("/sign-in", data={"email": "ops@example.com", "password": PASSWORD, **foreign},
                         follow_redirects=False)  # fmt: skip
    assert forged.status_code == 403 and COOKIE not in client.cookies
    renewed = csrf_of(forged.text)  # the refusal renewed the form: signing in now works
    done = client.post("/sign-in", data={"email": "ops@example.com", "password": PASSWORD, "csrf_token": renewed},
                       follow_redirects=False)  # fmt: skip
    assert done.status_code == 303 and COOKIE in client.cookies
    assert "shopbridge_form" not in client.cookies, "the form's cookie goes once signed in"


def test_the_secure_flag_is_set_behind_tls(hub: Hub) -> None:
    add_people(hub)
    with TestClient(create_app(hub), base_url="https://hub.example") as client:
        response = client.post(
            "/sign-in",
            data={"email": "ops@example.com", "password": PASSWORD, **form_token(client)},
            follow_redirects=False,
        )
    assert "Secure" in response.headers["set-cookie"]


def test_failed_sign_ins_are_rate_limited_per_address(client: TestClient, hub: Hub) -> None:
    for _ in range(FAILURES_PER_EMAIL):
        failed = client.post(
            "/sign-in", data={"email": "ops@example.com", "password": "not it at all", **form_token(client)}
        )
        assert failed.status_code == 401
    locked = client.post("/sign-in", data={"email": "ops@example.com", "password": PASSWORD, **form_token(client)})
    assert locked.status_code == 429 and "too many failed sign-ins; try again in 15 minutes" in locked.text
    assert (
        client.post(
            "/sign-in",
            data={"email": "viewer@example.com", "password": PASSWORD, **form_token(client)},
            follow_redirects=False,
        ).status_code
        == 303
    ), "another address is not locked"
    client.cookies.clear()  # signed out
    hub.clock.advance(15 * 60 + 1)  # type: ignore[attr-defined]
    assert (
        client.post(
            "/sign-in",
            data={"email": "ops@example.com", "password": PASSWORD, **form_token(client)},
            follow_redirects=False,
        ).status_code
        == 303
    )


def test_sign_out_ends_the_session_on_the_server(client: TestClient) -> None:
    csrf = sign_in(client, "ops")
    cookie = client.cookies[COOKIE]
    assert client.post("/sign-out", data={"csrf_token": csrf}, follow_redirects=False).status_code == 303
    assert client.get("/", follow_redirects=False).status_code == 303
    client.cookies.set(COOKIE, cookie)  # a copy of the old cookie is refused too
    assert client.get("/", follow_redirects=False).status_code == 303


def test_a_disabled_user_is_refused_at_once(client: TestClient, hub: Hub) -> None:
    sign_in(client, "support")
    assert client.get("/").status_code == 200
    with transaction(hub.sessions) as session:
        disable_user(session, "support@example.com", now=hub.clock.now(), actor="owner@example.com")
    assert client.get("/", follow_redirects=False).status_code == 303
    refused = client.post("/sign-in", data={"email": "support@example.com", "password": PASSWORD, **form_token(client)})
    assert refused.status_code == 401 and "disabled" in refused.text
    assert audit_count(hub, "user.disable") == 1


def test_a_session_ends_after_idling(client: TestClient, hub: Hub) -> None:
    sign_in(client, "ops")
    hub.clock.advance(11 * 3600)  # type: ignore[attr-defined]
    assert client.get("/").status_code == 200  # seen: the idle time starts again
    hub.clock.advance(11 * 3600)  # type: ignore[attr-defined]
    assert client.get("/").status_code == 200
    hub.clock.advance(13 * 3600)  # type: ignore[attr-defined]
    assert client.get("/", follow_redirects=False).status_code == 303


def test_a_sign_in_link_sets_the_password_once(client: TestClient, hub: Hub) -> None:
    with transaction(hub.sessions) as session:
        token = create_sign_in_link(session, "finance@example.com", now=hub.clock.now(), actor="cli")
    assert client.get(f"/sign-in/link/{token}").status_code == 200
    short = client.post(
        f"/sign-in/link/{token}",
        data={"password": "short", "again": "short", **form_token(client, f"/sign-in/link/{token}")},
    )
    assert short.status_code == 422 and "at least 10 characters" in short.text
    done = client.post(
        f"/sign-in/link/{token}",
        data={
            "password": "a new password!",
            "again": "a new password!",
            **form_token(client, f"/sign-in/link/{token}"),
        },
        follow_redirects=False,
    )
    assert done.status_code == 303 and COOKIE in client.cookies
    client.cookies.clear()
    assert client.get(f"/sign-in/link/{token}").status_code == 404
    assert (
        client.post(
            "/sign-in",
            data={"email": "finance@example.com", "password": "a new password!", **form_token(client)},
            follow_redirects=False,
        ).status_code
        == 303
    )


def test_changing_the_password_signs_out_other_sessions(client: TestClient, hub: Hub) -> None:
    other = TestClient(client.app)
    sign_in(other, "ops")
    csrf = sign_in(client, "ops")
    wrong = client.post(
        "/account/password",
        data={
            "csrf_token": csrf,
            "current_password": "nope nope nope",
            "password": "brand new secret",
            "again": "brand new secret",
        },
    )
    assert wrong.status_code == 422 and "current password is wrong" in wrong.text
    changed = client.post(
        "/account/password",
        data={
            "csrf_token": csrf,
            "current_password": PASSWORD,
            "password": "brand new secret",
            "again": "brand new secret",
        },
    )
    assert changed.status_code == 200 and "Password changed" in changed.text
    assert client.get("/").status_code == 200, "this session stays"
    assert other.get("/", follow_redirects=False).status_code == 303, "the other one ended"
    assert audit_count(hub, "user.set_password") >= 2


def test_the_queue_shows_every_channel_deadlines_first_with_risk(client: TestClient, hub: Hub) -> None:
    accounts = add_accounts(hub)
    now = hub.clock.now()
    add_order(hub, accounts.tiktok, "TT-LATE", dispatch_by=now - hours(1))
    add_order(hub, accounts.tiktok, "TT-SOON", dispatch_by=now + hours(2))
    add_order(hub, accounts.tiktok, "TT-LATER", dispatch_by=now + hours(30))
    add_order(hub, accounts.shopify, "#1001", status="awaiting_shipment")
    add_order(hub, accounts.manual, "WA-7", status="delivered")
    sign_in(client, "viewer")
    page = client.get("/").text
    order = [m for m in re.findall(r">(TT-LATE|TT-SOON|TT-LATER|#1001|WA-7)</a>", page)]
    assert order == ["TT-LATE", "TT-SOON", "TT-LATER", "WA-7", "#1001"]
    assert {"TikTok", "Shopify", "Manual"} <= set(re.findall(r'class="channel channel-\w+">([^<]+)<', page))
    assert 'class="risk-late"' in page and 'class="risk-at_risk"' in page
    assert "Retry selected" not in page, "a viewer is offered no change"


def test_filters_and_search(client: TestClient, hub: Hub) -> None:
    accounts = add_accounts(hub)
    now = hub.clock.now()
    add_order(hub, accounts.tiktok, "TT-1", dispatch_by=now + hours(1), blocked="unknown_sku", sku="MUG-1")
    add_order(hub, accounts.tiktok, "TT-2", dispatch_by=now + hours(40), created_at=now - hours(72))
    add_order(hub, accounts.shopify, "#2001", status="cancelled")
    sign_in(client, "support")

    def shown(query: str) -> set[str]:
        return set(re.findall(r'<a href="/orders/\d+">([^<]+)</a>', client.get(f"/?{query}").text))

    assert shown("channel=shopify") == {"#2001"}
    assert shown("status=cancelled") == {"#2001"}
    assert shown("blocked=1") == {"TT-1"}
    assert shown("at_risk=1") == {"TT-1"}
    assert shown("q=MUG-1") == {"TT-1"}
    assert shown("q=%232001") == {"#2001"}
    day = (now - hours(72)).date().isoformat()
    assert shown(f"from={day}&to={day}") == {"TT-2"}
    assert shown("status=nonsense") == {"TT-1", "TT-2", "#2001"}, "an unknown status filters nothing"


def test_keyset_pages_walk_every_order_once(client: TestClient, hub: Hub) -> None:
    accounts = add_accounts(hub)
    now = hub.clock.now()
    expected = []
    for n in range(70):  # 70 with deadlines (some equal), 60 without
        add_order(hub, accounts.tiktok, f"D{n:03}", dispatch_by=now + hours(n // 3))
        expected.append(f"D{n:03}")
    for n in range(60):
        add_order(hub, accounts.shopify, f"N{n:03}")
    expected += [f"N{n:03}" for n in reversed(range(60))]
    sign_in(client, "viewer")
    seen: list[str] = []
    url: str | None = "/"
    while url:
        page = client.get(url).text
        seen += re.findall(r'<a href="/orders/\d+">([^<]+)</a>', page)
        found = re.search(r'<a href="([^"]+)" rel="next">', page)
        url = found.group(1).replace("&amp;", "&") if found else None
    assert seen == expected
    assert client.get("/?after=not-a-cursor").status_code == 200, "a forged cursor shows the first page"


def test_retry_needs_an_operator_and_the_csrf_token_and_is_audited(client: TestClient, hub: Hub) -> None:
    accounts = add_accounts(hub)
    blocked = add_order(hub, accounts.tiktok, "TT-B", blocked="unknown_sku")
    csrf = sign_in(client, "viewer")
    assert client.post(f"/orders/{blocked}/retry", data={"csrf_token": csrf}).status_code == 403
    client.cookies.clear()
    csrf = sign_in(client, "ops")
    assert client.post(f"/orders/{blocked}/retry").status_code == 403, "no CSRF token"
    assert client.post(f"/orders/{blocked}/retry", data={"csrf_token": "forged"}).status_code == 403
    assert audit_count(hub, "order.retry") == 0
    done = client.post(f"/orders/{blocked}/retry", data={"csrf_token": csrf}, follow_redirects=False)
    assert done.status_code == 303 and "queued+for+retry" in done.headers["location"]
    assert audit_count(hub, "order.retry") == 1
    bulk = client.post(
        "/orders/retry",
        data={"order_id": [str(blocked), "999999"]},
        headers={"X-CSRF-Token": csrf},
        follow_redirects=False,
    )
    assert bulk.status_code == 303 and "order+999999+does+not+exist" in bulk.headers["location"]
    assert audit_count(hub, "order.retry") == 2
    work = client.get(f"/orders/{blocked}").text.split("<h2>Sync attempts</h2>", 1)[1]
    assert "TikTok: sync orders" in work and "not run yet" in work, "the order page lists the retry's work"


def test_the_order_page(client: TestClient, hub: Hub) -> None:
    accounts = add_accounts(hub)
    order_id = add_order(hub, accounts.tiktok, "TT-9", blocked="unknown_sku", sku="<b>X</b>")
    sign_in(client, "ops")
    page = client.get(f"/orders/{order_id}")
    assert page.status_code == 200
    assert "Blocked: unknown_sku" in page.text and "&lt;b&gt;X&lt;/b&gt;" in page.text and "<b>X</b>" not in page.text
    assert "<title>Order TT-9 · shopbridge</title>" in page.text
    assert csrf_of(page.text)
    assert client.get("/orders/424242").status_code == 404


def test_api_tokens_expire_and_are_revoked_at_once(hub: Hub) -> None:
    add_people(hub)
    now = hub.clock.now()
    with transaction(hub.sessions) as session:
        lasting = issue_token(session, "ops@example.com", "lasting", now=now)
        brief = issue_token(session, "ops@example.com", "brief", now=now, expires_at=now + hours(1))
    with TestClient(create_app(hub)) as client:

        def status(token: str) -> int:
            return client.get("/api/v1/orders", headers={"Authorization": f"Bearer {token}"}).status_code

        assert status(lasting) == 200 and status(brief) == 200
        hub.clock.advance(3601)  # type: ignore[attr-defined]
        assert status(brief) == 401 and status(lasting) == 200
        with transaction(hub.sessions) as session:
            revoke_token(session, 1, now=hub.clock.now(), actor="owner@example.com")
        assert status(lasting) == 401
    assert audit_count(hub, "token.revoke") == 1 and audit_count(hub, "token.create") == 2


def test_the_exceptions_page_names_who_acts_and_resolves_retries_and_replays(client: TestClient, hub: Hub) -> None:
    accounts = add_accounts(hub)
    order_id = add_order(hub, accounts.tiktok, "TT-X", blocked="unknown_sku")
    now = hub.clock.now()
    with transaction(hub.sessions) as session:
        raise_issue(session, kind="needs_reauth", severity="critical", fingerprint="reauth:1", now=now,
                    message="TikTok US needs a new authorization", channel_account_id=accounts.tiktok)  # fmt: skip
        raise_issue(session, kind="order_blocked", severity="error", fingerprint="blocked:1", now=now,
                    message="order TT-X names SKU MUG-9 the hub does not know", subject_type="order",
                    subject_id=str(order_id))  # fmt: skip
        dead = set_aside(session, "tiktok.push_stock", {"product_id": "P1"}, error=ValueError("refused by TikTok"),
                         now=now, channel_account_id=accounts.tiktok)  # fmt: skip
    sign_in(client, "viewer")
    page = client.get("/exceptions").text
    assert "TikTok US needs a new authorization" in page and ">owner</span>" in page and ">ops</span>" in page
    assert "refused by TikTok" in page and "Resolve" not in page, "a viewer sees, and is offered nothing"
    client.cookies.clear()
    csrf = sign_in(client, "ops")
    reauth = int(re.findall(r"/exceptions/issues/(\d+)/resolve", client.get("/exceptions?kind=needs_reauth").text)[0])
    done = client.post(f"/exceptions/issues/{reauth}/resolve", data={"csrf_token": csrf}, follow_redirects=False)
    assert "resolved" in done.headers["location"]
    assert "needs a new authorization" not in client.get("/exceptions").text
    retried = client.post(f"/exceptions/jobs/{dead}/retry", data={"csrf_token": csrf}, follow_redirects=False)
    assert f"job+{dead}+pending+again" in retried.headers["location"]
    again = client.post(f"/exceptions/jobs/{dead}/retry", data={"csrf_token": csrf}, follow_redirects=False)
    assert "only+dead+jobs+can+be+retried" in again.headers["location"]
    with hub.sessions() as session:
        assert session.get(Job, dead).state == "pending"  # type: ignore[union-attr]
    blocked = int(re.findall(r"/exceptions/issues/(\d+)/retry", client.get("/exceptions?kind=order_blocked").text)[0])
    order_retry = client.post(f"/exceptions/issues/{blocked}/retry", data={"csrf_token": csrf}, follow_redirects=False)
    assert f"order+{order_id}+queued+again" in order_retry.headers["location"]
    assert audit_count(hub, "issue.resolve") == 1 and audit_count(hub, "job.retry") == 1
    assert audit_count(hub, "order.retry") == 1


def test_the_stock_pages_show_the_truth_and_each_channel_and_edit_a_rule(client: TestClient, hub: Hub) -> None:
    listing_id = add_stock(hub, add_accounts(hub).tiktok)
    sign_in(client, "viewer")
    listed = client.get("/stock").text
    assert "TEE-M" in listed and "MUG" in listed and "Import a CSV" not in listed
    page = client.get("/stock/TEE-M").text
    assert "TikTok US" in page and "Save for this SKU" not in page
    assert client.get("/stock/NOPE").status_code == 404
    client.cookies.clear()
    csrf = sign_in(client, "ops")
    form = {"csrf_token": csrf, "account_id": "1", "buffer_units": "3", "buffer_percent": "10",
            "out_of_stock_threshold": "2", "protect_units": "0", "protect_until": ""}  # fmt: skip
    bad = client.post("/stock/TEE-M/rule", data={**form, "buffer_percent": "150"}, follow_redirects=False)
    assert "buffer_percent+must+be+in" in bad.headers["location"]
    with hub.sessions() as session:
        before = session.get(ChannelListing, listing_id).stock_version  # type: ignore[union-attr]
    saved = client.post("/stock/TEE-M/rule", data=form, follow_redirects=True)
    assert "rule saved" in saved.text and "This SKU's own rule" in saved.text
    with hub.sessions() as session:
        assert session.get(ChannelListing, listing_id).stock_version == before + 1  # type: ignore[union-attr]
        override = session.scalar(select(StockRuleRow).where(StockRuleRow.variant_id.is_not(None)))
        assert override is not None and override.buffer_units == 3 and override.out_of_stock_threshold == 2
    cleared = client.post("/stock/TEE-M/rule", data={**form, "clear": "1"}, follow_redirects=True)
    assert "override removed" in cleared.text
    assert audit_count(hub, "stock.rule") == 2


def test_a_csv_import_applies_whole_or_lists_every_bad_line(client: TestClient, hub: Hub) -> None:
    add_stock(hub, add_accounts(hub).tiktok)
    csrf = sign_in(client, "ops")
    bad = "sku,location,on_hand\nTEE-M,MAIN,12\nNOPE,MAIN,3\nMUG,MAIN,-1\n"
    refused = client.post("/stock/import", data={"csrf_token": csrf, "mode": "counts", "origin": "hub"},
                          files={"file": ("count.csv", bad.encode(), "text/csv")})  # fmt: skip
    assert refused.status_code == 422 and "Nothing was applied" in refused.text
    assert "line 3" in refused.text and "NOPE" in refused.text and "line 4" in refused.text
    with hub.sessions() as session:
        assert session.scalar(select(StockLevel.on_hand).where(StockLevel.variant_id == 1)) == 10
    good = "sku,location,on_hand\nTEE-M,MAIN,12\nMUG,MAIN,4\n"
    done = client.post("/stock/import", data={"csrf_token": csrf, "mode": "counts", "origin": "hub"},
                       files={"file": ("count.csv", good.encode(), "text/csv")}, follow_redirects=False)  # fmt: skip
    assert done.status_code == 303 and "2+applied" in done.headers["location"]
    with hub.sessions() as session:
        assert session.scalar(select(StockLevel.on_hand).where(StockLevel.variant_id == 1)) == 12
    assert audit_count(hub, "stock.import_counts") == 1
    no_file = client.post("/stock/import", data={"csrf_token": csrf, "mode": "counts"})
    assert no_file.status_code == 422 and "choose a CSV file" in no_file.text


def test_owners_add_users_make_tokens_revoke_them_and_read_the_audit(client: TestClient, hub: Hub) -> None:
    csrf = sign_in(client, "ops")
    assert client.get("/admin/users").status_code == 403 and client.get("/admin/audit").status_code == 403
    client.cookies.clear()
    csrf = sign_in(client, "owner")
    added = client.post("/admin/users", data={"csrf_token": csrf, "email": "new@example.com", "role": "support"})
    assert added.status_code == 200 and "/sign-in/link/" in added.text
    link = re.search(r"(/sign-in/link/[A-Za-z0-9_-]+)", added.text)
    assert link is not None and TestClient(client.app).get(link.group(1)).status_code == 200
    again = client.post("/admin/users", data={"csrf_token": csrf, "email": "new@example.com", "role": "support"})
    assert again.status_code == 422 and "already exists" in again.text
    made = client.post("/admin/tokens", data={"csrf_token": csrf, "email": "ops@example.com", "name": "script",
                                              "expires_in_days": "30"})  # fmt: skip
    token = re.search(r"<code>(sbt_[A-Za-z0-9_-]+)</code>", made.text)
    assert token is not None
    api = {"Authorization": f"Bearer {token.group(1)}"}
    assert client.get("/api/v1/orders", headers=api).status_code == 200
    token_id = int(re.findall(r"/admin/tokens/(\d+)/revoke", made.text)[0])
    client.post(f"/admin/tokens/{token_id}/revoke", data={"csrf_token": csrf})
    assert client.get("/api/v1/orders", headers=api).status_code == 401
    audit = client.get("/admin/audit", params={"action": "token.revoke"}).text
    assert "owner@example.com" in audit and "token.revoke" in audit and "user.add" not in audit.split("<tbody>")[1]


def test_connections_show_health_and_the_checklist_ticks_from_state(client: TestClient, hub: Hub) -> None:
    accounts = add_accounts(hub)
    with transaction(hub.sessions) as session:
        session.get(ChannelAccount, accounts.shopify).status = "needs_reauth"  # type: ignore[union-attr]
        session.get(ChannelAccount, accounts.tiktok).credentials_expire_at = hub.clock.now() + hours(48)  # type: ignore[union-attr]
    sign_in(client, "viewer")
    page = client.get("/connections").text
    assert "needs reauth" in page and "expiring" in page and "the authorization ends in 2 days" in page
    checklist = client.get("/checklist").text
    assert "Connect the TikTok shop" in checklist and "connected: TikTok US" in checklist
    assert "no order yet" in checklist
    add_order(hub, accounts.tiktok, "TT-1")
    add_order(hub, accounts.shopify, "#1")
    add_order(hub, accounts.manual, "WA-1")
    assert "orders seen from: My store, TikTok US, WhatsApp" in client.get("/checklist").text


def test_an_owner_connects_a_tiktok_shop_through_its_authorization(client: TestClient, hub: Hub) -> None:
    csrf = sign_in(client, "owner")
    page = client.get("/connections").text
    assert 'action="/connections/tiktok"' in page and 'name="access_token"' in page
    went = client.post("/connections/tiktok", data={"csrf_token": csrf}, follow_redirects=False)
    assert went.status_code == 303 and went.headers["location"].startswith(hub.settings.tiktok_authorize_base_url)
    assert "state=" in went.headers["location"] and audit_count(hub, "connection.tiktok") == 1
    missing = client.post("/connections/shopify", data={"csrf_token": csrf, "shop": " "}, follow_redirects=False)
    assert "Store+domain%3A+required" in missing.headers["location"]
    bad = client.post("/connections/shopify", data={"csrf_token": csrf, "shop": "evil.example.com",
                                                    "access_token": "shpat_x"}, follow_redirects=True)  # fmt: skip
    assert "myshopify.com" in bad.text and audit_count(hub, "connection.shopify") == 0


def test_a_silent_webhook_channel_raises_an_issue_for_the_owner_until_a_webhook_comes(hub: Hub) -> None:
    accounts = add_accounts(hub)
    hub.clock.advance(7 * 3600)  # type: ignore[attr-defined]
    with transaction(hub.sessions) as session, hub.inbox_sessions() as inbox:
        assert check_silence(session, inbox, now=hub.clock.now()) == 2  # TikTok and the store; WhatsApp sends none
    with hub.sessions() as session:
        issues = session.scalars(select(SyncIssue).where(SyncIssue.kind == "webhook_silence")).all()
        assert {issue.channel_account_id for issue in issues} == {accounts.tiktok, accounts.shopify}
        assert all(issue.details["act"] == "owner" and issue.status == "open" for issue in issues)
    with transaction(hub.inbox_sessions) as inbox:
        inbox_record(inbox, source="tiktok", event_id="e1", payload="{}", now=hub.clock.now(),
                     channel_account_id=accounts.tiktok)  # fmt: skip
    with transaction(hub.sessions) as session, hub.inbox_sessions() as inbox:
        assert check_silence(session, inbox, now=hub.clock.now()) == 1
    with hub.sessions() as session:
        open_now = select(SyncIssue.channel_account_id).where(SyncIssue.kind == "webhook_silence",
                                                              SyncIssue.status == "open")  # fmt: skip
        still = session.scalars(open_now).all()
    assert still == [accounts.shopify]
    scheduled = build_hub(hub.settings)  # the hub's own registry and schedules, not the test's
    try:
        assert SILENCE_CHECK in scheduled.registry and any(p.kind == SILENCE_CHECK for p in scheduled.periodics)
    finally:
        scheduled.close()


def test_a_buyers_cancellation_request_is_answered_from_the_order_page(client: TestClient, hub: Hub) -> None:
    accounts = add_accounts(hub)
    order_id = add_order(hub, accounts.tiktok, "TT-C")
    now = hub.clock.now()
    with transaction(hub.sessions) as session:
        asked = [CancellationRequest(channel_account_id=accounts.tiktok, external_id=f"C{n}", external_order_id="TT-C",
                                     order_id=order_id, requested_at=now, updated_at=now, respond_by=now + hours(24),
                                     reason="Changed my mind") for n in (1, 2)]  # fmt: skip
        session.add_all(asked)
        session.flush()
        first, second = asked[0].id, asked[1].id
    csrf = sign_in(client, "ops")
    page = client.get(f"/orders/{order_id}").text
    assert "Changed my mind" in page and "Approve the cancellation" in page
    approved = client.post(f"/orders/{order_id}/cancellation/{first}", data={"csrf_token": csrf, "decision": "approve"},
                           follow_redirects=True)  # fmt: skip
    assert "cancellation approved" in approved.text
    rejected = client.post(f"/orders/{order_id}/cancellation/{second}",
                           data={"csrf_token": csrf, "decision": "reject", "reason": "already packed"},
                           follow_redirects=True)  # fmt: skip
    assert "cancellation rejected" in rejected.text
    again = client.post(f"/orders/{order_id}/cancellation/{first}", data={"csrf_token": csrf, "decision": "approve"},
                        follow_redirects=True)  # fmt: skip
    assert "not answered" in again.text
    elsewhere = f"/orders/{order_id + 1}/cancellation/{first}"
    other = client.post(elsewhere, data={"csrf_token": csrf, "decision": "approve"}, follow_redirects=False)
    assert "has+no+cancellation+request" in other.headers["location"]
    assert audit_count(hub, "cancellation.approve") == 1 and audit_count(hub, "cancellation.reject") == 1
