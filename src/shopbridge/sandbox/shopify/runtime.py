"""One running Shopify sandbox: its world, clock, ids, randomness, rate-limit buckets, webhook outbox, scheduled
work (``orderCancel`` jobs, staff fulfilment) and the background dispatcher that runs them."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import heapq
import itertools
import logging
import random
from collections import Counter
from typing import Any

import httpx

from ..sender import SenderProcess
from .config import ShopifySandboxConfig
from .ids import IdFactory
from .models import Job, Order, Sequence, ShopRecord, Token, WebhookSubscription
from .state import Store, World
from .throttle import Buckets
from .webhooks import Webhooks

log = logging.getLogger(__name__)


class Stats:
    """What happened since start: API calls by root field, throttled answers, webhooks by topic and outcome."""

    def __init__(self) -> None:
        self.api_calls: Counter[str] = Counter()
        self.api_status: Counter[int] = Counter()
        self.throttled = 0
        self.max_cost_exceeded = 0
        self.faults: Counter[str] = Counter()
        self.webhooks: dict[str, Counter[str]] = {}

    def webhook(self, topic: str, outcome: str) -> None:
        self.webhooks.setdefault(topic, Counter())[outcome] += 1

    def as_json(self) -> dict[str, Any]:
        totals: Counter[str] = Counter()
        for counts in self.webhooks.values():
            totals.update(counts)
        return {
            "api_calls": dict(sorted(self.api_calls.items())),
            "api_calls_total": sum(self.api_calls.values()),
            "http_status": {str(k): v for k, v in sorted(self.api_status.items())},
            "throttled": self.throttled,
            "max_cost_exceeded": self.max_cost_exceeded,
            "faults_injected": dict(self.faults),
            "webhooks": {topic: dict(c) for topic, c in sorted(self.webhooks.items())},
            "webhooks_total": dict(totals),
        }


class ShopifySandbox:
    def __init__(self, config: ShopifySandboxConfig) -> None:
        self.config = config
        self.clock = config.clock
        self.world = World(Store(config.state_path))
        seed = config.random_seed
        if seed is not None:
            # A restarted world must not replay the ids it already used: the seed moves on with its size.
            seed = seed * 1_000_003 + sum(1 for _ in self.world.records())
        sequence = self.world.get(Sequence, "ids")
        self.ids = IdFactory(seed, sequence.last_id if sequence else 0)
        self.rng: random.Random = random.Random(seed + 1) if seed is not None else random.Random()
        self.app_id = str(int(hashlib.sha256(config.api_key.encode()).hexdigest()[:10], 16) % 10**10)
        self._ensure_shop()
        self.buckets = Buckets(self.clock.wall)
        self.stats = Stats()
        self.webhooks = Webhooks(self)
        self._schedule: list[tuple[float, int, str, str]] = []
        self._schedule_seq = itertools.count()
        for job in self.world.table(Job).values():
            if not job.done:
                self.schedule_job(job)
        for order in self.world.table(Order).values():
            self.schedule_order(order)
        from .traffic import Traffic

        self.traffic = Traffic(self)
        # Quiet unless asked: a restarted sandbox runs the simulation only when its configuration says so.
        if self.world.settings.traffic_enabled != config.traffic:
            self.traffic.configure(enabled=config.traffic)
        self._task: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None
        self.world.commit()

    # --- identity ------------------------------------------------------------------------------------------

    def now(self) -> float:
        return self.clock.now()

    def new_id(self) -> str:
        number = self.ids.next_id()
        self.world.save(Sequence(last_id=number))
        return str(number)

    def _ensure_shop(self) -> None:
        config = self.config
        if self.world.get(ShopRecord, "shop") is None:
            self.world.save(
                ShopRecord(
                    shop_id=str(self.ids.next_id() % 10**11),
                    name=config.shop_name,
                    domain=config.shop_domain,
                    email=f"owner@{config.shop_domain.split('.')[0]}.example",
                    created_at=self.now(),
                )
            )
        shop = self.world.shop
        if shop.domain != config.shop_domain:
            shop.domain = config.shop_domain
            self.world.save(shop)
        # The custom app's pre-generated token (§1.3): always the configured one.
        for token in list(self.world.table(Token).values()):
            if token.kind == "custom_app" and token.id != config.access_token:
                self.world.remove(Token, token.id)
        if shop.app_installed:
            self.world.save(
                Token(id=config.access_token, kind="custom_app", scope=config.scopes, created_at=self.now())
            )

    def authenticate(self, token: str | None) -> Token | None:
        """The token behind ``X-Shopify-Access-Token``, or None when missing, unknown, revoked or expired."""
        if not token or not self.world.shop.app_installed:
            return None
        record = self.world.get(Token, token)
        if record is None or record.revoked:
            return None
        if record.expires_at is not None and record.expires_at <= self.now():
            return None
        return record

    def install_app(self) -> None:
        shop = self.world.shop
        shop.app_installed = True
        self.world.save(shop)
        self._ensure_shop()

    def uninstall_app(self) -> None:
        """The merchant uninstalls the app: ``app/uninstalled``, then its tokens and subscriptions are gone."""
        from . import rest

        self.webhooks.trigger("app/uninstalled", rest.shop_json(self), self.ids.uuid())
        shop = self.world.shop
        shop.app_installed = False
        self.world.save(shop)
        for token in list(self.world.table(Token).values()):
            self.world.remove(Token, token.id)
        for sub in list(self.world.table(WebhookSubscription).values()):
            self.world.remove(WebhookSubscription, sub.id)
        self.world.commit()

    def bucket_key(self, token: Token) -> tuple[str, str]:
        # One bucket per (app, shop); every token of the app on this shop shares it.
        return (self.config.api_key, self.world.shop.domain)

    # --- scheduled work ------------------------------------------------------------------------------------

    def schedule_job(self, job: Job) -> None:
        heapq.heappush(self._schedule, (job.due_at, next(self._schedule_seq), "job", job.id))

    def schedule_order(self, order: Order) -> None:
        if order.staff_fulfil_at is not None:
            heapq.heappush(self._schedule, (order.staff_fulfil_at, next(self._schedule_seq), "fulfil", order.id))

    def tick(self) -> None:
        """Run every scheduled thing that is due (cancel jobs, staff fulfilments), then commit."""
        from . import orders

        now = self.now()
        while self._schedule and self._schedule[0][0] <= now:
            _, _, kind, key = heapq.heappop(self._schedule)
            try:
                if kind == "job":
                    job = self.world.get(Job, key)
                    if job is not None:
                        orders.complete_cancel(self, job)
                elif kind == "fulfil":
                    order = self.world.get(Order, key)
                    if order is not None and order.staff_fulfil_at is not None and order.staff_fulfil_at <= now:
                        self.traffic.staff_fulfil(order)
            except Exception:
                log.exception("sandbox scheduled %s %s failed", kind, key)
        self.world.commit()

    def http(self) -> httpx.AsyncClient:
        if self._client is None:
            timeout = httpx.Timeout(self.config.webhook_timeout, connect=self.config.webhook_connect_timeout)
            self._client = httpx.AsyncClient(
                transport=self.config.webhook_transport, timeout=timeout, follow_redirects=False
            )
        return self._client

    async def run_once(self) -> int:
        """One dispatcher pass: due jobs and fulfilments, then due webhook deliveries. Tests may call it."""
        self.tick()
        return await self.webhooks.dispatch_due(self.http())

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        queued = asyncio.Event()

        def wake() -> None:
            loop.call_soon_threadsafe(queued.set)

        self.webhooks.on_queued = wake
        sending: set[asyncio.Task[int]] = set()
        try:
            while True:
                queued.clear()
                try:
                    self.traffic.step()
                    self.tick()
                    task = asyncio.create_task(self.webhooks.dispatch_due(self.http()))
                    sending.add(task)
                    task.add_done_callback(sending.discard)
                except Exception:
                    log.exception("sandbox dispatcher pass failed")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(queued.wait(), self.config.dispatcher_interval)
        finally:
            self.webhooks.on_queued = None
            for task in sending:
                task.cancel()

    async def start(self) -> None:
        if self._task is None:
            if self.config.webhook_sender_process and self.webhooks.sender is None:
                self.webhooks.sender = SenderProcess(timeout=self.config.webhook_timeout,
                                                     name="shopify-sandbox-webhook-sender")  # fmt: skip
                self.webhooks.sender.start()
            self._task = asyncio.create_task(self._loop(), name="shopify-sandbox-dispatcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self.webhooks.sender is not None:
            self.webhooks.sender.stop()
            self.webhooks.sender = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        self.world.commit()
        self.world.store.close()
