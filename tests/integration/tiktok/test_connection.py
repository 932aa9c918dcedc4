"""Connecting a shop, keeping its tokens fresh, and what happens when the authorization is gone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from shopbridge.channels.tiktok import connect
from shopbridge.channels.tiktok.channel import context_of
from shopbridge.channels.tiktok.connect import WEBHOOKS_PATH
from shopbridge.channels.tiktok.shop import Shop
from shopbridge.channels.tiktok.sync import REFRESH_TOKENS
from shopbridge.channels.tiktok.webhooks import SUBSCRIBED_TOPICS
from shopbridge.domain.clock import ManualClock
from shopbridge.runtime.jobs import enqueue
from shopbridge.runtime.worker import Worker
from shopbridge.store.db import transaction
from shopbridge.store.tables import ChannelAccount, Job, SyncIssue
from tests.integration.tiktok.harness import tiktok_world, wait_until


def account(world_hub_sessions: object) -> ChannelAccount:
    with world_hub_sessions() as session:  # type: ignore[operator]
        found = session.scalar(select(ChannelAccount))
        assert found is not None
        return found


def test_a_timezone_mismatch_refuses_the_connection(database_url: str, tmp_path: Path) -> None:
    with pytest.raises(RuntimeError) as refused, tiktok_world(database_url, tmp_path, timezone="UTC"):
        pass
    assert "runs on America/Los_Angeles but the hub&#39;s timezone is UTC" in str(refused.value)  # page text
    assert "SHOPBRIDGE_TIMEZONE=America/Los_Angeles" in str(refused.value)


def test_a_currency_mismatch_refuses_the_connection(database_url: str, tmp_path: Path) -> None:
    with (
        pytest.raises(RuntimeError, match="sells in USD but the hub&#39;s currency is IDR"),
        tiktok_world(database_url, tmp_path, currency="IDR"),
    ):
        pass


def test_connecting_stores_encrypted_tokens_and_subscribes_the_webhooks(database_url: str, tmp_path: Path) -> None:
    with tiktok_world(database_url, tmp_path) as world:
        connected = account(world.hub.sessions)
        assert connected.status == "active" and connected.currency == "USD"
        assert connected.credentials is not None and b"access_token" not in connected.credentials
        context = context_of(world.hub.channels)
        assert context is not None
        hooks = Shop(context, connected.id).call("GET", WEBHOOKS_PATH)["webhooks"]
        assert {hook["event_type"] for hook in hooks} == set(SUBSCRIBED_TOPICS)
        assert {hook["address"] for hook in hooks} == {f"{world.hub_url}/hooks/tiktok"}


def test_the_scheduled_refresh_renews_tokens_before_they_expire(database_url: str, tmp_path: Path) -> None:
    with tiktok_world(database_url, tmp_path) as world:
        before = account(world.hub.sessions)
        assert before.credentials_expire_at is not None
        # The hub's clock one day before expiry; the job is due only for that clock, not the embedded workers'.
        clock = ManualClock(before.credentials_expire_at - timedelta(days=1))
        with transaction(world.hub.sessions) as session:
            job_id = enqueue(session, REFRESH_TOKENS, now=clock.now(), channel_account_id=before.id)
        assert Worker(world.hub.sessions, world.hub.registry, clock).run_once() == 1
        after = account(world.hub.sessions)
        with world.hub.sessions() as session:
            assert session.get(Job, job_id).state == "succeeded"  # type: ignore[union-attr]
        assert after.credentials != before.credentials, "a new token pair was stored"
        assert after.credentials_expire_at is not None and after.credentials_expire_at >= before.credentials_expire_at


def test_a_failed_refresh_flags_the_shop_and_parks_its_work(database_url: str, tmp_path: Path) -> None:
    with tiktok_world(database_url, tmp_path) as world:
        world.advance(366 * 24 * 3600)  # past the refresh token too: only the seller can fix this
        world.place_order({"TEE-M": 1})
        flagged = wait_until(
            lambda: (a := account(world.hub.sessions)).status == "needs_reauth" and a, message="the shop flagged"
        )
        assert "refreshing the access token" in (flagged.status_reason or "")
        with world.hub.sessions() as session:
            issue = session.scalar(select(SyncIssue).where(SyncIssue.kind == "needs_reauth"))
            assert issue is not None and issue.severity == "critical"

        def sync_states() -> set[str]:
            with world.hub.sessions() as session:
                return set(session.scalars(select(Job.state).where(Job.kind == "tiktok.sync_orders")))

        # Each order's work waits parked; a job that failed while the same work was queued again is superseded.
        wait_until(
            lambda: "parked" in (states := sync_states()) and states <= {"parked", "superseded"},
            message="the shop's sync work parked",
        )
        assert datetime.now(UTC) < flagged.updated_at + timedelta(minutes=5)


def test_an_authorization_link_connects_once(database_url: str, tmp_path: Path) -> None:
    with tiktok_world(database_url, tmp_path) as world:
        context = context_of(world.hub.channels)
        assert context is not None
        link = connect.start(context)
        first = httpx.get(link, follow_redirects=True, timeout=30)
        assert first.status_code == 200 and "Connected" in first.text
        again = httpx.get(link, follow_redirects=True, timeout=30)  # the seller's browser history, or an attacker
        assert again.status_code == 400
        assert "already used" in again.text
        with world.hub.sessions() as session:
            assert len(session.scalars(select(ChannelAccount)).all()) == 1
