"""Rate limits per (channel account, bucket), in memory or shared through Redis."""

from __future__ import annotations

import uuid

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
