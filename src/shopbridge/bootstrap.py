"""The composition root: the only module that knows every adapter and wires them together."""

from __future__ import annotations

import functools
import sys
from dataclasses import dataclass, field
from datetime import timedelta

import httpx
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from shopbridge.channels.port import Build, Channel, ChannelSetup
from shopbridge.channels.pos import channel as pos
from shopbridge.channels.shopify import channel as shopify
from shopbridge.channels.tiktok import channel as tiktok
from shopbridge.config import Settings
from shopbridge.domain.clock import Clock, SystemClock
from shopbridge.runtime.backoff import RetryPolicy
from shopbridge.runtime.ratelimit import RateLimiter
from shopbridge.runtime.registry import JobContext, JobRegistry
from shopbridge.runtime.scheduler import Periodic, Scheduler
from shopbridge.runtime.worker import Worker, WorkerOptions, WorkerPool
from shopbridge.services.availability import SELL_OUT_RECHECK, mark_dirty
from shopbridge.services.connections import SILENCE_CHECK, SILENCE_CHECK_SECONDS, check_silence
from shopbridge.services.drift import DRIFT_CHECK, SETTLE_SECONDS, check_period, queue_checks
from shopbridge.services.fulfilment import SLA_CHECK, check_sla
from shopbridge.services.manual_orders import register_work as register_manual_work
from shopbridge.services.orders import RELEASE_DUE, release_due
from shopbridge.services.reconciliation import RECONCILE, reconcile_job
from shopbridge.store import migrations
from shopbridge.store.db import create_database_engine, reading, session_factory
from shopbridge.store.inbox_db import ensure_inbox_schema, inbox_database_url
from shopbridge.store.secrets import SecretBox, SecretKeyMissing, load_or_create_key
from shopbridge.worker_process import WorkerProcess


def default_registry() -> JobRegistry:
    """The job kinds that need nothing but the database; channels add theirs in build_hub."""
    registry = JobRegistry()
    registry.register(RELEASE_DUE, _release_due)
    registry.register(SELL_OUT_RECHECK, _sell_out_recheck, batch=True)
    registry.register(SLA_CHECK, _check_sla)
    registry.register(DRIFT_CHECK, functools.partial(_check_drift, registry))
    registry.register(RECONCILE, reconcile_job, priority=60)
    register_manual_work(registry)  # the hub is the manual channel: its ship and cancel jobs
    return registry


def _check_drift(registry: JobRegistry, ctx: JobContext) -> None:
    """Queue a status drift check of every account whose channel has one (services/drift.py)."""
    settle = float(ctx.payload.get("settle", SETTLE_SECONDS))
    queue_checks(ctx.session, frozenset(registry.names()), now=ctx.now, settle_seconds=settle)


def _release_due(ctx: JobContext) -> None:
    release_due(ctx.session, int(ctx.payload["order_id"]), now=ctx.now)


def _check_sla(ctx: JobContext) -> None:
    """Released orders close to their dispatch deadline without tracking on their channel raise "SLA at risk"."""
    warn_before = timedelta(minutes=float(ctx.payload.get("warn_minutes", 0)))
    check_sla(ctx.session, now=ctx.now, warn_before=warn_before)


def _check_silence(inbox_sessions: sessionmaker[Session], ctx: JobContext) -> None:
    """Webhook channels' accounts that have sent nothing for hours raise "webhook silence" (services/connections.py)."""
    with reading(inbox_sessions) as inbox:
        check_silence(ctx.session, inbox, now=ctx.now)


def default_periodics(settings: Settings) -> list[Periodic]:
    """The hub's own schedules (channels schedule theirs per account when it connects)."""
    return [Periodic(SLA_CHECK, SLA_CHECK, settings.fulfilment_sla_check_seconds,
                     {"warn_minutes": settings.fulfilment_sla_warn_minutes}),
            Periodic(SILENCE_CHECK, SILENCE_CHECK, SILENCE_CHECK_SECONDS),
            Periodic(DRIFT_CHECK, DRIFT_CHECK,
                     check_period(settings.drift_check_seconds, settings.drift_settle_seconds),
                     {"settle": settings.drift_settle_seconds}),
            Periodic(RECONCILE, RECONCILE, settings.finance_reconcile_seconds)]  # fmt: skip


def _sell_out_recheck(ctx: JobContext) -> None:
    """The guard's window has passed: mark the SKUs dirty, so their pushes read the truth (and the guard) again."""
    mark_dirty(ctx.session, [int(variant) for variant in ctx.payload.get("variant_ids", [])], now=ctx.now)


# Every channel the hub knows, one line each (channels/port.py): its package's build.
CHANNELS: tuple[Build, ...] = (tiktok.build, shopify.build, pos.build)


@dataclass
class Hub:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    registry: JobRegistry
    clock: Clock
    secrets: SecretBox
    rate_limiter: RateLimiter
    inbox_sessions: sessionmaker[Session]
    inbox_engine: Engine | None = None  # a database of its own for the inbox (SQLite), or None: the hub's
    periodics: list[Periodic] = field(default_factory=list)
    pool: WorkerPool | None = None
    worker_process: WorkerProcess | None = None
    channels: dict[str, Channel] = field(default_factory=dict)

    @property
    def resync_kinds(self) -> dict[str, str]:
        """Per channel, the job kind that re-reads one order (used by an order's retry)."""
        return {name: channel.resync_kind for name, channel in self.channels.items() if channel.configured}

    @property
    def cancelling_channels(self) -> frozenset[str]:
        """The channels whose orders staff can cancel from the hub (through the channel's cancel_order)."""
        return frozenset(name for name, channel in self.channels.items()
                         if channel.configured and channel.cancels_own_orders)  # fmt: skip

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
            idle_seconds=self.settings.worker_idle_seconds,
            policy=self.retry_policy(),
        )

    def new_worker(self, *, with_scheduler: bool = False, name: str | None = None) -> Worker:
        scheduler = Scheduler(self.periodics, max_attempts=self.settings.job_max_attempts) if with_scheduler else None
        return Worker(self.sessions, self.registry, self.clock, self.worker_options(), name=name, scheduler=scheduler)

    def start_workers(self, count: int) -> WorkerPool:
        """``count`` worker threads in this process; the first one also ticks the scheduler."""
        self.pool = WorkerPool([self.new_worker(with_scheduler=index == 0) for index in range(count)])
        self.pool.start()
        return self.pool

    def start_serve_workers(self, count: int) -> None:
        """`serve`'s workers: in a worker process of their own (``settings.worker_process``), else threads."""
        if not count:
            return
        if not self.settings.worker_process:
            self.start_workers(count)
            return
        self.worker_process = WorkerProcess(self.settings, count)
        self.worker_process.start()

    def stop_workers(self) -> None:
        if self.worker_process is not None:
            self.worker_process.stop()
            self.worker_process = None
        if self.pool is not None:
            self.pool.stop()

    def migrate(self) -> tuple[str | None, str | None]:
        return migrations.upgrade(self.engine)

    def close(self) -> None:
        self.stop_workers()
        for channel in self.channels.values():
            channel.close()
        self.engine.dispose()
        if self.inbox_engine is not None:
            self.inbox_engine.dispose()


def secret_box(settings: Settings) -> SecretBox:
    if settings.secret_key is not None:
        return SecretBox(settings.secret_key.get_secret_value())
    if settings.is_embedded_database:
        return SecretBox(load_or_create_key(settings.data_dir))
    raise SecretKeyMissing(
        "SHOPBRIDGE_SECRET_KEY: expected a Fernet key; it is generated only for the embedded SQLite default, "
        "so set it when SHOPBRIDGE_DATABASE_URL is set"
    )


# A hub's threads mostly wait on the database and the network. One coming back from a wait, often holding the
# database's write lock that others queue for, should get the interpreter lock back within half a millisecond
# rather than CPython's default 5 ms: under the flash-sale benchmark a transaction holding SQLite's write lock took
# 2 ms of CPU but up to 17 ms of wall time (p90), waiting for the interpreter lock (docs/benchmarks.md).
INTERPRETER_SWITCH_SECONDS = 0.0005


def build_hub(
    settings: Settings,
    *,
    clock: Clock | None = None,
    registry: JobRegistry | None = None,
    http: httpx.Client | None = None,
) -> Hub:
    """Wire the hub. ``registry`` replaces every job kind (tests of the engine); ``http`` replaces the channels'
    HTTP transport (tests that talk to a sandbox in-process)."""
    sys.setswitchinterval(INTERPRETER_SWITCH_SECONDS)
    engine = create_database_engine(settings.effective_database_url, pool_size=max(5, settings.workers + 5))
    storage = settings.redis_url.get_secret_value() if settings.redis_url else "memory://"
    sessions = session_factory(engine)
    inbox_url = inbox_database_url(settings.effective_database_url)
    inbox_engine = create_database_engine(inbox_url, pool_size=5) if inbox_url else None
    if inbox_engine is not None:
        ensure_inbox_schema(inbox_engine)
    inbox_sessions = session_factory(inbox_engine) if inbox_engine is not None else sessions
    secrets = secret_box(settings)
    limiter = RateLimiter(storage, default=settings.tiktok_rate_limit)
    clock = clock or SystemClock()
    setup = ChannelSetup(settings, sessions, inbox_sessions, secrets, limiter, clock, http)
    channels = {channel.name: channel for channel in (build(setup) for build in CHANNELS)}
    periodics: list[Periodic] = []
    if registry is None:
        registry = default_registry()
        registry.register(SILENCE_CHECK, functools.partial(_check_silence, inbox_sessions))
        periodics = default_periodics(settings)
        for channel in channels.values():
            channel.register_work(registry)
    return Hub(
        settings=settings,
        engine=engine,
        sessions=sessions,
        inbox_sessions=inbox_sessions,
        inbox_engine=inbox_engine,
        registry=registry,
        clock=clock,
        secrets=secrets,
        rate_limiter=limiter,
        channels=channels,
        periodics=periodics,
    )
