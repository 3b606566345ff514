"""The revocation lane: a target's concurrency keeps a slot for revocation requests, and they
take slots and write tokens ahead of waiting joiner (normal) requests."""

from __future__ import annotations

import asyncio

import pytest

from provisioner.targets import lanes
from provisioner.targets.pacer import WritePacer
from tests.targets.test_entra_pacer import FakeClock


async def test_joiner_traffic_never_takes_the_reserved_slot_and_revocation_gets_it() -> None:
    slots = lanes.Slots(4)
    release = asyncio.Event()
    order: list[str] = []

    async def request(name: str, urgent: bool) -> None:
        with lanes.revocation_lane(urgent):
            async with slots.hold():
                order.append(name)
                await release.wait()

    joiners = [asyncio.create_task(request(f"joiner{n}", False)) for n in range(6)]
    await asyncio.sleep(0.01)
    assert slots.in_use == 3 and len(order) == 3  # three joiners run, three wait; one slot kept
    leaver = asyncio.create_task(request("leaver", True))
    await asyncio.sleep(0.01)
    assert order[-1] == "leaver" and slots.in_use == 4  # at once, in the reserved slot
    release.set()
    await asyncio.gather(*joiners, leaver)
    assert slots.in_use == 0


async def test_a_waiting_revocation_request_goes_before_waiting_joiner_requests() -> None:
    slots = lanes.Slots(1)  # nothing to reserve: revocation still goes first among the waiting
    gates = {name: asyncio.Event() for name in ("j1", "j2", "leaver")}
    order: list[str] = []

    async def request(name: str, urgent: bool) -> None:
        async with slots.hold(urgent):
            order.append(name)
            await gates[name].wait()

    first = asyncio.create_task(request("j1", False))
    await asyncio.sleep(0.01)
    second = asyncio.create_task(request("j2", False))
    leaver = asyncio.create_task(request("leaver", True))
    await asyncio.sleep(0.01)
    for name in ("j1", "leaver", "j2"):
        gates[name].set()
        await asyncio.sleep(0.01)
    await asyncio.gather(first, second, leaver)
    assert order == ["j1", "leaver", "j2"]


class YieldingClock(FakeClock):
    """A fake clock whose sleep lets other tasks run (two writers share it)."""

    async def sleep(self, seconds: float) -> None:
        await super().sleep(seconds)
        await asyncio.sleep(0)


async def test_urgent_writes_take_tokens_before_waiting_normal_writes() -> None:
    clock = YieldingClock()
    pacer = WritePacer(10, 10, clock=clock, sleep=clock.sleep)
    await pacer.acquire(10)  # the bucket is empty
    done: list[tuple[str, float]] = []

    async def write(name: str, n: int, urgent: bool) -> None:
        await pacer.acquire(n, urgent=urgent)
        done.append((name, clock.now))

    joiner = asyncio.create_task(write("joiner", 10, False))  # starts first, waits for ten tokens
    leaver = asyncio.create_task(write("leaver", 2, True))  # arrives while the joiner waits
    await asyncio.gather(joiner, leaver)
    assert [name for name, _ in done] == ["leaver", "joiner"]
    assert done[0][1] == pytest.approx(1.0)  # the joiner was waiting for ten; the leaver took two first
    assert done[1][1] >= 1.2 - 1e-9  # then the joiner's ten: the rate holds
