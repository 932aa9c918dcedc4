"""Status drift as people see it: the dashboard's drift page (viewers read, ops and owners check now), the API's
summary and check, and the command line's ``drift status`` and ``drift check``; every check asked for is audited."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import select
from typer.testing import CliRunner

from shopbridge.bootstrap import Hub, build_hub
from shopbridge.cli import app as cli_app
from shopbridge.config import Settings
from shopbridge.domain.clock import ManualClock
from shopbridge.domain.drift import OriginReading
from shopbridge.domain.orders import OrderStatus
from shopbridge.services import drift
from shopbridge.services.access import issue_token
from shopbridge.store.db import transaction
from shopbridge.store.tables import ChannelAccount, Job
from shopbridge.web.app import create_app
from tests.integration.dashboard_world import add_accounts, add_order, add_people, audit_count, sign_in

runner = CliRunner()
CHECKS = ["shopify.check_drift", "tiktok.check_drift"]


@pytest.fixture
def clock() -> ManualClock:
    """Today's time, as the command line (on the system clock) reads the last 24 hours from it."""
    return ManualClock(datetime.now(UTC) - timedelta(hours=1))


@pytest.fixture
def hub(settings: Settings, clock: ManualClock) -> Iterator[Hub]:
    """A hub with its channels' work registered (TikTok's app configured, its hosts answering nothing), people of
    every role, and a TikTok order found cancelled on TikTok by a check."""
    configured = settings.model_copy(update={"tiktok_app_key": "key", "tiktok_app_secret": SecretStr("secret"),
                                             "tiktok_api_base_url": "http://127.0.0.1:9",
                                             "tiktok_auth_base_url": "http://127.0.0.1:9"})  # fmt: skip
    built = build_hub(configured, clock=clock)
    add_people(built)
    accounts = add_accounts(built)
    order_id = add_order(built, accounts.tiktok, "TT-DRIFT")
    with transaction(built.sessions) as session:
        tiktok = session.get(ChannelAccount, accounts.tiktok)
        assert tiktok is not None
        confirm = {"orders": [order_id], "side": "origin", "carry": {"checked": 4}}
        drift.record_origin_readings(session, tiktok, [OriginReading(order_id, OrderStatus.CANCELLED, "CANCELLED")],
                                     resync_kind="tiktok.sync_orders", payload=confirm,
                                     now=clock.now() + timedelta(minutes=5))  # fmt: skip
    yield built
    built.close()


def checks_queued(hub: Hub) -> list[str]:
    with hub.sessions() as session:
        return sorted(session.scalars(select(Job.kind).where(Job.kind.like("%.check_drift"), Job.state == "pending")))


def test_the_drift_page_shows_the_rate_the_checks_and_who_acts(hub: Hub) -> None:
    client = TestClient(create_app(hub))
    csrf = sign_in(client, "viewer")
    page = client.get("/drift")
    assert page.status_code == 200
    text = page.text
    assert "<title>Status drift · shopbridge</title>" in text and 'href="/drift" aria-current="page"' in text
    assert "<strong>25.00 %</strong> of the orders compared" in text and "4 in 1 checks" in text
    assert "cancelled not in hub</dt><dd>1</dd>" in text and "shipped not recorded</dt><dd>0</dd>" in text
    assert "TikTok US order TT-DRIFT was cancelled on TikTok US (CANCELLED)" in text
    assert '<a href="/orders/1">TT-DRIFT</a>' in text and ">none</span>" in text and "repaired: resync" in text
    assert "Check now" not in text, "a viewer reads, and is offered nothing"
    assert client.post("/drift/check", data={"csrf_token": csrf}).status_code == 403
    assert checks_queued(hub) == [] and audit_count(hub, "drift.check") == 0


def test_check_now_needs_an_operator_and_its_token_and_is_audited(hub: Hub) -> None:
    client = TestClient(create_app(hub))
    csrf = sign_in(client, "ops")
    assert "Check now" in client.get("/drift").text
    assert client.post("/drift/check", follow_redirects=False).status_code == 403, "no CSRF token"
    done = client.post("/drift/check", data={"csrf_token": csrf}, follow_redirects=False)
    assert done.status_code == 303 and "checking+TikTok+US%2C+My+store" in done.headers["location"]
    assert checks_queued(hub) == CHECKS, "one per account whose channel has a check (the manual channel has none)"
    client.post("/drift/check", data={"csrf_token": csrf}, follow_redirects=False)
    assert checks_queued(hub) == CHECKS, "a waiting check is not queued twice"
    assert audit_count(hub, "drift.check") == 2


def test_the_api_summary_and_check(hub: Hub) -> None:
    with transaction(hub.sessions) as session:
        tokens = {role: issue_token(session, f"{role}@example.com", "t", now=hub.clock.now())
                  for role in ("viewer", "ops")}  # fmt: skip
    client = TestClient(create_app(hub))
    summary = client.get("/api/v1/drift", headers={"Authorization": f"Bearer {tokens['viewer']}"})
    assert summary.status_code == 200
    body = summary.json()
    assert (body["last_24h"]["orders_checked"], body["last_24h"]["drifted"], body["last_24h"]["rate"]) == (4, 1, 0.25)
    assert [(issue["kind"], issue["external_order_id"], issue["act"]) for issue in body["open"]] == [
        ("cancelled_not_in_hub", "TT-DRIFT", "none")]  # fmt: skip
    assert client.post("/api/v1/drift/check", headers={"Authorization": f"Bearer {tokens['viewer']}"}).status_code \
        == 403  # fmt: skip
    queued = client.post("/api/v1/drift/check", headers={"Authorization": f"Bearer {tokens['ops']}"})
    assert queued.status_code == 202
    assert [(found["channel"], found["account"]) for found in queued.json()["queued"]] == [
        ("tiktok", "TikTok US"), ("shopify", "My store")]  # fmt: skip
    assert audit_count(hub, "drift.check") == 1
    metrics = client.get("/metrics").text
    assert "shopbridge_drift_rate 0.25" in metrics and 'shopbridge_drifted_orders{kind="cancelled_not_in_hub"} 1.0' \
        in metrics and "shopbridge_drift_open 1.0" in metrics  # fmt: skip


def test_the_command_line_shows_and_checks(hub: Hub, env: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOPBRIDGE_TIKTOK_APP_KEY", "key")
    monkeypatch.setenv("SHOPBRIDGE_TIKTOK_APP_SECRET", "secret")
    shown = runner.invoke(cli_app, ["drift", "status"])
    assert shown.exit_code == 0, shown.output
    assert "1 of 4 orders compared drifted (25.00%)" in shown.stdout and "cancelled_not_in_hub" in shown.stdout
    as_json = runner.invoke(cli_app, ["drift", "status", "--json"])
    assert as_json.exit_code == 0 and '"rate": 0.25' in as_json.stdout
    checked = runner.invoke(cli_app, ["drift", "check"])
    assert checked.exit_code == 0, checked.output
    assert "checking TikTok US (job" in checked.stdout and "My store (job" in checked.stdout
    assert checks_queued(hub) == CHECKS and audit_count(hub, "drift.check") == 1
