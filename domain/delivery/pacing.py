"""Token-bucket pacing so each provider is sent to at its configured rate and never answers 429 because of us."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class TokenBucket:
    """Allows `rate` acquisitions per second on average with bursts of at most `burst`.

    Waiters queue on a lock so tokens are handed out in order and the long-run rate stays exact
    even with many concurrent senders.
    """

    def __init__(
        self, rate: float, burst: float | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate / 20)
        self._clock = clock
        self._tokens = self.burst
        self._updated = clock()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
        self._updated = now

    async def acquire(self) -> None:
        async with self._lock:
            self._refill()
            if self._tokens < 1:
                await asyncio.sleep((1 - self._tokens) / self.rate)
                self._refill()
            self._tokens -= 1

    def wait_seconds(self) -> float:
        """How long the next acquisition would wait (long after a provider asked us to hold off)."""
        self._refill()
        return max(0.0, (1 - self._tokens) / self.rate)

    def hold_off(self, seconds: float) -> None:
        """A provider said slow down (429 with Retry-After): spend future tokens so everyone waits."""
        self._refill()
        self._tokens = min(self._tokens, 0.0) - seconds * self.rate
