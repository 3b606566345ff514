"""HR data as HR systems really send it: back-dated lifecycle events, per-attribute effective
dating, contract end dates, and group additions whose outcome never became clear. Every test
reads the end state back from the Graph sandbox, not the service's belief."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from provisioner.clock import clock, utcnow
from provisioner.evidence import service as evidence
from provisioner.identities import repository as identities
from provisioner.intake import repository as events
from provisioner.planner.preview import preview
from provisioner.queue.models import Operation
from tests.support import EntraView, event, hire


async def test_back_dated_termination_entered_late_applies_now(service, entra: EntraView):
    now = utcnow()
    await service.send(hire("bd1", "BD1", "Back", "Dated", "Engineering", at=now - timedelta(days=30)))
    await service.send(event("bd2", "update", "BD1", now, title="Staff Engineer"))
    await service.drain()
    assert entra.user("BD1")["accountEnabled"] is True
    # HR enters the termination two days late, effective two days ago.
    resp = await service.send(event("bd3", "terminate", "BD1", now - timedelta(days=2)))
    assert resp.status_code == 202
    await service.drain()
    assert entra.state("BD1") == "terminated"
    assert entra.user("BD1")["accountEnabled"] is False
    assert entra.groups("BD1") == set()
    with service.db.read() as session:
        assert events.get(session, "bd3").status == "applied"
        record = next(r for r in evidence.revocations(session, now - timedelta(days=3), now + timedelta(days=1))
                      if r["event_id"] == "bd3")
    # The evidence shows HR's effective time, when it was received and when it was applied.
    assert datetime.fromisoformat(record["hr_termination_time"]) < datetime.fromisoformat(record["received_at"])
    assert record["all_verified"] is True


async def test_an_older_lifecycle_event_never_overrides_a_newer_one(service, entra: EntraView):
    now = utcnow()
    await service.send(hire("ol1", "OL1", "Old", "Life", "Sales", at=now - timedelta(days=30)))
    await service.drain()
    await service.send(event("ol2", "terminate", "OL1", now - timedelta(days=1)))
    await service.drain()
    # A leave of absence dated before the termination arrives late: it never reopens anything.
    await service.send(event("ol3", "leave", "OL1", now - timedelta(days=5)))
    await service.drain()
    with service.db.read() as session:
        late = events.get(session, "ol3")
        assert late.status == "superseded"
        assert "lifecycle" in late.status_reason
    assert entra.state("OL1") == "terminated"
    assert entra.user("OL1")["accountEnabled"] is False


async def test_a_late_update_sets_what_nothing_newer_set(service, entra: EntraView):
    t0 = utcnow()
    await service.send(hire("pa1", "PA1", "Per", "Attribute", "Sales", at=t0 - timedelta(hours=3)))
    await service.send(event("pa3", "update", "PA1", t0, title="Senior Seller"))
    await service.drain()
    # Older than the title change, but the only event that says where the person works.
    await service.send(event("pa2", "update", "PA1", t0 - timedelta(hours=1), title="Junior Seller",
                             location="DE-BER-01"))
    await service.drain()
    with service.db.read() as session:
        assert events.get(session, "pa2").status == "applied"
        person = identities.by_employee_id(session, "PA1")
        assert (person.title, person.location) == ("Senior Seller", "DE-BER-01")
    assert entra.user("PA1")["jobTitle"] == "Senior Seller"
    assert entra.user("PA1")["officeLocation"] == "DE-BER-01"
    assert "Berlin Office" in entra.groups("PA1")


async def test_contractor_hired_with_an_end_date_in_the_past_gets_no_access(service, entra: EntraView):
    today = utcnow().date()
    await service.send(hire("ce1", "CE1", "Past", "Contract", "Engineering", employment_type="contractor",
                            start_date=(today - timedelta(days=60)).isoformat(),
                            end_date=(today - timedelta(days=2)).isoformat()))
    await service.drain()
    assert entra.state("CE1") == "terminated"
    assert entra.remote_id("CE1") is None  # nothing was ever created in Entra ID
    assert await entra.count_users("CE1") == 0
    with service.db.read() as session:
        ends = [e for e in events.pending_for(session, "CE1")]
        assert ends == []


async def test_end_date_ends_access_at_the_end_of_that_day_and_moves_with_hr(service, entra: EntraView):
    service.runtime.ctx.contract_end_timezone = "Europe/Berlin"
    berlin = ZoneInfo("Europe/Berlin")
    today = utcnow().astimezone(berlin).date()
    end = today + timedelta(days=3)
    await service.send(hire("cm1", "CM1", "Moving", "End", "Engineering", employment_type="contractor",
                            start_date=today.isoformat(), end_date=end.isoformat()))
    await service.drain()
    assert entra.user("CM1")["accountEnabled"] is True
    # The end is a pending change that plan shows.
    steps = preview(service.db, service.runtime.ctx, "CM1")
    assert "contract end" in steps[-1]["after"] and steps[-1]["kind"] == "leaver"
    # HR extends the contract by two days: the old end is withdrawn, the new one scheduled.
    new_end = end + timedelta(days=2)
    await service.send(event("cm2", "update", "CM1", end_date=new_end.isoformat()))
    await service.drain()
    midnight = datetime.combine(new_end + timedelta(days=1), time(0), tzinfo=berlin).astimezone(UTC)
    with service.db.read() as session:
        pending = events.pending_for(session, "CM1")
        assert [e.effective_at for e in pending] == [midnight]
        assert events.get(session, f"contract-end-CM1-{end.isoformat()}").status == "cancelled"
    clock.advance(midnight - utcnow() - timedelta(minutes=1))  # 23:59 Berlin on the new last day
    await service.drain()
    assert entra.user("CM1")["accountEnabled"] is True
    clock.advance(timedelta(minutes=1, seconds=1))
    await service.drain()
    assert entra.state("CM1") == "terminated"
    assert entra.user("CM1")["accountEnabled"] is False
    assert entra.groups("CM1") == set()


async def test_end_date_before_start_date_is_refused_naming_the_field(service, entra: EntraView):
    today = utcnow().date()
    resp = await service.send(hire("cb1", "CB1", "Bad", "Dates", "Sales", start_date=today.isoformat(),
                                   end_date=(today - timedelta(days=1)).isoformat()))
    assert resp.status_code == 400
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert resp.json()["errors"][0]["field"] == "attributes.end_date"
    # Against the stored start date, an update is refused when it applies, with the reason.
    await service.send(hire("cb2", "CB2", "Good", "Dates", "Sales", start_date=today.isoformat()))
    await service.send(event("cb3", "update", "CB2", end_date=(today - timedelta(days=5)).isoformat()))
    await service.drain()
    with service.db.read() as session:
        refused = events.get(session, "cb3")
        assert refused.status == "rejected" and "attributes.end_date" in refused.status_reason
    assert entra.user("CB2")["accountEnabled"] is True


async def test_an_unclear_group_addition_withdrawn_by_a_newer_plan_is_still_revoked(service, entra: EntraView):
    await service.send(hire("uc1", "UC1", "Un", "Clear", "Finance"))
    await service.drain()
    # The move to Engineering: Graph adds the member but the answer is lost (a gateway timeout).
    service.sandbox.fail_next("POST", r"^/groups/[^/]+/members/\$ref$", status=504, code="GatewayTimeout",
                              message="The gateway did not receive a timely response", times=2)
    await service.send(event("uc2", "transfer", "UC1", department="Engineering"))
    await service.runtime.process_events()
    await service.runtime.worker.run_once()
    with service.db.read() as session:
        adds = session.scalars(select(Operation).where(Operation.kind == "add_member",
                                                       Operation.group_key.in_(["Engineering", "GitHub Users"])))
        assert {(op.status, op.attempts) for op in adds} == {("pending", 1)}  # to be retried
    rid = entra.remote_id("UC1")
    for name in ("Engineering", "GitHub Users"):
        service.sandbox.add_member_directly(service.group_ids[name], rid)
    # The move is reversed before the retries ran: the newer plan withdraws them. The service
    # never learnt whether the additions happened, so it must remove them (no read-back follows
    # a mover's plan that would catch them).
    await service.send(event("uc3", "transfer", "UC1", department="Finance"))
    await service.drain()
    assert entra.groups("UC1") == {"All Staff", "Employees", "Finance"}
    with service.db.read() as session:
        assert {op.status for op in session.scalars(select(Operation).where(
            Operation.kind == "remove_member", Operation.group_key == "Engineering"))} == {"succeeded"}


async def test_a_group_addition_given_up_without_an_answer_is_still_removed_when_no_longer_granted(
        service, entra: EntraView):
    await service.send(hire("gu1", "GU1", "Given", "Up", "Finance"))
    await service.drain()
    service.sandbox.fail_next("POST", r"^/groups/[^/]+/members/\$ref$", status=504, code="GatewayTimeout",
                              message="The gateway did not receive a timely response", times=8)
    await service.send(event("gu2", "transfer", "GU1", department="Engineering"))

    def statuses() -> set[str]:
        with service.db.read() as session:
            return {op.status for op in session.scalars(select(Operation).where(
                Operation.kind == "add_member", Operation.group_key.in_(["Engineering", "GitHub Users"])))}

    # drain() stops when nothing is ready now; a retry backing off (10-50 ms) is not ready yet.
    for _ in range(100):
        await service.drain()
        if statuses() == {"dead"}:
            break
        await asyncio.sleep(0.05)
    assert statuses() == {"dead"}
    # Graph had added the member every time; only the answers were lost.
    rid = entra.remote_id("GU1")
    for name in ("Engineering", "GitHub Users"):
        service.sandbox.add_member_directly(service.group_ids[name], rid)
    await service.send(event("gu3", "transfer", "GU1", department="Finance"))
    await service.drain()
    assert entra.groups("GU1") == {"All Staff", "Employees", "Finance"}


async def test_a_termination_arriving_during_a_long_batch_of_joiners_is_applied_before_the_rest(
        service, entra: EntraView, monkeypatch):
    """The processor looks for due terminations between the batches of a round (each batch
    short): a leaver's event waits for at most one batch, never behind an onboarding wave that
    was already being applied."""
    from provisioner.intake import processor

    monkeypatch.setattr(processor, "URGENT_CHECK_SECONDS", 0.0)
    monkeypatch.setattr(processor, "BATCH_MAX", 10)  # batches much shorter than the wave
    await service.send(hire("lb0", "LB0", "Leaving", "Soon", "Sales"))
    await service.drain()
    await service.send([hire(f"lbj{n}", f"LBJ{n}", "Join", f"Er{n}", "Sales") for n in range(150)])
    batch = asyncio.create_task(service.runtime.process_events())
    while True:  # the batch is under way: some joiners are applied, most not yet
        with service.db.read() as session:
            if events.get(session, "lbj3").status == "applied":
                break
        await asyncio.sleep(0.01)
    await service.send(event("lbt", "terminate", "LB0"))
    await batch
    with service.db.read() as session:
        leaver = events.get(session, "lbt").processed_at
        later = [events.get(session, f"lbj{n}").processed_at for n in range(150)]
    assert leaver is not None
    assert sum(at > leaver for at in later) > 50  # applied mid-batch, ahead of most joiners
    await service.drain()
    assert entra.user("LB0")["accountEnabled"] is False


async def test_an_account_created_while_the_leaver_plan_was_made_is_disabled_by_the_record_alone(
        service, entra: EntraView):
    """Found by the kill -9 soak: HR's terminate is planned while the joiner's create is running
    (no account known yet: the leaver plan has nothing to do); the create then finishes. The
    worker's record plans the person again in the same transaction, so a worker killed right
    after recording loses nothing."""
    from provisioner.queue.worker import RoundReport

    await service.send(hire("rc1", "RC1", "Race", "Condition", "Engineering"))
    await service.runtime.process_events()
    worker = service.runtime.worker
    jobs, _ = await asyncio.to_thread(worker._claim, False)
    creates = [j for j in jobs if j.target == "entra" and j.kind.value == "create_account"]
    assert len(creates) == 1
    report = RoundReport(claimed=1)
    await worker._run_target("entra", creates, report)  # the account now exists in Entra ID
    await service.send(event("rc2", "terminate", "RC1"))
    await service.runtime.process_events()  # planned while the create is still running
    await asyncio.to_thread(worker._record, report)  # ... and the worker dies right after this
    await service.drain()
    assert entra.state("RC1") == "terminated"
    assert entra.user("RC1")["accountEnabled"] is False
    assert entra.groups("RC1") == set()
