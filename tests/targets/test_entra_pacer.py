"""The write token bucket (fake clock: no real sleeping)."""

from __future__ import annotations

import pytest

from provisioner.targets.pacer import WritePacer


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


async def test_burst_is_free_then_rate_limits() -> None:
    clock = FakeClock()
    pacer = WritePacer(20, 40, clock=clock, sleep=clock.sleep)
    assert await pacer.acquire(20) == 0
    assert await pacer.acquire(20) == 0
    waited = await pacer.acquire(20)  # bucket empty: 20 tokens at 20/s
    assert waited == pytest.approx(1.0)


async def test_sustained_rate_matches_writes_per_second() -> None:
    clock = FakeClock()
    pacer = WritePacer(20, 20, clock=clock, sleep=clock.sleep)
    for _ in range(11):
        await pacer.acquire(20)
    assert clock.now == pytest.approx(10.0)  # 220 writes: 20 free + 200 at 20/s


async def test_request_bigger_than_burst_does_not_wait_forever() -> None:
    clock = FakeClock()
    pacer = WritePacer(10, 5, clock=clock, sleep=clock.sleep)
    assert await pacer.acquire(20) == 0  # full bucket: borrows the rest
    assert await pacer.acquire(5) == pytest.approx(2.0)  # repays 15, then waits for 5


async def test_hold_after_429_delays_the_next_write() -> None:
    clock = FakeClock()
    pacer = WritePacer(20, 40, clock=clock, sleep=clock.sleep)
    pacer.hold(3.0)
    assert await pacer.acquire(1) == pytest.approx(3.0)


async def test_zero_rate_disables_pacing() -> None:
    clock = FakeClock()
    pacer = WritePacer(0, 1, clock=clock, sleep=clock.sleep)
    for _ in range(5):
        assert await pacer.acquire(20) == 0
