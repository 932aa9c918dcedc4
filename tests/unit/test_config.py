from pathlib import Path

import pytest

from shopbridge.config import ConfigError, load_settings


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("SHOPBRIDGE_WORKERS", "many", "SHOPBRIDGE_WORKERS: expected a valid integer"),
        ("SHOPBRIDGE_PORT", "70000", "SHOPBRIDGE_PORT: expected less than or equal to 65535"),
        ("SHOPBRIDGE_CURRENCY", "usd", "SHOPBRIDGE_CURRENCY: expected an ISO 4217 code"),
        ("SHOPBRIDGE_TIMEZONE", "Mars/Olympus", "SHOPBRIDGE_TIMEZONE: expected an IANA timezone name"),
        ("SHOPBRIDGE_DATABASE_URL", "mysql://x", "SHOPBRIDGE_DATABASE_URL: expected a sqlite:/// or postgresql"),
        ("SHOPBRIDGE_LOG_LEVEL", "loud", "SHOPBRIDGE_LOG_LEVEL: expected 'debug', 'info', 'warning' or 'error'"),
    ],
)
def test_an_invalid_value_is_one_line_naming_the_key(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as raised:
        load_settings()
    assert str(raised.value).startswith(expected)
    assert "\n" not in str(raised.value)


def test_environment_wins_over_the_toml_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "shopbridge.toml"
    config.write_text('workers = 5\ncurrency = "IDR"\ntimezone = "Asia/Jakarta"\n')
    monkeypatch.setenv("SHOPBRIDGE_CONFIG_FILE", str(config))
    monkeypatch.setenv("SHOPBRIDGE_WORKERS", "3")
    settings = load_settings()
    assert (settings.workers, settings.currency, settings.timezone) == (3, "IDR", "Asia/Jakarta")


def test_an_unknown_key_in_the_file_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "shopbridge.toml"
    config.write_text("wrokers = 5\n")
    monkeypatch.setenv("SHOPBRIDGE_CONFIG_FILE", str(config))
    with pytest.raises(ConfigError, match="SHOPBRIDGE_WROKERS: unknown setting"):
        load_settings()


def test_a_malformed_file_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "shopbridge.toml"
    config.write_text("workers = \n")
    monkeypatch.setenv("SHOPBRIDGE_CONFIG_FILE", str(config))
    with pytest.raises(ConfigError, match=str(config)):
        load_settings()


def test_secrets_and_url_passwords_are_masked() -> None:
    settings = load_settings(
        database_url="postgresql+psycopg://shop:hunter2@db/shop", secret_key="k" * 44, redis_url="redis://r"
    )
    shown = settings.masked()
    assert "hunter2" not in str(shown)
    assert shown["database_url"] == "postgresql+psycopg://shop:********@db/shop"
    assert shown["secret_key"] == "********"


def test_the_embedded_default_is_sqlite_in_the_data_dir(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path)
    assert settings.effective_database_url == f"sqlite:///{tmp_path / 'shopbridge.db'}"
