"""The sandbox clock: real time by default, advanceable and speed-scaled so tests can age codes and tokens.

Shopify's own timestamps (``createdAt``, ``updatedAt``, token and code expiry, webhook retries, the delay before an
``orderCancel`` job completes) run on ``now()``. The leaky bucket of the cost-based rate limit (reference §2.1) runs on
``wall()``, real time, as the platform's limiter does: advancing the sandbox clock never refills a bucket.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class SandboxClock:
    """Sandbox time derived from a wall clock; ``speed=0`` freezes it so only ``advance`` moves it."""

    def __init__(
        self, *, wall: Callable[[], float] = time.time, start: float | None = None, speed: float = 1.0
    ) -> None:
        if speed < 0:
            raise ValueError("clock speed must be >= 0")
        self._wall = wall
        self._wall_anchor = wall()
        self._sandbox_anchor = self._wall_anchor if start is None else start
        self._speed = speed

    @property
    def speed(self) -> float:
        return self._speed

    def wall(self) -> float:
        return self._wall()

    def now(self) -> float:
        return self._sandbox_anchor + (self._wall() - self._wall_anchor) * self._speed

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError("the sandbox clock only moves forward")
        self._sandbox_anchor += seconds
        return self.now()

    def rewind(self, seconds: float) -> float:
        """Move back in time. Only for writing a world's history before anyone has observed it (``--seed``)."""
        self._sandbox_anchor -= seconds
        return self.now()

    def set_speed(self, speed: float) -> None:
        if speed < 0:
            raise ValueError("clock speed must be >= 0")
        self._sandbox_anchor = self.now()
        self._wall_anchor = self._wall()
        self._speed = speed
