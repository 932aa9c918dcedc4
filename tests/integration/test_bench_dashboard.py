"""A smoke run of the dashboard benchmark on a small queue: every page answers and is timed by the server, on
SQLite and, when the suite runs against PostgreSQL, there too (no timing assertions: the figures belong to
`shopbridge bench dashboard`)."""

from __future__ import annotations

import os

from rich.console import Console

from shopbridge.bench.dashboard import run_dashboard_benchmark

PAGES = {"queue_first", "queue_filtered", "queue_at_risk", "queue_search", "queue_deep", "order"}


def test_a_small_run_times_every_page_on_every_database() -> None:
    database_url = os.environ.get("SHOPBRIDGE_TEST_DATABASE_URL")
    results = run_dashboard_benchmark(quick=True, database_url=database_url, console=Console(quiet=True),
                                      orders=2_000, requests=5)  # fmt: skip
    for database in ("sqlite", "postgresql") if database_url else ("sqlite",):
        measured = results[database]
        assert measured["orders"] == 2_000 and set(measured["pages"]) == PAGES
        for figures in measured["pages"].values():
            assert figures["n"] == 5 and 0 < figures["p50"] <= figures["p95"] <= figures["max"]
        assert isinstance(measured["meets_target"], bool)
