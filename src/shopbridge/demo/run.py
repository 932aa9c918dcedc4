"""`shopbridge demo`: the seeded TikTok sandbox, the Shopify sandbox as the merchant's store, the POS sandbox as its
four shops, and the hub on the embedded database, connected (TikTok through the real OAuth flow, the store with its
Admin API token, the POS with its account and shared secret), with TikTok buyers placing orders on a sped-up sandbox
clock so held orders release within minutes, the store's staff fulfilling what the hub places there, the store's
own web customers buying too, the shops' tills selling, and buyers bringing delivered TikTok orders back to a shop's
returns desk, which the hub refunds on TikTok."""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from pathlib import Path

from rich.console import Console
from rich.live import Live
from rich.table import Table
from sqlalchemy import func, select

from shopbridge.bootstrap import Hub
from shopbridge.demo.traffic import BuyerTraffic, ReturnsDesk
from shopbridge.demo.world import OWNER, World, record_initial_stock, running_world, stop_recorded_sandbox
from shopbridge.domain.money import Money
from shopbridge.logs import configure_logging
from shopbridge.sandbox.tiktok.seed import HISTORY_DAYS
from shopbridge.services import payouts, reconciliation
from shopbridge.store.db import reading, transaction
from shopbridge.store.files import create_private_file, make_private_dirs
from shopbridge.store.tables import (
    ChannelAccount,
    ChannelListing,
    FinanceException,
    FinanceTransaction,
    Order,
    OrderLink,
    Shipment,
    StoreReturn,
    Variant,
)

CLOCK_SPEED = 60.0  # one sandbox hour (the ON_HOLD window) passes in one real minute
STARTING_UNITS = 40
SANDBOX_PID_FILE = "demo-sandbox.pid"  # in the data directory, while the demo's sandbox runs
SANDBOX_STATE_FILE = "sandbox-tiktok.db"
STORE_STATE_FILE = "sandbox-shopify.db"
STORE_TRAFFIC = {"web_orders_per_second": 0.05, "in_store_sales_per_second": 0.0, "fulfil": True}
# The POS's shops: stocked with the TikTok demo's SKUs (seed "demo"), each mapped to a hub location of its own (the
# Shopify store fulfils TikTok's orders from MAIN); their tills sell slowly, and a returns desk takes back one
# delivered TikTok order every RETURN_EVERY seconds.
POS_OPTIONS = {"seed": "demo", "id_start": None}
POS_TRAFFIC = {"sales_per_second": 0.2, "returns_per_second": 0.0, "receipts_per_second": 0.02}
RETURN_EVERY = 20.0
# The seeded shop has days of history, settled and paid out: the hub reads all of it on connect, and reconciles
# every minute (the demo's clock runs fast), with the fee rates the shop agreed with TikTok.
LOOKBACK_HOURS = 24.0 * (HISTORY_DAYS + 1)
RECONCILE_SECONDS = 60.0
FEE_RATES = {"referral_fee_rate": "0.06", "transaction_fee_rate": "0.029"}


def stop_leftover_sandbox(data_dir: Path) -> int | None:
    """Stop the sandbox a demo on ``data_dir`` left running when it was killed, so that its port is free again;
    returns its pid if there was one. (The demo's sandbox stops by itself when the demo dies, as its stdin closes;
    this catches one still shutting down, or stuck.)"""
    return stop_recorded_sandbox(data_dir / SANDBOX_PID_FILE)


def _status(world: World, traffic: BuyerTraffic, desk: ReturnsDesk, started: float) -> Table:
    orders = world.hub_orders()
    statuses = Counter(order["status"] for order in orders)
    table = Table(title=f"shopbridge demo: {time.monotonic() - started:.0f} s", show_header=False, min_width=60)
    table.add_row("orders placed by buyers", str(traffic.stats.placed))
    table.add_row("cancelled by buyers during the hold", str(traffic.stats.cancelled))
    table.add_row("orders in the hub", str(len(orders)))
    for status, count in sorted(statuses.items()):
        table.add_row(f"  {status}", str(count))
    table.add_row("released to fulfilment", str(sum(1 for order in orders if order["released_at"])))
    table.add_row("blocked (see `shopbridge orders blocked`)", str(sum(1 for order in orders if order["blocked"])))
    with reading(world.hub.sessions) as session:
        listed = session.execute(
            select(func.count(), func.count().filter(ChannelListing.stock_version > ChannelListing.acked_stock_version))
            .join(ChannelAccount, ChannelAccount.id == ChannelListing.channel_account_id)
            .where(ChannelAccount.channel == "tiktok", ChannelListing.variant_id.is_not(None),
                   ChannelListing.pushed_quantity.is_not(None))
        ).one()  # fmt: skip
    table.add_row("TikTok SKUs showing the hub's stock (pushed)", str(listed[0] - listed[1]))
    table.add_row("  with a newer quantity on its way", str(listed[1]))
    with reading(world.hub.sessions) as session:
        links = Counter(dict(session.execute(select(OrderLink.state, func.count()).group_by(OrderLink.state)).all()))
        shipments = Counter(dict(session.execute(select(Shipment.state, func.count()).group_by(Shipment.state)).all()))
        store_orders = session.scalar(
            select(func.count()).select_from(Order).join(ChannelAccount, ChannelAccount.id == Order.channel_account_id)
            .where(ChannelAccount.channel == "shopify")
        )  # fmt: skip
    table.add_row("placed in the Shopify store", str(sum(links.values()) - links["placing"]))
    table.add_row("  refused by the store (blocked)", str(links["refused"]))
    table.add_row("shipped by the store, tracking on TikTok", str(shipments["sent"]))
    table.add_row("  tracking on its way to TikTok", str(shipments["pending"]))
    table.add_row("the store's own orders in the hub", str(store_orders or 0))
    with reading(world.hub.sessions) as session:
        returned = Counter(dict(session.execute(select(StoreReturn.state, func.count())
                                                .group_by(StoreReturn.state)).all()))  # fmt: skip
    table.add_row("TikTok orders returned at a POS shop's desk", str(desk.stats.returned))
    table.add_row("  refunded on TikTok by the hub", str(returned["refunded"]))
    table.add_row("  refund on its way", str(returned["refunding"]))
    table.add_row("  refused by TikTok (see the Returns page)", str(returned["refused"]))
    for label, value in _finance(world):
        table.add_row(label, value)
    return table


def _finance(world: World) -> list[tuple[str, str]]:
    """The shop's payouts and what reconciliation makes of them (the Finance page shows each one)."""
    with reading(world.hub.sessions) as session:
        shown = list(payouts.payouts(session, limit=1000))
        settled = session.scalar(select(func.count(FinanceTransaction.order_id.distinct())))
        exceptions = Counter(dict(session.execute(
            select(FinanceException.kind, func.count()).where(FinanceException.cleared_at.is_(None))
            .group_by(FinanceException.kind)).all()))  # fmt: skip
    rows = [("TikTok payouts imported", str(len(shown))),
            ("  paid", str(sum(1 for found in shown if found.paid_at is not None))),
            ("  adding up to their orders and fees", str(sum(1 for found in shown if found.adds_up))),
            ("orders settled, checked against the hub's", str(settled or 0)),
            ("  finance exceptions open (Finance page)", str(sum(exceptions.values())))]  # fmt: skip
    rows += [(f"    {kind}", str(count)) for kind, count in sorted(exceptions.items())]
    if shown:
        newest = shown[0]
        paid = Money.from_minor(newest.amount, newest.currency)
        rows.append(("  newest payout", f"{paid} ({newest.breakdown.orders} orders, `shopbridge finance payout "
                                        f"{newest.id}`)"))  # fmt: skip
    return rows


def _finance_terms(hub: Hub) -> None:
    """The fee rates the TikTok shop agreed to, so reconciliation checks every fee."""
    with transaction(hub.sessions) as session:
        for account in session.scalars(select(ChannelAccount).where(ChannelAccount.channel == "tiktok")):
            reconciliation.configure(account, FEE_RATES)


def _starting_stock(hub: Hub) -> None:
    """The hub's stock truth for the demo: STARTING_UNITS of every SKU it knows, pushed to TikTok once connected."""
    with reading(hub.sessions) as session:
        skus = list(session.scalars(select(Variant.sku)))
    record_initial_stock(hub, dict.fromkeys(skus, STARTING_UNITS), key_prefix="demo")


def run_demo(
    *, data_dir: Path, hub_port: int, sandbox_port: int, store_port: int, duration: float | None, console: Console,
    orders_per_second: float = 0.5,
) -> None:  # fmt: skip
    configure_logging("warning", "console")  # keep the live view readable; warnings still show
    console.print("[bold]shopbridge demo[/bold]: starting the TikTok sandbox and the hub ...")
    make_private_dirs(data_dir)  # before the sandbox, which would create it with the umask's permissions
    create_private_file(data_dir / SANDBOX_STATE_FILE)  # SQLite takes an empty file for a new database
    create_private_file(data_dir / STORE_STATE_FILE)
    with running_world(
        None, data_dir, sandbox_seed="demo", sandbox_state=data_dir / SANDBOX_STATE_FILE, clock_speed=CLOCK_SPEED,
        poll_seconds=60.0, hub_port=hub_port, sandbox_port=sandbox_port, log_level="warning",
        unlinked_skus=3, sandbox_process=True, sandbox_pid_file=data_dir / SANDBOX_PID_FILE,
        prepare_hub=_starting_stock, store=True, store_state=data_dir / STORE_STATE_FILE, store_port=store_port,
        owner_password=True, pos=True, pos_options=POS_OPTIONS, pos_location_map={},
        tiktok_initial_lookback_hours=LOOKBACK_HOURS, finance_reconcile_seconds=RECONCILE_SECONDS,
    ) as world:  # fmt: skip
        _finance_terms(world.hub)
        hub, sandbox = world.hub_url, world.sandbox_url
        console.print(f"Connected the sandbox shop through OAuth; the hub's database is {data_dir / 'shopbridge.db'}")
        console.print(f"  dashboard        {hub}/   sign in as {OWNER} with password {world.owner_password}")
        console.print(f"  hub API docs     {hub}/api/docs")
        console.print(f"  orders (API)     curl -H 'Authorization: Bearer {world.api_token}' {hub}/api/v1/orders")
        console.print(f"  health, metrics  {hub}/readyz  {hub}/metrics")
        console.print(f"  sandbox control  {sandbox}/docs   (clock runs {CLOCK_SPEED:.0f}x: ON_HOLD lasts one minute)")
        assert world.store is not None
        world.store.control.post("/traffic", json=STORE_TRAFFIC).raise_for_status()
        console.print(f"  Shopify store    {world.store.sandbox_url}/docs   ({world.store.shop_domain}: staff fulfil "
                      "what the hub places within seconds; web customers buy too)")  # fmt: skip
        assert world.pos is not None
        world.pos.control.post("/traffic", json=POS_TRAFFIC).raise_for_status()
        console.print(f"  POS shops        {world.pos.sandbox_url}/docs   (four shops whose stock the hub mirrors; a "
                      f"returns desk takes a delivered TikTok order back every {RETURN_EVERY:.0f} s and the hub "
                      "refunds it on TikTok: see the Returns page)")  # fmt: skip
        console.print(f"  finance          {hub}/finance   (the shop's payouts broken down to orders and fees, "
                      "reconciled against the hub's orders; `shopbridge finance payouts`)")  # fmt: skip
        console.print(f"  the API token belongs to {OWNER} (owner); Ctrl-C stops everything.")
        traffic = BuyerTraffic(world, orders_per_second=orders_per_second)
        traffic.start()
        desk = ReturnsDesk(world, every=RETURN_EVERY)
        desk.start()
        started = time.monotonic()
        stop = threading.Event()
        try:
            with Live(_status(world, traffic, desk, started), console=console, refresh_per_second=1) as live:
                while not stop.wait(2.0):
                    live.update(_status(world, traffic, desk, started))
                    if duration is not None and time.monotonic() - started >= duration:
                        break
        except KeyboardInterrupt:
            console.print("stopping ...")
        finally:
            traffic.stop()
            desk.stop()
        with contextlib.suppress(Exception):
            console.print(_status(world, traffic, desk, started))
    console.print("demo stopped cleanly")
