"""The sandboxes' clock: real time by default, advanceable and speed-scaled, so an hour of TikTok's ON_HOLD costs no
real time and tests can age Shopify's codes and tokens. Each platform's timestamps run on ``now()``; rate limits
(TikTok's token buckets, Shopify's cost bucket) run on ``wall()``, real time, as the platforms' limiters do:
advancing the sandbox clock never refills a bucket."""

from __future__ import annotations

import time
from collections.abc import Callable


class SandboxClock:
    """Sandbox time derived from a wall clock.

    ``now()`` is the sandbox's notion of time (order SLAs, token expiry, audits, webhook retries);
    ``wall()`` is real time, used where the outside world's clock matters (request timestamps, rate limits).
    Both are injectable: tests pass a fake wall clock and ``speed=0`` to get a clock that only moves on ``advance``.
    """

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

    def now_s(self) -> int:
        """Sandbox time as Unix seconds (the unit of every TikTok timestamp)."""
        return int(self.now())

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError("the sandbox clock only moves forward")
        self._sandbox_anchor += seconds
        return self.now()

    def rewind(self, seconds: float) -> float:
        """Move back in time. Only for writing a world's history before anyone has observed it (`--seed`)."""
        self._sandbox_anchor -= seconds
        return self.now()

    def set_speed(self, speed: float) -> None:
        if speed < 0:
            raise ValueError("clock speed must be >= 0")
        # Re-anchor so changing speed never makes sandbox time jump.
        self._sandbox_anchor = self.now()
        self._wall_anchor = self._wall()
        self._speed = speed
