"""``provisioner bench scale --people N``: every figure of issue 11 ("Company scale"), measured in
one run, with its target and the ratio.

Everything under test runs as real processes on loopback ports, as in production: the Graph
sandbox (``provisioner sandbox graph --scale 25``: 3,000 writes per 6 s, i.e. 500 writes/s), one
``provisioner serve`` (API, processor, worker; ``provisioner worker`` processes beside it for
figure 8), and the commands an operator runs (``import``, ``policy reload``, ``reconcile``). The
database is SQLite in a temporary folder, or a scratch database on ``--postgres-url``.

The company (``scale_people``): N people as an HR extract (CSV), about ``--groups-per-person``
Entra groups each from one policy file per group, skewed sizes. What must be in the tenant is
known from the policies; the read-back is the sandbox's own store (``/_sandbox/tenant``), the
Graph counters are the sandbox's (``/_sandbox/stats``), never the service's belief.

1. initial load: ``provisioner import`` start -> every account and membership read back, against
   the budget-bound minimum (minimum writes / 500 per s);
2. Graph writes / minimum writes (N creates + per group ceil(members / 20));
3. Graph HTTP calls / minimum (ceil(minimum writes / 20) + ceil(N match lookups / 20));
4. planning rate of one process (``scale_extra.planning``);
5. a policy rollout adding one group to everyone: ``policy reload`` start -> every new
   membership read back, and its writes against ceil(N / 20);
6. ``provisioner reconcile``, no drift, then with 1% of the people's memberships removed in the
   sandbox behind the service's back;
7. peak RSS of every process (``scale_procs``);
8. two worker processes vs one on PostgreSQL (``scale_extra.throughput``);
9. ``provisioner --help`` wall time.

Figures 5 and 6 run on the loaded tenant (``--skip load`` leaves them out too); 4 and 8 on stages
of their own. Exit 1 when an account or membership is missing (or an account is duplicated) at
the end of the load or the rollout.
"""

from __future__ import annotations

import json
import math
import random
import shutil
import signal
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from provisioner.bench import scale_extra
from provisioner.bench.scale_people import BATCH, Company, add_rollout_policy, generate
from provisioner.bench.scale_procs import ReadBack, diff, settle, wait_read_back
from provisioner.bench.scale_report import Results, render
from provisioner.bench.scale_stage import Stage, database, record_peaks
from provisioner.sandbox.graph.throttle import WRITE_LIMIT, WRITE_WINDOW_SECONDS

SCALE_TARGET = 20_000
FIGURES = ("load", "planning", "rollout", "reconcile", "throughput", "help")


@dataclass
class Options:
    people: int = 20_000
    groups_per_person: int = 8
    postgres_url: str | None = None
    scale: float = 25.0
    skip: tuple[str, ...] = ()
    timeout: float = 1800.0
    throughput_people: int | None = None


def budget_rate(opts: Options) -> float:
    """Graph's write budget at the sandbox's scale: 3,000 per 150 s / scale (500/s at 25)."""
    return WRITE_LIMIT / WRITE_WINDOW_SECONDS * opts.scale


def _say(console: Console) -> Callable[[str], None]:
    return lambda line: console.print(line, highlight=False)


def _load_figures(stage: Stage, opts: Options, results: Results, console: Console) -> None:
    company, n = stage.company, len(stage.company.rows)
    before = stage.sandbox.stats()
    import_wall, back, _ = stage.load(opts.timeout, _say(console))
    after = settle(stage.sandbox)
    used = diff(after, before)
    min_writes = company.minimum_writes()
    min_calls = math.ceil(min_writes / BATCH) + math.ceil(n / BATCH)
    budget = min_writes / budget_rate(opts)
    results.add("1", "initial load: import -> all read back / budget-bound minimum",
                back.seconds / budget if back.complete else None, "x", 1.5,
                note=(f"{back.seconds:.1f} s" if back.complete else "INCOMPLETE")
                + f" vs {min_writes:,} writes / {budget_rate(opts):g} per s = {budget:.1f} s; import process "
                  f"{import_wall:.1f} s")
    results.add("2", "Graph writes / minimum writes", used["writes"] / min_writes, "x", 1.05,
                note=f"{used['writes']:,} / {min_writes:,} ({n:,} creates + "
                     f"{min_writes - n:,} bind PATCHes of 20)")
    results.add("3", "Graph HTTP calls / minimum calls", used["http_calls"] / min_calls, "x", 1.1,
                note=f"{used['http_calls']:,} / {min_calls:,} (ceil(writes/20) + ceil({n:,} lookups/20)); "
                     f"{used['batch_calls']:,} $batch with {used['sub_requests']:,} items")
    routes = sorted(used["by_route"].items(), key=lambda kv: -kv[1])
    results.notes.append(f"load: Graph calls by method {json.dumps(used['by_method'], sort_keys=True)} "
                         f"({', '.join(f'{route} {n:,}' for route, n in routes)}), {used['reads']:,} reads, "
                         f"{used['throttled']:,} answered 429; tenant: {after['users']:,} users, "
                         f"{company.memberships:,} memberships expected")
    if not back.complete or back.wrong:
        _missing(results, "load", back)


def _missing(results: Results, phase: str, back: ReadBack) -> None:
    results.problems.append(f"{phase}: {len(back.missing_accounts):,} account(s) and {back.missing_total:,} "
                            f"membership(s) missing at the end, {len(back.wrong):,} wrong")
    results.problems += [f"{phase}: no account for {e}" for e in back.missing_accounts[:20]]
    results.problems += [f"{phase}: not in {m}" for m in back.missing_memberships[:20]]
    results.problems += [f"{phase}: wrong: {w}" for w in back.wrong[:20]]


def _rollout_figures(stage: Stage, opts: Options, results: Results, console: Console) -> None:
    company, n = stage.company, len(stage.company.rows)
    add_rollout_policy(stage.policies, company)
    before = stage.sandbox.stats()
    t0 = time.monotonic()
    reload = stage.procs.run("policy reload", "policy", "reload", timeout=opts.timeout)
    if stage.serve is not None and stage.serve.poll() is None:
        stage.serve.send_signal(signal.SIGHUP)  # as the command asks: running processes plan with the set
    back = wait_read_back(stage.sandbox, company.expected, t0, opts.timeout, users_at_least=n,
                          memberships_at_least=company.memberships, say=_say(console))
    used = diff(settle(stage.sandbox), before)
    minimum = math.ceil(n / BATCH)
    results.add("5a", "policy rollout (+1 group for all): reload -> all read back",
                back.seconds, "s", 60.0,
                note=f"'policy reload' process {reload.wall:.1f} s (exit {reload.code})" if back.complete
                else "INCOMPLETE")
    results.add("5b", "rollout Graph writes / minimum", used["writes"] / minimum, "x", 1.05,
                note=f"{used['writes']:,} / {minimum:,} bind PATCHes; {used['http_calls']:,} HTTP calls, "
                     f"by method {json.dumps(used['by_method'], sort_keys=True)}")
    if not back.complete or back.wrong:
        _missing(results, "rollout", back)


def _reconcile(stage: Stage, opts: Options) -> tuple[float, int, int]:
    done = stage.procs.run("reconcile", "reconcile", "--json", timeout=opts.timeout)
    try:
        drift = len(json.loads(done.output)["drift"])
    except (ValueError, KeyError):
        drift = -1
    return done.wall, done.code, drift


def _reconcile_figures(stage: Stage, opts: Options, results: Results) -> None:
    company, n = stage.company, len(stage.company.rows)
    wall, code, drift = _reconcile(stage, opts)
    results.add("6a", f"reconcile of {n:,} people, no drift", wall, "s", 30.0,
                note=f"'provisioner reconcile' process; exit {code}, {drift} drift item(s) reported")
    tenant = stage.sandbox.tenant()
    user_of = {emp: uid for uid, emp, _, _ in tenant["users"]}
    rng = random.Random(7)
    people = rng.sample(sorted(company.expected), max(1, n // 100))
    removals = []
    for emp in people:
        group = rng.choice(sorted(company.expected[emp]))
        removals.append((tenant["group_ids"][group], user_of[emp]))
    stage.sandbox.drift(removals)
    wall, code, drift = _reconcile(stage, opts)
    results.add("6b", f"reconcile with 1% drift ({len(removals)} memberships removed in the sandbox)",
                wall, "s", 10.0, note=f"exit {code}, {drift} drift item(s) reported (expected >= {len(removals)})")
    if drift < len(removals):
        results.notes.append(f"[red]reconcile found {drift} drift item(s) of the {len(removals)} made[/]")


def _main_run(opts: Options, company: Company, folder: Path, results: Results, console: Console) -> None:
    skip = set(opts.skip)
    with database(opts.postgres_url, folder, "main") as url:
        stage = Stage(folder / "main", company, url, scale=opts.scale, writes_per_second=budget_rate(opts))
        try:
            stage.start_service()
            console.print(f"service up; importing {len(company.rows):,} people", highlight=False)
            _load_figures(stage, opts, results, console)
            if "rollout" not in skip:
                console.print("policy rollout", highlight=False)
                _rollout_figures(stage, opts, results, console)
            if "reconcile" not in skip:
                console.print("reconcile", highlight=False)
                _reconcile_figures(stage, opts, results)
        finally:
            stage.close()
            record_peaks(results, stage.procs.peak_mb)


def measure(opts: Options, console: Console, folder: Path) -> Results:
    """Every figure not skipped, in one run, under ``folder`` (the processes' logs stay there)."""
    company = generate(opts.people, opts.groups_per_person)
    results = Results()
    results.notes.append(f"{opts.people:,} people, {company.memberships:,} memberships in "
                         f"{len(company.members_per_group())} groups ({company.memberships / opts.people:.1f} "
                         f"per person); sandbox throttle scale {opts.scale:g} = {budget_rate(opts):g} writes/s "
                         f"(the target's client-side limit the same); the service polls due events and the "
                         f"queue every 0.2 s")
    if "load" not in opts.skip:
        _main_run(opts, company, folder, results, console)
    if "planning" not in opts.skip:
        console.print("planning rate", highlight=False)
        scale_extra.planning(opts, folder, results)
    if "throughput" not in opts.skip:
        console.print("throughput, one process vs two", highlight=False)
        scale_extra.throughput(opts, folder, results)
    if "help" not in opts.skip:
        scale_extra.help_time(results)
    results.figures.sort(key=lambda f: (int(f.number.rstrip("ab")), f.number))
    return results


def run(opts: Options, console: Console) -> int:
    engine = "PostgreSQL" if opts.postgres_url else "SQLite"
    unknown = set(opts.skip) - set(FIGURES)
    if unknown:
        console.print(f"[red]--skip: unknown figure(s) {sorted(unknown)}; known: {', '.join(FIGURES)}[/]")
        return 2
    console.rule(f"provisioner bench scale --people {opts.people} --groups-per-person {opts.groups_per_person} "
                 f"--scale {opts.scale:g} ({engine})")
    folder = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    code = 1
    try:
        results = measure(opts, console, folder)
        title = (f"bench scale on {engine}: {opts.people:,} people x {opts.groups_per_person} groups; "
                 f"targets are for {SCALE_TARGET:,}")
        render(results, title, console)
        code = 1 if results.problems else 0
    finally:
        if code == 0:
            shutil.rmtree(folder, ignore_errors=True)
        else:
            console.print(f"process logs kept in {folder}", highlight=False)
    return code
