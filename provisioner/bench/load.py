"""HTTP load for the benchmarks that compare two servers: one client loop, or several, sending
a scenario's requests for a while, and the two servers measured in alternating rounds.

This machine is noisy (two cores shared with whatever else runs). Measuring one server for
five seconds and then the other lets a burst of outside work land on one side only and move
the ratio; :func:`interleaved` measures them in short alternating rounds (``ours, peer, peer,
ours, ...``) so outside load falls on both alike, and reports the pooled rate of each side and
the spread of the per-round ratios. Warm-up requests (a new connection, cold caches) are sent
before each round's clock starts and are not counted.
"""

from __future__ import annotations

import asyncio
import itertools
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

Client = Literal["httpx", "aiohttp"]
_WARM_UP = 3


@dataclass(frozen=True)
class Target:
    """A server under load: its base URL and bearer token."""

    base_url: str
    token: str


@dataclass(frozen=True)
class Call:
    """One request of a scenario."""

    method: str
    path: str
    params: dict[str, str] | None = None
    body: dict[str, Any] | None = None


Scenario = Callable[[int], Call]
"""The i-th request of a scenario (negative i: a warm-up request)."""


@dataclass
class Sample:
    """What one or more rounds of load measured on one server."""

    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    seconds: float = 0.0

    def add(self, other: Sample) -> None:
        self.latencies.extend(other.latencies)
        self.errors += other.errors
        self.seconds += other.seconds

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.latencies)
        return {
            "requests": len(ordered),
            "errors": self.errors,
            "rps": self.rps,
            "p50_ms": statistics.median(ordered) * 1000 if ordered else 0.0,
            "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000
            if ordered
            else 0.0,
        }


def interleaved(
    ours: tuple[Target, Scenario],
    peer: tuple[Target, Scenario],
    *,
    seconds: float,
    rounds: int,
    concurrency: int,
    client: Client,
) -> tuple[Sample, Sample, list[float]]:
    """Load both servers for ``seconds`` each, split into ``rounds`` alternating rounds.

    Returns each side's pooled sample and the ratio (ours over peer, requests per second) of
    every round. Rounds alternate which side goes first, so neither is always measured just
    after the other's burst of work.
    """
    rounds = max(1, rounds)
    pooled = [Sample(), Sample()]
    counters = [itertools.count(), itertools.count()]  # requests are numbered on across rounds
    ratios = []
    for index in range(rounds):
        this_round = [Sample(), Sample()]
        for which in (0, 1) if index % 2 == 0 else (1, 0):
            target, scenario = (ours, peer)[which]
            this_round[which] = load(target, scenario, seconds / rounds, concurrency, client, counters[which])
            pooled[which].add(this_round[which])
        ratios.append(this_round[0].rps / this_round[1].rps if this_round[1].rps else float("inf"))
    return pooled[0], pooled[1], ratios


def load(
    target: Target,
    scenario: Scenario,
    seconds: float,
    concurrency: int,
    client: Client,
    counter: Iterator[int] | None = None,
) -> Sample:
    """``concurrency`` client loops sending ``scenario``'s requests for ``seconds``;
    ``counter`` numbers the requests (pass the same one to number on across rounds)."""
    counter = counter if counter is not None else itertools.count()
    if client == "aiohttp":
        return asyncio.run(_aiohttp_load(target, scenario, seconds, concurrency, counter))
    return _httpx_load(target, scenario, seconds, concurrency, counter)


def auth_headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _httpx_load(
    target: Target, scenario: Scenario, seconds: float, concurrency: int, counter: Iterator[int]
) -> Sample:
    """One thread per client, each with its own httpx client (one keep-alive connection)."""
    sample = Sample()
    lock = threading.Lock()
    warm = threading.Barrier(concurrency + 1)
    start = threading.Event()
    deadline = 0.0

    def send(http: httpx.Client, call: Call) -> httpx.Response:
        return http.request(call.method, call.path, params=call.params, json=call.body)

    def client_loop() -> None:
        mine: list[float] = []
        failed = 0
        headers = auth_headers(target.token)
        with httpx.Client(base_url=target.base_url, headers=headers, timeout=120) as http:
            for _ in range(_WARM_UP):
                send(http, scenario(-1 - next(counter)))
            warm.wait()
            start.wait()
            while time.perf_counter() < deadline:
                call = scenario(next(counter))
                t0 = time.perf_counter()
                response = send(http, call)
                mine.append(time.perf_counter() - t0)
                failed += response.status_code >= 400
        with lock:
            sample.latencies.extend(mine)
            sample.errors += failed

    threads = [threading.Thread(target=client_loop) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    warm.wait()
    started = time.perf_counter()
    deadline = started + seconds
    start.set()
    for thread in threads:
        thread.join()
    sample.seconds = time.perf_counter() - started
    return sample


async def _aiohttp_load(
    target: Target, scenario: Scenario, seconds: float, concurrency: int, counter: Iterator[int]
) -> Sample:
    """``concurrency`` tasks sharing one aiohttp session: a lighter client than httpx, so
    more of each latency is the server's."""
    import aiohttp

    sample = Sample()
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(
        connector=connector, headers=auth_headers(target.token), timeout=timeout
    ) as session:

        async def send(call: Call) -> int:
            async with session.request(
                call.method, target.base_url + call.path, params=call.params, json=call.body
            ) as response:
                await response.read()
                return response.status

        async def warm_up() -> None:
            for _ in range(_WARM_UP):
                await send(scenario(-1 - next(counter)))

        async def worker(deadline: float) -> None:
            while time.perf_counter() < deadline:
                call = scenario(next(counter))
                t0 = time.perf_counter()
                status = await send(call)
                sample.latencies.append(time.perf_counter() - t0)
                sample.errors += status >= 400

        await asyncio.gather(*(warm_up() for _ in range(concurrency)))
        started = time.perf_counter()
        await asyncio.gather(*(worker(started + seconds) for _ in range(concurrency)))
        sample.seconds = time.perf_counter() - started
    return sample
