"""Graph's identity-and-access throttling limits for one application in one tenant
(learn.microsoft.com/graph/throttling-limits#identity-and-access-service-limits).

- Writes: 3,000 requests per 150 seconds (POST, PATCH, PUT, DELETE; write cost 1 each).
- Resource units: 3,500 / 5,000 / 8,000 per 10 seconds for tenants under 50 / 50 to 500 / over
  500 users. Every request costs resource units: ``GET users`` 2, ``GET groups/{id}/members`` 3,
  ``GET users/{id}/memberOf`` 2 (the ``me/memberOf`` row applies to ``users/{id}``), any other
  path 1; ``$select`` lowers a cost by 1, ``$top`` under 20 lowers it by 1, ``$expand`` raises it
  by 1, and a cost is never below 1.

Both limits are enforced as sliding windows. ``scale`` divides the window lengths (scale=50 gives
3,000 writes per 3 s) so a benchmark keeps the shape of the limits and finishes quickly. A refused
request is answered 429 with ``Retry-After``, the whole seconds until enough capacity frees up
(at least 1), and consumes nothing.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

WRITE_LIMIT = 3_000
WRITE_WINDOW_SECONDS = 150.0
RESOURCE_UNIT_WINDOW_SECONDS = 10.0


def resource_unit_limit(tenant_size: int) -> int:
    """The resource-unit quota per 10 s for a tenant of ``tenant_size`` users (S / M / L)."""
    if tenant_size < 50:
        return 3_500
    if tenant_size <= 500:
        return 5_000
    return 8_000


def request_cost(base_cost: int, query: Mapping[str, str]) -> int:
    """The resource units of a request whose path has ``base_cost``, after query adjustments."""
    cost = base_cost
    if "$select" in query:
        cost -= 1
    top = query.get("$top")
    if top is not None and top.isdigit() and int(top) < 20:
        cost -= 1
    if "$expand" in query:
        cost += 1
    return max(cost, 1)


class SlidingWindow:
    """A weighted sliding-window counter: at most ``limit`` units within any ``window`` seconds."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._entries: deque[tuple[float, int]] = deque()
        self._used = 0

    def wait(self, cost: int, now: float) -> float:
        """Seconds until ``cost`` more units fit (0 when they fit now)."""
        self._expire(now)
        excess = self._used + cost - self.limit
        if excess <= 0:
            return 0.0
        freed = 0
        for moment, units in self._entries:
            freed += units
            if freed >= excess:
                return moment + self.window - now
        return self.window  # cost exceeds the limit itself: never admitted; say so with a window

    def add(self, cost: int, now: float) -> None:
        self._entries.append((now, cost))
        self._used += cost

    def _expire(self, now: float) -> None:
        horizon = now - self.window
        entries = self._entries
        while entries and entries[0][0] <= horizon:
            self._used -= entries.popleft()[1]


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why and for how long a request is refused."""

    retry_after: int  # whole seconds, at least 1
    reason: str  # Graph's x-ms-throttle-information value


class GraphThrottle:
    """The write and resource-unit limits of one app+tenant pair."""

    def __init__(
        self,
        *,
        scale: float = 1.0,
        tenant_size: int = 100,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if scale <= 0:
            raise ValueError("scale must be positive")
        self.writes = SlidingWindow(WRITE_LIMIT, WRITE_WINDOW_SECONDS / scale)
        self.resource_units = SlidingWindow(
            resource_unit_limit(tenant_size), RESOURCE_UNIT_WINDOW_SECONDS / scale
        )
        self._clock = clock

    def admit(self, *, cost: int, write: bool) -> Refusal | None:
        """Take capacity for one request, or refuse it without taking any."""
        now = self._clock()
        unit_wait = self.resource_units.wait(cost, now)
        write_wait = self.writes.wait(1, now) if write else 0.0
        if unit_wait or write_wait:
            reason = "WriteLimitExceeded" if write_wait >= unit_wait else "ResourceUnitLimitExceeded"
            return Refusal(max(1, math.ceil(max(unit_wait, write_wait))), reason)
        self.resource_units.add(cost, now)
        if write:
            self.writes.add(1, now)
        return None
