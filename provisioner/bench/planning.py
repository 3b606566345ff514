"""Planning rate: how many pending HR hires one process applies and plans per second.

:func:`measure_planning` stores ``events`` due hires of new people (about eight Entra ID groups
each, from policies written for the run) in an empty database, runs the processor until none
is pending and reports events per second and SQL statements per event (counted with a
``before_cursor_execute`` listener). :func:`measure_rollout` then adds a policy granting one
more group to everyone and times the rollout that re-plans them all. Nothing talks to a
target: this is the service's own cost, from pending event to queued operations.

    python -m provisioner.bench.planning --events 2000 [--postgres postgresql://...]
"""

from __future__ import annotations

import argparse
import gc
import json
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path

from sqlalchemy import event as sa_event
from sqlalchemy import func, select, update

from provisioner.bench.common import temporary_postgres_database
from provisioner.clock import utcnow
from provisioner.db import Database, insert_rows
from provisioner.identities.models import Identity, TargetAccount, TargetMembership
from provisioner.intake import repository as events
from provisioner.intake.models import EventStatus
from provisioner.intake.processor import process_due
from provisioner.migrations import upgrade
from provisioner.planner.models import Plan
from provisioner.planner.service import PlanningContext
from provisioner.policies.loader import load_policies
from provisioner.queue.models import Operation, OpStatus
from provisioner.rollouts import service as rollouts
from provisioner.settings import Settings
from provisioner.targets.config import load_targets
from provisioner.targets.contract import OpKind
from provisioner.targets.specs import account_fields

DEPARTMENTS = ("Engineering", "Sales", "Finance", "Support", "Legal")
SITES = ("DE-BER", "DE-MUC", "US-NYC", "GB-LON")
COST_CENTERS = ("CC100", "CC200", "CC300")
JOBS = ("IC1", "IC2", "IC3", "MGR1")
GROUPS_PER_PERSON = 8  # All Staff, Employees, Dept, Dept Apps, Site, Site Badge, Cost center, Job


@dataclass
class PlanningFigures:
    engine: str
    events: int
    seconds: float
    events_per_second: float
    statements: int
    statements_per_event: float
    plans: int
    operations: int
    transactions: int  # on PostgreSQL each also has ~5 COPYs (bulk inserts) the listener does not see
    claim_seconds: float  # of ``seconds``, in ``intake.repository.claim_due`` (finding due events)
    events_per_second_without_claim: float
    cpu_seconds: float  # this process's CPU time (SQLite: all the work; PostgreSQL: the client's)
    peak_rss_mb: float | None  # this process's VmHWM when planning ends (None off Linux)


@dataclass
class RolloutFigures:
    engine: str
    people: int
    seconds: float
    people_per_second: float
    statements: int
    replanned: int
    peak_rss_mb: float | None  # VmHWM during the rollout alone (reset before it; None off Linux)


def write_config(root: Path) -> tuple[Path, Path]:
    """An Entra ID target with the benchmark's managed groups, and policies giving each
    person ``GROUPS_PER_PERSON`` of them."""
    targets, policies = root / "targets", root / "policies"
    targets.mkdir(parents=True, exist_ok=True)
    policies.mkdir(parents=True, exist_ok=True)
    groups = ["All Staff", "Employees", "Everyone Extra"]
    rules: list[tuple[str, str, str, list[str]]] = []
    for d in DEPARTMENTS:
        rules.append((f"dept-{d}", "department", d, [f"Dept {d}", f"Dept {d} Apps"]))
    for s in SITES:
        rules.append((f"site-{s}", "location", s, [f"Site {s}", f"Site {s} Badge"]))
    for c in COST_CENTERS:
        rules.append((f"cc-{c}", "cost_center", c, [f"Cost {c}"]))
    for j in JOBS:
        rules.append((f"job-{j}", "job_code", j, [f"Job {j}"]))
    groups += [g for *_, names in rules for g in names]
    (targets / "entra.yaml").write_text(
        "kind: entra\nname: entra\ngraph_url: http://127.0.0.1:9/v1.0\n"
        "auth:\n  method: static_token\n  token: {env: PROVISIONER_SANDBOX_TOKEN}\n"
        "accounts:\n  domain: example.com\n  login_template: \"{given_name}.{family_name}\"\n"
        "managed_groups:\n" + "".join(f"  - name: {json.dumps(g)}\n" for g in groups))
    (policies / "all-staff.yaml").write_text(
        "name: all-staff\nbirthright: true\ngrants:\n  entra:\n    groups: [All Staff]\n")
    (policies / "employees.yaml").write_text(
        "name: employees\nwhen:\n  not: {attribute: employment_type, equals: contractor}\n"
        "grants:\n  entra:\n    groups: [Employees]\n")
    for name, attribute, value, names in rules:
        (policies / f"{name}.yaml").write_text(
            f"name: {name}\nwhen:\n  attribute: {attribute}\n  equals: {value}\n"
            f"grants:\n  entra:\n    groups: [{', '.join(json.dumps(n) for n in names)}]\n")
    return targets, policies


def store_hires(db: Database, count: int) -> None:
    """``count`` due hires of new people, as the intake stores them."""
    now = utcnow()
    at = now - timedelta(minutes=5)
    rows = []
    for n in range(count):
        attrs = {"given_name": f"Given{n}", "family_name": f"Family{n}", "department": DEPARTMENTS[n % 5],
                 "location": SITES[n % 4], "cost_center": COST_CENTERS[n % 3], "job_code": JOBS[n % 4],
                 "title": "Staff", "employment_type": "employee", "start_date": at.date().isoformat()}
        payload = {"event_id": f"bench-hire-{n}", "type": "hire", "employee_id": f"B{n:06d}",
                   "effective_at": at.isoformat(), "immediate": False, "cancels_event_id": None,
                   "attributes": attrs}
        rows.append({"event_id": payload["event_id"], "source": "bench", "type": "hire",
                     "employee_id": payload["employee_id"], "effective_at": at, "immediate": False,
                     "cancels_event_id": None, "body_sha256": f"{n:064d}", "payload": payload,
                     "received_at": now, "status": EventStatus.PENDING})
    for start in range(0, len(rows), 5000):
        with db.transaction() as session:
            events.insert_events(session, rows[start:start + 5000])


def peak_rss_mb() -> float | None:
    """This process's peak resident set (VmHWM) in MB, or None where /proc is not there."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def reset_peak_rss() -> None:
    """Start VmHWM again from the current RSS (Linux ``clear_refs`` 5), to measure one phase."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:
        pass


@contextmanager
def _timed_claims() -> Iterator[list[float]]:
    """Time spent finding due events (``claim_due``), reported apart from applying them."""
    spent = [0.0]
    original = events.claim_due

    def timed(*args, **kw):
        started = time.perf_counter()
        try:
            return original(*args, **kw)
        finally:
            spent[0] += time.perf_counter() - started

    events.claim_due = timed
    try:
        yield spent
    finally:
        events.claim_due = original


class StatementCounter:
    def __init__(self, db: Database) -> None:
        self.count = self.commits = 0
        sa_event.listen(db.engine, "before_cursor_execute", self._seen)
        sa_event.listen(db.engine, "commit", self._committed)

    def _seen(self, *_args) -> None:
        self.count += 1

    def _committed(self, *_args) -> None:
        self.commits += 1


@contextmanager
def _database(engine: str, postgres_url: str | None, root: Path) -> Iterator[str]:
    if engine == "postgresql":
        if not postgres_url:
            raise ValueError("a PostgreSQL server URL is needed for engine postgresql")
        with temporary_postgres_database(postgres_url, prefix="provisioner_bench_plan") as url:
            upgrade(url)
            yield url
    else:
        url = f"sqlite:///{root / 'bench.db'}"
        upgrade(url)
        yield url


def measure_planning(db_url: str, events_count: int, ctx: PlanningContext) -> PlanningFigures:
    """Store ``events_count`` due hires in the (migrated, empty) database and process them all."""
    db = Database(db_url)
    try:
        store_hires(db, events_count)
        counter = StatementCounter(db)
        with _timed_claims() as claims:
            started, cpu = time.perf_counter(), time.process_time()
            while process_due(db, ctx).total:
                pass
            seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        statements = counter.count
        with db.read() as session:
            plans = session.scalar(select(func.count()).select_from(Plan)) or 0
            operations = session.scalar(select(func.count()).select_from(Operation)) or 0
        return PlanningFigures(db.dialect, events_count, round(seconds, 2), round(events_count / seconds, 1),
                               statements, round(statements / events_count, 3), plans, operations,
                               counter.commits, round(claims[0], 2),
                               round(events_count / max(seconds - claims[0], 1e-9), 1), round(cpu, 2),
                               peak_rss_mb())
    finally:
        db.dispose()


def settle(db: Database) -> None:
    """As if a worker had done every planned operation: each create an account (its attributes
    synced), each addition a known membership, every operation succeeded. A rollout then meets
    the state it meets after an initial load (a company's accounts and memberships to read)."""
    now = utcnow()
    with db.transaction() as session:
        ops = session.execute(select(Operation.identity_id, Operation.target, Operation.kind, Operation.group_key)
                              .where(Operation.status.in_((OpStatus.PENDING, OpStatus.WAITING)))).all()
        people = {i.id: i for i in session.scalars(select(Identity))}
        accounts, memberships = [], []
        for identity_id, target, kind, group in ops:
            if kind == OpKind.CREATE_ACCOUNT.value:
                identity = people[identity_id]
                accounts.append({"identity_id": identity_id, "target": target, "remote_id": f"r-{identity_id}",
                                 "login": f"{identity.given_name}.{identity.family_name}@example.com",
                                 "enabled": True, "linked": False, "synced": account_fields(identity),
                                 "created_at": now, "updated_at": now})
            elif kind == OpKind.ADD_MEMBER.value:
                memberships.append({"identity_id": identity_id, "target": target, "group_key": group,
                                    "group_remote_id": None, "created_at": now})
        insert_rows(session, TargetAccount, accounts)
        insert_rows(session, TargetMembership, memberships)
        session.execute(update(Operation).where(Operation.status.in_((OpStatus.PENDING, OpStatus.WAITING)))
                        .values(status=OpStatus.SUCCEEDED))
        session.expunge_all()


def measure_rollout(db_url: str, ctx: PlanningContext, policies_dir: Path) -> RolloutFigures:
    """Add a policy granting one more group to everyone (their accounts and memberships made,
    :func:`settle`) and roll it out: everyone re-planned."""
    db = Database(db_url)
    try:
        settle(db)
        settings = Settings(policies_dir=policies_dir, database_url=db_url, policy_rollout_max_auto=None)
        rollouts.roll_out(db, ctx, settings, trigger="bench", files={})  # the set as loaded: recorded
        (policies_dir / "everyone-extra.yaml").write_text(
            "name: everyone-extra\nbirthright: true\ngrants:\n  entra:\n    groups: [Everyone Extra]\n")
        counter = StatementCounter(db)
        gc.collect()
        reset_peak_rss()
        started = time.perf_counter()
        result = rollouts.reload_policies(db, ctx, settings, trigger="bench")
        seconds = time.perf_counter() - started
        peak = peak_rss_mb()
        people = result.counts.get("population", result.replanned) if result.counts else result.replanned
        return RolloutFigures(db.dialect, people, round(seconds, 2), round(result.replanned / seconds, 1),
                              counter.count, result.replanned, peak)
    finally:
        db.dispose()


def run(engine: str, events_count: int, postgres_url: str | None = None,
        rollout: bool = True) -> dict[str, dict]:
    with tempfile.TemporaryDirectory(prefix="bench-planning-") as tmp:
        root = Path(tmp)
        targets_dir, policies_dir = write_config(root)
        targets = load_targets(targets_dir)
        ctx = PlanningContext(policies=load_policies(policies_dir, targets), targets=targets)
        with _database(engine, postgres_url, root) as url:
            out: dict[str, dict] = {"planning": asdict(measure_planning(url, events_count, ctx))}
            if rollout:
                out["rollout"] = asdict(measure_rollout(url, ctx, policies_dir))
            return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--engine", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--no-rollout", action="store_true")
    args = parser.parse_args()
    print(json.dumps(run(args.engine, args.events, args.postgres, rollout=not args.no_rollout), indent=2))


if __name__ == "__main__":
    main()
