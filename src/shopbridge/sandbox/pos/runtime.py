"""One running POS sandbox: its world, clock, seeded randomness, faults, event outbox, simulation, and the background
dispatcher that runs them."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import random
from collections import Counter
from typing import Any

from ..sender import SenderProcess
from .config import PosSandboxConfig
from .errors import PosError, location_offline, unknown_location
from .events import Outbox
from .state import Store, World
from .traffic import Traffic

log = logging.getLogger(__name__)

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _base32(number: int, length: int) -> str:
    out = []
    for _ in range(length):
        number, digit = divmod(number, 32)
        out.append(CROCKFORD[digit])
    return "".join(reversed(out))


class ApiStats:
    """What the hub asked since start: requests by operation, answers by status, faults injected."""

    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self.statuses: Counter[int] = Counter()
        self.faults: Counter[str] = Counter()

    def as_json(self) -> dict[str, Any]:
        return {
            "requests": dict(sorted(self.requests.items())),
            "requests_total": sum(self.requests.values()),
            "http_status": {str(k): v for k, v in sorted(self.statuses.items())},
            "faults_injected": dict(self.faults),
        }


class PosSandbox:
    def __init__(self, config: PosSandboxConfig) -> None:
        self.config = config
        self.clock = config.clock
        seed = config.random_seed
        # Separate streams, so that the simulation's draws do not shift which events a fault rate loses.
        self.rng = random.Random(seed)
        self.fault_rng = random.Random(None if seed is None else seed + 1)
        self._id_rng = random.Random(None if seed is None else seed + 2)
        self.faults = dataclasses.replace(config.faults, offline_locations={})
        start = config.sequence_start if config.sequence_start is not None else int(self.clock.now() * 1000)
        ids = config.id_start if config.id_start is not None else int(self.clock.now())
        self.world = World(config.locations, start, ids)
        self.api_stats = ApiStats()
        self.outbox = Outbox(self)
        self.traffic = Traffic(self)
        for location_id, seconds in config.faults.offline_locations.items():
            self.set_offline(location_id, seconds)
        self._task: asyncio.Task[None] | None = None

    # --- time and ids ----------------------------------------------------------------------------------------

    def now(self) -> float:
        return self.clock.now()

    def new_event_id(self) -> str:
        """``evt_`` and a ULID: 48 bits of milliseconds and 80 random bits (seeded), so ids sort by time."""
        millis = int(self.now() * 1000) & (2**48 - 1)
        return "evt_" + _base32(millis, 10) + _base32(self._id_rng.getrandbits(80), 16)

    # --- stores ----------------------------------------------------------------------------------------------

    def store(self, location_id: str) -> Store:
        store = self.world.stores.get(location_id)
        if store is None:
            raise unknown_location(location_id)
        return store

    def is_offline(self, location_id: str) -> bool:
        store = self.world.stores.get(location_id)
        if store is None or store.offline_until is None:
            return False
        if store.offline_until <= self.now():
            self.set_online(location_id)
            return False
        return True

    def require_online(self, store: Store) -> None:
        """An API operation on ``store``: 503 while it is offline."""
        if self.is_offline(store.location_id):
            assert store.offline_until is not None
            self.api_stats.faults["location_offline"] += 1
            raise location_offline(store.location_id, max(1, math.ceil(store.offline_until - self.now())))

    def set_offline(self, location_id: str, seconds: float) -> Store:
        if seconds <= 0:
            raise PosError(422, "invalid_body", "seconds must be > 0", {"field": "seconds"})
        store = self.store(location_id)
        store.offline_until = self.now() + seconds
        self.outbox.hold(location_id)
        return store

    def set_online(self, location_id: str) -> Store:
        store = self.store(location_id)
        store.offline_until = None
        self.outbox.release(location_id)
        return store

    def refresh_offline(self) -> None:
        """Stores whose offline time is over come back, and their held events go out."""
        for store in self.world.stores.values():
            if store.offline_until is not None and store.offline_until <= self.now():
                self.set_online(store.location_id)

    # --- the background dispatcher ---------------------------------------------------------------------------

    def tick(self) -> None:
        """Stores back online, then the simulation's due work (tills, associates, returns desk, receipts)."""
        self.refresh_offline()
        self.traffic.step()

    async def run_once(self) -> int:
        """One dispatcher pass: the due work, then every due event delivery, awaited. Tests may call it."""
        self.tick()
        return await self.outbox.dispatch_due()

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        queued = asyncio.Event()

        def wake() -> None:
            loop.call_soon_threadsafe(queued.set)

        self.outbox.on_queued = wake
        sending: set[asyncio.Task[int]] = set()
        try:
            while True:
                queued.clear()
                try:
                    self.tick()
                    task = asyncio.create_task(self.outbox.dispatch_due())
                    sending.add(task)
                    task.add_done_callback(sending.discard)
                except Exception:
                    log.exception("POS sandbox dispatcher pass failed")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(queued.wait(), self.config.dispatcher_interval)
        finally:
            self.outbox.on_queued = None
            for task in sending:
                task.cancel()

    async def start(self) -> None:
        if self._task is None:
            if self.config.event_sender_process and self.outbox.sender is None:
                self.outbox.sender = SenderProcess(timeout=self.config.event_timeout, name="pos-sandbox-event-sender")
                self.outbox.sender.start()
            self._task = asyncio.create_task(self._loop(), name="pos-sandbox-dispatcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self.outbox.sender is not None:
            self.outbox.sender.stop()
            self.outbox.sender = None
        await self.outbox.close()
