"""What the hub writes to disk is its owner's alone: the directories it creates 0700, its files 0600 (the databases,
their -wal/-shm/-writer companions, the generated secret key), whatever the process umask. Directories and files
the user made keep the mode the user gave them (docs/operations.md, *Files and permissions*)."""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from shopbridge.bootstrap import Hub, build_hub
from shopbridge.config import Settings
from shopbridge.store.db import transaction
from shopbridge.store.secrets import SecretBox, load_or_create_key
from shopbridge.store.tables import Location
from tests.conftest import POSTGRES_URL

pytestmark = pytest.mark.skipif(POSTGRES_URL is not None, reason="about the embedded SQLite database's files")

DATABASE_FILES = {"shopbridge.db", "shopbridge-inbox.db"}
WHILE_OPEN = {f"{name}{suffix}" for name in DATABASE_FILES for suffix in ("-wal", "-shm", "-writer")}


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    """The common default umask (022), under which a file created without an explicit mode is world-readable."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _embedded_hub(data_dir: Path, **settings: object) -> Hub:
    return build_hub(
        Settings(data_dir=data_dir, log_format="console", log_level="warning", worker_process=False, **settings)
    )


def _write_something(hub: Hub) -> None:
    hub.migrate()
    with transaction(hub.sessions) as session:
        session.add(Location(code="MAIN", name="Main", timezone="UTC", created_at=hub.clock.now()))


def test_a_new_data_dir_and_the_files_the_hub_creates_in_it_are_owner_only(tmp_path: Path) -> None:
    data_dir = tmp_path / "home" / "shopbridge"  # neither exists yet: the hub creates both
    hub = _embedded_hub(data_dir)
    try:
        _write_something(hub)
        names = {path.name for path in data_dir.iterdir()}
        assert {"secret.key", *DATABASE_FILES, *WHILE_OPEN} <= names
        assert {name: oct(_mode(data_dir / name)) for name in names} == dict.fromkeys(names, oct(0o600))
    finally:
        hub.close()
    assert _mode(data_dir) == 0o700
    assert _mode(data_dir.parent) == 0o700
    for name in {"secret.key", *DATABASE_FILES}:
        assert _mode(data_dir / name) == 0o600, name


def test_a_data_dir_the_user_made_keeps_its_mode_and_the_files_in_it_are_owner_only(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    data_dir.chmod(0o750)
    hub = _embedded_hub(data_dir)
    try:
        _write_something(hub)
        names = {path.name for path in data_dir.iterdir()}
        assert {name: oct(_mode(data_dir / name)) for name in names} == dict.fromkeys(names, oct(0o600))
    finally:
        hub.close()
    assert _mode(data_dir) == 0o750


def test_a_database_file_the_user_made_keeps_its_mode(tmp_path: Path, migrated_template: str) -> None:
    database = tmp_path / "mine" / "hub.db"
    database.parent.mkdir()
    shutil.copy(migrated_template, database)
    database.chmod(0o640)
    hub = _embedded_hub(tmp_path / "data", database_url=f"sqlite:///{database}", secret_key=SecretBox.generate_key())
    try:
        _write_something(hub)
        assert _mode(database) == 0o640
        assert _mode(database.parent / "hub.db-writer") == 0o600  # created by the hub
        assert _mode(database.parent / "hub-inbox.db") == 0o600
    finally:
        hub.close()
    assert _mode(database.parent) == 0o755  # made by the test (umask 022)


def test_a_database_in_a_directory_that_does_not_exist_yet(tmp_path: Path) -> None:
    database = tmp_path / "var" / "lib" / "hub.db"
    hub = _embedded_hub(tmp_path / "data", database_url=f"sqlite:///{database}", secret_key=SecretBox.generate_key())
    try:
        _write_something(hub)
        assert _mode(database) == 0o600
        assert _mode(database.parent / "hub.db-wal") == 0o600
    finally:
        hub.close()
    assert _mode(database.parent) == _mode(database.parent.parent) == 0o700


def test_the_generated_key_and_its_new_directory_are_owner_only(tmp_path: Path) -> None:
    data_dir = tmp_path / "fresh"
    key = load_or_create_key(data_dir)
    assert load_or_create_key(data_dir) == key
    assert _mode(data_dir) == 0o700
    assert _mode(data_dir / "secret.key") == 0o600
