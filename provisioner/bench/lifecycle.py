"""``provisioner bench lifecycle``: figures for the lifecycle core, printed as tables.

1. Time-to-revoke: one leaver in 10 managed groups, from the 202 for the terminate event to a
   verified read-back, with the API, processor and worker running in-process (50 runs).
2. 1,000 leavers in 10 managed groups each: Graph HTTP calls against the minimum, and with the
   sandbox enforcing Graph's write budget (scaled), the write rate achieved as a share of it.
3. Intake: single and batched events per second through the signed HTTP API, on SQLite and
   (given a server) PostgreSQL.

Ratios, not absolute times, are what to compare across runs: this machine is noisy.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import yaml
from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select

from provisioner.bench.common import NO_BRAKES, temporary_postgres_database
from provisioner.clock import utcnow
from provisioner.demo.harness import SandboxedService
from provisioner.evidence.models import RevocationCheck
from provisioner.identities import repository as identities
from provisioner.intake.signing import signed_headers
from provisioner.migrations import upgrade
from provisioner.queue.models import Operation
from provisioner.sandbox.ports import free_port

console = Console()
GROUPS = [f"Bench Group {n:02d}" for n in range(10)]


def _bench_config(folder: Path, *, writes_per_second: float, burst: int) -> tuple[Path, Path]:
    policies, targets = folder / "policies", folder / "targets"
    policies.mkdir(parents=True, exist_ok=True)
    targets.mkdir(parents=True, exist_ok=True)
    (policies / "ten-groups.yaml").write_text(yaml.safe_dump({
        "name": "ten-groups", "birthright": True, "grants": {"entra": {"groups": GROUPS}}}))
    (targets / "entra.yaml").write_text(yaml.safe_dump({
        "kind": "entra", "name": "entra", "graph_url": "http://127.0.0.1/v1.0",
        "auth": {"method": "static_token", "token": {"env": "UNUSED"}},
        "accounts": {"domain": "bench.example"},
        "managed_groups": [{"name": g} for g in GROUPS],
        "throttle": {"writes_per_second": writes_per_second, "burst": burst, "concurrency": 4}}))
    return policies, targets


def _hire(n: int, run: str) -> dict[str, Any]:
    return {"event_id": f"{run}-hire-{n}", "type": "hire", "employee_id": f"{run}-{n}",
            "effective_at": utcnow().isoformat(),
            "attributes": {"given_name": "Bench", "family_name": f"Person{n}{run}", "department": "Bench"}}


def _terminate(n: int, run: str) -> dict[str, Any]:
    return {"event_id": f"{run}-term-{n}", "type": "terminate", "employee_id": f"{run}-{n}",
            "effective_at": utcnow().isoformat()}


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))]


# -- 1. time to revoke -------------------------------------------------------------------------
async def time_to_revoke(runs: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bench-ttr-") as tmp:
        policies, targets = _bench_config(Path(tmp), writes_per_second=1000, burst=200)
        svc = SandboxedService(Path(tmp) / "svc", policies_dir=policies, targets_dir=targets,
                               settings={"worker_poll_seconds": 0.05, "due_events_seconds": 0.05, **NO_BRAKES})
        stop = asyncio.Event()
        background = asyncio.create_task(svc.runtime.run_background(stop, reconcile=False))
        samples: list[float] = []
        try:
            for n in range(runs):
                await svc.send(_hire(n, "ttr"))
                await _wait(lambda n=n: _groups_known(svc, f"ttr-{n}") == len(GROUPS))
                resp = await svc.send(_terminate(n, "ttr"))
                t0 = time.perf_counter()
                assert resp.status_code == 202, resp.text
                await _wait(lambda n=n: _verified(svc, f"ttr-{n}"))
                samples.append(time.perf_counter() - t0)
        finally:
            stop.set()
            svc.runtime.worker.wake()
            await background
            await svc.close()
    return {"runs": runs, "p50": statistics.median(samples), "p95": _pct(samples, 95),
            "min": min(samples), "max": max(samples)}


async def _wait(predicate, timeout: float = 30.0) -> None:
    deadline = time.perf_counter() + timeout
    while not await asyncio.to_thread(predicate):
        if time.perf_counter() > deadline:
            raise TimeoutError("benchmark step did not finish")
        await asyncio.sleep(0.002)


def _groups_known(svc: SandboxedService, emp: str) -> int:
    with svc.db.transaction() as session:
        person = identities.by_employee_id(session, emp)
        return len(identities.memberships(session, person.id).get("entra", ())) if person else 0


def _verified(svc: SandboxedService, emp: str) -> bool:
    with svc.db.transaction() as session:
        person = identities.by_employee_id(session, emp)
        return person is not None and session.scalar(
            select(func.count()).select_from(RevocationCheck).where(
                RevocationCheck.identity_id == person.id, RevocationCheck.verified.is_(True))) > 0


# -- 2. 1,000 leavers: calls against the minimum, share of the write budget --------------------
async def mass_leavers(leavers: int, scale: float) -> dict[str, Any]:
    budget = 3000 / (150 / scale)  # Graph: 3,000 writes per 150 s, window divided by scale
    with tempfile.TemporaryDirectory(prefix="bench-leavers-") as tmp:
        # Pace for a sliding window of 3,000 writes: a bucket of `burst` tokens refilled at r may
        # spend burst + r * window in one window, so r = (3000 - burst) / window stays inside it.
        burst = 40
        policies, targets = _bench_config(Path(tmp), writes_per_second=(3000 - burst) / (150 / scale),
                                          burst=burst)
        svc = SandboxedService(Path(tmp) / "svc", policies_dir=policies, targets_dir=targets,
                               sandbox_options={"throttle": True, "scale": scale, "tenant_size": 1000},
                               settings={"worker_batch_size": 200, "worker_concurrency": 6, **NO_BRAKES})
        try:
            for start in range(0, leavers, 500):
                await svc.send([_hire(n, "ml") for n in range(start, min(leavers, start + 500))])
            await svc.drain(max_wait=600)
            stats = svc.sandbox.stats
            stats.reset()
            t0 = time.perf_counter()
            for start in range(0, leavers, 500):
                await svc.send([_terminate(n, "ml") for n in range(start, min(leavers, start + 500))])
            await svc.drain(max_wait=900)
            elapsed = time.perf_counter() - t0
            with svc.db.transaction() as session:
                verified = session.scalar(select(func.count(func.distinct(RevocationCheck.identity_id)))
                                          .where(RevocationCheck.verified.is_(True)))
                dead = session.scalar(select(func.count()).select_from(Operation).where(Operation.status == "dead"))
            writes_min = leavers * (len(GROUPS) + 2)
            reads_min = leavers * 2  # read-back: the account, and its group memberships
            calls_min = math.ceil(writes_min / 20) + math.ceil(reads_min / 20)
            times = stats.write_times
            span = (times[-1] - times[0]) if len(times) > 1 else float("nan")
            achieved = (len(times) - 1) / span if len(times) > 1 else float("nan")
            return {"leavers": leavers, "verified": verified, "dead": dead, "http_calls": stats.http_calls,
                    "calls_min": calls_min, "ratio": stats.http_calls / calls_min, "writes": stats.writes,
                    "writes_min": writes_min, "throttled": stats.throttled, "budget": budget,
                    "achieved": achieved, "share": achieved / budget, "elapsed": elapsed, "scale": scale}
        finally:
            await svc.close()


# -- 3. intake -----------------------------------------------------------------------------------
async def intake(database_url: str | None, events: int, concurrency: int = 16,
                 batch_size: int = 500) -> dict[str, float]:
    """Events/s accepted by a real server process (`provisioner serve --no-workers`) from
    concurrent signed clients in this process: what an HR system sending events would see."""
    with tempfile.TemporaryDirectory(prefix="bench-intake-") as tmp:
        folder = Path(tmp)
        url = database_url or f"sqlite:///{folder / 'intake.db'}"
        upgrade(url)
        policies, targets = _bench_config(folder, writes_per_second=20, burst=40)
        secret, port = uuid.uuid4().hex, free_port()
        env = {**os.environ, "PROVISIONER_DATABASE_URL": url, "PROVISIONER_POLICIES_DIR": str(policies),
               "PROVISIONER_TARGETS_DIR": str(targets), "PROVISIONER_LOG_LEVEL": "WARNING",
               "PROVISIONER_HR_SECRETS": json.dumps({"bench": secret}), "UNUSED": "x"}
        server = subprocess.Popen([sys.executable, "-m", "provisioner", "serve", "--no-workers",
                                   "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE)
        base = f"http://127.0.0.1:{port}"
        try:
            async with httpx.AsyncClient(base_url=base) as probe:
                await _wait_healthy(probe, server)
            # aiohttp as the load client: httpx's pool costs more than the server under test.
            connector = aiohttp.TCPConnector(limit=concurrency)
            async with aiohttp.ClientSession(base, connector=connector) as client:
                run = uuid.uuid4().hex[:6]

                async def post(payload: dict[str, Any]) -> None:
                    body = json.dumps(payload).encode()
                    async with client.post("/hr/events", data=body,
                                           headers=signed_headers("bench", secret, body)) as resp:
                        assert resp.status == 202, await resp.text()

                async def drive(payloads: list[dict[str, Any]], workers: int) -> float:
                    pending = list(reversed(payloads))

                    async def worker() -> None:
                        while pending:
                            await post(pending.pop())
                    t0 = time.perf_counter()
                    await asyncio.gather(*(worker() for _ in range(workers)))
                    return time.perf_counter() - t0

                await drive([_hire(n, f"w{run}") for n in range(200)], concurrency)  # warm-up
                single = events / await drive([_hire(n, f"s{run}") for n in range(events)], concurrency)
                total = events * 10
                batches = [{"events": [_hire(n, f"b{run}") for n in range(s, min(total, s + batch_size))]}
                           for s in range(0, total, batch_size)]
                batched = total / await drive(batches, 4)
            return {"single": single, "batched": batched, "events": events, "batched_events": total}
        finally:
            server.terminate()
            server.wait(timeout=30)


async def _wait_healthy(client: httpx.AsyncClient, server: subprocess.Popen) -> None:
    for _ in range(300):
        if server.poll() is not None:
            raise RuntimeError(f"server exited: {server.stderr.read().decode()[-2000:] if server.stderr else ''}")
        try:
            if (await client.get("/healthz")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.1)
    raise TimeoutError("server did not start")


# -- all -----------------------------------------------------------------------------------------
async def run_all(*, runs: int, leavers: int, scale: float, intake_events: int,
                  postgres_url: str | None) -> int:
    console.rule("provisioner bench lifecycle")
    ttr = await time_to_revoke(runs)
    t = Table(title=f"time-to-revoke, one leaver in {len(GROUPS)} groups, event accepted -> verified revoked")
    for col in ("runs", "p50 (s)", "p95 (s)", "min (s)", "max (s)", "p95 / target 2 s"):
        t.add_column(col)
    t.add_row(str(ttr["runs"]), f"{ttr['p50']:.3f}", f"{ttr['p95']:.3f}", f"{ttr['min']:.3f}",
              f"{ttr['max']:.3f}", f"{ttr['p95'] / 2:.2f}")
    console.print(t)

    ml = await mass_leavers(leavers, scale)
    t = Table("figure", "value", title=f"{ml['leavers']} leavers x {len(GROUPS)} managed groups, "
              f"sandbox enforcing Graph's write budget (windows / {scale:g})")
    for name, value in (
        ("Graph HTTP calls (writes + read-back)", str(ml["http_calls"])),
        ("minimum: ceil(writes/20) + ceil(reads/20)", str(ml["calls_min"])),
        ("calls / minimum (target <= 1.05)", f"{ml['ratio']:.3f}"),
        ("writes made / minimum writes", f"{ml['writes']} / {ml['writes_min']}"),
        ("429 answers", str(ml["throttled"])),
        ("write budget (writes/s)", f"{ml['budget']:.0f}"),
        ("achieved write rate (writes/s)", f"{ml['achieved']:.1f}"),
        ("share of budget (target >= 0.9)", f"{ml['share']:.3f}"),
        ("leavers verified revoked by read-back", str(ml["verified"])),
        ("dead-lettered operations", str(ml["dead"])),
        ("elapsed (s)", f"{ml['elapsed']:.1f}"),
    ):
        t.add_row(name, value)
    console.print(t)

    t = Table(title="HR intake: a `provisioner serve --no-workers` process, 16 signed clients (batches of 500)")
    for col in ("database", "single events/s (target 500)", "batched events/s (target 5,000)"):
        t.add_column(col)
    results = [("sqlite", await intake(None, intake_events))]
    if postgres_url:
        with temporary_postgres_database(postgres_url) as url:
            results.append(("postgresql", await intake(url, intake_events)))
    for name, r in results:
        t.add_row(name, f"{r['single']:.0f}", f"{r['batched']:.0f}")
    console.print(t)
    if not postgres_url:
        console.print("PostgreSQL intake skipped: pass --postgres-url or set PROVISIONER_BENCH_POSTGRES_URL")
    return 0
