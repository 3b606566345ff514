"""Write pacing: an asyncio token bucket kept under Graph's write budget.

Identity and access throttling allows an app about 3,000 writes per 150 s in a tenant
(about 20/s). Every sub-request of a ``$batch`` counts on its own, so a batch of 20 writes
takes 20 tokens before it is sent. Staying under the budget means Graph rarely answers 429
at all, which is far cheaper than being throttled and retrying.

When Graph does throttle, :meth:`WritePacer.hold` stops new writes until its
``Retry-After`` has passed (the throttle is per app and tenant, so every write waits).
Retrying the throttled operations is not done here: the service's queue owns retries.

Revocation first: ``acquire(n, urgent=True)`` (a leaver's writes, see
:mod:`provisioner.targets.lanes`) takes tokens ahead of every waiting normal request; the
budget itself, and a 429's hold, apply to it as to everything else.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


class WritePacer:
    """Token bucket: ``rate`` tokens per second, at most ``burst`` saved up.

    ``acquire(n)`` waits until ``n`` tokens are available (FIFO among waiters of a lane; urgent
    waiters before normal ones) and takes them.
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
        self._urgent_lock = asyncio.Lock()
        self._urgent_waiting = 0
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

    async def acquire(self, n: int = 1, *, urgent: bool = False) -> float:
        """Take ``n`` write tokens, waiting as needed; returns the seconds waited. ``urgent``
        requests go before every waiting normal one."""
        if n <= 0:
            return 0.0
        waited = 0.0
        if urgent:
            self._urgent_waiting += 1
        try:
            async with self._urgent_lock if urgent else self._lock:
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
                    if not urgent and self._urgent_waiting:
                        pause = need / self.rate  # an urgent request takes the next tokens
                    elif self._tokens >= need - 1e-9:  # float residue must not spin
                        self._tokens -= n  # may go below zero for n > burst: a debt repaid later
                        break
                    else:
                        pause = (need - self._tokens) / self.rate
                    await self._sleep(pause)
                    waited += pause
        finally:
            if urgent:
                self._urgent_waiting -= 1
        self.waited += waited
        return waited
