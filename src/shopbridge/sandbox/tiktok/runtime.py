"""One running sandbox: its world, clock, randomness, webhook outbox and the background dispatcher."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from ..sender import SenderProcess
from .config import SandboxConfig
from .gateway import real_sleep
from .ids import IdFactory
from .ratelimit import RateLimiter
from .state import Store, World
from .timeline import Timeline
from .webhooks import Webhooks

log = logging.getLogger(__name__)


def _settled(sending: set[asyncio.Task[int]]) -> Callable[[asyncio.Task[int]], None]:
    """A done-callback: forget the finished pass, logging what made it fail."""

    def done(task: asyncio.Task[int]) -> None:
        sending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("sandbox dispatcher pass failed", exc_info=task.exception())

    return done


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

    async def run_once(self) -> int:
        """One dispatcher pass: due transitions, then due webhook deliveries. Tests call this directly."""
        self.tick()
        return await self.webhooks.dispatch_due(self._http())

    async def _loop(self) -> None:
        """Every ``dispatcher_interval``, and as soon as a delivery is queued: apply due transitions and start
        sending what is due. A pass's deliveries are sent while later passes start, as a platform sends each
        event when it happens rather than in rounds that wait for the slowest receiver."""
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
                    self.tick()
                    task = asyncio.create_task(self.webhooks.dispatch_due(self._http()))
                    sending.add(task)
                    task.add_done_callback(_settled(sending))
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
                self.webhooks.sender = SenderProcess(
                    timeout=self.config.webhook_timeout, name="tiktok-sandbox-webhook-sender"
                )
                self.webhooks.sender.start()
            self._task = asyncio.create_task(self._loop(), name="tiktok-sandbox-dispatcher")

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
