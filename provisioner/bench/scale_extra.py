"""Figures of ``provisioner bench scale`` measured on their own stage: the planning rate (4), two
worker processes against one (8) and ``provisioner --help`` (9)."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from provisioner.bench.scale_people import generate
from provisioner.bench.scale_procs import environment
from provisioner.bench.scale_report import Results
from provisioner.bench.scale_stage import WRITES_PER_SECOND, Stage, database, record_peaks

THROUGHPUT_PEOPLE = 5_000  # figure 8's default backlog (at most --people)


def planning(opts: Any, folder: Path, results: Results) -> None:
    """Figure 4: ``provisioner import`` of the N hires into a fresh database, then the processor
    alone (``process_due``, no worker, no target) in this process over that stored backlog."""
    from provisioner.db import Database
    from provisioner.intake.processor import process_due
    from provisioner.planner.service import PlanningContext
    from provisioner.policies.loader import load_policies
    from provisioner.targets.config import load_targets

    company = generate(opts.people, opts.groups_per_person)
    with database(opts.postgres_url, folder, "planning") as url:
        stage = Stage(folder / "planning", company, url, scale=None, writes_per_second=WRITES_PER_SECOND)
        try:
            imported = stage.procs.run("import", "import", str(stage.csv), timeout=opts.timeout)
            if imported.code != 0:
                results.skipped("4", "planning rate, one process", "events/s", 500.0,
                                f"import exited {imported.code}", at_most=False)
                return
            targets = load_targets(stage.targets)
            ctx = PlanningContext(policies=load_policies(stage.policies, targets), targets=targets)
            db = Database(url)
            try:
                t0 = time.monotonic()
                stats = process_due(db, ctx)
                wall = time.monotonic() - t0
            finally:
                db.dispose()
        finally:
            stage.close()
            _merge_peaks(results, stage.procs.peak_mb)
    results.add("4", "planning rate, one process", stats.total / wall if wall else None, "events/s", 500.0,
                at_most=False, note=f"process_due over {opts.people:,} stored hires: {stats.applied:,} applied, "
                                    f"{stats.failed} failed in {wall:.1f} s (import process {imported.wall:.1f} s, "
                                    f"{opts.people / imported.wall:,.0f} rows/s)")


def throughput(opts: Any, folder: Path, results: Results) -> None:
    """Figure 8: the same backlog (import of M people) with the sandbox throttle off and no
    client-side write limit, one ``serve`` process against ``serve`` + one ``worker``;
    throughput = (accounts + memberships read back) / s from the import's start."""
    people = min(opts.people, opts.throughput_people or THROUGHPUT_PEOPLE)
    name = "two worker processes vs one (PostgreSQL)"
    if not opts.postgres_url:
        results.skipped("8", name, "x", 1.6, "needs --postgres-url (workers share SQLite through one lock)",
                        at_most=False)
        return
    rates: list[float] = []
    for workers in (1, 2):
        company = generate(people, opts.groups_per_person)
        with database(opts.postgres_url, folder, f"throughput{workers}") as url:
            stage = Stage(folder / f"throughput{workers}", company, url, scale=None,
                              writes_per_second=1_000_000.0, burst=1_000_000)
            try:
                stage.start_service(workers=workers)
                _, back, _ = stage.load(opts.timeout)
            finally:
                stage.close()
                record_peaks(results, stage.procs.peak_mb)
        if not back.complete:
            results.skipped("8", name, "x", 1.6, f"the {workers}-process load did not complete", at_most=False)
            return
        rates.append((len(company.rows) + company.memberships) / back.seconds)
    results.add("8", name, rates[1] / rates[0], "x", 1.6, at_most=False,
                note=f"{people:,} hires, sandbox throttle off, no client write limit: accounts + memberships "
                     f"read back per s from import start: 1 serve {rates[0]:,.0f}/s, serve + worker "
                     f"{rates[1]:,.0f}/s")


def help_time(results: Results) -> None:
    """Figure 9: ``python -m provisioner --help`` as a new process, three times."""
    walls = []
    for _ in range(3):
        t0 = time.monotonic()
        subprocess.run([sys.executable, "-m", "provisioner", "--help"], env=environment(COLUMNS="120"),
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        walls.append(time.monotonic() - t0)
    results.add("9", "provisioner --help (best of 3)", min(walls), "s", 1.0,
                note=f"median {statistics.median(walls):.2f} s; {', '.join(f'{w:.2f}' for w in walls)}")


def _merge_peaks(results: Results, peak: dict[str, float]) -> None:
    record_peaks(results, {f"{label} (planning stage)" if label != "sandbox" else label: mb
                    for label, mb in peak.items()})

