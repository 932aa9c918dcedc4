"""Effective configuration: ``SHOPBRIDGE_*`` environment variables over an optional TOML file.

The TOML file is ``shopbridge.toml`` in the working directory, or the path in ``SHOPBRIDGE_CONFIG_FILE``.
Environment variables win over the file; both use the same key names (``workers = 4`` in the file,
``SHOPBRIDGE_WORKERS=4`` in the environment).
"""

from __future__ import annotations

import os
import re
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_core import ErrorDetails
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

ENV_PREFIX = "SHOPBRIDGE_"
CONFIG_FILE_ENV = "SHOPBRIDGE_CONFIG_FILE"
_CURRENCY = re.compile(r"^[A-Z]{3}$")


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "shopbridge"


def config_file_path() -> Path:
    return Path(os.environ.get(CONFIG_FILE_ENV, "shopbridge.toml"))


class ConfigError(Exception):
    """An invalid configuration value; the message is one line naming the key and what is expected."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", validate_default=True)

    data_dir: Path = Field(default_factory=default_data_dir, description="Where the embedded database lives.")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default: SQLite file shopbridge.db in data_dir."
    )
    secret_key: SecretStr | None = Field(
        default=None,
        description="Fernet key encrypting channel credentials; generated into data_dir for the embedded default.",
    )
    redis_url: SecretStr | None = Field(default=None, description="Redis for shared rate limits.")
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    ops_port: int | None = Field(
        default=None, ge=1, le=65535,
        description="A second listener of `serve` for /metrics, the API docs and /healthz, /readyz; the public one "
        "then answers 404 for the metrics and docs. Unset: all on the public listener.",
    )  # fmt: skip
    ops_host: str = Field(default="127.0.0.1", description="Interface of the ops listener (with ops_port).")
    public_url: str | None = Field(default=None, description="Public base URL channels send webhooks to.")
    cli_requires_user: bool = Field(
        default=False,
        description="Command-line changes must name a hub user (--as or SHOPBRIDGE_AS) whose role allows them.",
    )
    workers: int = Field(
        default=8, ge=0, le=64, description="Workers `serve` runs (threads of its worker process, see worker_process)."
    )
    worker_process: bool = Field(
        default=True,
        description="`serve` runs its workers in a child process beside the web process (their own interpreter "
        "lock); false runs them as threads of the web process.",
    )
    api_threads: int = Field(default=8, ge=1, le=200, description="Threads serving the synchronous API routes.")
    inbox_sweep_seconds: float = Field(
        default=30.0, gt=0, description="How often inbox events still `received` are handed to their jobs again."
    )
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["json", "console"] = "json"
    currency: str = Field(default="USD", description="The hub's ISO 4217 currency.")
    timezone: str = Field(default="UTC", description="The hub's IANA timezone.")
    tiktok_app_key: str | None = Field(default=None, description="Partner Center app key.")
    tiktok_app_secret: SecretStr | None = Field(default=None, description="Partner Center app secret.")
    tiktok_service_id: str | None = Field(default=None, description="Partner Center service id (authorization link).")
    tiktok_api_base_url: str = "https://open-api.tiktokglobalshop.com"
    tiktok_auth_base_url: str = "https://auth.tiktok-shops.com"
    tiktok_authorize_base_url: str = "https://services.tiktokshop.com"
    tiktok_poll_seconds: float = Field(default=60.0, gt=0, description="Order poll backstop interval per shop.")
    tiktok_poll_overlap_seconds: float = Field(default=300.0, ge=0, description="Re-read window behind the watermark.")
    tiktok_initial_lookback_hours: float = Field(default=72.0, ge=0, description="History read on first connect.")
    tiktok_refresh_before_hours: float = Field(
        default=48.0, gt=0, description="Refresh tokens this long before expiry."
    )
    tiktok_rate_limit: str = Field(default="40/second", description="Calls per shop (limits syntax).")
    finance_reconcile_seconds: float = Field(
        default=3600.0, gt=0, description="How often every shop's settlements are reconciled against its orders."
    )
    tiktok_finance_import_seconds: float = Field(
        default=3600.0, gt=0, description="How often each shop's statements, transactions and payments are imported."
    )
    shopify_api_key: str | None = Field(default=None, description="Shopify app client id (OAuth install).")
    shopify_api_secret: SecretStr | None = Field(
        default=None, description="Shopify app client secret: signs the OAuth callback and the webhooks."
    )
    shopify_api_version: str = Field(default="2026-07", description="Admin API version the connector calls.")
    shopify_admin_base_url: str | None = Field(
        default=None,
        description="Where the Admin API answers, instead of https://{shop domain} (a sandbox, a proxy).",
    )
    shopify_scopes: str = Field(
        default="read_products,read_inventory,write_inventory,read_locations,read_orders,write_orders,"
        "read_fulfillments,read_merchant_managed_fulfillment_orders,write_merchant_managed_fulfillment_orders",
        description="Access scopes the OAuth install asks for.",
    )
    shopify_poll_seconds: float = Field(
        default=60.0, gt=0, description="Order and fulfilment poll backstop interval per store."
    )
    pos_poll_seconds: float = Field(
        default=60.0, gt=0, description="POS backstop interval per account: levels, tasks and returns read again."
    )
    fulfilment_sla_warn_minutes: float = Field(
        default=360.0, ge=0, description="Raise 'SLA at risk' this long before a released order's dispatch deadline."
    )
    fulfilment_sla_check_seconds: float = Field(
        default=60.0, gt=0, description="How often dispatch deadlines are checked."
    )
    stock_push_mode: Literal["event", "interval"] = Field(
        default="event", description="event: push a stock change at once; interval: every stock_push_interval_seconds."
    )
    stock_push_interval_seconds: float = Field(default=60.0, gt=0, description="The period of the interval mode.")
    stock_buffer_units: int = Field(default=1, ge=0, description="Default units held back from each channel per SKU.")
    stock_buffer_percent: Decimal = Field(
        default=Decimal(4), ge=0, lt=100, description="Default percent of on-hand held back (rounded up)."
    )
    stock_cancel_oversold: bool = Field(
        default=False, description="Cancel an order's units the stock truth no longer had, on the channel."
    )
    stock_drift_check_seconds: float = Field(
        default=900.0, gt=0, description="How often channel stock is compared with the hub's truth."
    )
    drift_check_seconds: float = Field(
        default=60.0, gt=0,
        description="Status drift: open orders are compared with every channel so that a drift is reported within "
        "this long.",
    )  # fmt: skip
    drift_settle_seconds: float = Field(
        default=10.0, ge=0,
        description="Status drift: how long a disagreement seen for the first time waits for an event on its way "
        "before it counts.",
    )  # fmt: skip
    job_max_attempts: int = Field(default=8, ge=1, le=100)
    job_backoff_base_seconds: float = Field(default=2.0, gt=0)
    job_backoff_max_seconds: float = Field(default=3600.0, gt=0)
    job_lease_seconds: float = Field(default=60.0, gt=0)
    worker_poll_seconds: float = Field(
        default=0.2, gt=0, le=60, description="How often the idle worker keeping watch looks for due jobs."
    )
    worker_idle_seconds: float = Field(
        default=1.0,
        gt=0,
        le=60,
        description="How long other idle workers sleep unless a commit queues a job (which wakes them at once).",
    )
    worker_batch_size: int = Field(default=50, ge=1, le=1000)

    @field_validator("currency")
    @classmethod
    def _currency_code(cls, value: str) -> str:
        if not _CURRENCY.match(value):
            raise ValueError("an ISO 4217 code of three capital letters, e.g. USD")
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone_name(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("an IANA timezone name, e.g. Asia/Jakarta") from None
        return value

    @field_validator("database_url")
    @classmethod
    def _database_scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("sqlite", "postgresql")):
            raise ValueError("a sqlite:/// or postgresql+psycopg:// URL")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = config_file_path()
        if path.is_file():
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'shopbridge.db'}"

    @property
    def is_embedded_database(self) -> bool:
        return self.database_url is None

    def masked(self) -> dict[str, Any]:
        """The effective configuration for display: secrets and URL passwords masked."""
        shown: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                shown[name] = "********" if value.get_secret_value() else ""
            elif isinstance(value, Path):
                shown[name] = str(value)
            else:
                shown[name] = value
        shown["database_url"] = mask_url_password(self.effective_database_url)
        return shown


def mask_url_password(url: str) -> str:
    return re.sub(r"(://[^:/@]+:)[^@]+@", r"\1********@", url)


def _describe(error: ErrorDetails) -> str:
    key = ENV_PREFIX + ".".join(str(part) for part in error["loc"]).upper()
    kind = error["type"]
    if kind == "extra_forbidden":
        return f"{key}: unknown setting"
    expected = str(error["msg"]).removeprefix("Value error, ").removeprefix("Input should be ")
    return f"{key}: expected {expected}, got {error.get('input')!r}"


def load_settings(**overrides: Any) -> Settings:
    """Load and validate the settings; raise ConfigError with one line naming the first bad key."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(_describe(exc.errors()[0])) from None
    except (OSError, ValueError) as exc:  # unreadable or malformed TOML file
        raise ConfigError(f"{config_file_path()}: {exc}") from None
