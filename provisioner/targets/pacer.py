"""Write pacing: an asyncio token bucket kept under Graph's write budget.

Identity and access throttling allows an app about 3,000 writes per 150 s in a tenant
(about 20/s). Every sub-request of a ``$batch`` counts on its own, so a batch of 20 writes
takes 20 tokens before it is sent. Staying under the budget means Graph rarely answers 429
at all, which is far cheaper than being throttled and retrying.

When Graph does throttle, :meth:`WritePacer.hold` stops new writes until its
``Retry-After`` has passed (the throttle is per app and tenant, so every write waits).
Retrying the throttled operations is not done here: the service's queue owns retries.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


class WritePacer:
    """Token bucket: ``rate`` tokens per second, at most ``burst`` saved up.

    ``acquire(n)`` waits until ``n`` tokens are available (FIFO among waiters) and takes them.
    A request for more than ``burst`` tokens waits for a full bucket and then borrows the
    rest, so it never waits forever. ``rate <= 0`` disables pacing.
    """

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.rate = float(rate)
        self.burst = max(1, int(burst))
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(self.burst)
        self._stamp = clock()
        self._not_before = 0.0
        self._lock = asyncio.Lock()
        self.waited = 0.0  # total seconds spent waiting (for benchmarks)

    def _refill(self) -> None:
        now = self._clock()
        elapsed = max(0.0, now - self._stamp)
        self._stamp = now
        self._tokens = min(float(self.burst), self._tokens + elapsed * self.rate)

    @property
    def available(self) -> float:
        if self.rate <= 0:
            return float("inf")
        self._refill()
        return self._tokens

    def hold(self, seconds: float) -> None:
        """No write is released before ``seconds`` from now (after a 429's Retry-After)."""
        if seconds > 0:
            self._not_before = max(self._not_before, self._clock() + seconds)

    def held_for(self) -> float:
        """Seconds until writes are released again after a ``hold`` (0 when not held)."""
        return max(0.0, self._not_before - self._clock())

    async def acquire(self, n: int = 1) -> float:
        """Take ``n`` write tokens, waiting as needed; returns the seconds waited."""
        if n <= 0:
            return 0.0
        waited = 0.0
        async with self._lock:
            while True:
                now = self._clock()
                if now < self._not_before:
                    pause = self._not_before - now
                    await self._sleep(pause)
                    waited += pause
                    continue
                if self.rate <= 0:
                    break
                self._refill()
                need = min(float(n), float(self.burst))
                if self._tokens >= need:
                    self._tokens -= n  # may go below zero for n > burst: a debt repaid later
                    break
                pause = (need - self._tokens) / self.rate
                await self._sleep(pause)
                waited += pause
        self.waited += waited
        return waited
