"""Effective dating and delivery order: future-dated events wait, immediate terminations jump the
queue, cancel withdraws, duplicates change nothing, older events never overwrite newer ones."""

from __future__ import annotations

from datetime import UTC, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from provisioner.clock import clock, utcnow
from provisioner.identities import repository as identities
from provisioner.intake import repository as events
from provisioner.intake.models import HREvent
from provisioner.queue.models import Operation
from tests.support import EntraView, event, hire


async def test_future_terminate_fires_at_17_berlin_on_the_last_day(service, entra: EntraView):
    await service.send(hire("f1", "F1", "Grace", "Hopper", "Engineering"))
    await service.drain()
    berlin = ZoneInfo("Europe/Berlin")
    last_day = (utcnow().astimezone(berlin) + timedelta(days=2)).replace(hour=17, minute=0, second=0,
                                                                          microsecond=0)
    resp = await service.send(event("f2", "terminate", "F1", last_day))
    assert resp.status_code == 202
    assert resp.json()["effective_at"] == last_day.astimezone(UTC).isoformat().replace("+00:00", "Z")
    await service.drain()
    assert entra.user("F1")["accountEnabled"] is True  # not yet
    clock.advance(last_day.astimezone(UTC) - utcnow() - timedelta(minutes=1))
    await service.drain()
    assert entra.user("F1")["accountEnabled"] is True  # 16:59 Berlin: still not
    clock.advance(timedelta(minutes=1, seconds=1))
    await service.drain()
    assert entra.user("F1")["accountEnabled"] is False
    assert entra.groups("F1") == set()


async def test_future_hire_opens_a_pre_hire_record_without_access(service, entra: EntraView):
    start = utcnow() + timedelta(days=7)
    await service.send(hire("p1", "P1", "Nova", "Start", "Sales", at=start))
    await service.drain()
    assert entra.state("P1") == "pre_hire"
    assert entra.remote_id("P1") is None
    clock.advance(timedelta(days=7, seconds=1))
    await service.drain()
    assert entra.state("P1") == "active"
    assert entra.groups("P1") == {"All Staff", "Employees", "Sales", "Salesforce Users"}


async def test_immediate_terminate_runs_ahead_of_all_other_work(service, entra: EntraView):
    await service.send(hire("i1", "I1", "Leaving", "Now", "Engineering"))
    await service.drain()
    # A wave of joiners is queued, then an immediate termination arrives.
    await service.send([hire(f"j{n}", f"J{n}", "Join", f"Er{n}", "Sales") for n in range(30)])
    await service.send(event("i2", "terminate", "I1", utcnow() + timedelta(days=30), immediate=True))
    await service.runtime.process_events()
    with service.db.transaction() as session:
        first = session.scalars(select(Operation).where(Operation.status == "pending")
                                .order_by(Operation.priority, Operation.next_attempt_at, Operation.id)
                                .limit(2)).all()
        assert {op.kind for op in first} == {"disable_account", "revoke_sessions"}
    service.settings.worker_batch_size = 5  # one small round: only the most urgent work
    await service.runtime.worker.run_once()
    assert entra.user("I1")["accountEnabled"] is False
    assert entra.remote_id("J0") is None  # joiners still waiting behind the leaver
    await service.drain()
    assert entra.remote_id("J29") is not None


async def test_cancel_withdraws_a_pending_future_event(service, entra: EntraView):
    await service.send(hire("c1", "C1", "Stay", "Ing", "Finance"))
    await service.send(event("c2", "terminate", "C1", utcnow() + timedelta(days=5)))
    await service.send(event("c3", "cancel", "C1", cancels_event_id="c2"))
    await service.drain()
    clock.advance(timedelta(days=6))
    await service.drain()
    assert entra.state("C1") == "active"
    assert entra.user("C1")["accountEnabled"] is True
    with service.db.transaction() as session:
        assert events.get(session, "c2").status == "cancelled"
        assert events.get(session, "c3").status == "done"


async def test_cancel_after_the_event_applied_is_rejected_and_recorded(service, entra: EntraView):
    await service.send(hire("k1", "K1", "Too", "Late", "Finance"))
    await service.drain()
    await service.send(event("k2", "cancel", "K1", cancels_event_id="k1"))
    await service.drain()
    with service.db.transaction() as session:
        cancel = events.get(session, "k2")
        assert cancel.status == "rejected"
        assert "too late" in cancel.status_reason


async def test_duplicate_delivery_changes_nothing_and_gets_the_same_answer(service, entra: EntraView):
    body = hire("d1", "D1", "Dup", "Licate", "Finance")
    first = await service.send(body)
    second = await service.send(body)
    assert first.status_code == second.status_code == 202
    assert first.json() == second.json()
    assert second.headers.get("Idempotent-Replay") == "true"
    batch = await service.send([body, hire("d2", "D2", "New", "One", "Sales")])
    assert batch.json()["accepted"] == 1 and batch.json()["duplicates"] == 1
    await service.drain()
    with service.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(HREvent)
                              .where(HREvent.event_id == "d1")) == 1
    assert await entra.count_users("D1") == 1


async def test_out_of_order_older_update_never_overwrites_newer(service, entra: EntraView):
    t0 = utcnow()
    await service.send(hire("o1", "O1", "Out", "Order", "Sales", at=t0 - timedelta(hours=2)))
    await service.send(event("o3", "update", "O1", t0, title="Senior Seller"))
    await service.drain()
    await service.send(event("o2", "update", "O1", t0 - timedelta(hours=1), title="Junior Seller"))
    await service.drain()
    with service.db.transaction() as session:
        person = identities.by_employee_id(session, "O1")
        assert person.title == "Senior Seller"
        late = events.get(session, "o2")
        assert late.status == "superseded"
    assert entra.user("O1")["jobTitle"] == "Senior Seller"


async def test_events_delivered_out_of_order_in_one_batch_apply_in_effective_order(service, entra):
    t0 = utcnow()
    await service.send([
        event("b3", "transfer", "B1", t0 - timedelta(minutes=1), department="Engineering"),
        hire("b1", "B1", "Batch", "Order", "Sales", at=t0 - timedelta(minutes=10)),
    ])
    await service.drain()
    assert entra.state("B1") == "active"
    assert entra.groups("B1") == {"All Staff", "Employees", "Engineering", "GitHub Users"}
