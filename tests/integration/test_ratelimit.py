"""Rate limits per (channel account, bucket), in memory or shared through Redis."""

from __future__ import annotations

import sys
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
import redis

from shopbridge.runtime.errors import RetryableError
from shopbridge.runtime.ratelimit import RateLimiter

REDIS_URL = "redis://127.0.0.1:6379/15"


def test_the_quota_is_per_account_and_bucket() -> None:
    limiter = RateLimiter(buckets={"inventory": "5/second"})
    assert all(limiter.try_acquire(1, "inventory") == 0.0 for _ in range(5))
    assert limiter.try_acquire(1, "inventory") > 0.0
    assert limiter.try_acquire(2, "inventory") == 0.0, "another shop has its own quota"
    assert limiter.try_acquire(1, "orders") == 0.0, "another bucket has its own quota"


@pytest.fixture
def frequent_thread_switches() -> Iterator[None]:
    """Threads switch as often as the interpreter allows, which makes races show."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


@pytest.mark.usefixtures("frequent_thread_switches")
def test_workers_may_take_quota_at_the_same_moment() -> None:
    limiter = RateLimiter(buckets={"inventory": "1000000/second"})
    rounds, together = 300, 8
    everyone_ready = threading.Barrier(together)
    failures: list[BaseException] = []
    previous_hook = threading.excepthook
    threading.excepthook = lambda args: failures.append(args.exc_value or RuntimeError(str(args.exc_type)))

    def worker() -> None:
        for _ in range(rounds):
            everyone_ready.wait()
            try:
                limiter.try_acquire(1, "inventory")
            except Exception as error:  # the library's expiry timer, restarted by two threads at once
                failures.append(error)
            time.sleep(0.012)  # long enough for the storage's expiry timer to have run out

    try:
        threads = [threading.Thread(target=worker) for _ in range(together)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        threading.excepthook = previous_hook
    assert failures == []
    assert limiter.try_acquire(1, "inventory") == 0.0


def test_acquire_waits_then_gives_the_job_back_with_a_retry_after() -> None:
    slept: list[float] = []
    limiter = RateLimiter(default="2/minute", sleep=slept.append)
    limiter.acquire(1, "orders")
    limiter.acquire(1, "orders")
    with pytest.raises(RetryableError, match="rate limit") as raised:
        limiter.acquire(1, "orders", max_wait=1.0)
    assert raised.value.retry_after is not None
    assert raised.value.retry_after > 1.0
    assert slept == []


def test_processes_share_one_quota_through_redis() -> None:
    try:
        redis.Redis.from_url(REDIS_URL).ping()
    except redis.exceptions.ConnectionError:
        pytest.skip("no Redis on 127.0.0.1:6379")
    bucket = f"test-{uuid.uuid4().hex}"
    first = RateLimiter(REDIS_URL, buckets={bucket: "10/minute"})
    second = RateLimiter(REDIS_URL, buckets={bucket: "10/minute"})
    granted = sum(limiter.try_acquire(7, bucket) == 0.0 for limiter in (first, second) for _ in range(10))
    assert granted == 10
