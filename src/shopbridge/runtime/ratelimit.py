"""Rate limits per (channel account, API bucket) on the ``limits`` library.

Memory storage in the embedded mode; Redis storage when ``SHOPBRIDGE_REDIS_URL`` is set, so every process
draws from one shared quota and N workers together never exceed a shop's limit.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext

from limits import RateLimitItem, parse
from limits.storage import MemoryStorage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

from shopbridge.runtime.errors import RetryableError


class RateLimiter:
    def __init__(
        self,
        storage_uri: str = "memory://",
        *,
        buckets: Mapping[str, str] | None = None,
        default: str = "10/second",
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        storage = storage_from_string(storage_uri)
        self._limiter = MovingWindowRateLimiter(storage)
        # The library's memory storage is not safe for threads that call it at once: it restarts an expiry timer
        # without a lock, and two workers doing so together fail with "threads can only be started once". The
        # embedded mode's workers therefore take turns on it (microseconds each); Redis is shared as it is.
        self._turns: AbstractContextManager[object] = (
            threading.Lock() if isinstance(storage, MemoryStorage) else nullcontext()
        )
        self._default = parse(default)
        self._buckets: dict[str, RateLimitItem] = {name: parse(rate) for name, rate in (buckets or {}).items()}
        self._clock = clock
        self._sleep = sleep

    def limit_for(self, bucket: str) -> RateLimitItem:
        return self._buckets.get(bucket, self._default)

    def try_acquire(self, channel_account_id: int, bucket: str, cost: int = 1) -> float:
        """Take ``cost`` from the quota: 0.0 when allowed, else the seconds until it may be allowed."""
        item = self.limit_for(bucket)
        key = str(channel_account_id)
        with self._turns:
            if self._limiter.hit(item, key, bucket, cost=cost):
                return 0.0
            stats = self._limiter.get_window_stats(item, key, bucket)
        return max(0.001, stats.reset_time - self._clock())

    def acquire(self, channel_account_id: int, bucket: str, cost: int = 1, *, max_wait: float = 5.0) -> None:
        """Wait for quota up to ``max_wait`` seconds; past that, raise RetryableError so the job comes back later
        instead of holding a worker."""
        waited = 0.0
        while True:
            wait = self.try_acquire(channel_account_id, bucket, cost)
            if wait == 0.0:
                return
            if waited + wait > max_wait:
                raise RetryableError(
                    f"rate limit {self.limit_for(bucket)} reached for account {channel_account_id} bucket {bucket}",
                    retry_after=wait,
                )
            self._sleep(wait)
            waited += wait
