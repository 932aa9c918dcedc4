"""The flash-sale benchmark (issue #5): 50 hot SKUs sell out on TikTok and in the store at once while 500 others
keep changing, once with the hub pushing stock as events happen and once pushing every 60 s, and we count what
TikTok sold that was no longer there.

How it measures:

- One fresh world per mode (temporary data directory, the embedded SQLite default, default workers): the TikTok
  sandbox and the hub as in `shopbridge demo` (loopback ports, the real OAuth connection, signed calls), the hub in
  a child process of its own (which starts the hub's worker process, as `serve` does) and the sandbox in a process
  of its own, so the load generators and samplers below do not compete with either for an interpreter lock. The
  hub runs with `stock_push_mode` = event or interval (`stock_push_interval_seconds` = 60, five times faster than
  the fastest incumbent's 300 s) and its default buffer (`stock_buffer_units`, `stock_buffer_percent`) and sell-out
  guard; nothing else is tuned.
- From the end of setup on, the sandbox answers every Partner API call after a normal(100 ms, 30 ms) latency
  (`PUT /_sandbox/faults/endpoints`, endpoint `*`) and limits the shop to 50 requests/s with a burst of 50. TikTok
  publishes no number; the only figure reported is "50 requests/s per store", so we model it as one bucket per shop
  that every endpoint draws from (`PUT /_sandbox/rate_limits` path `shop`), the strict reading. The sandbox's
  default per-endpoint buckets (50/s each) stay on too, and never bind before the shop's bucket does.
- Catalogue: 10 hot products x 5 SKUs, 100 products x 5 background SKUs. The hub's initial stock (100 units per hot
  SKU, 50 per background SKU) is recorded as restock movements through the stock ledger
  (`services.stock.apply_external_movement`, what `POST /api/v1/stock/movements` calls), in one transaction before
  the shop is connected, so that every push the hub makes from the start carries the final figure. The sandbox's
  SKUs are created holding what the hub should show under its default buffer (so the interval mode does not have
  to wait up to one period for its first push). The clock starts once, for every SKU, the hub's `channels` entry
  for TikTok says `available` = the sandbox's quantity, and (event mode) `stock_version` = `acked_stock_version`
  (read in the hub's process with `services.stock.stock_of`, what `GET /api/v1/stock/{sku}` answers).
  held_back_units = sum over hot SKUs of (hub on-hand - sandbox quantity) at that moment.
- Load, over the mode's window (120 s; 40 s with `--quick`): demand of 1.5 x the hot stock, half from sandbox
  buyers and half from store sales, paced evenly over the window, so the hot stock is gone by about two thirds of
  it. A buyer order (`POST /_sandbox/orders`, one unit) names a random hot SKU among those TikTok
  shows in stock (a storefront view refreshed from `/_sandbox/truth/stock` every 200 ms, and a SKU that answered
  409 counts as out until a newer view); the sandbox refuses with 409 what its own stock cannot cover. A store sale
  reads the hub's truth for a random hot SKU the store still has (`GET /api/v1/stock/{sku}`) and, when on-hand -
  reserved > 0, posts a `sale` movement (one unit); a SKU at 0 is out for the store from then on, and the customer
  tries another. Each generator fires its units at their due times from enough threads (8 buyers, 48 tills, 16 for
  the background) that a slow hub, not the bench, is what holds the store back. Background: 10 stock events/s in
  total (restock, sale or adjustment of 1-5 units) on random background SKUs, over the whole window. Whatever has
  not started by the end of the window is dropped and counted, so an overloaded hub shows as demand left unserved
  rather than as a longer run.
- oversold_units: per hot SKU, max(0, units TikTok sold (`/_sandbox/truth/sold`: paid, not cancelled) + units the
  store sold - the initial 100), summed.
- propagation_ms: for every movement the bench posted during the window (store sales and background events), from
  the moment it was sent (so it includes the hub's own answer) to the arrival in the sandbox
  (`/_sandbox/truth/inventory_updates`, `arrival_wall_time`) of the first accepted update for that SKU that carries
  the quantity the hub's answer said TikTok should now show (`channels[].available`), or a newer one: the quantity
  of a later movement on that SKU posted before that arrival or, for a hot SKU (whose figure only falls during the
  run), any lower quantity. A movement whose quantity equals what the hub had last told TikTok before it was sent
  needs no push and is left out (counted as `unchanged`). One that no update matches by the end of the settle
  (5 s after the load in event mode; one full period + 5 s in interval mode, 3 s with `--quick`) is counted as
  `never_seen` and enters the percentiles with the time it had waited so far; a percentile that rests on such a
  value is flagged as a lower bound. The same clock (the machine's wall clock) stamps both ends.
- api_calls and rate_limited: every Partner API call the sandbox answered during the window and the settle
  (`/_sandbox/truth/api_calls`, counted by the sandbox's gateway by endpoint, HTTP status and code), and how many of
  them were 429. Only the hub calls the Partner API; the bench uses the unsigned control API.
- stock_events: the movements the bench posted during the window (TikTok orders are stock events at the hub too;
  they are counted apart, as `hot.tiktok_orders_accepted`, and not timed, because only the hub knows when it saw
  them).
- hub_cpu: the hub's own CPU time (user + system, from /proc/<pid>/stat) from just before the load starts to the end
  of the settle (the window of api_calls), summed over its processes (the web process, which is the world's child
  process, and its worker process; not the sandbox's processes nor the bench's), per 1,000 events: stock_events +
  hot.tiktok_orders_accepted (see `shopbridge.bench.cpu`). It includes serving the bench's stock reads (the tills'
  and the chart's sampler's) and the workers' idle polling, as a real hub's would.
- Chart: for one hot SKU, the hub's truth (on-hand - reserved, read every 100 ms through `GET /api/v1/stock/{sku}`)
  and what TikTok shows (the sandbox's quantity, read every 200 ms), with each update the sandbox received, both
  modes, as an SVG (written next to the JSON unless `--chart` says where).
- The full run measures the two modes one after the other, each alone on the machine. `--quick` (40 s per mode) runs
  them side by side, each in processes of its own, so that it stays under 90 s; its two modes share the machine,
  and the settle is too short for interval mode's next push, so its figures are for development, not the record.
"""

from __future__ import annotations

import itertools
import math
import multiprocessing
import os
import queue
import random
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import httpx
from rich.console import Console
from rich.progress import Progress, TaskID
from rich.table import Table

from shopbridge.bench.child import ChildFailed, child_world, report_failure, serve_commands
from shopbridge.bench.cpu import HubCpu, table_cell
from shopbridge.bench.orders import percentile

MODES = ("event", "interval")
FULL_SECONDS = 120.0
QUICK_SECONDS = 40.0
INTERVAL_SECONDS = 60.0  # five times faster than the fastest incumbent's 300 s (M2E's inventory sync)
LATENCY = {"distribution": "normal", "mean_ms": 100.0, "stddev_ms": 30.0}
SHOP_RATE_PER_S = 50.0
SHOP_BURST = 50
LOCATION = "MAIN"
HUB_SAMPLE_EVERY = 0.1
STOREFRONT_SAMPLE_EVERY = 0.2
BUYERS = 8
CLERKS = 48  # open loop: enough tills that a slow hub, not the bench, limits the store
BACKGROUND_THREADS = 16
TARGETS = {
    "event.oversold_units": "0, with a default buffer holding back at most 5% of the hot SKUs' stock",
    "event.propagation_ms.p99": "<= 1,000 ms",
    "event.rate_limited": "0",
}
HELD_BACK_LIMIT = 0.05
RATE_LIMIT = {
    "qps": SHOP_RATE_PER_S,
    "burst": SHOP_BURST,
    "scope": "one bucket per shop shared by every endpoint (sandbox rate limit 'shop'), on top of the sandbox's "
    "default per-endpoint buckets (50/s each)",
}
P99_LIMIT_MS = 1000.0
CPU_EVENTS = (
    "stock events: the movements the bench posted (stock_events) plus the TikTok orders the sandbox accepted "
    "(hot.tiktok_orders_accepted); window: the load's start to the end of the settle"
)


@dataclass(frozen=True)
class Scenario:
    """One run's shape. The defaults are the issue's; tests shrink them."""

    seconds: float = FULL_SECONDS
    hot_products: int = 10
    hot_skus_per_product: int = 5
    hot_units: int = 100
    background_products: int = 100
    background_skus_per_product: int = 5
    background_units: int = 50
    background_rate: float = 10.0
    demand_factor: float = 1.5
    tiktok_share: float = 0.5
    demand_span: float = 1.0  # demand is paced over this share of the window
    interval_seconds: float = INTERVAL_SECONDS
    event_settle_seconds: float = 5.0
    interval_settle_seconds: float = INTERVAL_SECONDS + 5.0
    setup_timeout_seconds: float = 90.0
    require_engine: bool = True  # False: run without the stock push engine (checks the bench itself)
    seed: int = 5

    @property
    def hot_stock(self) -> int:
        return self.hot_products * self.hot_skus_per_product * self.hot_units

    def settle_seconds(self, mode: str) -> float:
        return self.event_settle_seconds if mode == "event" else self.interval_settle_seconds


def full_scenario() -> Scenario:
    return Scenario()


def quick_scenario() -> Scenario:
    return Scenario(seconds=QUICK_SECONDS, event_settle_seconds=3.0, interval_settle_seconds=3.0)


class EngineMissing(RuntimeError):
    """The hub has no stock push engine (no push settings, or no `channels` in its stock answers)."""


Reporter = Callable[[str, float, float | None], None]


def _silent(description: str, completed: float, total: float | None) -> None:
    return None


# --- statistics --------------------------------------------------------------------------------------------


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def censored_summary(seen: list[float], censored: list[float]) -> dict[str, Any]:
    """Percentiles over seen values and lower bounds (values still waiting when observation ended). A percentile
    whose interpolation touches a lower bound is itself only a lower bound, and says so."""
    values = sorted([(value, False) for value in seen] + [(value, True) for value in censored])
    out: dict[str, Any] = {"n": len(values), "seen": len(seen), "never_seen": len(censored)}
    for name, q in (("p50", 50), ("p90", 90), ("p99", 99)):
        if not values:
            out[name], out[f"{name}_is_a_lower_bound"] = None, False
            continue
        rank = (len(values) - 1) * q / 100
        low, high = math.floor(rank), min(math.floor(rank) + 1, len(values) - 1)
        out[name] = _rounded(percentile([value for value, _ in values], q))
        out[f"{name}_is_a_lower_bound"] = values[low][1] or (values[high][1] and rank > low)
    out["max"] = _rounded(values[-1][0]) if values else None
    out["max_is_a_lower_bound"] = bool(values) and values[-1][1]
    return out


def _summary(values: list[float]) -> dict[str, Any]:
    return {"n": len(values), "p50": _rounded(percentile(values, 50)), "p99": _rounded(percentile(values, 99)),
            "max": _rounded(max(values) if values else None)}  # fmt: skip


# --- the world, in a process of its own ---------------------------------------------------------------------


def _catalogue(scenario: Scenario) -> tuple[list[tuple[str, list[str]]], dict[str, int]]:
    """(product title, seller SKUs) per sandbox product, and the hub's initial on-hand per seller SKU."""
    products: list[tuple[str, list[str]]] = []
    stock: dict[str, int] = {}
    for p in range(scenario.hot_products):
        skus = [f"HOT-{p + 1:02d}-{k + 1}" for k in range(scenario.hot_skus_per_product)]
        products.append((f"Flash sale product {p + 1}", skus))
        stock.update(dict.fromkeys(skus, scenario.hot_units))
    for p in range(scenario.background_products):
        skus = [f"BG-{p + 1:03d}-{k + 1}" for k in range(scenario.background_skus_per_product)]
        products.append((f"Everyday product {p + 1}", skus))
        stock.update(dict.fromkeys(skus, scenario.background_units))
    return products, stock


def _expected_available(on_hand: int, buffer_units: int, buffer_percent: float) -> int:
    """What the hub should show TikTok of ``on_hand`` units under its default buffer (the domain's own rule)."""
    from decimal import Decimal

    from shopbridge.domain.stock import StockRule, available_to_sell

    rule = StockRule(buffer_units=buffer_units, buffer_percent=Decimal(str(buffer_percent)))
    return available_to_sell(on_hand, 0, rule, datetime.now(UTC))


def _hub_jobs(hub: Any) -> dict[str, Any]:
    from sqlalchemy import func, select

    from shopbridge.store.tables import Job, JobAttempt

    with hub.sessions() as session:
        jobs = {f"{kind}:{state}": n for kind, state, n in
                session.execute(select(Job.kind, Job.state, func.count()).group_by(Job.kind, Job.state))}  # fmt: skip
        outcomes = {f"{kind}:{outcome}": n for kind, outcome, n in session.execute(
            select(Job.kind, JobAttempt.outcome, func.count()).join(Job, Job.id == JobAttempt.job_id)
            .group_by(Job.kind, JobAttempt.outcome))}  # fmt: skip
        durations: dict[str, list[float]] = {}
        for kind, began, ended in session.execute(
            select(Job.kind, JobAttempt.started_at, JobAttempt.finished_at).join(Job, Job.id == JobAttempt.job_id)
        ):
            if began is not None and ended is not None:
                durations.setdefault(kind, []).append((ended - began).total_seconds() * 1000)
    return {"jobs": jobs, "attempts": outcomes, "attempt_ms": {k: _summary(v) for k, v in durations.items()}}


def _hub_stock(hub: Any, skus: list[str]) -> dict[str, Any]:
    from shopbridge.services.stock import stock_of
    from shopbridge.store.db import reading

    with reading(hub.sessions) as session:
        return {sku: stock_of(session, sku, now=hub.clock.now()) for sku in skus}


def _serve_world(conn: Connection, data_dir: str, mode: str, scenario: Scenario) -> None:
    """The child process: the hub (and the sandbox's own process) until told to stop; answers "jobs"."""
    from shopbridge.config import Settings
    from shopbridge.demo.world import record_initial_stock, running_world
    from shopbridge.logs import configure_logging

    configure_logging("warning", "console")
    try:
        wanted = {"stock_push_mode": mode, "stock_push_interval_seconds": scenario.interval_seconds}
        missing = [name for name in wanted if name not in Settings.model_fields]
        if missing and scenario.require_engine:
            raise EngineMissing(f"the hub's settings have no {', '.join(missing)}: the stock push engine is not there")
        defaults = Settings(data_dir=Path(data_dir))
        buffer_units = int(getattr(defaults, "stock_buffer_units", 1))
        buffer_percent = float(getattr(defaults, "stock_buffer_percent", 2))
        titles, stock = _catalogue(scenario)
        shown = {sku: _expected_available(units, buffer_units, buffer_percent) for sku, units in stock.items()}
        products = [{"title": title, "skus": [{"seller_sku": sku, "price": "19.90", "quantity": shown[sku]}
                                              for sku in skus]} for title, skus in titles]  # fmt: skip
        hub_settings: dict[str, Any] = {name: value for name, value in wanted.items() if name not in missing}

        def prepare(hub: Any) -> None:
            record_initial_stock(hub, stock, key_prefix="bench")

        with running_world(
            None, Path(data_dir), products=products, prepare_hub=prepare, poll_seconds=60.0, log_level="warning",
            sandbox_process=True, **hub_settings,
        ) as world:  # fmt: skip
            started = {"hub_url": world.hub_url, "sandbox_url": world.sandbox_url, "token": world.api_token,
                       "shop_id": world.shop_id, "sku_ids": world.sku_ids, "initial_on_hand": stock,
                       "hub_pid": os.getpid(),
                       "engine": {"settings_missing": missing, "stock_buffer_units": buffer_units,
                                  "stock_buffer_percent": buffer_percent, **hub_settings}}  # fmt: skip
            serve_commands(conn, started, lambda command: _hub_stock(world.hub, command[1])
                           if command[0] == "stock" else _hub_jobs(world.hub))  # fmt: skip
    except Exception as error:
        report_failure(conn, error)
        if not isinstance(error, EngineMissing):
            raise


@dataclass
class RemoteWorld:
    hub_url: str
    sandbox_url: str
    token: str
    shop_id: str
    sku_ids: dict[str, str]  # seller SKU -> TikTok sku_id
    initial_on_hand: dict[str, int]  # seller SKU -> units
    engine: dict[str, Any]
    conn: Connection
    hub_pid: int | None = None  # the hub's web process (this world's child process), whose CPU time is measured

    def ask(self, command: Any) -> dict[str, Any]:
        self.conn.send(command)
        if not self.conn.poll(60):
            raise TimeoutError(f"the hub did not answer {command!r:.40} within 60 s")
        answer: dict[str, Any] = self.conn.recv()
        if "error" in answer:
            raise RuntimeError(f"the hub's process failed: {answer['error']}")
        return answer

    def jobs(self) -> dict[str, Any]:
        return self.ask("jobs")

    def stock(self, skus: list[str]) -> dict[str, dict[str, Any]]:
        """seller SKU -> what `GET /api/v1/stock/{sku}` would answer, read in the hub's process."""
        return self.ask(("stock", skus))


@contextmanager
def world_process(data_dir: Path, mode: str, scenario: Scenario) -> Iterator[RemoteWorld]:
    try:
        with child_world(_serve_world, (str(data_dir), mode, scenario), name=f"shopbridge-bench-flash-{mode}",
                         start_seconds=180) as (info, conn):  # fmt: skip
            yield RemoteWorld(info["hub_url"], info["sandbox_url"], info["token"], info["shop_id"], info["sku_ids"],
                              info["initial_on_hand"], info["engine"], conn, info.get("hub_pid"))  # fmt: skip
    except ChildFailed as error:
        if str(error).startswith("EngineMissing"):
            raise EngineMissing(str(error).split(": ", 1)[1]) from None
        raise RuntimeError(f"the sandbox and hub did not start: {error}") from None


# --- what the hub and the sandbox say ----------------------------------------------------------------------


def tiktok_channel(stock: dict[str, Any]) -> dict[str, Any] | None:
    """The TikTok entry of a hub stock answer; EngineMissing when the answer has no `channels` at all."""
    if "channels" not in stock:
        raise EngineMissing("the hub's stock answers have no `channels` key: the stock push engine is not there")
    return next((entry for entry in stock["channels"] if entry.get("channel") == "tiktok"), None)


@dataclass
class SkuState:
    seller_sku: str
    on_hand: int
    reserved: int
    available: int | None  # what the hub says TikTok should show
    in_sync: bool


def _sku_state(stock: dict[str, Any], sandbox_quantity: int, mode: str, engine: bool) -> SkuState:
    on_hand, reserved = int(stock["on_hand"]), int(stock["reserved"])
    if not engine:
        return SkuState(str(stock["sku"]), on_hand, reserved, None, True)
    channel = tiktok_channel(stock)
    if channel is None:
        return SkuState(str(stock["sku"]), on_hand, reserved, None, False)
    available = int(channel["available"])
    acked = mode != "event" or channel.get("stock_version") == channel.get("acked_stock_version")
    return SkuState(str(stock["sku"]), on_hand, reserved, available, acked and available == sandbox_quantity)


def _sandbox_stock(control: httpx.Client, shop_id: str) -> dict[str, dict[str, Any]]:
    """seller SKU -> the sandbox's row (sku_id, product_id, total)."""
    response = control.get("/_sandbox/truth/stock", params={"shop_id": shop_id})
    response.raise_for_status()
    return {str(row["seller_sku"]): row for row in response.json()}


def _wait_in_sync(
    world: RemoteWorld, control: httpx.Client, mode: str, scenario: Scenario, report: Reporter
) -> tuple[dict[str, SkuState], dict[str, int], float]:
    """Wait until the hub and TikTok agree on every SKU; returns the hub's states, the sandbox's quantities and
    the seconds it took. The hub's side is read in its own process with the function `GET /api/v1/stock/{sku}`
    answers with (`services.stock.stock_of`), 550 SKUs in one read instead of 550 requests."""
    began = time.monotonic()
    engine = scenario.require_engine or not world.engine["settings_missing"]
    skus = sorted(world.sku_ids)
    states: dict[str, SkuState] = {}
    pending = list(skus)
    while True:
        sandbox = {sku: int(row["total"]) for sku, row in _sandbox_stock(control, world.shop_id).items()}
        hub = world.stock(pending)
        try:
            read = [_sku_state(hub[sku], sandbox[sku], mode, engine) for sku in pending]
        except EngineMissing:
            if scenario.require_engine:
                raise
            engine = False
            continue
        states.update({state.seller_sku: state for state in read})
        pending = [state.seller_sku for state in read if not state.in_sync]
        report(f"{mode}: waiting until the hub and TikTok agree ({len(skus) - len(pending)}/{len(skus)} SKUs)",
               len(skus) - len(pending), len(skus))  # fmt: skip
        if not pending:
            return states, sandbox, time.monotonic() - began
        if time.monotonic() - began > scenario.setup_timeout_seconds:
            example = states[pending[0]]
            raise RuntimeError(
                f"{len(pending)} SKUs were not in sync after {scenario.setup_timeout_seconds:.0f} s, e.g. "
                f"{example.seller_sku}: hub available {example.available}, sandbox {sandbox[example.seller_sku]}"
            )
        time.sleep(0.25)


def _api_calls(control: httpx.Client) -> dict[tuple[str, int, int], int]:
    response = control.get("/_sandbox/truth/api_calls")
    response.raise_for_status()
    return {(row["endpoint"], row["http_status"], row["code"]): row["count"] for row in response.json()["calls"]}


# --- the load ----------------------------------------------------------------------------------------------


@dataclass
class Event:
    """A movement the bench posted to the hub."""

    seller_sku: str
    hot: bool
    kind: str
    sent: float
    answered: float
    available: int | None  # what the hub's answer says TikTok should now show


@dataclass
class Load:
    events: list[Event] = field(default_factory=list)
    tiktok_accepted: dict[str, int] = field(default_factory=dict)  # seller SKU -> orders (one unit each)
    tiktok_refused: int = 0
    tiktok_unmet: int = 0  # demand that found every hot SKU shown as sold out
    store_sold: dict[str, int] = field(default_factory=dict)
    store_checks_sold_out: int = 0  # store reads that found the hub's truth at 0
    store_sold_reserved: dict[str, int] = field(default_factory=dict)  # sales the hub answered with reserved > on-hand
    store_unmet: int = 0  # demand that found the store out of every hot SKU
    background_events: int = 0
    late_ms: dict[str, list[float]] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)  # units not started by the end of the window
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, counter: dict[str, int], key: str) -> None:
        with self.lock:
            counter[key] = counter.get(key, 0) + 1

    def error(self, text: str) -> None:
        with self.lock:
            self.errors.append(text)


class Storefront(threading.Thread):
    """What TikTok shows: the sandbox's stock, re-read every 200 ms; a SKU that answered 409 counts as out until a
    view taken after that answer."""

    def __init__(self, sandbox_url: str, shop_id: str, hot: list[str], chart_sku: str) -> None:
        super().__init__(name="bench-storefront", daemon=True)
        self.sandbox_url, self.shop_id, self.hot, self.chart_sku = sandbox_url, shop_id, hot, chart_sku
        self.view: dict[str, int] = {}
        self.view_taken = 0.0
        self.refused_at: dict[str, float] = {}
        self.samples: list[tuple[float, int]] = []  # (wall, the chart SKU's quantity)
        self.errors: list[str] = []
        self.halt = threading.Event()
        self.lock = threading.Lock()

    def refresh(self, client: httpx.Client) -> None:
        taken = time.time()
        rows = _sandbox_stock(client, self.shop_id)
        with self.lock:
            self.view = {sku: int(rows[sku]["total"]) for sku in self.hot}
            self.view_taken = taken
            self.samples.append((time.time(), int(rows[self.chart_sku]["total"])))

    def run(self) -> None:
        with httpx.Client(base_url=self.sandbox_url, timeout=30) as client:
            while not self.halt.is_set():
                began = time.monotonic()
                try:
                    self.refresh(client)
                except httpx.HTTPError as error:
                    self.errors.append(f"{type(error).__name__}: {error}")
                self.halt.wait(max(0.0, STOREFRONT_SAMPLE_EVERY - (time.monotonic() - began)))

    def in_stock(self) -> list[str]:
        with self.lock:
            return [sku for sku in self.hot if self.view.get(sku, 0) > 0 and self.refused_at.get(sku, 0.0) <
                    self.view_taken]  # fmt: skip

    def refused(self, sku: str, at: float) -> None:
        with self.lock:
            self.refused_at[sku] = max(at, self.refused_at.get(sku, 0.0))


class HubSampler(threading.Thread):
    """The hub's truth for the chart SKU every 100 ms: (wall, on-hand - reserved, available for TikTok)."""

    def __init__(self, hub_url: str, token: str, sku: str) -> None:
        super().__init__(name="bench-hub-sampler", daemon=True)
        self.hub_url, self.token, self.sku = hub_url, token, sku
        self.samples: list[tuple[float, int, int | None]] = []
        self.errors: list[str] = []
        self.halt = threading.Event()

    def run(self) -> None:
        headers = {"authorization": f"Bearer {self.token}"}
        with httpx.Client(base_url=self.hub_url, headers=headers, timeout=30) as client:
            while not self.halt.is_set():
                began = time.monotonic()
                try:
                    response = client.get(f"/api/v1/stock/{self.sku}")
                    response.raise_for_status()
                    stock = response.json()
                    channel = next((c for c in stock.get("channels") or [] if c.get("channel") == "tiktok"), None)
                    available = int(channel["available"]) if channel else None
                    self.samples.append((time.time(), int(stock["on_hand"]) - int(stock["reserved"]), available))
                except httpx.HTTPError as error:
                    self.errors.append(f"{type(error).__name__}: {error}")
                self.halt.wait(max(0.0, HUB_SAMPLE_EVERY - (time.monotonic() - began)))


def _paced(
    name: str,
    total: int,
    start: float,
    spacing: float,
    deadline: float,
    threads: int,
    base_url: str,
    headers: dict[str, str],
    seed: int,
    load: Load,
    work: Callable[[httpx.Client, random.Random, int], None],
) -> list[threading.Thread]:
    """Start ``threads`` threads that run ``work`` for n = 0..total-1, each due at start + n * spacing. What has not
    started by ``deadline`` (the end of the window) is dropped and counted, so an overloaded run still ends."""
    numbers = itertools.count()
    taken = threading.Lock()
    late = load.late_ms.setdefault(name, [])
    load.dropped[name] = 0

    def runner(index: int) -> None:
        rng = random.Random(seed * 1000 + index)
        with httpx.Client(base_url=base_url, headers=headers, timeout=30) as client:
            while True:
                with taken:
                    n = next(numbers)
                if n >= total:
                    return
                due = start + n * spacing
                time.sleep(max(0.0, due - time.time()))
                if time.time() > deadline:
                    with load.lock:
                        load.dropped[name] += 1
                    continue
                late.append((time.time() - due) * 1000)
                try:
                    work(client, rng, n)
                except (httpx.HTTPError, KeyError, ValueError) as error:
                    load.error(f"{name}: {type(error).__name__}: {error}")

    started = [threading.Thread(target=runner, args=(i,), name=f"bench-{name}-{i}", daemon=True)
               for i in range(threads)]  # fmt: skip
    for thread in started:
        thread.start()
    return started


def _answered_available(response: httpx.Response) -> int | None:
    stock = response.json().get("stock") or {}
    channel = next((c for c in stock.get("channels") or [] if c.get("channel") == "tiktok"), None)
    return int(channel["available"]) if channel else None


def generate_load(
    world: RemoteWorld, mode: str, scenario: Scenario, hot: list[str], background: list[str], storefront: Storefront,
    start: float,
) -> tuple[Load, list[threading.Thread]]:  # fmt: skip
    """Start the buyers, the store clerks and the background events; returns the load record and the threads."""
    load = Load()
    headers = {"authorization": f"Bearer {world.token}"}
    demand = round(scenario.demand_factor * scenario.hot_stock)
    tiktok_demand = round(demand * scenario.tiktok_share)
    store_demand = demand - tiktok_demand
    span = scenario.seconds * scenario.demand_span
    end = start + scenario.seconds
    background_events = int(scenario.seconds * scenario.background_rate)
    store_locks = {sku: threading.Lock() for sku in hot}
    store_out: set[str] = set()
    background_on_hand = {sku: world.initial_on_hand[sku] for sku in background}
    background_lock = threading.Lock()
    sku_locks = {sku: threading.Lock() for sku in background}

    def buy(client: httpx.Client, rng: random.Random, n: int) -> None:
        shown = storefront.in_stock()
        if not shown:
            with load.lock:
                load.tiktok_unmet += 1
            return
        sku = rng.choice(shown)
        sent = time.time()
        order = {"shop_id": world.shop_id, "items": [{"sku_id": world.sku_ids[sku], "quantity": 1}]}
        response = client.post("/_sandbox/orders", json=order)
        if response.status_code == 201:
            load.count(load.tiktok_accepted, sku)
        elif response.status_code == 409:
            storefront.refused(sku, sent)
            with load.lock:
                load.tiktok_refused += 1
        else:
            load.error(f"buyer: {response.status_code}: {response.text[:200]}")

    def sell(client: httpx.Client, rng: random.Random, n: int) -> None:
        while True:
            with load.lock:
                candidates = [sku for sku in hot if sku not in store_out]
                if not candidates:
                    load.store_unmet += 1
                    return
            sku = rng.choice(candidates)
            with store_locks[sku]:
                if sku in store_out:
                    continue
                read = client.get(f"/api/v1/stock/{sku}")
                read.raise_for_status()
                truth = read.json()
                if int(truth["on_hand"]) - int(truth["reserved"]) <= 0:
                    with load.lock:
                        store_out.add(sku)
                        load.store_checks_sold_out += 1
                    continue
                body = {"sku": sku, "location": LOCATION, "kind": "sale", "quantity": 1,
                        "idempotency_key": f"bench:{mode}:store:{n}"}  # fmt: skip
                sent = time.time()
                response = client.post("/api/v1/stock/movements", json=body)
                answered = time.time()
                if response.status_code != 200:
                    load.error(f"store sale: {response.status_code}: {response.text[:200]}")
                    return
                answer = response.json()
                if answer["applied"]:
                    load.count(load.store_sold, sku)
                    after = answer.get("stock") or {}
                    if int(after.get("on_hand", 0)) < int(after.get("reserved", 0)):
                        # TikTok orders reserved the unit between the clerk's read and the sale: the till sold
                        # a unit the hub had already promised (a race of the store's, not a TikTok oversell).
                        load.count(load.store_sold_reserved, sku)
                    with load.lock:
                        load.events.append(Event(sku, True, "sale", sent, answered, _answered_available(response)))
                return

    def change(client: httpx.Client, rng: random.Random, n: int) -> None:
        sku = rng.choice(background)
        units = rng.randint(1, 5)
        # One movement per SKU in flight, sent in the order the model counts them: a decrease must not overtake
        # the restock it relies on (the hub would rightly refuse to take on-hand below zero).
        with sku_locks[sku]:
            with background_lock:
                kind = rng.choice(("restock", "sale", "adjustment"))
                if kind == "sale" and background_on_hand[sku] < units + 5:
                    kind = "restock"
                quantity = units if kind != "adjustment" else rng.choice((-1, 1)) * units
                if kind == "adjustment" and background_on_hand[sku] + quantity < 0:
                    quantity = units
                background_on_hand[sku] += -units if kind == "sale" else quantity
            body = {"sku": sku, "location": LOCATION, "kind": kind, "quantity": quantity,
                    "idempotency_key": f"bench:{mode}:background:{n}"}  # fmt: skip
            sent = time.time()
            response = client.post("/api/v1/stock/movements", json=body)
            answered = time.time()
        if response.status_code != 200:
            load.error(f"background: {response.status_code}: {response.text[:200]}")
            return
        with load.lock:
            load.background_events += 1
            load.events.append(Event(sku, False, kind, sent, answered, _answered_available(response)))

    threads = [
        *_paced("buyers", tiktok_demand, start, span / max(tiktok_demand, 1), end, BUYERS, world.sandbox_url, {},
                scenario.seed, load, buy),
        *_paced("store", store_demand, start, span / max(store_demand, 1), end, CLERKS, world.hub_url, headers,
                scenario.seed + 1, load, sell),
        *_paced("background", background_events, start, 1 / scenario.background_rate, end, BACKGROUND_THREADS,
                world.hub_url, headers, scenario.seed + 2, load, change),
    ]  # fmt: skip
    return load, threads


# --- propagation -------------------------------------------------------------------------------------------


def propagation(
    events: list[Event],
    updates: dict[str, list[tuple[float, int]]],
    told_at_start: dict[str, int],
    observation_end: float,
) -> dict[str, Any]:
    """Time from each movement to the first update TikTok received carrying its quantity or a newer one (see the
    module's docstring). ``updates``: seller SKU -> accepted (arrival wall time, quantity), in arrival order."""
    by_sku: dict[str, list[Event]] = {}
    for event in sorted(events, key=lambda e: e.sent):
        if event.available is not None:
            by_sku.setdefault(event.seller_sku, []).append(event)
    groups: dict[str, dict[str, list[float]]] = {group: {"seen": [], "censored": []} for group in ("hot", "background")}
    exact = newer = unchanged = 0
    for sku, sku_events in by_sku.items():
        arrivals = updates.get(sku, [])
        for i, event in enumerate(sku_events):
            assert event.available is not None
            before = [quantity for arrival, quantity in arrivals if arrival < event.sent]
            told = before[-1] if before else told_at_start.get(sku)
            if told == event.available:
                unchanged += 1
                continue
            group = groups["hot" if event.hot else "background"]
            later = sku_events[i + 1 :]
            for arrival, quantity in arrivals:
                if arrival < event.sent:
                    continue
                if quantity == event.available:
                    exact += 1
                elif (event.hot and quantity < event.available) or any(
                    e.available == quantity and e.sent <= arrival for e in later
                ):
                    newer += 1
                else:
                    continue
                group["seen"].append((arrival - event.sent) * 1000)
                break
            else:
                group["censored"].append((observation_end - event.sent) * 1000)
    seen = groups["hot"]["seen"] + groups["background"]["seen"]
    censored = groups["hot"]["censored"] + groups["background"]["censored"]
    return {
        **censored_summary(seen, censored),
        "matched_exact": exact,
        "matched_newer": newer,
        "unchanged": unchanged,
        "by_group": {name: censored_summary(g["seen"], g["censored"]) for name, g in groups.items()},
        "from": "movement sent to the hub",
        "to": "first accepted sandbox inventory update carrying that quantity or a newer one (arrival_wall_time)",
    }


def _inventory_updates(control: httpx.Client, sku_to_seller: dict[str, str]) -> dict[str, list[tuple[float, int]]]:
    response = control.get("/_sandbox/truth/inventory_updates", timeout=120)
    response.raise_for_status()
    out: dict[str, list[tuple[float, int]]] = {}
    for update in response.json():
        seller_sku = sku_to_seller.get(str(update["sku_id"]))
        if seller_sku is not None and update["accepted"]:
            out.setdefault(seller_sku, []).append((float(update["arrival_wall_time"]), int(update["quantity"])))
    for arrivals in out.values():
        arrivals.sort()
    return out


# --- one mode ----------------------------------------------------------------------------------------------


def measure_mode(mode: str, scenario: Scenario, report: Reporter = _silent) -> dict[str, Any]:
    """One mode against a fresh sandbox and hub: set up, sell out, settle, count."""
    report(f"{mode}: starting the sandbox and the hub", 0, None)
    began = time.monotonic()
    phases: dict[str, float] = {}
    with (
        tempfile.TemporaryDirectory(prefix=f"shopbridge-bench-flash-{mode}-") as directory,
        world_process(Path(directory), mode, scenario) as world,
        httpx.Client(base_url=world.sandbox_url, timeout=30) as control,
    ):
        phases["world_start_seconds"] = time.monotonic() - began
        states, told_at_start, sync_seconds = _wait_in_sync(world, control, mode, scenario, report)
        # TikTok's latency and limit hold from here on (setup is not what is measured, and goes faster without).
        control.put("/_sandbox/faults/endpoints", json={"endpoint": "*", "latency": LATENCY}).raise_for_status()
        control.put("/_sandbox/rate_limits", json={"path": "shop", "qps": SHOP_RATE_PER_S,
                                                   "burst": SHOP_BURST}).raise_for_status()  # fmt: skip
        hot = sorted(sku for sku in world.sku_ids if sku.startswith("HOT-"))
        background = sorted(sku for sku in world.sku_ids if sku.startswith("BG-"))
        held_back = sum(states[sku].on_hand - told_at_start[sku] for sku in hot)
        chart_sku = hot[0]

        storefront = Storefront(world.sandbox_url, world.shop_id, hot, chart_sku)
        storefront.refresh(control)
        sampler = HubSampler(world.hub_url, world.token, chart_sku)
        calls_before = _api_calls(control)
        cpu = HubCpu(world.hub_pid)
        cpu.start()
        start = time.time() + 0.2
        storefront.start()
        sampler.start()
        load, threads = generate_load(world, mode, scenario, hot, background, storefront, start)
        settle = scenario.settle_seconds(mode)
        total = scenario.seconds + settle
        while any(thread.is_alive() for thread in threads):
            report(f"{mode}: selling out ({time.time() - start:.0f} of {scenario.seconds:.0f} s)",
                   min(time.time() - start, total), total)  # fmt: skip
            time.sleep(0.25)
        load_ended = time.time()
        while time.time() < max(start + scenario.seconds, load_ended) + settle:
            report(f"{mode}: settling ({settle:.0f} s)", min(time.time() - start, total), total)
            time.sleep(0.25)
        observation_end = time.time()
        cpu.stop()
        storefront.halt.set()
        sampler.halt.set()
        storefront.join(10)
        sampler.join(10)

        report(f"{mode}: counting", total, total)
        counting = time.monotonic()
        calls_after = _api_calls(control)
        sold_rows = control.get("/_sandbox/truth/sold", params={"shop_id": world.shop_id}).json()
        seller_of = {sku_id: seller for seller, sku_id in world.sku_ids.items()}
        sold = {seller_of[str(row["sku_id"])]: int(row["units_sold"]) for row in sold_rows
                if str(row["sku_id"]) in seller_of}  # fmt: skip
        updates = _inventory_updates(control, seller_of)
        final_sandbox = {sku: int(row["total"]) for sku, row in _sandbox_stock(control, world.shop_id).items()}
        jobs = world.jobs()
        phases["counting_seconds"] = time.monotonic() - counting
        stopping = time.monotonic()
    phases["teardown_seconds"] = time.monotonic() - stopping
    result = _mode_result(
        mode, scenario, world, load, states, told_at_start, sync_seconds, held_back, hot, start, load_ended,
        observation_end, calls_before, calls_after, sold, updates, final_sandbox, storefront, sampler, jobs,
    )  # fmt: skip
    result["timing"].update({name: round(value, 1) for name, value in phases.items()})
    result["hub_cpu"] = cpu.result(result["stock_events"] + result["hot"]["tiktok_orders_accepted"], CPU_EVENTS)
    result["timing"]["mode_wall_seconds"] = round(time.monotonic() - began, 1)
    return result


def _mode_result(
    mode: str,
    scenario: Scenario,
    world: RemoteWorld,
    load: Load,
    states: dict[str, SkuState],
    told_at_start: dict[str, int],
    sync_seconds: float,
    held_back: int,
    hot: list[str],
    start: float,
    load_ended: float,
    observation_end: float,
    calls_before: dict[tuple[str, int, int], int],
    calls_after: dict[tuple[str, int, int], int],
    sold: dict[str, int],
    updates: dict[str, list[tuple[float, int]]],
    final_sandbox: dict[str, int],
    storefront: Storefront,
    sampler: HubSampler,
    jobs: dict[str, Any],
) -> dict[str, Any]:
    calls = {key: n - calls_before.get(key, 0) for key, n in calls_after.items() if n - calls_before.get(key, 0)}
    by_endpoint: dict[str, int] = {}
    for (endpoint, _status, _code), n in calls.items():
        by_endpoint[endpoint] = by_endpoint.get(endpoint, 0) + n
    statuses: dict[str, int] = {}
    for (_endpoint, status, _code), n in calls.items():
        statuses[str(status)] = statuses.get(str(status), 0) + n
    oversold_by_sku = {sku: max(0, sold.get(sku, 0) + load.store_sold.get(sku, 0) - world.initial_on_hand[sku])
                       for sku in hot}  # fmt: skip
    physical_left = {sku: world.initial_on_hand[sku] - sold.get(sku, 0) - load.store_sold.get(sku, 0) for sku in hot}
    hot_stock = sum(world.initial_on_hand[sku] for sku in hot)
    accepted = sum(load.tiktok_accepted.values())
    window_updates = [(arrival, quantity) for arrivals in updates.values() for arrival, quantity in arrivals
                      if start <= arrival <= observation_end]  # fmt: skip
    chart_sku = hot[0]
    engine_present = not world.engine["settings_missing"] and any(e.available is not None for e in load.events)
    return {
        "mode": mode,
        "push_interval_seconds": scenario.interval_seconds if mode == "interval" else None,
        "engine": {**world.engine, "channels_in_answers": engine_present},
        "oversold_units": sum(oversold_by_sku.values()),
        "oversold_skus": sum(1 for n in oversold_by_sku.values() if n),
        "propagation_ms": propagation(load.events, updates, told_at_start, observation_end),
        "api_calls": sum(calls.values()),
        "rate_limited": sum(n for (_e, status, _c), n in calls.items() if status == 429),
        "api_calls_by_endpoint": dict(sorted(by_endpoint.items())),
        "api_calls_by_status": statuses,
        "api_calls_per_s": round(sum(calls.values()) / max(observation_end - start, 1e-9), 1),
        "stock_events": len(load.events),
        "stock_events_detail": {
            "store_sales": sum(load.store_sold.values()),
            "background": load.background_events,
            "tiktok_orders_at_the_hub_untimed": accepted,
        },
        "held_back_units": held_back,
        "held_back_share": round(held_back / hot_stock, 4) if hot_stock else None,
        "hot": {
            "skus": len(hot),
            "stock": hot_stock,
            "demand_units": round(scenario.demand_factor * scenario.hot_stock),
            "tiktok_units_sold": sum(sold.get(sku, 0) for sku in hot),
            "tiktok_orders_accepted": accepted,
            "tiktok_orders_refused_409": load.tiktok_refused,
            "tiktok_demand_unmet_shown_sold_out": load.tiktok_unmet,
            "store_units_sold": sum(load.store_sold.values()),
            "store_reads_found_sold_out": load.store_checks_sold_out,
            "store_demand_unmet_sold_out": load.store_unmet,
            "sold_out_skus": sum(1 for left in physical_left.values() if left <= 0),
            "physical_units_left": sum(max(0, left) for left in physical_left.values()),
            "tiktok_shows_at_end": sum(final_sandbox.get(sku, 0) for sku in hot),
            "oversold_by_sku": {sku: n for sku, n in oversold_by_sku.items() if n},
            "store_sales_into_reserved_units": {sku: n for sku, n in load.store_sold_reserved.items() if n},
        },
        "timing": {
            "setup_sync_seconds": round(sync_seconds, 1),
            "window_seconds": scenario.seconds,
            "demand_seconds": round(scenario.seconds * scenario.demand_span, 1),
            "load_ended_after_s": round(load_ended - start, 1),
            "settle_seconds": scenario.settle_seconds(mode),
            "observed_seconds": round(observation_end - start, 1),
            "late_ms": {name: _summary(values) for name, values in load.late_ms.items()},
            "dropped_at_window_end": load.dropped,
            "hub_answer_ms": _summary([(e.answered - e.sent) * 1000 for e in load.events]),
        },
        "inventory_updates_received": len(window_updates),
        "errors": len(load.errors) + len(storefront.errors) + len(sampler.errors),
        "first_errors": (load.errors + storefront.errors + sampler.errors)[:5],
        "hub": jobs,
        "chart": {
            "sku": chart_sku,
            "start_wall": start,
            "hub": [[round(t - start, 2), free, available] for t, free, available in sampler.samples],
            "tiktok": [[round(t - start, 2), quantity] for t, quantity in storefront.samples],
            "updates": [[round(t - start, 3), q] for t, q in updates.get(chart_sku, []) if t >= start - 1],
            "demand_end_s": round(scenario.seconds * scenario.demand_span, 1),
            "window_end_s": scenario.seconds,
        },
    }


# --- both modes --------------------------------------------------------------------------------------------


def _mode_process(messages: Any, mode: str, scenario: Scenario) -> None:
    """A side-by-side mode's driver, in a process of its own: progress and the result go back on ``messages``."""
    from shopbridge.logs import configure_logging

    configure_logging("warning", "console")
    try:
        result = measure_mode(mode, scenario, lambda text, done, total: messages.put(("progress", mode, text, done,
                                                                                      total)))  # fmt: skip
        messages.put(("result", mode, result))
    except EngineMissing as error:
        messages.put(("engine_missing", mode, str(error)))
    except Exception:
        messages.put(("error", mode, traceback.format_exc()))


def run_modes(scenario: Scenario, *, side_by_side: bool, progress: Progress | None = None) -> dict[str, Any]:
    """Both modes, one after the other or side by side; returns {mode: result}."""
    tasks: dict[str, TaskID] = {}

    def reporter(mode: str) -> Reporter:
        def report(text: str, done: float, total: float | None) -> None:
            if progress is None:
                return
            if mode not in tasks:
                tasks[mode] = progress.add_task(text, total=total)
            progress.update(tasks[mode], description=text, completed=done, total=total)

        return report

    results: dict[str, Any] = {}
    if not side_by_side:
        for mode in MODES:
            results[mode] = measure_mode(mode, scenario, reporter(mode))
    else:
        context = multiprocessing.get_context("spawn")
        messages = context.Queue()
        processes = [context.Process(target=_mode_process, args=(messages, mode, scenario),
                                     name=f"shopbridge-bench-flash-{mode}-driver") for mode in MODES]  # fmt: skip
        for process in processes:
            process.start()
        deadline = time.monotonic() + scenario.seconds + max(map(scenario.settle_seconds, MODES)) + 600
        failures: list[str] = []
        missing: list[str] = []
        try:
            while len(results) + len(failures) + len(missing) < len(MODES):
                if time.monotonic() > deadline:
                    raise TimeoutError("the side-by-side modes did not finish in time")
                try:
                    kind, mode, *rest = messages.get(timeout=1)
                except queue.Empty:
                    if not any(process.is_alive() for process in processes):
                        raise RuntimeError("a mode's process ended without a result") from None
                    continue
                if kind == "progress":
                    reporter(mode)(*rest)
                elif kind == "result":
                    results[mode] = rest[0]
                elif kind == "engine_missing":
                    missing.append(rest[0])
                else:
                    failures.append(f"{mode}: {rest[0]}")
        finally:
            for process in processes:
                process.join(60)
                if process.is_alive():
                    process.terminate()
        if missing:
            raise EngineMissing(missing[0])
        if failures:
            raise RuntimeError("a mode failed:\n" + "\n".join(failures))
    for task in tasks.values():
        if progress is not None:
            progress.remove_task(task)
    return {mode: results[mode] for mode in MODES}


def _met(modes: dict[str, Any]) -> dict[str, bool]:
    event = modes["event"]
    p99 = event["propagation_ms"]
    share = event["held_back_share"]
    return {
        "event.oversold_units": event["oversold_units"] == 0 and share is not None and share <= HELD_BACK_LIMIT,
        "event.propagation_ms.p99": p99["p99"] is not None and p99["p99"] <= P99_LIMIT_MS
        and not p99["p99_is_a_lower_bound"] and p99["n"] > 0,
        "event.rate_limited": event["rate_limited"] == 0,
    }  # fmt: skip


def _load() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


def run_flash_sale(scenario: Scenario, *, side_by_side: bool, progress: Progress | None = None) -> dict[str, Any]:
    """The whole benchmark for one scenario, as the JSON it writes (without the chart)."""
    started = time.monotonic()
    host = {"cpus": os.cpu_count(), "load_before": _load()}
    modes = run_modes(scenario, side_by_side=side_by_side, progress=progress)
    host["load_after"] = _load()
    return {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "database": "sqlite (embedded default), default workers in the hub's worker process",
        "side_by_side": side_by_side,
        "scenario": asdict(scenario),
        "sandbox": {"latency_ms": LATENCY, "rate_limit": RATE_LIMIT},
        "modes": modes,
        "targets": TARGETS,
        "met": _met(modes),
        "host": host,
        "wall_seconds": round(time.monotonic() - started, 1),
    }


# --- the chart ---------------------------------------------------------------------------------------------


def _nice_step(span: float, ticks: int) -> float:
    raw = max(span, 1e-9) / ticks
    magnitude = 10.0 ** math.floor(math.log10(raw))
    return float(next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw))


def _steps(points: list[tuple[float, float]], x: Callable[[float], float], y: Callable[[float], float]) -> str:
    """An SVG path of a step line (each value holds until the next)."""
    if not points:
        return ""
    parts = [f"M{x(points[0][0]):.1f},{y(points[0][1]):.1f}"]
    for (_, v0), (t1, v1) in itertools.pairwise(points):
        parts.append(f"H{x(t1):.1f}V{y(v1):.1f}" if v1 != v0 else f"H{x(t1):.1f}")
    return "".join(parts)


def chart_svg(results: dict[str, Any]) -> str:
    """Quantity over time of one hot SKU in both modes: the hub's truth and what TikTok shows."""
    width, panel, left, right, top, bottom = 960, 270, 56, 16, 64, 40
    modes = results["modes"]
    charts = {mode: modes[mode]["chart"] for mode in MODES}
    x_max = float(max(max([p[0] for p in c["hub"]] + [p[0] for p in c["tiktok"]] + [c["window_end_s"]])
                      for c in charts.values()))  # fmt: skip
    values = [v for c in charts.values() for row in c["hub"] for v in row[1:] if v is not None]
    values += [row[1] for c in charts.values() for row in c["tiktok"] + c["updates"]]
    y_min, y_max = float(min([0, *values])), float(max([1, *values]))
    y_max += (y_max - y_min) * 0.05
    height = top + len(MODES) * (panel + bottom) + 8
    colors = {"hub": "#1f4e79", "available": "#6c8ebf", "tiktok": "#d9480f"}
    quick = "quick run" if results["scenario"]["seconds"] < FULL_SECONDS else "full run"
    sku = charts["event"]["sku"]
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        'font-family="Helvetica, Arial, sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{left}" y="20" font-size="15" font-weight="bold">Flash sale: {escape(sku)}, quantity over time '
        f"({quick}, {escape(results['measured_at'][:16].replace('T', ' '))} UTC)</text>",
    ]
    legend = [("hub truth: on hand - reserved", colors["hub"], ""), ("hub: TikTok should show", colors["available"],
              ' stroke-dasharray="5,3"'), ("TikTok shows (sandbox)", colors["tiktok"], "")]  # fmt: skip
    lx = left
    for label, color, dash in legend:
        out.append(f'<line x1="{lx}" y1="40" x2="{lx + 24}" y2="40" stroke="{color}" stroke-width="2"{dash}/>')
        out.append(f'<text x="{lx + 30}" y="44">{escape(label)}</text>')
        lx += 40 + 7 * len(label)
    out.append(f'<circle cx="{lx + 6}" cy="40" r="2.5" fill="{colors["tiktok"]}"/>')
    out.append(f'<text x="{lx + 14}" y="44">update received by TikTok</text>')
    plot_w, plot_h = width - left - right, panel - 18
    for index, mode in enumerate(MODES):
        chart, result = charts[mode], modes[mode]
        y0 = top + index * (panel + bottom) + 18

        def x_of(t: float) -> float:
            return left + max(0.0, t) / x_max * plot_w

        def y_of(v: float, y0: float = y0) -> float:
            return y0 + plot_h - (v - y_min) / (y_max - y_min) * plot_h

        p99 = result["propagation_ms"]["p99"]
        bound = ">" if result["propagation_ms"]["p99_is_a_lower_bound"] else ""
        period = f", push every {result['push_interval_seconds']:g} s" if mode == "interval" else ", push on change"
        shown = "-" if p99 is None else f"{bound}{p99:,.0f} ms"
        title = (f"{mode} mode{period}: oversold {result['oversold_units']} units, propagation p99 {shown}, "
                 f"{result['rate_limited']} rate-limited")  # fmt: skip
        out.append(f'<text x="{left}" y="{y0 - 6}" font-weight="bold">{escape(title)}</text>')
        out.append(f'<rect x="{left}" y="{y0}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#999"/>')
        step = _nice_step(y_max - y_min, 5)
        tick = math.ceil(y_min / step) * step
        while tick <= y_max:
            out.append(f'<line x1="{left}" y1="{y_of(tick):.1f}" x2="{left + plot_w}" y2="{y_of(tick):.1f}" '
                       'stroke="#eee"/>')  # fmt: skip
            out.append(f'<text x="{left - 6}" y="{y_of(tick) + 4:.1f}" text-anchor="end">{tick:g}</text>')
            tick += step
        x_step = _nice_step(x_max, 12)
        tick = 0.0
        while tick <= x_max + 1e-9:
            out.append(f'<text x="{x_of(tick):.1f}" y="{y0 + plot_h + 14}" text-anchor="middle">{tick:g}</text>')
            tick += x_step
        ends = [(chart["window_end_s"], "load ends")]
        if chart["demand_end_s"] < chart["window_end_s"]:
            ends.insert(0, (chart["demand_end_s"], "demand ends"))
        for at, label in ends:
            out.append(f'<line x1="{x_of(at):.1f}" y1="{y0}" x2="{x_of(at):.1f}" y2="{y0 + plot_h}" stroke="#aaa" '
                       f'stroke-dasharray="2,3"/><text x="{x_of(at) + 3:.1f}" y="{y0 + 12}" fill="#777">{label}'
                       "</text>")  # fmt: skip
        if y_min < 0:
            out.append(f'<line x1="{left}" y1="{y_of(0):.1f}" x2="{left + plot_w}" y2="{y_of(0):.1f}" stroke="#666"/>')
        hub = [(float(t), float(free)) for t, free, _ in chart["hub"]]
        available = [(float(t), float(a)) for t, _, a in chart["hub"] if a is not None]
        tiktok = [(float(t), float(q)) for t, q in chart["tiktok"]]
        for points, color, extra in ((available, colors["available"], ' stroke-dasharray="5,3"'),
                                     (hub, colors["hub"], ""), (tiktok, colors["tiktok"], "")):  # fmt: skip
            path = _steps(points, x_of, y_of)
            if path:
                out.append(f'<path d="{path}" fill="none" stroke="{color}" stroke-width="1.8"{extra}/>')
        for t, quantity in chart["updates"]:
            if 0 <= t <= x_max:
                out.append(f'<circle cx="{x_of(t):.1f}" cy="{y_of(quantity):.1f}" r="3" fill="{colors["tiktok"]}" '
                           'stroke="white" stroke-width="0.8"/>')  # fmt: skip
        out.append(f'<text x="{left + plot_w / 2:.0f}" y="{y0 + plot_h + 30}" text-anchor="middle" fill="#555">'
                   "seconds since the sale started</text>")  # fmt: skip
    out.append("</svg>")
    return "\n".join(out) + "\n"


def write_chart(results: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(chart_svg(results))


# --- the command -------------------------------------------------------------------------------------------


def run_flash_sale_benchmark(*, quick: bool, console: Console, chart_path: Path | None = None) -> dict[str, Any]:
    from shopbridge.logs import configure_logging

    configure_logging("warning")
    scenario = quick_scenario() if quick else full_scenario()
    with Progress(console=console, transient=True) as progress:
        results = run_flash_sale(scenario, side_by_side=quick, progress=progress)
    results["quick"] = quick
    if chart_path is not None:
        write_chart(results, chart_path)
        results["chart_path"] = str(chart_path)
    console.print(_table(results))
    return results


def _table(results: dict[str, Any]) -> Table:
    scenario = results["scenario"]
    title = (f"flash sale: {scenario['hot_products'] * scenario['hot_skus_per_product']} hot SKUs x "
             f"{scenario['hot_units']} units, {scenario['seconds']:g} s per mode"
             f"{', side by side' if results['side_by_side'] else ''} (SQLite)")  # fmt: skip
    table = Table("mode", "oversold", "held back", "propagation p50", "propagation p99", "never seen", "api calls",
                  "429s", "stock events", "hub CPU / 1k events", title=title)  # fmt: skip

    def ms(summary: dict[str, Any], key: str) -> str:
        value = summary[key]
        return "-" if value is None else (">" if summary[f"{key}_is_a_lower_bound"] else "") + f"{value:,.0f} ms"

    for mode in MODES:
        run = results["modes"][mode]
        share = run["held_back_share"]
        label = mode if mode == "event" else f"interval ({run['push_interval_seconds']:g} s)"
        table.add_row(label, str(run["oversold_units"]),
                      f"{run['held_back_units']} ({share:.1%})" if share is not None else str(run["held_back_units"]),
                      ms(run["propagation_ms"], "p50"), ms(run["propagation_ms"], "p99"),
                      str(run["propagation_ms"]["never_seen"]), str(run["api_calls"]), str(run["rate_limited"]),
                      str(run["stock_events"]), table_cell(run["hub_cpu"]))  # fmt: skip
    missed = [key for key, ok in results["met"].items() if not ok]
    table.caption = "every event-mode target met" if not missed else "missed: " + ", ".join(missed)
    return table
