"""The dashboard benchmark: the queue and order pages over 100,000 orders of four channels.

Each database is migrated, filled with the orders (a quarter still to be shipped with their dispatch deadlines, 1%
blocked, one to three lines each over 2,000 SKUs), analysed, and served by the hub's app in process. Every page is
asked for by a signed-in ops user, a few times to warm up and then ``requests`` times; the figure is the server's own
time (its ``Server-Timing`` header: from the request's arrival to the start of its answer, the page rendered), in ms.

Pages: ``queue_first`` (``/``), ``queue_filtered`` (one channel, awaiting shipment), ``queue_at_risk``,
``queue_search`` (an exact SKU), ``queue_deep`` (a keyset page deep in the queue: a random cursor past the first
tenth of it), ``order`` (a random order's page). Target: p95 ≤ 150 ms for every page on both databases.
"""

from __future__ import annotations

import random
import re
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from sqlalchemy import insert, text

from shopbridge.bench.orders import percentile
from shopbridge.bootstrap import Hub, build_hub
from shopbridge.config import Settings
from shopbridge.logs import configure_logging
from shopbridge.services import queue
from shopbridge.services.access import add_user, set_password
from shopbridge.store.db import reset_schema, transaction, with_search_path
from shopbridge.store.secrets import SecretBox
from shopbridge.store.tables import ChannelAccount, Order, OrderLine, Product, Variant
from shopbridge.web.app import create_app

BENCH_SCHEMA = "shopbridge_bench_dashboard"
ORDERS = 100_000
SKUS = 2_000
CHUNK = 5_000
TARGET_P95_MS = 150.0
PASSWORD = "bench password 1"  # noqa: S105 - the benchmark's own throwaway user
ACCOUNTS = (("tiktok", "TikTok US", 0.5), ("shopify", "My store", 0.3), ("manual", "WhatsApp", 0.1),
            ("manual", "Facebook", 0.1))  # fmt: skip
STATUSES = (("awaiting_shipment", 0.2), ("on_hold", 0.05), ("in_transit", 0.15), ("delivered", 0.3),
            ("completed", 0.25), ("cancelled", 0.05))  # fmt: skip
TIMING = re.compile(r"app;dur=([0-9.]+)")


def _seed(hub: Hub, orders: int, progress: Progress, label: str) -> tuple[float, int]:
    """The accounts, SKUs and orders, inserted in chunks; returns the seconds it took and the highest order id."""
    started = time.perf_counter()
    rng = random.Random(17)
    now = hub.clock.now()
    with transaction(hub.sessions) as session:
        add_user(session, "ops@bench.example", "ops", now=now, actor="bench")
        set_password(session, "ops@bench.example", PASSWORD, now=now, actor="bench")
        accounts = [ChannelAccount(channel=c, label=label_, external_id=f"{c}-{n}", currency="USD")
                    for n, (c, label_, _) in enumerate(ACCOUNTS)]  # fmt: skip
        product = Product(title="Bench catalogue")
        session.add_all([*accounts, product])
        session.flush()
        session.execute(insert(Variant), [{"product_id": product.id, "sku": f"SKU-{n:05d}", "title": f"Item {n}"}
                                          for n in range(SKUS)])  # fmt: skip
        account_ids = [account.id for account in accounts]
    weights = [share for _, _, share in ACCOUNTS]
    statuses, status_weights = zip(*STATUSES, strict=True)
    task = progress.add_task(f"{label}: {orders:,} orders", total=orders)
    next_id = 1
    for start in range(0, orders, CHUNK):
        rows, lines = [], []
        for n in range(start, min(orders, start + CHUNK)):
            status = rng.choices(statuses, status_weights)[0]
            created = now - timedelta(minutes=rng.randint(0, 90 * 24 * 60))
            to_ship = status in ("awaiting_shipment", "on_hold")
            dispatch_by = now + timedelta(minutes=rng.randint(-12 * 60, 72 * 60)) if to_ship else None
            blocked = "unknown_sku" if rng.random() < 0.01 else None
            rows.append({
                "id": next_id, "channel_account_id": rng.choices(account_ids, weights)[0], "external_id": f"B{n:08d}",
                "channel_status": status.upper(), "status": status, "currency": "USD", "total_minor": 1990,
                "buyer": {}, "recipient": {}, "deadlines": {}, "packages": {}, "dispatch_by": dispatch_by,
                "blocked_reason": blocked, "blocked_message": "a SKU the hub does not know" if blocked else None,
                "channel_created_at": created, "channel_updated_at": created, "created_at": created,
                "updated_at": created,
            })  # fmt: skip
            for _ in range(rng.randint(1, 3)):
                sku = rng.randrange(SKUS)
                lines.append({"order_id": next_id, "sku": f"SKU-{sku:05d}", "title": f"Item {sku}", "quantity": 1,
                              "unit_price_minor": 1990, "currency": "USD", "line_item_ids": {}})  # fmt: skip
            next_id += 1
        with transaction(hub.sessions) as session:
            session.execute(insert(Order), rows)
            session.execute(insert(OrderLine), lines)
        progress.update(task, advance=len(rows))
    with hub.engine.begin() as connection:
        if hub.engine.dialect.name == "postgresql":
            connection.execute(text("SELECT setval(pg_get_serial_sequence('orders', 'id'), :top)"), {"top": next_id})
        connection.execute(text("ANALYZE"))
    progress.remove_task(task)
    return time.perf_counter() - started, next_id - 1


def _pages(top_id: int, rng: random.Random) -> dict[str, Any]:
    """Each page's URL maker."""
    return {
        "queue_first": lambda: "/",
        "queue_filtered": lambda: "/?channel=shopify&status=awaiting_shipment",
        "queue_at_risk": lambda: "/?at_risk=1",
        "queue_search": lambda: f"/?q=SKU-{rng.randrange(SKUS):05d}",
        "queue_deep": lambda: f"/?after={queue.encode_cursor(1, None, rng.randint(top_id // 10, top_id))}",
        "order": lambda: f"/orders/{rng.randint(1, top_id)}",
    }


def _measure(client: TestClient, url_of: Any, requests: int) -> dict[str, Any]:
    timings = []
    for n in range(requests + 3):
        response = client.get(url_of())
        if response.status_code != 200:
            raise RuntimeError(f"{response.request.url} answered {response.status_code}")
        found = TIMING.search(response.headers.get("server-timing", ""))
        if found is None:
            raise RuntimeError("the hub sent no Server-Timing header")
        if n >= 3:  # the first few warm the caches
            timings.append(float(found.group(1)))

    def at(q: float) -> float:
        value = percentile(timings, q)
        assert value is not None
        return round(value, 1)

    return {"n": len(timings), "p50": at(50), "p95": at(95), "p99": at(99), "max": round(max(timings), 1)}


def _bench(settings: Settings, label: str, *, orders: int, requests: int, progress: Progress) -> dict[str, Any]:
    hub = build_hub(settings)
    try:
        hub.migrate()
        seed_seconds, top_id = _seed(hub, orders, progress, label)
        rng = random.Random(5)
        results: dict[str, Any] = {"orders": orders, "seed_seconds": round(seed_seconds, 1), "pages": {}}
        with TestClient(create_app(hub)) as client:
            form = client.get("/sign-in").text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
            signed = client.post("/sign-in", data={"email": "ops@bench.example", "password": PASSWORD,
                                                   "csrf_token": form}, follow_redirects=False)  # fmt: skip
            if signed.status_code != 303:
                raise RuntimeError(f"signing in answered {signed.status_code}")
            pages = _pages(top_id, rng)
            task = progress.add_task(f"{label}: {len(pages)} pages x {requests} requests", total=len(pages))
            for name, url_of in pages.items():
                results["pages"][name] = _measure(client, url_of, requests)
                progress.advance(task)
            progress.remove_task(task)
        results["meets_target"] = all(page["p95"] <= TARGET_P95_MS for page in results["pages"].values())
        return results
    finally:
        hub.close()


def run_dashboard_benchmark(*, quick: bool, database_url: str | None, console: Console, orders: int = ORDERS,
                            requests: int | None = None) -> dict[str, Any]:  # fmt: skip
    configure_logging("warning")
    requests = requests or (40 if quick else 200)
    results: dict[str, Any] = {
        "quick": quick, "orders": orders, "requests_per_page": requests, "target_p95_ms": TARGET_P95_MS,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }  # fmt: skip
    with Progress(console=console, transient=True) as progress, \
            tempfile.TemporaryDirectory(prefix="shopbridge-bench-") as directory:  # fmt: skip
        settings = Settings(data_dir=Path(directory), log_level="warning", worker_process=False)
        results["sqlite"] = _bench(settings, "SQLite", orders=orders, requests=requests, progress=progress)
        if database_url:
            reset_schema(database_url, BENCH_SCHEMA)
            try:
                pg = Settings(
                    data_dir=Path(directory) / "pg", database_url=with_search_path(database_url, BENCH_SCHEMA),
                    secret_key=SecretBox.generate_key(), log_level="warning", worker_process=False,
                )  # fmt: skip
                results["postgresql"] = _bench(pg, "PostgreSQL", orders=orders, requests=requests, progress=progress)
            finally:
                reset_schema(database_url, BENCH_SCHEMA)
    console.print(_table(results))
    return results


def _table(results: dict[str, Any]) -> Table:
    table = Table("database", "page", "p50 ms", "p95 ms", "p99 ms", "max ms",
                  title=f"dashboard pages over {results['orders']:,} orders (server time; target p95 ≤ "
                        f"{results['target_p95_ms']:.0f} ms)")  # fmt: skip
    for database in ("sqlite", "postgresql"):
        for page, figures in results.get(database, {}).get("pages", {}).items():
            table.add_row(database, page, *(str(figures[key]) for key in ("p50", "p95", "p99", "max")))
    return table
