"""One running sandbox: its world, clock, randomness, webhook outbox, the background dispatcher and the webhook
sender."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

import httpx

from .config import SandboxConfig
from .gateway import real_sleep
from .ids import IdFactory
from .ratelimit import RateLimiter
from .state import Store, World
from .timeline import Timeline
from .webhooks import Webhooks

log = logging.getLogger(__name__)

T = TypeVar("T")


class Deliver(Protocol):
    """Runs a batch of webhook POSTs with an HTTP client and returns what the batch returns."""

    async def __call__(self, batch: Callable[[httpx.AsyncClient], Awaitable[T]]) -> T: ...


class WebhookSender:
    """Webhook POSTs on an event loop and thread of their own. TikTok's webhook delivery is not its Open API
    gateway: while the sandbox's one loop also served API calls, a burst of them delayed the sender's reading of
    a receiver's answer, and the time the sender recorded (``response_ms``) was partly its own."""

    def __init__(self, config: SandboxConfig) -> None:
        self._config = config
        self._loop = asyncio.new_event_loop()
        self._client: httpx.AsyncClient | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, name="tiktok-sandbox-webhook-sender",
                                        daemon=True)  # fmt: skip
        self._thread.start()

    async def run(self, batch: Callable[[httpx.AsyncClient], Awaitable[T]]) -> T:
        async def on_sender_loop() -> T:
            if self._client is None:
                self._client = httpx.AsyncClient(timeout=self._config.webhook_timeout)
            return await batch(self._client)

        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(on_sender_loop(), self._loop))

    async def close(self) -> None:
        if self._client is not None:
            await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self._client.aclose(), self._loop))
            self._client = None
        self._loop.call_soon_threadsafe(self._loop.stop)
        await asyncio.to_thread(self._thread.join, 5.0)
        self._loop.close()


class TikTokSandbox:
    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.clock = config.clock
        self.world = World(Store(config.state_path))
        seed = config.random_seed
        if seed is not None:
            # A restarted world must not hand out the ids it already used: the seed moves on with its size.
            seed = seed * 1_000_003 + self.world.size()
        self.ids = IdFactory(seed)
        self.rng: random.Random = random.Random(seed + 1) if seed is not None else random.Random()
        self.limiter = RateLimiter()
        # Partner API answers since start, by (endpoint "METHOD template" or "unmatched", HTTP status, code).
        self.api_calls: Counter[tuple[str, int, int]] = Counter()
        self.webhooks = Webhooks(self)
        self.timeline = Timeline(self)
        for record in self.world.records():
            self.timeline.schedule(record)
        self.world.on_save = self.timeline.schedule
        # Results of writes that carried an idempotency_key, so a retried create returns the first result.
        self.idempotent: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.sleep: Callable[[float], Awaitable[None]] = real_sleep
        self._task: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None
        self._sender: WebhookSender | None = None

    def tick(self) -> None:
        """Apply every time-driven transition that is due at the current sandbox time."""
        self.timeline.run_due()
        self.world.commit()

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                transport=self.config.webhook_transport, timeout=self.config.webhook_timeout
            )
        return self._client

    async def deliver(self, batch: Callable[[httpx.AsyncClient], Awaitable[T]]) -> T:
        """Run a batch of webhook POSTs: on the sender's own loop over the network, or on this loop when the
        receiver is an in-process app behind ``webhook_transport`` (it runs on the loop that calls it)."""
        if self.config.webhook_transport is not None:
            return await batch(self._http())
        if self._sender is None:
            self._sender = WebhookSender(self.config)
        return await self._sender.run(batch)

    async def run_once(self) -> int:
        """One dispatcher pass: due transitions, then due webhook deliveries. Tests call this directly."""
        self.tick()
        return await self.webhooks.dispatch_due(self.deliver)

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:
                log.exception("sandbox dispatcher pass failed")
            await asyncio.sleep(self.config.dispatcher_interval)

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="tiktok-sandbox-dispatcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        if self._sender is not None:
            await self._sender.close()
            self._sender = None
        self.world.commit()
        self.world.store.close()
