"""The composition root: the only module that knows every adapter and wires them together."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from shopbridge.config import Settings
from shopbridge.domain.clock import Clock, SystemClock
from shopbridge.runtime.backoff import RetryPolicy
from shopbridge.runtime.ratelimit import RateLimiter
from shopbridge.runtime.registry import JobRegistry
from shopbridge.runtime.scheduler import Periodic, Scheduler
from shopbridge.runtime.worker import Worker, WorkerOptions, WorkerPool
from shopbridge.store import migrations
from shopbridge.store.db import create_database_engine, session_factory
from shopbridge.store.secrets import SecretBox, SecretKeyMissing, load_or_create_key


def default_registry() -> JobRegistry:
    """Every job kind the hub runs; each channel and service registers its handlers here."""
    return JobRegistry()


@dataclass
class Hub:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    registry: JobRegistry
    clock: Clock
    secrets: SecretBox
    rate_limiter: RateLimiter
    periodics: list[Periodic] = field(default_factory=list)
    pool: WorkerPool | None = None

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            max_attempts=self.settings.job_max_attempts,
            base_seconds=self.settings.job_backoff_base_seconds,
            max_seconds=self.settings.job_backoff_max_seconds,
        )

    def worker_options(self) -> WorkerOptions:
        return WorkerOptions(
            lease_seconds=self.settings.job_lease_seconds,
            batch_size=self.settings.worker_batch_size,
            poll_seconds=self.settings.worker_poll_seconds,
            policy=self.retry_policy(),
        )

    def new_worker(self, *, with_scheduler: bool = False, name: str | None = None) -> Worker:
        scheduler = Scheduler(self.periodics, max_attempts=self.settings.job_max_attempts) if with_scheduler else None
        return Worker(self.sessions, self.registry, self.clock, self.worker_options(), name=name, scheduler=scheduler)

    def start_workers(self, count: int) -> WorkerPool:
        """The embedded mode: ``count`` worker threads; the first one also ticks the scheduler."""
        self.pool = WorkerPool([self.new_worker(with_scheduler=index == 0) for index in range(count)])
        self.pool.start()
        return self.pool

    def migrate(self) -> tuple[str | None, str | None]:
        return migrations.upgrade(self.engine)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.stop()
        self.engine.dispose()


def secret_box(settings: Settings) -> SecretBox:
    if settings.secret_key is not None:
        return SecretBox(settings.secret_key.get_secret_value())
    if settings.is_embedded_database:
        return SecretBox(load_or_create_key(settings.data_dir))
    raise SecretKeyMissing(
        "SHOPBRIDGE_SECRET_KEY: expected a Fernet key; it is generated only for the embedded SQLite default, "
        "so set it when SHOPBRIDGE_DATABASE_URL is set"
    )


def build_hub(settings: Settings, *, clock: Clock | None = None, registry: JobRegistry | None = None) -> Hub:
    engine = create_database_engine(settings.effective_database_url, pool_size=max(5, settings.workers + 5))
    storage = settings.redis_url.get_secret_value() if settings.redis_url else "memory://"
    return Hub(
        settings=settings,
        engine=engine,
        sessions=session_factory(engine),
        registry=registry or default_registry(),
        clock=clock or SystemClock(),
        secrets=secret_box(settings),
        rate_limiter=RateLimiter(storage),
    )
