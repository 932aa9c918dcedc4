"""Events to the hub (docs/pos-protocol.md §3): the envelope, the outbox and its delivery.

* **Envelope**: ``{"version": 1, "event_id", "type", "occurred_at", "location_id", "data"}``, posted as compact
  JSON to the hub's event URL, signed as §2 says with the path ``/hooks/pos`` and a fresh timestamp per attempt (a
  retry after a long backoff must not go out stale).
* **Order**: deliveries start in the order the events were made (``event_concurrency`` 1 keeps them strictly in
  that order); a failed one waits for its retry without holding back the others, and nothing here ever blocks the
  POS itself: the API and the simulation only queue.
* **Answers**: 2xx is delivered; 400, 401 and 413 are recorded as ``rejected`` and not retried (the hub kept a
  400 for inspection; a 401 needs a person); anything else (5xx, 429, other 4xx, timeouts, refused connections)
  is retried ``event_max_retries`` times, ``event_retry_base_seconds`` x 2^n apart (at most
  ``event_retry_max_seconds``), then recorded as ``failed``.
* **Faults**, drawn when the event is made: lost (recorded, never sent), duplicated (sent twice, the same body and
  event id), delayed by a random amount (events overtake each other), and held while the store is offline (sent
  when it is back, in the order they were made).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

from ..sender import SenderProcess
from .models import EventType
from .signing import EVENT_PATH, signed_headers
from .times import iso, iso_ms

if TYPE_CHECKING:
    from .runtime import PosSandbox

log = logging.getLogger(__name__)

WAITING = ("pending", "held")
FINISHED = ("delivered", "rejected", "failed", "lost")
NOT_RETRIED = frozenset({400, 401, 413})
# Finished deliveries kept in the history; older ones are forgotten so a long traffic run stays bounded.
HISTORY_SIZE = 50_000
ANSWER_EXCERPT = 500


@dataclass
class Delivery:
    number: int
    event: dict[str, Any]
    body: bytes
    created_at: float
    due_at: float
    status: str
    duplicate: bool = False
    attempts: list[dict[str, Any]] = field(default_factory=list)

    @property
    def location_id(self) -> str:
        location: str = self.event["location_id"]
        return location

    def as_json(self) -> dict[str, Any]:
        return {
            "delivery": self.number,
            "event_id": self.event["event_id"],
            "type": self.event["type"],
            "location_id": self.location_id,
            "status": self.status,
            "duplicate": self.duplicate,
            "created_at": iso(self.created_at),
            "next_attempt_at": iso(self.due_at) if self.status == "pending" else None,
            "attempts": self.attempts,
            "event": self.event,
        }


class Outbox:
    def __init__(self, sandbox: PosSandbox) -> None:
        self.sb = sandbox
        config = sandbox.config
        self.url = config.hub_event_url
        self.retry_base_seconds = config.event_retry_base_seconds
        self.retry_max_seconds = config.event_retry_max_seconds
        self.max_retries = config.event_max_retries
        self.deliveries: dict[int, Delivery] = {}
        self.stats: dict[str, Counter[str]] = {}
        self._numbers = itertools.count(1)
        self._waiting: set[int] = set()
        self._in_flight: set[int] = set()
        self._finished: deque[int] = deque()
        self._gate: asyncio.Semaphore | None = None
        self._client: httpx.AsyncClient | None = None
        self.sender: SenderProcess | None = None
        # Called when a delivery is queued, so the dispatcher sends it now rather than at its next pass.
        self.on_queued: Callable[[], None] | None = None

    def _count(self, event_type: str, outcome: str) -> None:
        self.stats.setdefault(event_type, Counter())[outcome] += 1

    # --- making events ---------------------------------------------------------------------------------------

    def publish(
        self, event_type: EventType, location_id: str, occurred_at: int, data: dict[str, Any], *, silent: bool
    ) -> dict[str, Any] | None:
        """Make an event (``occurred_at`` in Unix milliseconds) and queue it; a ``silent`` change makes none (drift
        injection) and answers None."""
        if silent:
            self._count(event_type, "silent")
            return None
        event = {
            "version": 1,
            "event_id": self.sb.new_event_id(),
            "type": event_type,
            "occurred_at": iso_ms(occurred_at),
            "location_id": location_id,
            "data": data,
        }
        self.enqueue(event)
        return event

    def enqueue(self, event: dict[str, Any]) -> list[Delivery]:
        sb = self.sb
        faults, rng = sb.faults, sb.fault_rng
        body = json.dumps(event, separators=(",", ":")).encode()
        now = sb.now()
        lost = rng.random() < faults.event_loss_rate
        copies = 2 if not lost and rng.random() < faults.event_duplicate_rate else 1
        held = sb.is_offline(event["location_id"])
        out = []
        for copy in range(copies):
            delay = rng.uniform(0.0, faults.event_reorder_max_delay_seconds)
            status = "lost" if lost else ("held" if held else "pending")
            delivery = Delivery(next(self._numbers), event, body, now, now + delay, status, duplicate=copy > 0)
            self.deliveries[delivery.number] = delivery
            out.append(delivery)
            if lost:
                self._count(event["type"], "lost")
                self._finish(delivery)
            else:
                self._count(event["type"], "duplicated" if copy else "queued")
                self._waiting.add(delivery.number)
        if self.on_queued is not None and not lost and not held:
            self.on_queued()
        return out

    def hold(self, location_id: str) -> int:
        """The store went offline: what it has not sent yet waits for it (an attempt already posting finishes)."""
        held = 0
        for number in self._waiting:
            delivery = self.deliveries[number]
            if delivery.status == "pending" and delivery.location_id == location_id:
                delivery.status = "held"
                held += 1
        return held

    def release(self, location_id: str) -> int:
        """The store is back: its held events go out now, in the order they were made."""
        now = self.sb.now()
        released = 0
        for number in sorted(self._waiting):
            delivery = self.deliveries[number]
            if delivery.status == "held" and delivery.location_id == location_id:
                delivery.status = "pending"
                delivery.due_at = max(delivery.due_at, now)
                released += 1
        if released and self.on_queued is not None:
            self.on_queued()
        return released

    # --- delivering ------------------------------------------------------------------------------------------

    def http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                transport=self.sb.config.event_transport, timeout=self.sb.config.event_timeout, follow_redirects=False
            )
        return self._client

    def due(self) -> list[Delivery]:
        now = self.sb.now()
        out = []
        for number in self._waiting - self._in_flight:
            delivery = self.deliveries[number]
            if delivery.status == "pending" and delivery.due_at <= now:
                out.append(delivery)
        return sorted(out, key=lambda d: (d.due_at, d.number))

    async def dispatch_due(self) -> int:
        """Attempt every due delivery (at most ``event_concurrency`` at once, started in order); the count."""
        due = self.due()
        if not due:
            return 0
        if self._gate is None:
            self._gate = asyncio.Semaphore(max(1, self.sb.config.event_concurrency))
        gate = self._gate
        numbers = {d.number for d in due}
        self._in_flight |= numbers
        try:
            await asyncio.gather(*(self._deliver(d, gate) for d in due))
        finally:
            self._in_flight -= numbers
        return len(due)

    async def _deliver(self, delivery: Delivery, gate: asyncio.Semaphore) -> None:
        sb = self.sb
        async with gate:
            if delivery.status != "pending":
                return
            timestamp = int(sb.clock.wall())
            headers = signed_headers(sb.config.account, sb.config.secret, timestamp, "POST", EVENT_PATH,
                                     delivery.body)  # fmt: skip
            headers["Content-Type"] = "application/json"
            outcome = await self._post(self.url, delivery.body, headers)
        self._record(delivery, outcome)

    async def _post(self, url: str, body: bytes, headers: dict[str, str]) -> dict[str, Any]:
        outcome: dict[str, Any] = {"at": iso(self.sb.now())}
        if self.sender is not None:
            outcome.update(await self.sender.post(url, body, headers))
            return outcome
        started = time.perf_counter()
        try:
            response = await self.http().post(url, content=body, headers=headers)
            outcome["status_code"] = response.status_code
            outcome["answer"] = response.text[:ANSWER_EXCERPT]
        except httpx.HTTPError as exc:
            outcome["error"] = type(exc).__name__
        except Exception as exc:  # a malformed address must not stop the dispatcher
            log.warning("POS event delivery to %s failed: %s", url, exc)
            outcome["error"] = type(exc).__name__
        outcome["response_ms"] = round((time.perf_counter() - started) * 1000, 3)
        return outcome

    def _record(self, delivery: Delivery, outcome: dict[str, Any]) -> None:
        delivery.attempts.append(outcome)
        status_code = outcome.get("status_code")
        event_type = delivery.event["type"]
        if status_code is not None and 200 <= status_code < 300:
            delivery.status = "delivered"
        elif status_code in NOT_RETRIED:
            delivery.status = "rejected"
            log.warning("the hub refused POS event %s: %s %s", delivery.event["event_id"], status_code,
                        outcome.get("answer", ""))  # fmt: skip
        elif len(delivery.attempts) > self.max_retries:
            delivery.status = "failed"
        else:
            self._count(event_type, "retried")
            backoff = self.retry_base_seconds * 2 ** (len(delivery.attempts) - 1)
            delivery.due_at = self.sb.now() + min(backoff, self.retry_max_seconds)
            return
        self._count(event_type, delivery.status)
        self._waiting.discard(delivery.number)
        self._finish(delivery)

    def _finish(self, delivery: Delivery) -> None:
        self._finished.append(delivery.number)
        while len(self._finished) > HISTORY_SIZE:
            self.deliveries.pop(self._finished.popleft(), None)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    # --- reading ---------------------------------------------------------------------------------------------

    def history(
        self, *, event_type: str | None = None, status: str | None = None, location_id: str | None = None
    ) -> list[Delivery]:
        """Deliveries in the order they were made, filtered."""
        return [
            d
            for d in self.deliveries.values()
            if (event_type is None or d.event["type"] == event_type)
            and (status is None or d.status == status)
            and (location_id is None or d.location_id == location_id)
        ]

    def counts(self) -> dict[str, Any]:
        by_status: Counter[str] = Counter(d.status for d in self.deliveries.values())
        return {
            "by_type": {name: dict(counts) for name, counts in sorted(self.stats.items())},
            "deliveries_by_status": dict(by_status),
        }
