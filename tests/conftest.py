"""Shared fixtures. Every database test runs on SQLite, or on PostgreSQL when SHOPBRIDGE_TEST_DATABASE_URL is set
(CI runs the whole suite both ways). PostgreSQL tests keep to a schema of their own."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from sqlalchemy import create_engine, text

from shopbridge.bootstrap import Hub, build_hub
from shopbridge.config import Settings
from shopbridge.domain.clock import ManualClock
from shopbridge.runtime.registry import JobRegistry
from shopbridge.services import access
from shopbridge.store import migrations
from shopbridge.store.db import create_database_engine, reset_schema, with_search_path
from shopbridge.store.secrets import SecretBox
from shopbridge.store.tables import Base

POSTGRES_URL = os.environ.get("SHOPBRIDGE_TEST_DATABASE_URL")
TEST_SCHEMA = "shopbridge_tests"

# Keep every test away from the developer's real data directory and config file.
os.environ.pop("SHOPBRIDGE_DATABASE_URL", None)
os.environ["SHOPBRIDGE_CONFIG_FILE"] = "/nonexistent/shopbridge.toml"


@pytest.fixture(autouse=True)
def quick_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Argon2id at its lowest cost in tests: the sign-in and role tests hash and verify hundreds of passwords, each
    a noticeable part of a CPU second at argon2-cffi's default cost (what the hub uses). Verifying reads the cost
    from the stored hash, so nothing else changes."""
    monkeypatch.setattr(access, "_hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))


def postgres_only() -> pytest.MarkDecorator:
    return pytest.mark.skipif(POSTGRES_URL is None, reason="needs SHOPBRIDGE_TEST_DATABASE_URL (PostgreSQL)")


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A database migrated once per session: a SQLite file to copy, or the PostgreSQL test schema."""
    if POSTGRES_URL:
        reset_schema(POSTGRES_URL, TEST_SCHEMA)
        url = with_search_path(POSTGRES_URL, TEST_SCHEMA)
        engine = create_database_engine(url)
        migrations.upgrade(engine)
        engine.dispose()
        return url
    path = tmp_path_factory.mktemp("template") / "template.db"
    engine = create_database_engine(f"sqlite:///{path}")
    migrations.upgrade(engine)
    engine.dispose()
    return str(path)


@pytest.fixture
def database_url(migrated_template: str, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database for one test."""
    if POSTGRES_URL:
        yield migrated_template
        engine = create_engine(migrated_template)
        tables = ", ".join(f'"{table.name}"' for table in Base.metadata.sorted_tables)
        with engine.begin() as connection:
            connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        engine.dispose()
        return
    path = tmp_path / "shopbridge.db"
    shutil.copy(migrated_template, path)
    yield f"sqlite:///{path}"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def registry() -> JobRegistry:
    return JobRegistry()


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        secret_key=SecretBox.generate_key(),
        job_backoff_base_seconds=2.0,
        job_max_attempts=4,
        log_format="console",
        log_level="warning",
        worker_process=False,  # the hub below runs on an injected clock and registry, which only threads share
    )


@pytest.fixture
def hub(settings: Settings, clock: ManualClock, registry: JobRegistry) -> Iterator[Hub]:
    built = build_hub(settings, clock=clock, registry=registry)
    yield built
    built.close()
