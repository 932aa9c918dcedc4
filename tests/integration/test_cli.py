"""The command line as an operator uses it."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from shopbridge import __version__, cli
from shopbridge.bootstrap import Hub
from shopbridge.cli import app
from shopbridge.config import Settings
from shopbridge.runtime import jobs
from shopbridge.runtime.errors import PermanentError
from shopbridge.runtime.registry import JobContext, JobRegistry
from shopbridge.runtime.worker import Worker
from shopbridge.services.access import add_user
from shopbridge.store.db import transaction
from shopbridge.store.tables import AuditEntry

runner = CliRunner()


def test_version() -> None:
    result = runner.invoke(app, ["version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"shopbridge {__version__}"


def test_config_show_masks_secrets(env: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOPBRIDGE_REDIS_URL", "redis://:topsecret@127.0.0.1:6379/0")
    result = runner.invoke(app, ["config", "show", "--json"])
    assert result.exit_code == 0, result.output
    assert "topsecret" not in result.stdout
    assert env.secret_key is not None and env.secret_key.get_secret_value() not in result.stdout
    assert '"redis_url": "********"' in result.stdout


def test_an_invalid_setting_stops_with_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOPBRIDGE_WORKERS", "lots")
    result = runner.invoke(app, ["config", "show"])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        "error: SHOPBRIDGE_WORKERS: expected a valid integer, unable to parse string as an integer, got 'lots'"
    ]


def test_migrate_is_idempotent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOPBRIDGE_DATA_DIR", str(tmp_path))
    first = runner.invoke(app, ["migrate"])
    assert first.exit_code == 0, first.output
    assert "migrated from empty to" in first.stdout
    again = runner.invoke(app, ["migrate"])
    assert again.exit_code == 0
    assert "already at revision" in again.stdout
    assert (tmp_path / "secret.key").stat().st_mode & 0o777 == 0o600, "the embedded key is generated owner-only"


def test_a_postgres_url_without_a_secret_key_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOPBRIDGE_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    monkeypatch.delenv("SHOPBRIDGE_SECRET_KEY", raising=False)
    result = runner.invoke(app, ["migrate"])
    assert result.exit_code == 2
    assert "SHOPBRIDGE_SECRET_KEY" in result.stderr


def test_dead_letters_listed_shown_retried_and_replayed(
    env: Settings, hub: Hub, registry: JobRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli.console, "width", 200)  # a table as an operator's terminal shows it, cells unwrapped

    def reject(ctx: JobContext) -> None:
        raise PermanentError("unknown SKU TEE-XXL")

    registry.register("tiktok.push_stock", reject)
    with transaction(hub.sessions) as session:
        job_id = jobs.enqueue(
            session, "tiktok.push_stock", {"product_id": "1729"}, now=hub.clock.now(), identity_key="push:1729"
        )
    Worker(hub.sessions, registry, hub.clock, hub.worker_options(), name="w-cli").run_once()

    listed = runner.invoke(app, ["jobs", "list"])
    assert listed.exit_code == 0, listed.output
    assert "tiktok.push_stock" in listed.stdout and "unknown SKU TEE-XXL" in listed.stdout

    shown = runner.invoke(app, ["jobs", "show", str(job_id)])
    assert shown.exit_code == 0, shown.output
    assert '"product_id": "1729"' in shown.stdout
    assert "permanent" in shown.stdout and "w-cli" in shown.stdout

    replayed = runner.invoke(app, ["jobs", "replay", str(job_id)])
    assert replayed.exit_code == 0, replayed.output
    assert f"job {job_id} replayed as job {job_id + 1}" in replayed.stdout

    retried = runner.invoke(app, ["jobs", "retry", str(job_id)])
    assert retried.exit_code == 2
    assert f"already queued as job {job_id + 1}" in retried.stderr

    missing = runner.invoke(app, ["jobs", "show", "999999"])
    assert missing.exit_code == 2
    assert "job 999999 does not exist" in missing.stderr


def test_an_unknown_state_filter_is_named(env: Settings) -> None:
    result = runner.invoke(app, ["jobs", "list", "--state", "broken"])
    assert result.exit_code == 2
    assert "--state: expected pending, running, succeeded, dead or parked, got 'broken'" in result.stderr


def test_connect_tiktok_prints_the_authorization_link_through_the_channel_port(
    env: Settings, hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    refused = runner.invoke(app, ["connect", "tiktok"])
    assert refused.exit_code == 2 and "no TikTok app configured" in refused.stderr
    for name, value in (("APP_KEY", "key"), ("APP_SECRET", "secret"), ("SERVICE_ID", "7")):
        monkeypatch.setenv(f"SHOPBRIDGE_TIKTOK_{name}", value)
    linked = runner.invoke(app, ["connect", "tiktok"])
    assert linked.exit_code == 0, linked.output
    assert "Open this link as the seller" in linked.stdout and "service_id=7&state=" in linked.stdout
    with hub.sessions() as session:
        entry = session.scalar(select(AuditEntry).where(AuditEntry.action == "connection.tiktok"))
    assert entry is not None and entry.actor.startswith("cli:") and entry.after == {"redirected": True}


def test_a_change_made_as_a_user_needs_their_role_and_is_audited_under_their_name(
    env: Settings, hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    with transaction(hub.sessions) as session:
        for role in ("owner", "ops", "viewer"):
            add_user(session, f"{role}@example.com", role, now=hub.clock.now())
    refused = runner.invoke(app, ["--as", "viewer@example.com", "users", "add", "new@example.com"])
    assert refused.exit_code == 2 and "viewer@example.com is viewer: this change needs one of: owner" in refused.stderr
    also_refused = runner.invoke(app, ["--as", "ops@example.com", "tokens", "create", "ops@example.com"])
    assert also_refused.exit_code == 2 and "needs one of: owner" in also_refused.stderr
    unknown = runner.invoke(app, ["--as", "nobody@example.com", "users", "disable", "viewer@example.com"])
    assert unknown.exit_code == 2 and "no enabled user nobody@example.com" in unknown.stderr
    added = runner.invoke(app, ["--as", "OWNER@example.com", "users", "add", "new@example.com", "--role", "ops"])
    assert added.exit_code == 0, added.output
    monkeypatch.setenv("SHOPBRIDGE_AS", "owner@example.com")  # the variable does what --as does
    disabled = runner.invoke(app, ["users", "disable", "viewer@example.com"])
    assert disabled.exit_code == 0, disabled.output
    monkeypatch.delenv("SHOPBRIDGE_AS")
    with hub.sessions() as session:
        actors = {entry.action: entry.actor for entry in session.scalars(select(AuditEntry))}
    assert actors["user.add"] == actors["user.disable"] == "owner@example.com"
    assert not any(entry == "viewer@example.com" for entry in actors.values()), "a refused change is not audited"

    monkeypatch.setenv("SHOPBRIDGE_CLI_REQUIRES_USER", "true")  # a hub whose changes must name a user
    nameless = runner.invoke(app, ["users", "link", "new@example.com"])
    assert nameless.exit_code == 2 and "this hub requires changes to name a user" in nameless.stderr
    named = runner.invoke(app, ["--as", "owner@example.com", "users", "link", "new@example.com"])
    assert named.exit_code == 0 and "/sign-in/link/" in named.stdout
