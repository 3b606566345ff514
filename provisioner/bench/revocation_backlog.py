"""``provisioner bench revocation-backlog``: immediate terminates while a joiner backlog flows.

L people are hired and fully provisioned into Entra ID (the Graph sandbox) and a SCIM app
(scim2-server in-process behind the fault-injecting transport: every request takes
``--scim-delay`` seconds, a Bulk request ``--scim-op-cost`` more per operation, as a real app
works through a Bulk request). Then J joiners are hired through the signed HTTP intake and
planned (the queue holds the backlog), and while their operations flow through the real worker
loops (``run_background``, the production settings), the L people are terminated with
``"immediate": true``, one every ``--interval`` seconds.

For each leaver it measures the time from the terminate's ``202`` to the verified read-back in
EVERY target (the first ``revocation_checks`` row with ``verified`` for that target written after
the 202), and how many joiner operations were still open (waiting, pending or running) at that
moment: revocation that waits for the backlog shows up as a long time and few open operations.
At the end it reads the targets themselves (not the service's belief) for every leaver.

Ratios, not absolute times, are what to compare across runs: this machine is noisy.
"""

from __future__ import annotations

import asyncio
import math
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import yaml
from rich.console import Console
from rich.table import Table
from sqlalchemy import and_, func, select

from provisioner.bench.common import temporary_postgres_database
from provisioner.clock import utcnow
from provisioner.demo.harness import SandboxedService
from provisioner.evidence.models import RevocationCheck
from provisioner.identities import repository as identities
from provisioner.queue.models import Operation, OpStatus, Priority
from provisioner.queue.repository import OPEN
from provisioner.sandbox.scim.faults import FaultTransport

SCIM = "app"
ENTRA = "entra"
ENTRA_GROUPS = ["Bench All", "Bench Team"]
SCIM_GROUPS = ["App All", "App Team"]
INTAKE_BATCH = 500


def write_config(folder: Path, *, entra_writes_per_second: float) -> tuple[Path, Path]:
    """Entra ID and one SCIM app, and a birthright policy granting two groups in each."""
    policies, targets = folder / "policies", folder / "targets"
    policies.mkdir(parents=True, exist_ok=True)
    targets.mkdir(parents=True, exist_ok=True)
    (policies / "birthright.yaml").write_text(yaml.safe_dump({
        "name": "birthright", "birthright": True,
        "grants": {ENTRA: {"groups": ENTRA_GROUPS}, SCIM: {"groups": SCIM_GROUPS}}}))
    (targets / "entra.yaml").write_text(yaml.safe_dump({
        "kind": "entra", "name": ENTRA, "graph_url": "http://127.0.0.1/v1.0",
        "auth": {"method": "static_token", "token": {"env": "UNUSED"}},
        "accounts": {"domain": "bench.example"},
        "managed_groups": [{"name": g} for g in ENTRA_GROUPS],
        "throttle": {"writes_per_second": entra_writes_per_second, "burst": 40, "concurrency": 4}}))
    (targets / f"{SCIM}.yaml").write_text(yaml.safe_dump({
        "kind": "scim", "name": SCIM, "base_url": "http://127.0.0.1:9/v2",  # the harness points it in-process
        "auth": {"method": "bearer", "token": {"env": "UNUSED"}},
        "managed_groups": [{"name": g} for g in SCIM_GROUPS], "create_missing_groups": True,
        "deprovision": {"mode": "disable"}}))
    return policies, targets


def _hire(emp: str, n: int) -> dict[str, Any]:
    return {"event_id": f"{emp}-hire", "type": "hire", "employee_id": emp, "effective_at": utcnow().isoformat(),
            "attributes": {"given_name": "Bench", "family_name": f"{emp.replace('-', '')}x{n}",
                           "department": "Bench"}}


def _terminate(emp: str) -> dict[str, Any]:
    return {"event_id": f"{emp}-terminate", "type": "terminate", "employee_id": emp,
            "effective_at": utcnow().isoformat(), "immediate": True}


@dataclass
class Leaver:
    employee_id: str
    identity_id: str = ""
    sent_at: datetime | None = None  # wall clock right after the 202
    verified: dict[str, float] = field(default_factory=dict)  # target -> seconds after the 202
    planned: float | None = None  # seconds after the 202 until its revoking operations were queued
    open_joiner_ops: int | None = None  # joiner operations still open when every target was verified
    in_targets: dict[str, bool] = field(default_factory=dict)  # read from the targets at the end

    @property
    def seconds(self) -> float | None:
        return max(self.verified.values()) if len(self.verified) == 2 else None


@dataclass
class Result:
    database: str
    joiners: int
    joiner_ops: int = 0
    leavers: list[Leaver] = field(default_factory=list)
    open_at_first_terminate: int = 0
    open_at_end: int = 0
    backlog_seconds: float = 0.0  # first joiner accepted -> last leaver verified (or gave up)
    planning_seconds: float = 0.0  # the processor planning the joiners' hires
    hires_in_processor: bool = False  # the hires were still being applied when the terminates came
    scim_delay: float = 0.0
    scim_op_cost: float = 0.0


def _open_joiner_ops(svc: SandboxedService, after: int) -> tuple[int, int]:
    """Joiner (normal-priority) operations after operation ``after`` still open, and all of them."""
    with svc.db.read() as session:
        normal = and_(Operation.priority >= Priority.NORMAL, Operation.id > after)
        open_ = session.scalar(select(func.count()).select_from(Operation)
                               .where(normal, Operation.status.in_(OPEN)))
        total = session.scalar(select(func.count()).select_from(Operation).where(normal))
    return int(open_ or 0), int(total or 0)


def _verified_checks(svc: SandboxedService, identity_ids: list[str]
                     ) -> tuple[list[tuple[str, str, datetime]], dict[str, datetime]]:
    """Verified read-backs of these people, and when each one's first leaver operation was queued."""
    with svc.db.read() as session:
        checks = list(session.execute(select(RevocationCheck.identity_id, RevocationCheck.target,
                                             RevocationCheck.checked_at)
                                      .where(RevocationCheck.identity_id.in_(identity_ids),
                                             RevocationCheck.verified.is_(True))).tuples())
        queued = dict(session.execute(select(Operation.identity_id, func.min(Operation.created_at))
                                      .where(Operation.identity_id.in_(identity_ids),
                                             Operation.priority < Priority.NORMAL)
                                      .group_by(Operation.identity_id)).tuples().all())
    return checks, queued


async def _read_targets(svc: SandboxedService, leaver: Leaver) -> dict[str, bool]:
    """Revoked in each target, read from the target itself: disabled and in no managed group."""
    with svc.db.read() as session:
        accounts = {t: identities.account(session, leaver.identity_id, t) for t in (ENTRA, SCIM)}
    out: dict[str, bool] = {}
    entra = accounts[ENTRA]
    user = svc.sandbox.user(entra.remote_id) if entra else None
    out[ENTRA] = bool(user) and user.get("accountEnabled") is False and not any(
        entra.remote_id in svc.sandbox.group_member_ids(svc.group_ids[g]) for g in ENTRA_GROUPS)
    server = svc.scim[SCIM]
    [scim_user] = await server.user_by_external_id(leaver.employee_id)
    held = [scim_user["id"] in await server.group_members(g) for g in SCIM_GROUPS]
    out[SCIM] = scim_user.get("active") is False and not any(held)
    return out


async def run_once(*, joiners: int, leavers: int, database_url: str | None = None, database: str = "sqlite",
                   interval: float = 1.0, scim_delay: float = 0.05, scim_op_cost: float = 0.03,
                   entra_writes_per_second: float = 100.0, timeout: float = 600.0,
                   hires_in_processor: bool = False,
                   settings: dict[str, Any] | None = None, console: Console | None = None) -> Result:
    console = console or Console()
    result = Result(database=database, joiners=joiners, scim_delay=scim_delay, scim_op_cost=scim_op_cost)
    run = f"r{time.time_ns() % 10**8:08d}"
    with tempfile.TemporaryDirectory(prefix="bench-revocation-") as tmp:
        policies, targets = write_config(Path(tmp), entra_writes_per_second=entra_writes_per_second)
        faults: dict[str, FaultTransport] = {}

        def wrap(name: str, transport: httpx.AsyncBaseTransport) -> httpx.AsyncBaseTransport:
            if name != SCIM:
                return transport
            faults[name] = FaultTransport(transport)
            return faults[name]

        svc = SandboxedService(Path(tmp) / "svc", database_url=database_url, policies_dir=policies,
                               targets_dir=targets, settings=settings or {}, wrap_transport=wrap)
        stop = asyncio.Event()
        background: asyncio.Task[None] | None = None
        try:
            # 1. The people who will leave, fully provisioned before the backlog arrives.
            people = [Leaver(f"{run}-L{n:03d}") for n in range(leavers)]
            reply = await svc.send([_hire(p.employee_id, n) for n, p in enumerate(people)])
            assert reply.status_code == 202, reply.text
            await svc.drain(max_wait=300)
            with svc.db.read() as session:
                for p in people:
                    person = identities.by_employee_id(session, p.employee_id)
                    assert person is not None and identities.account(session, person.id, SCIM) is not None, \
                        f"{p.employee_id} was not provisioned into {SCIM}"
                    p.identity_id = person.id
            faults[SCIM].cost(per_request=scim_delay, per_operation=scim_op_cost)  # from now on the app is slow
            with svc.db.read() as session:
                after = int(session.scalar(select(func.max(Operation.id))) or 0)

            # 2. The joiner backlog, planned into the queue, flowing through the production worker loops.
            started = time.perf_counter()
            for start in range(0, joiners, INTAKE_BATCH):
                batch = [_hire(f"{run}-J{n:05d}", n) for n in range(start, min(joiners, start + INTAKE_BATCH))]
                reply = await svc.send(batch)
                assert reply.status_code == 202, reply.text
            planning = time.perf_counter()
            if not hires_in_processor:
                # Otherwise the processor is still applying the hires when the terminates arrive.
                await svc.runtime.process_events()
            result.planning_seconds = time.perf_counter() - planning
            result.hires_in_processor = hires_in_processor
            background = asyncio.create_task(svc.runtime.run_background(stop, reconcile=False))
            await _wait(lambda: _scim_joiner_work_started(svc, after), 120)

            # 3. Immediate terminates, one every `interval` seconds, while the backlog flows.
            result.open_at_first_terminate, result.joiner_ops = await asyncio.to_thread(_open_joiner_ops, svc, after)
            watcher = asyncio.create_task(_watch(svc, people, timeout, after))
            for p in people:
                reply = await svc.send(_terminate(p.employee_id))
                p.sent_at = utcnow()
                assert reply.status_code == 202, reply.text
                await asyncio.sleep(interval)
            await watcher
            result.backlog_seconds = time.perf_counter() - started
            result.open_at_end, result.joiner_ops = await asyncio.to_thread(_open_joiner_ops, svc, after)
            for p in people:
                p.in_targets = await _read_targets(svc, p)
            result.leavers = people
            return result
        finally:
            stop.set()
            svc.runtime.worker.wake()
            if background is not None:
                await background
            await svc.close()


def _scim_joiner_work_started(svc: SandboxedService, after: int) -> bool:
    with svc.db.read() as session:
        return (session.scalar(select(func.count()).select_from(Operation).where(
            Operation.target == SCIM, Operation.priority >= Priority.NORMAL, Operation.id > after,
            Operation.status.in_((OpStatus.RUNNING, OpStatus.SUCCEEDED)))) or 0) > 0


async def _wait(predicate, timeout: float) -> None:
    deadline = time.perf_counter() + timeout
    while not await asyncio.to_thread(predicate):
        if time.perf_counter() > deadline:
            raise TimeoutError("the joiner backlog did not start flowing into the SCIM app")
        await asyncio.sleep(0.05)


async def _watch(svc: SandboxedService, people: list[Leaver], timeout: float, after: int) -> None:
    """Until every leaver is verified in both targets (or ``timeout`` after its 202)."""
    while True:
        sent = [p for p in people if p.sent_at is not None and p.seconds is None]
        if not sent and all(p.sent_at is not None for p in people):
            return
        checks, queued = (await asyncio.to_thread(_verified_checks, svc, [p.identity_id for p in sent])
                          if sent else ([], {}))
        done_now = []
        for p in sent:
            if p.planned is None and p.identity_id in queued and queued[p.identity_id] >= p.sent_at:
                p.planned = (queued[p.identity_id] - p.sent_at).total_seconds()
            for identity_id, target, checked_at in checks:
                if identity_id == p.identity_id and checked_at >= p.sent_at and target not in p.verified:
                    p.verified[target] = (checked_at - p.sent_at).total_seconds()
            if p.seconds is not None:
                done_now.append(p)
            elif (utcnow() - p.sent_at).total_seconds() > timeout:
                p.verified.setdefault(ENTRA, math.inf)
                p.verified.setdefault(SCIM, math.inf)
                done_now.append(p)
        if done_now:
            open_, _ = await asyncio.to_thread(_open_joiner_ops, svc, after)
            for p in done_now:
                p.open_joiner_ops = open_
        await asyncio.sleep(0.05)


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))]


def _fmt(seconds: float) -> str:
    return "not verified" if math.isinf(seconds) else f"{seconds:.2f}"


def tables(results: list[Result]) -> list[Table]:
    out: list[Table] = []
    first = results[0]
    summary = Table(title=f"immediate terminate -> verified revocation in every target, "
                          f"{first.joiners:,} joiners flowing into Entra ID and a SCIM app "
                          f"(each SCIM request +{first.scim_delay * 1000:.0f} ms, "
                          f"+{first.scim_op_cost * 1000:.0f} ms per Bulk operation)")
    summary.add_column("figure")
    for r in results:
        summary.add_column(r.database + (" (hires still in the processor)" if r.hires_in_processor else ""),
                           justify="right")

    def row(name: str, fn) -> None:
        summary.add_row(name, *(fn(r) for r in results))

    def values(r: Result, target: str | None) -> list[float]:
        return [(p.seconds if target is None else p.verified.get(target, math.inf)) or math.inf for p in r.leavers]

    row("leavers", lambda r: str(len(r.leavers)))
    for label, target in (("every target", None), ("Entra ID", ENTRA), ("SCIM app", SCIM)):
        row(f"202 -> verified in {label}: p50 / p95 (s)",
            lambda r, t=target: f"{_fmt(statistics.median(values(r, t)))} / {_fmt(_pct(values(r, t), 95))}")
    row("  max (s)", lambda r: _fmt(max(values(r, None))))
    row("202 -> revoking operations queued (the processor): p50 / max (s)",
        lambda r: (f"{_fmt(statistics.median(p.planned if p.planned is not None else math.inf for p in r.leavers))}"
                   f" / {_fmt(max(p.planned if p.planned is not None else math.inf for p in r.leavers))}"))
    row("planning the joiners' hires (the processor, before the workers start) (s)",
        lambda r: f"{r.planning_seconds:.1f}")
    row("joiner operations (all / open at the first terminate)",
        lambda r: f"{r.joiner_ops:,} / {r.open_at_first_terminate:,}")
    row("joiner operations open when each leaver was verified: min / median",
        lambda r: (f"{min(p.open_joiner_ops or 0 for p in r.leavers):,} / "
                   f"{statistics.median(p.open_joiner_ops or 0 for p in r.leavers):,.0f}"))
    row("joiner operations open at the end", lambda r: f"{r.open_at_end:,}")
    row("leavers revoked, read from Entra ID / the SCIM app",
        lambda r: (f"{sum(p.in_targets.get(ENTRA, False) for p in r.leavers)} / "
                   f"{sum(p.in_targets.get(SCIM, False) for p in r.leavers)}"))
    out.append(summary)
    for r in results:
        detail = Table(title=f"per leaver ({r.database})")
        for col in ("leaver", "queued (s)", "Entra ID (s)", "SCIM app (s)", "every target (s)",
                    "joiner ops open then"):
            detail.add_column(col, justify="right")
        for p in r.leavers:
            detail.add_row(p.employee_id, _fmt(p.planned if p.planned is not None else math.inf),
                           _fmt(p.verified.get(ENTRA, math.inf)),
                           _fmt(p.verified.get(SCIM, math.inf)), _fmt(p.seconds or math.inf),
                           f"{p.open_joiner_ops or 0:,} of {r.joiner_ops:,}")
        out.append(detail)
    return out


async def run_all(*, joiners: int = 2000, leavers: int = 10, postgres_url: str | None = None,
                  interval: float = 1.0, scim_delay: float = 0.05, scim_op_cost: float = 0.03,
                  entra_writes_per_second: float = 100.0, hires_in_processor: bool = False,
                  console: Console | None = None) -> list[Result]:
    console = console or Console()
    console.rule("provisioner bench revocation-backlog")
    options = {"joiners": joiners, "leavers": leavers, "interval": interval, "scim_delay": scim_delay,
               "scim_op_cost": scim_op_cost, "hires_in_processor": hires_in_processor,
               "entra_writes_per_second": entra_writes_per_second, "console": console}
    results = [await run_once(**options)]
    if postgres_url:
        with temporary_postgres_database(postgres_url) as url:
            results.append(await run_once(database_url=url, database="postgresql", **options))
    for t in tables(results):
        console.print(t)
    if not postgres_url:
        console.print("PostgreSQL skipped: pass --postgres-url or set PROVISIONER_BENCH_POSTGRES_URL")
    return results
