"""An onboarding wave into Entra ID: Graph writes and HTTP calls against the minimum.

``python -m provisioner.bench.onboarding --people 2000 --groups-each 8 --scale 25`` hires
``people`` at once; each is in ``groups_each`` of ``groups`` managed groups (policies by
department, so group sizes vary). The Graph sandbox enforces Graph's write budget with its
windows divided by ``scale``; the worker paces at that budget. Counted by the sandbox itself:

- minimum writes = people (creates) + sum over groups of ceil(members / 20);
- minimum calls = ceil((minimum writes + people lookups) / 20): writes and match-before-create
  lookups packed 20 to a ``$batch``.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from provisioner.bench.common import temporary_postgres_database
from provisioner.clock import utcnow
from provisioner.demo.harness import SandboxedService
from provisioner.migrations import upgrade


def wave_config(folder: Path, *, groups: int, groups_each: int, departments: int, rate: float,
            burst: int) -> tuple[Path, Path, dict[str, list[str]]]:
    """Policies granting each department ``groups_each`` consecutive groups (so sizes vary)."""
    names = [f"Wave Group {n:03d}" for n in range(groups)]
    policies, targets = folder / "policies", folder / "targets"
    policies.mkdir(parents=True, exist_ok=True)
    targets.mkdir(parents=True, exist_ok=True)
    grants: dict[str, list[str]] = {}
    for d in range(departments):
        dept = f"Dept{d:02d}"
        grants[dept] = [names[(d * 3 + k) % groups] for k in range(groups_each)]
        (policies / f"dept{d:02d}.yaml").write_text(yaml.safe_dump({
            "name": f"dept{d:02d}", "when": {"attribute": "department", "equals": dept},
            "grants": {"entra": {"groups": grants[dept]}}}))
    (targets / "entra.yaml").write_text(yaml.safe_dump({
        "kind": "entra", "name": "entra", "graph_url": "http://127.0.0.1/v1.0",
        "auth": {"method": "static_token", "token": {"env": "UNUSED"}},
        "accounts": {"domain": "wave.example"},
        "managed_groups": [{"name": g} for g in names],
        "throttle": {"writes_per_second": rate, "burst": burst, "concurrency": 4}}))
    return policies, targets, grants


def wave_hire(n: int, departments: int) -> dict[str, Any]:
    return {"event_id": f"wave-hire-{n}", "type": "hire", "employee_id": f"W{n:06d}",
            "effective_at": utcnow().isoformat(),
            "attributes": {"given_name": "Wave", "family_name": f"Person{n}",
                           "department": f"Dept{n % departments:02d}"}}


async def wave(people: int, *, groups: int, groups_each: int, departments: int, scale: float,
               database_url: str | None) -> dict[str, Any]:
    window = 150 / scale
    burst = 40  # burst + rate * window = 3,000: the bucket never spends more than the window allows
    with tempfile.TemporaryDirectory(prefix="bench-wave-") as tmp:
        policies, targets, grants = wave_config(Path(tmp), groups=groups, groups_each=groups_each,
                                            departments=departments, rate=(3000 - burst) / window, burst=burst)
        if database_url:
            upgrade(database_url)
        svc = SandboxedService(Path(tmp) / "svc", policies_dir=policies, targets_dir=targets,
                               database_url=database_url, migrate=database_url is None,
                               sandbox_options={"throttle": True, "scale": scale, "tenant_size": 1000},
                               settings={"worker_batch_size": 200, "worker_concurrency": 4})
        try:
            stats = svc.sandbox.stats
            stats.reset()
            t0 = time.perf_counter()
            for start in range(0, people, 500):
                await svc.send([wave_hire(n, departments) for n in range(start, min(people, start + 500))])
            await svc.drain(max_wait=3600)
            elapsed = time.perf_counter() - t0
            members = Counter(g for n in range(people) for g in grants[f"Dept{n % departments:02d}"])
            held = sum(len(svc.sandbox.group_member_ids(svc.group_ids[g])) for g in members)
            writes_min = people + sum(math.ceil(m / 20) for m in members.values())
            calls_min = math.ceil((writes_min + people) / 20)
            times = stats.write_times
            rate = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else float("nan")
            return {"people": people, "memberships": sum(members.values()), "memberships_read": held,
                    "writes": stats.writes, "writes_min": writes_min, "calls": stats.http_calls,
                    "calls_min": calls_min, "reads": stats.reads, "throttled": stats.throttled,
                    "routes": dict(stats.calls_by_route), "elapsed": elapsed, "write_rate": rate,
                    "budget": 3000 / window}
        finally:
            await svc.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=2000)
    parser.add_argument("--groups", type=int, default=40)
    parser.add_argument("--groups-each", type=int, default=8)
    parser.add_argument("--departments", type=int, default=12)
    parser.add_argument("--scale", type=float, default=25.0)
    parser.add_argument("--postgres-url", default=None, help="run on a scratch database on this server")
    args = parser.parse_args()

    def run(url: str | None) -> dict[str, Any]:
        return asyncio.run(wave(args.people, groups=args.groups, groups_each=args.groups_each,
                                departments=args.departments, scale=args.scale, database_url=url))

    if args.postgres_url:
        with temporary_postgres_database(args.postgres_url) as url:
            result = run(url)
    else:
        result = run(None)
    r = result
    print(f"onboarding wave: {r['people']} people, {r['memberships']} memberships "
          f"({r['memberships_read']} held by the sandbox), scale {args.scale:g}, "
          f"{'postgresql' if args.postgres_url else 'sqlite'}")
    print(f"  writes {r['writes']} / minimum {r['writes_min']} = {r['writes'] / r['writes_min']:.3f}")
    print(f"  HTTP calls {r['calls']} / minimum {r['calls_min']} = {r['calls'] / r['calls_min']:.3f}")
    print(f"  reads {r['reads']}, 429 answers {r['throttled']}")
    print(f"  write rate {r['write_rate']:.0f}/s of a budget of {r['budget']:.0f}/s; elapsed {r['elapsed']:.1f} s")
    for route, n in sorted(r["routes"].items()):
        print(f"    {route}: {n}")


if __name__ == "__main__":
    main()
