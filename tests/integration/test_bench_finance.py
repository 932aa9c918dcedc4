"""A small run of the finance benchmark: 5,000 statement transactions through the real import and reconciliation on
SQLite and, when the suite runs against PostgreSQL, there too. Every injected discrepancy is found, kind by kind, and
nothing else; the re-import of the same pages changes nothing (no timing assertions: the figures belong to
`shopbridge bench finance`)."""

from __future__ import annotations

import os

from rich.console import Console

from shopbridge.bench.finance import Shape, run_finance_benchmark
from shopbridge.domain.finance import ExceptionKind

TRANSACTIONS = 5_000


def test_a_small_run_finds_every_injected_discrepancy_and_a_reimport_changes_nothing() -> None:
    database_url = os.environ.get("SHOPBRIDGE_TEST_DATABASE_URL")
    results = run_finance_benchmark(quick=True, database_url=database_url, console=Console(quiet=True),
                                    transactions=TRANSACTIONS)  # fmt: skip
    shape = Shape.of(TRANSACTIONS)
    for database in ("sqlite", "postgresql") if database_url else ("sqlite",):
        measured = results[database]
        injected = measured["exceptions_injected"]["by_kind"]
        assert set(injected) == {kind.value for kind in ExceptionKind} and all(n > 0 for n in injected.values())
        assert measured["exceptions_found"]["by_kind"] == injected
        assert measured["exceptions_kept"] == injected  # what the run wrote to finance_exceptions
        assert measured["found_equals_injected"]
        assert measured["import"]["transactions"] == {"new": TRANSACTIONS, "changed": 0, "unchanged": 0}
        assert measured["import"]["statements"]["new"] == measured["statements"] == shape.days
        assert measured["import"]["payments"]["new"] == shape.days
        for rows in ("statements", "transactions", "payments"):
            assert measured["reimport"][rows]["new"] == measured["reimport"][rows]["changed"] == 0
            assert measured["reimport"][rows]["unchanged"] == measured["import"][rows]["new"]
        assert measured["reimport_changes_nothing"]
        for figure in ("seconds", "import_seconds", "reconcile_seconds", "reimport_seconds", "peak_rss_mb"):
            assert measured[figure] > 0
        assert isinstance(measured["meets_target"]["seconds"], bool)
