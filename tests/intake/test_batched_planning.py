"""Joiners and movers are applied in batches (one transaction, plans stored in bulk): the
result is what one transaction per event gives, a bad event in a batch fails alone, a stopping
process stops between batches, and what a batch planned reaches Entra ID through the worker."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy import select

from provisioner.audit.models import AuditRecord
from provisioner.audit.verify import verify_chain
from provisioner.clock import utcnow
from provisioner.db import Database
from provisioner.directory.models import DirectoryGroup, DirectoryGroupMember
from provisioner.identities import repository as identities
from provisioner.identities.models import Identity, LifecycleTransition
from provisioner.intake import processor
from provisioner.intake import repository as events
from provisioner.intake.models import EventStatus, HREvent
from provisioner.planner.models import Plan
from provisioner.planner.service import PlanningContext
from provisioner.policies.loader import load_policies
from provisioner.queue.models import Operation
from provisioner.targets.config import load_targets
from tests.support import EntraView, hire

REPO = Path(__file__).resolve().parents[2]


def context() -> PlanningContext:
    targets = load_targets(REPO / "targets")
    return PlanningContext(policies=load_policies(REPO / "policies", targets), targets=targets)


# given, family, attributes: departments with different groups, a contractor with an end date
# (a contract end is scheduled), a manager, the Berlin office, and two people of one name.
PEOPLE: list[tuple[str, str, dict[str, Any]]] = [
    ("Ada", "Lovelace", {"department": "Engineering"}),
    ("Grace", "Hopper", {"department": "Engineering", "location": "DE-BER-1"}),
    ("Sam", "Seller", {"department": "Sales"}),
    ("Fin", "Ance", {"department": "Finance", "job_code": "MGR1"}),
    ("Con", "Tractor", {"department": "Sales", "employment_type": "contractor", "end_date": "+30"}),
    ("Twin", "Same", {"department": "Finance"}),
    ("Twin", "Same", {"department": "Engineering", "title": "Head of Things"}),
    ("Lee", "Ocation", {"department": "Support", "location": "DE-BER-2"}),
]


def store(db: Database, bodies: list[dict[str, Any]]) -> None:
    """Store due events as the intake would (events with a bad value included)."""
    now = utcnow()
    rows = []
    for body in bodies:
        rows.append({"event_id": body["event_id"], "source": "workday", "type": body["type"],
                     "employee_id": body["employee_id"], "effective_at": now - timedelta(minutes=5),
                     "immediate": False, "cancels_event_id": None,
                     "body_sha256": hashlib.sha256(json.dumps(body).encode()).hexdigest(),
                     "payload": body, "received_at": now, "status": EventStatus.PENDING})
    with db.transaction() as session:
        events.insert_events(session, rows)


def hires(prefix: str, people=PEOPLE, **extra: Any) -> list[dict[str, Any]]:
    today = utcnow().date()
    out = []
    for n, (given, family, attrs) in enumerate(people):
        attrs = dict(attrs)
        if "end_date" in attrs:
            attrs["end_date"] = (today + timedelta(days=int(attrs["end_date"]))).isoformat()
        out.append({"event_id": f"{prefix}-hire-{n}", "type": "hire", "employee_id": f"{prefix}{n}",
                    "attributes": {"given_name": given, "family_name": family,
                                   "employment_type": "employee", "start_date": today.isoformat(),
                                   **attrs, **extra}})
    return out


class Statements:
    def __init__(self, db: Database) -> None:
        self.count = 0
        sa_event.listen(db.engine, "before_cursor_execute", self._seen)

    def _seen(self, *_args) -> None:
        self.count += 1

    def close(self, db: Database) -> None:
        sa_event.remove(db.engine, "before_cursor_execute", self._seen)


def person_view(session, employee_id: str) -> dict[str, Any]:
    """Everything stored for a person, without ids, names or times."""
    person = identities.by_employee_id(session, employee_id)
    plans = session.scalars(select(Plan).where(Plan.identity_id == person.id).order_by(Plan.id)).all()
    ops = session.scalars(select(Operation).where(Operation.identity_id == person.id)).all()
    by_id = {op.id: op for op in ops}

    def op_view(op: Operation) -> tuple:
        on = by_id.get(op.depends_on_id)
        return (op.target, op.kind, op.group_key, json.dumps(op.payload, sort_keys=True), op.priority,
                op.status, (on.target, on.kind) if on is not None else None, op.plan_id is not None)

    groups = session.scalars(select(DirectoryGroup.display_name).join(
        DirectoryGroupMember, DirectoryGroupMember.group_id == DirectoryGroup.id).where(
        DirectoryGroupMember.identity_id == person.id)).all()
    transitions = session.scalars(select(LifecycleTransition).where(
        LifecycleTransition.identity_id == person.id)).all()
    ends = [e for e in events.pending_from_source(session, employee_id, "contract_end")]
    audit = session.scalars(select(AuditRecord.kind).where(AuditRecord.subject == employee_id)
                            .order_by(AuditRecord.seq)).all()
    return {
        "state": person.state, "display_name": person.display_name,
        "plans": [(p.trigger.split(":")[0], p.kind, json.dumps(p.diff, sort_keys=True)) for p in plans],
        "operations": sorted(op_view(op) for op in ops),
        "directory_groups": sorted(groups),
        "transitions": [(t.event_type, t.from_state, t.to_state, t.accepted) for t in transitions],
        "contract_ends": [e.effective_at for e in ends],
        "audit": list(audit),
    }


def test_a_batch_of_hires_stores_what_one_transaction_per_event_stores(db: Database):
    ctx = context()
    # Someone already holds Ada's login: the batch's Ada gets the next one.
    store(db, hires("X", PEOPLE[:1]))
    assert processor.process_due(db, ctx).applied == 1

    store(db, hires("A"))
    counted = Statements(db)
    stats = processor.process_due(db, ctx)
    counted.close(db)
    assert stats.applied == len(PEOPLE) and stats.failed == 0
    # One transaction for the batch, a fixed number of statements: not dozens per event.
    assert counted.count < 3 * len(PEOPLE) + 40, counted.count

    # The same hires, one transaction per event (the path a batch falls back to).
    store(db, hires("B"))
    with db.read() as session:
        pending = [e.id for e in session.scalars(select(HREvent).where(
            HREvent.status == EventStatus.PENDING, HREvent.employee_id.like("B%")).order_by(HREvent.id))]
    one_by_one = processor.ProcessStats()
    for pk in pending:
        processor._apply_one(db, ctx, pk, one_by_one, skip_locked=db.dialect == "postgresql")
    assert one_by_one.applied == len(PEOPLE)

    with db.read() as session:
        for n in range(len(PEOPLE)):
            batched, single = person_view(session, f"A{n}"), person_view(session, f"B{n}")
            assert batched == single, n
            assert batched["plans"][0][1] == "joiner" and batched["audit"] == ["lifecycle.transition", "plan.created"]
            kinds = Counter(op[1] for op in batched["operations"])
            assert kinds["create_account"] == 2  # Entra ID and the wiki (after Entra ID settled the login)
            assert kinds["add_member"] == len([g for g in batched["directory_groups"]])
        assert person_view(session, "A4")["contract_ends"]  # the contractor's end is scheduled
        logins = dict(session.execute(select(Identity.employee_id, Identity.user_name)).tuples().all())
        assert logins["X0"] == "ada.lovelace@example.com" and logins["A0"] == "ada.lovelace2@example.com"
        assert {logins["A5"], logins["A6"]} == {"twin.same@example.com", "twin.same2@example.com"}
        assert len(set(logins.values())) == len(logins)
        assert verify_chain(session).ok


def test_a_bad_event_in_a_batch_fails_alone_and_the_rest_of_the_batch_applies(db: Database):
    ctx = context()
    bodies = hires("G")
    # A date that is no date: the processor raises on both engines. On PostgreSQL also a name
    # longer than its column, refused only when the batch is written.
    bodies.insert(3, {"event_id": "poison-date", "type": "hire", "employee_id": "P1",
                      "attributes": {"given_name": "Bad", "family_name": "Date", "department": "Sales",
                                     "start_date": "2026-02-30"}})
    poisons = {"poison-date": "ValueError"}
    if db.dialect == "postgresql":
        poisons["poison-long"] = "value too long"
        bodies.insert(5, {"event_id": "poison-long", "type": "hire", "employee_id": "P2",
                          "attributes": {"given_name": "Long", "family_name": "X" * 300,
                                         "department": "Sales", "employment_type": "employee"}})
    store(db, bodies)
    stats = processor.process_due(db, ctx)
    assert stats.failed == len(poisons) and stats.applied == len(PEOPLE)
    with db.read() as session:
        for event_id, reason in poisons.items():
            failed = events.get(session, event_id)
            assert failed.status == EventStatus.FAILED and reason in failed.status_reason
            assert identities.by_employee_id(session, failed.employee_id) is None
        for n in range(len(PEOPLE)):
            view = person_view(session, f"G{n}")
            assert view["state"] == "active" and view["plans"][0][1] == "joiner"
            assert any(op[1] == "create_account" for op in view["operations"])
        assert verify_chain(session).ok


def test_a_stopping_process_stops_between_batches(db: Database):
    ctx = context()
    many = [(f"Given{n}", f"Family{n}", {"department": "Sales"}) for n in range(120)]
    store(db, hires("S", many))
    asked = 0

    def should_stop() -> bool:
        nonlocal asked
        asked += 1
        return asked > 2  # stop once the first batch is in

    stats = processor.process_due(db, ctx, should_stop=should_stop)
    assert 0 < stats.applied <= processor.BATCH_MAX and stats.applied < len(many)
    with db.read() as session:
        left = session.scalars(select(HREvent).where(HREvent.status == EventStatus.PENDING)).all()
        assert len(left) == len(many) - stats.applied
        # What was applied is whole: a plan for each one applied, none for the others.
        planned = session.scalars(select(Plan.identity_id)).all()
        assert len(planned) == stats.applied
    # The next run picks up where this one stopped.
    assert processor.process_due(db, ctx).applied == len(many) - stats.applied


async def test_a_batch_of_joiners_reaches_entra_id_through_the_worker(service, entra: EntraView):
    expected = {"Engineering": {"All Staff", "Employees", "Engineering", "GitHub Users"},
                "Sales": {"All Staff", "Employees", "Sales", "Salesforce Users"},
                "Finance": {"All Staff", "Employees", "Finance"}}
    departments = list(expected)
    bodies = [hire(f"bj-{n}", f"BJ{n}", "Batch" if n % 7 else "Twin", f"Joiner{n}" if n % 7 else "Same",
                   departments[n % 3]) for n in range(40)]
    resp = await service.send(bodies)
    assert resp.status_code == 202, resp.text
    await service.drain()
    upns = set()
    for n in range(40):
        user = entra.user(f"BJ{n}")
        assert user is not None and user["accountEnabled"] is True, n
        upns.add(user["userPrincipalName"])
        assert entra.groups(f"BJ{n}") == expected[departments[n % 3]], n
    assert len(upns) == 40  # the people of one name got distinct logins in Entra ID
    with service.db.read() as session:
        assert verify_chain(session).ok
        assert not session.scalars(select(Operation).where(Operation.status != "succeeded")).all()
