"""Revocation first, in every target: the lane a connector call belongs to, and a target's
concurrency with a slot kept for that lane.

The worker runs a round of revocation work (a leaver's disable, removals, read-back: operations
of priority below ``Priority.NORMAL``) inside :func:`revocation_lane`. The connectors read
:func:`urgent` where they wait for capacity, so a leaver's request

- takes a free slot of the target's ``throttle.concurrency`` ahead of every waiting joiner
  request, and one slot is never given to joiner traffic (:class:`Slots`), so bulk joiner
  traffic cannot occupy the whole target;
- takes write tokens ahead of waiting joiner requests (:class:`~provisioner.targets.pacer.WritePacer`);
- never waits in, or shares, a joiner round's SCIM Bulk group commit.

The lane is a context variable, so it follows the round into every task it starts (asyncio
copies the context) without changing the connector contract.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar

RESERVED_SLOTS = 1
"""Slots of each target's concurrency that joiner (normal) traffic never takes."""

_URGENT: ContextVar[bool] = ContextVar("provisioner_revocation_lane", default=False)


def urgent() -> bool:
    """True inside :func:`revocation_lane`."""
    return _URGENT.get()


@contextmanager
def revocation_lane(on: bool = True) -> Iterator[None]:
    token = _URGENT.set(on)
    try:
        yield
    finally:
        _URGENT.reset(token)


class Slots:
    """A target's concurrency (``size`` requests at once). Revocation requests may take any
    free slot and go ahead of every waiting normal request; normal requests take at most
    ``size - RESERVED_SLOTS`` (at least one), so a slot is free for revocation whenever joiner
    traffic alone is running."""

    def __init__(self, size: int, reserved: int = RESERVED_SLOTS) -> None:
        self.size = max(1, int(size))
        self.normal_limit = max(1, self.size - max(0, reserved))
        self.in_use = 0
        self.urgent_waiting = 0
        self._changed = asyncio.Condition()

    def _free_for(self, is_urgent: bool) -> bool:
        if is_urgent:
            return self.in_use < self.size
        return self.urgent_waiting == 0 and self.in_use < self.normal_limit

    @asynccontextmanager
    async def hold(self, is_urgent: bool | None = None) -> AsyncIterator[None]:
        is_urgent = urgent() if is_urgent is None else is_urgent
        async with self._changed:
            if is_urgent:
                self.urgent_waiting += 1
            try:
                await self._changed.wait_for(lambda: self._free_for(is_urgent))
            finally:
                if is_urgent:
                    self.urgent_waiting -= 1
            self.in_use += 1
        try:
            yield
        finally:
            async with self._changed:
                self.in_use -= 1
                self._changed.notify_all()
