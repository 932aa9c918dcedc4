"""Fixtures shared by the integration tests of the command line."""

from __future__ import annotations

import pytest

from shopbridge.config import Settings


@pytest.fixture
def env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The environment a CLI process of the test's hub would see (same database, key and data directory)."""
    monkeypatch.setenv("SHOPBRIDGE_DATABASE_URL", settings.effective_database_url)
    assert settings.secret_key is not None
    monkeypatch.setenv("SHOPBRIDGE_SECRET_KEY", settings.secret_key.get_secret_value())
    monkeypatch.setenv("SHOPBRIDGE_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("SHOPBRIDGE_LOG_LEVEL", "error")
    monkeypatch.setenv("COLUMNS", "200")
    return settings
