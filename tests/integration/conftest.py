"""Fixtures shared by the integration tests: the command line's environment, a hub with a TikTok app configured,
and an owner's API token on a small catalogue."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from shopbridge import cli
from shopbridge.bootstrap import Hub, build_hub
from shopbridge.config import Settings
from shopbridge.domain.clock import ManualClock
from shopbridge.runtime.registry import JobRegistry
from shopbridge.services.access import add_user, issue_token
from shopbridge.store.db import transaction
from shopbridge.store.tables import Location, Product, Variant


@pytest.fixture
def env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The environment a CLI process of the test's hub would see (same database, key and data directory)."""
    monkeypatch.setenv("SHOPBRIDGE_DATABASE_URL", settings.effective_database_url)
    assert settings.secret_key is not None
    monkeypatch.setenv("SHOPBRIDGE_SECRET_KEY", settings.secret_key.get_secret_value())
    monkeypatch.setenv("SHOPBRIDGE_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("SHOPBRIDGE_LOG_LEVEL", "error")
    monkeypatch.setenv("COLUMNS", "200")
    # The command's console read COLUMNS when the module was first imported, perhaps by an earlier test.
    monkeypatch.setattr(cli.console, "width", 200)
    return settings


@pytest.fixture
def tiktok_hub(settings: Settings, clock: ManualClock, registry: JobRegistry) -> Iterator[Hub]:
    """A hub with a TikTok app configured (whose hosts answer nothing), so a delivery reaches the signature check
    and the OAuth callback its state check."""
    configured = settings.model_copy(update={"tiktok_app_key": "key", "tiktok_app_secret": SecretStr("secret"),
                                             "tiktok_api_base_url": "http://127.0.0.1:9",
                                             "tiktok_auth_base_url": "http://127.0.0.1:9"})  # fmt: skip
    built = build_hub(configured, clock=clock, registry=registry)
    yield built
    built.close()


def owner_token(hub: Hub) -> str:
    """The MAIN location, SKU TEE-M, and an owner with an API token."""
    with transaction(hub.sessions) as session:
        product = Product(title="Cotton tee")
        session.add_all([product, Location(code="MAIN", name="Main")])
        session.flush()
        session.add(Variant(product_id=product.id, sku="TEE-M"))
        add_user(session, "owner@example.com", "owner", now=hub.clock.now())
        return issue_token(session, "owner@example.com", "tests", now=hub.clock.now())
