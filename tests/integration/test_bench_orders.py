"""A smoke run of the order-intake benchmark's core: a tiny load, the result's shape and nothing lost (no timing
assertions: those figures belong to `shopbridge bench orders`)."""

from __future__ import annotations

import pytest
from rich.console import Console
from rich.progress import Progress

from shopbridge.bench.orders import histogram_quantile, measure_intake, percentile
from tests.integration.bench_hub_cpu import check_hub_cpu

pytestmark = pytest.mark.slow


def test_a_small_clean_run_loses_nothing_and_reports_every_key() -> None:
    with Progress(console=Console(quiet=True), disable=True) as progress:
        result = measure_intake(rate=10, seconds=2, poll_seconds=60, progress=progress, label="smoke",
                                settle_seconds=20)  # fmt: skip
    assert result["orders_placed"] == 20 and result["orders_refused"] == 0
    assert result["lost"] == 0 and result["duplicated"] == 0
    assert result["visible_ms"]["n"] == 20
    assert {"p50", "p99"} <= result["visible_ms"].keys()
    assert result["ack_ms"]["n"] >= 20 and result["ack_ms"]["p99"] is not None
    assert result["hub"]["order_rows"] == 20
    assert result["watcher"]["errors"] == 0
    check_hub_cpu(result["hub_cpu"], events=result["orders_placed"])


def test_percentiles() -> None:
    assert percentile([], 99) is None
    assert percentile([5.0], 50) == 5.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile(list(map(float, range(101))), 99) == 99.0
    buckets = [(0.01, 50.0), (0.05, 99.0), (0.1, 100.0), (float("inf"), 100.0)]
    assert histogram_quantile(buckets, 0.5) == (0.01, 0.01)
    estimate, bound = histogram_quantile(buckets, 0.99)
    assert bound == 0.05 and estimate == pytest.approx(0.05)
    assert histogram_quantile([(0.01, 0.0), (float("inf"), 0.0)], 0.99) == (None, None)
