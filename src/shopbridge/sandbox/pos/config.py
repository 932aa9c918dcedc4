"""How one POS sandbox is configured: the merchant's account and shared secret, where the hub takes events, the
stores, the seed, the simulation's rates and delays, and the faults it starts with (docs/pos-protocol.md).

One sandbox is one POS account (``X-POS-Account``) with several stores. The secret signs both ways (§2): the hub's
API calls are checked with it, and every event to the hub is signed with it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx

from ..clock import SandboxClock

MIN_SECRET_LENGTH = 32


@dataclass(frozen=True)
class LocationConfig:
    """A store as ``GET /v1/locations`` lists it."""

    location_id: str
    name: str
    timezone: str
    active: bool = True


DEFAULT_LOCATIONS = (
    LocationConfig("store-downtown", "Downtown", "America/Chicago"),
    LocationConfig("store-mall", "Mall", "America/Chicago"),
    LocationConfig("store-airport", "Airport", "America/Chicago"),
    LocationConfig("store-harbor", "Harbor", "America/Chicago"),
)


@dataclass
class PosFaults:
    """What goes wrong, settable here and at run time (``PUT /_sandbox/faults``). Every draw comes from the
    sandbox's seeded fault generator, so a run with the same ``random_seed`` loses the same events."""

    # Added before every /v1 answer: a delay drawn uniformly from [min, max] milliseconds.
    api_latency_min_ms: float = 0.0
    api_latency_max_ms: float = 0.0
    # The share of /v1 requests answered with `api_error_status` (code `unavailable`) before anything happens.
    api_error_rate: float = 0.0
    api_error_status: int = 503
    # The share of /v1 requests answered 429 `rate_limited` with `Retry-After: rate_limit_retry_after_seconds`.
    api_rate_limited_rate: float = 0.0
    rate_limit_retry_after_seconds: int = 1
    # The share of events recorded as lost and never sent.
    event_loss_rate: float = 0.0
    # The share of events sent twice (the same body, the same event_id).
    event_duplicate_rate: float = 0.0
    # Each event waits a random delay in [0, max] before its first attempt, so events overtake each other.
    event_reorder_max_delay_seconds: float = 0.0
    # Stores offline from the start: location id -> seconds. While offline, the API answers 503 for operations on
    # the store and its events are held, then sent when it comes back.
    offline_locations: dict[str, float] = field(default_factory=dict)


@dataclass
class PosSandboxConfig:
    # The POS's own id for the merchant and the shared secret (>= 32 characters, §1). Well-known sandbox values.
    account: str = "pos-sandbox"
    secret: str = "pos_sandbox_secret_0123456789abcdef"  # noqa: S105
    # Where events go (§3). The signed path is always /hooks/pos, whatever prefix the address carries.
    hub_event_url: str = "http://127.0.0.1:8000/hooks/pos"
    locations: tuple[LocationConfig, ...] = DEFAULT_LOCATIONS
    # "demo" stocks the four stores with the TikTok demo's SKUs (seed.py); None leaves them empty.
    seed: str | None = None
    clock: SandboxClock = field(default_factory=SandboxClock)
    # Seeds ids, the simulation and the fault draws so that a run can be reproduced.
    random_seed: int | None = None
    # The first sequence number of each location; None starts from the clock in milliseconds, so that a restarted
    # in-memory sandbox still numbers its changes above what a hub took from the previous run (§3).
    sequence_start: int | None = None
    # The first number of task, sale and return ids (T-1, S-1, R-1); None starts from the clock in seconds, so that
    # a restarted in-memory sandbox does not reuse ids a hub already took (the demo restarts it with the hub's data).
    id_start: int | None = 1
    currency: str = "USD"
    # The simulation: off unless asked (here, `--traffic`, or POST /_sandbox/traffic).
    traffic: bool = False
    # Till sales per second, across all active stores together.
    sales_per_second: float = 0.5
    # Returns taken per second at the returns desks (of shipped tasks), and stock receipts per second.
    returns_per_second: float = 0.02
    receipts_per_second: float = 0.05
    # Associates take a task from open to shipped in a random time within [min, max] seconds, passing through
    # picking, picked and packed on the way; `collect_share` of tasks are collected at the store instead.
    associates: bool = True
    fulfil_delay_min_seconds: float = 1.0
    fulfil_delay_max_seconds: float = 5.0
    collect_share: float = 0.0
    faults: PosFaults = field(default_factory=PosFaults)
    # Seconds between background passes (associates, traffic, stores coming back online, due deliveries).
    dispatcher_interval: float = 0.05
    # Event delivery: timeouts, retries on 5xx and transport errors (base x 2^n, at most max), deliveries in flight.
    event_timeout: float = 5.0
    event_retry_base_seconds: float = 1.0
    event_retry_max_seconds: float = 60.0
    event_max_retries: int = 8
    # One at a time keeps deliveries in the order the events were made; more overlaps them.
    event_concurrency: int = 1
    # Tests route deliveries through an httpx transport (MockTransport, ASGITransport) instead of the network.
    event_transport: httpx.AsyncBaseTransport | None = None
    # Post events from a process of their own (sandbox/sender.py), as the standalone sandbox does; an
    # event_transport applies only when this is False.
    event_sender_process: bool = False

    def __post_init__(self) -> None:
        if len(self.secret) < MIN_SECRET_LENGTH:
            raise ValueError(f"the POS secret must be at least {MIN_SECRET_LENGTH} characters (§1)")
        ids = [loc.location_id for loc in self.locations]
        if len(set(ids)) != len(ids):
            raise ValueError("location ids must be unique")
        unknown = set(self.faults.offline_locations) - set(ids)
        if unknown:
            raise ValueError(f"offline_locations names unknown locations: {', '.join(sorted(unknown))}")
        if self.fulfil_delay_max_seconds < self.fulfil_delay_min_seconds:
            raise ValueError("fulfil_delay_max_seconds must be >= fulfil_delay_min_seconds")
