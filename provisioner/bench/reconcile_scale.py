"""Reconciliation at company size: wall time of a full run and of runs that read only the
changes (Graph delta queries), with no drift and with drift made behind the service's back.

:func:`time_reconcile` takes a service whose database and Graph tenant are already populated
(for example by the initial-load benchmark) and a Graph client to make the drift with. Run
alone (``python -m provisioner.bench.reconcile_scale --people 2000``) it populates an in-process
service first, each person in 8 Entra groups out of 62 (2 for everyone, 6 of their department's,
10 departments): ``--seed pipeline`` hires them through the real service (HR events, planner,
worker, msgraph-sdk connector against the Graph sandbox); ``--seed bulk`` (the default, for
large N) writes the same end state straight into the database and the sandbox.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import resource
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from provisioner.clock import utcnow
from provisioner.identities import repository as identities
from provisioner.reconcile import repository as reconcile_records
from provisioner.reconcile.service import ReconcileReport, reconcile
from provisioner.runtime import Runtime

DEPARTMENTS = 10
DEPARTMENT_GROUPS = 6  # per department; with the 2 everyone has: 8 groups each
EVERYONE = ["All Staff", "Employees"]


@dataclass
class Run:
    seconds: float
    drift: int
    errors: int
    graph_calls: int


@dataclass
class ReconcileFigures:
    people: int
    memberships: int
    groups: int
    full: Run
    incremental_clean: Run
    drift_made: int  # changes made behind the service's back before the last run
    incremental_drift: Run
    max_rss_mb: float


async def time_reconcile(runtime: Runtime, graph: httpx.AsyncClient, *, target: str = "entra",
                         drift: float = 0.01, seed: int = 0) -> ReconcileFigures:
    """Time ``reconcile --full``, then an incremental run with nothing changed, then (after
    ``drift`` of the people each got one membership added or removed directly through ``graph``,
    a client on the Graph v1.0 root with its credentials) an incremental run. Report only (no fix)."""
    with runtime.db.read() as session:
        known = reconcile_records.known(session, target)
        group_ids = identities.target_groups(session, target)
    full = await _timed(runtime, target, full=True)
    clean = await _timed(runtime, target)
    made = await _make_drift(graph, known, group_ids, drift, random.Random(seed))
    changed = await _timed(runtime, target)
    memberships = sum(len(m) for m in known.members.values())
    return ReconcileFigures(len(known.accounts), memberships, len(known.members), full, clean, made, changed,
                            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


async def _timed(runtime: Runtime, target: str, *, full: bool = False) -> Run:
    recorder = getattr(runtime.connectors[target], "recorder", None)
    before = recorder.calls if recorder is not None else 0
    started = time.perf_counter()
    report: ReconcileReport = await reconcile(runtime.db, runtime.ctx, {target: runtime.connectors[target]},
                                              fix=False, full=full)
    seconds = time.perf_counter() - started
    calls = (recorder.calls - before) if recorder is not None else -1
    return Run(round(seconds, 3), len(report.drift), len(report.errors), calls)


async def _make_drift(graph: httpx.AsyncClient, known, group_ids: dict[str, str], fraction: float,
                      rng: random.Random) -> int:
    """One membership added (a group the person is not in) or removed, for ``fraction`` of the people."""
    people = sorted(known.remote_ids.items())
    chosen = rng.sample(people, max(1, round(len(people) * fraction))) if people else []
    groups_of: dict[str, set[str]] = {}
    for group, members in known.members.items():
        for identity_id in members:
            groups_of.setdefault(identity_id, set()).add(group)
    managed = sorted(g for g in group_ids if g in known.members)
    calls = []
    for n, (identity_id, remote_id) in enumerate(chosen):
        has = sorted(groups_of.get(identity_id, set()))
        lacks = [g for g in managed if g not in groups_of.get(identity_id, set())]
        if n % 2 == 0 and lacks:
            gid = group_ids[rng.choice(lacks)]
            calls.append(("POST", f"/groups/{gid}/members/$ref",
                          {"@odata.id": f"{graph.base_url}/directoryObjects/{remote_id}"}))
        elif has:
            calls.append(("DELETE", f"/groups/{group_ids[rng.choice(has)]}/members/{remote_id}/$ref", None))
    limit = asyncio.Semaphore(8)

    async def send(method: str, path: str, body: Any) -> None:
        async with limit:
            resp = await graph.request(method, path, json=body)
            resp.raise_for_status()

    await asyncio.gather(*(send(*c) for c in calls))
    return len(calls)


# ---- standalone: populate an in-process service, then time --------------------------------------

def _config(folder: Path) -> tuple[Path, Path]:
    policies, targets = folder / "policies", folder / "targets"
    policies.mkdir(parents=True, exist_ok=True)
    targets.mkdir(parents=True, exist_ok=True)
    groups = list(EVERYONE)
    (policies / "everyone.yaml").write_text(yaml.safe_dump({
        "name": "everyone", "birthright": True, "grants": {"entra": {"groups": EVERYONE}}}))
    for d in range(DEPARTMENTS):
        mine = [f"D{d} Group {k}" for k in range(DEPARTMENT_GROUPS)]
        groups += mine
        (policies / f"dept-{d}.yaml").write_text(yaml.safe_dump({
            "name": f"dept-{d}", "when": {"attribute": "department", "equals": f"Dept {d}"},
            "grants": {"entra": {"groups": mine}}}))
    (targets / "entra.yaml").write_text(yaml.safe_dump({
        "kind": "entra", "name": "entra", "graph_url": "http://127.0.0.1/v1.0",
        "auth": {"method": "static_token", "token": {"env": "UNUSED"}},
        "accounts": {"domain": "bench.example"},
        "managed_groups": [{"name": g} for g in groups],
        "throttle": {"writes_per_second": 100_000, "burst": 100_000, "concurrency": 8}}))
    return policies, targets


def _hire(n: int) -> dict[str, Any]:
    return {"event_id": f"rs-hire-{n}", "type": "hire", "employee_id": f"RS{n:06d}",
            "effective_at": utcnow().isoformat(),
            "attributes": {"given_name": "Recon", "family_name": f"Person{n}", "department": f"Dept {n % DEPARTMENTS}"}}


def _seed_bulk(svc: Any, people: int) -> None:
    """N people as the pipeline would leave them, written straight into the database and the
    Graph sandbox (the pipeline takes minutes per thousand on a shared machine): each person's
    account and the groups the bench policies give them, in both."""
    from provisioner.db import insert_rows
    from provisioner.identities.lifecycle import State
    from provisioner.identities.models import Identity, TargetAccount, TargetMembership

    now = utcnow()
    group_ids = svc.group_ids
    rows: dict[Any, list[dict[str, Any]]] = {Identity: [], TargetAccount: [], TargetMembership: []}
    members: dict[str, list[str]] = {}
    for n in range(people):
        hire = _hire(n)
        attrs = hire["attributes"]
        login = f"recon.person{n}@bench.example"
        remote_id = svc.sandbox.seed_user(login, display_name=f"Recon Person{n}", employee_id=hire["employee_id"])
        identity_id = str(uuid.UUID(int=n + 1))
        rows[Identity].append({
            "id": identity_id, "source": "hr", "employee_id": hire["employee_id"], "state": State.ACTIVE.value,
            "given_name": attrs["given_name"], "family_name": attrs["family_name"],
            "display_name": f"Recon Person{n}", "department": attrs["department"], "extra": {}, "active": True,
            "version": 1, "created_at": now, "updated_at": now})
        rows[TargetAccount].append({
            "identity_id": identity_id, "target": "entra", "remote_id": remote_id, "login": login, "enabled": True,
            "linked": False, "synced": {}, "created_at": now, "updated_at": now})
        for group in EVERYONE + [f"D{n % DEPARTMENTS} Group {k}" for k in range(DEPARTMENT_GROUPS)]:
            members.setdefault(group, []).append(remote_id)
            rows[TargetMembership].append({"identity_id": identity_id, "target": "entra", "group_key": group,
                                           "group_remote_id": group_ids[group], "created_at": now})
    for group, ids in members.items():
        for remote_id in ids:
            svc.sandbox.add_member_directly(group_ids[group], remote_id)
    with svc.db.transaction() as session:
        for model, batch in rows.items():
            insert_rows(session, model, batch)
        for group, gid in group_ids.items():
            identities.save_target_group(session, "entra", group, gid, now)


async def standalone(people: int, database_url: str | None, drift: float, work: Path, seed: str) -> dict[str, Any]:
    from provisioner.bench.common import NO_BRAKES
    from provisioner.demo.harness import SandboxedService

    policies, targets = _config(work / "config")
    svc = SandboxedService(work / "svc", database_url=database_url, policies_dir=policies, targets_dir=targets,
                           sandbox_options={"page_size": 200}, settings=dict(NO_BRAKES))
    try:
        started = time.perf_counter()
        if seed == "bulk":
            _seed_bulk(svc, people)
        else:
            for start in range(0, people, 500):
                resp = await svc.send([_hire(n) for n in range(start, min(people, start + 500))])
                resp.raise_for_status()
            await svc.drain(max_wait=3600)
        populated = time.perf_counter() - started
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=svc.sandbox.app),
                                     base_url="http://127.0.0.1/v1.0",
                                     headers={"Authorization": f"Bearer {svc.sandbox_token}"}) as graph:
            figures = await time_reconcile(svc.runtime, graph, drift=drift)
        return {"engine": svc.db.dialect, "seed": seed, "populate_seconds": round(populated, 1), **asdict(figures)}
    finally:
        await svc.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=2000)
    parser.add_argument("--drift", type=float, default=0.01)
    parser.add_argument("--postgres", help="a PostgreSQL server URL: a temporary database on it (else SQLite)")
    parser.add_argument("--seed", choices=["bulk", "pipeline"], default="bulk",
                        help="people written straight in (bulk) or hired through the service (pipeline)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="reconcile-scale-") as tmp:
        if args.postgres:
            from provisioner.bench.common import temporary_postgres_database

            with temporary_postgres_database(args.postgres) as url:
                out = asyncio.run(standalone(args.people, url, args.drift, Path(tmp), args.seed))
        else:
            out = asyncio.run(standalone(args.people, None, args.drift, Path(tmp), args.seed))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
