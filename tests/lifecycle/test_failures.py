"""Failures are never silent: throttling storms are ridden out, permanent errors dead-letter with
a readable reason and replay, and a worker killed mid-operation leaves work that completes
exactly once in effect."""

from __future__ import annotations

from datetime import timedelta

from provisioner.clock import clock, utcnow
from provisioner.queue import repository as queue
from provisioner.queue.models import OpStatus
from provisioner.queue.service import replay
from provisioner.queue.worker import RoundReport, Worker
from tests.support import EntraView, event, hire


async def settle(service, rounds: int = 50) -> None:
    """Drain, moving the clock to each retry time instead of sleeping through back-off."""
    for _ in range(rounds):
        await service.drain()
        with service.db.transaction() as session:
            nxt = queue.next_attempt_at(session)
        if nxt is None:
            return
        clock.advance(max(nxt - utcnow(), timedelta(0)) + timedelta(milliseconds=10))
    raise AssertionError("queue did not settle")


def op_statuses(service) -> dict[str, int]:
    with service.db.transaction() as session:
        return queue.counts(session)


async def test_429_storm_is_retried_with_retry_after_until_done(service, entra: EntraView):
    service.sandbox.throttle_storm(40, retry_after=3)
    before = utcnow()  # every 429 came after this: its Retry-After ends 3 s after it at the earliest
    await service.send([hire(f"s{n}", f"S{n}", "Storm", f"Person{n}", "Engineering") for n in range(5)])
    await service.drain()
    with service.db.transaction() as session:
        waiting = [op for op in queue.listing(session, OpStatus.PENDING, 100) if op.payload.get("throttled")]
        assert waiting, "throttled operations should be waiting to retry"
        for op in waiting:
            assert op.last_error.startswith("transient")
            assert op.attempts == 0  # throttling does not use up attempts
            assert op.next_attempt_at >= before + timedelta(seconds=3)  # Retry-After honoured
    await settle(service)
    assert op_statuses(service).get(OpStatus.DEAD, 0) == 0
    for n in range(5):
        assert entra.groups(f"S{n}") == {"All Staff", "Employees", "Engineering", "GitHub Users"}
        assert await entra.count_users(f"S{n}") == 1
    assert service.sandbox.stats.throttled >= 40


async def test_permanent_error_goes_to_dead_letter_then_replays(service, entra: EntraView):
    await service.send(hire("p1", "P1", "Perma", "Nent", "Finance"))
    await service.drain()
    service.sandbox.fail_next("PATCH", r"/users/", status=400, code="Request_BadRequest",
                              message="Invalid value specified for property 'jobTitle' of resource 'User'.")
    await service.send(event("p2", "update", "P1", title="Controller"))
    await service.drain()
    with service.db.transaction() as session:
        [dead] = queue.dead(session)
        assert dead.kind == "update_account"
        assert dead.attempts == 1  # permanent: no retries burnt
        assert "Invalid value specified for property 'jobTitle'" in dead.last_error
        assert dead.last_error.startswith("bad_request")
    assert entra.user("P1").get("jobTitle") != "Controller"
    with service.db.transaction() as session:
        assert replay(session, dead.id, ctx=service.runtime.ctx).op_ids == [dead.id]
    await service.drain()
    assert entra.user("P1")["jobTitle"] == "Controller"
    assert op_statuses(service).get(OpStatus.DEAD, 0) == 0


async def test_transient_errors_exhausting_attempts_dead_letter(service, entra: EntraView):
    await service.send(hire("t1", "T1", "Tran", "Sient", "Finance"))
    await service.drain()
    service.sandbox.fail_next("POST", r"revokeSignInSessions", status=503, code="ServiceUnavailable",
                              message="try later", times=100)
    await service.send(event("t2", "terminate", "T1"))
    await settle(service)
    with service.db.transaction() as session:
        [dead] = queue.dead(session)
        assert dead.kind == "revoke_sessions"
        assert dead.attempts == service.settings.max_attempts
    # Everything else of the leaver still happened, and the evidence says revocation is not complete.
    assert entra.user("T1")["accountEnabled"] is False
    assert entra.groups("T1") == set()


async def test_worker_killed_mid_operation_completes_exactly_once_after_restart(service, entra: EntraView):
    await service.send(hire("w1", "W1", "Crash", "Test", "Engineering"))
    await service.runtime.process_events()
    doomed = Worker(service.db, service.runtime.ctx, service.runtime.connectors, service.settings,
                    worker_id="doomed")
    # The doomed worker claims the create, calls Graph (the account is created) and dies before
    # recording anything: no transaction, no result.
    jobs, claimed = doomed._claim()
    assert claimed == 1 and jobs[0].kind == "create_account"
    await doomed._run_target("entra", jobs, RoundReport())
    assert await entra.count_users("W1") == 1
    with service.db.transaction() as session:
        [op] = [o for o in queue.listing(session, OpStatus.RUNNING, 10)]
        assert op.claimed_by == "doomed"
    # A fresh worker cannot take it while the lease holds...
    await service.runtime.worker.run_once()
    with service.db.transaction() as session:
        assert queue.get(session, op.id).status == OpStatus.RUNNING
    # ...and takes it over once the lease has run out.
    clock.advance(timedelta(seconds=service.settings.lease_seconds + 1))
    await service.drain()
    with service.db.transaction() as session:
        done = queue.get(session, op.id)
        assert done.status == OpStatus.SUCCEEDED
        assert done.attempts == 2
        assert "linked existing account" in (done.last_error or "")
    assert await entra.count_users("W1") == 1  # exactly once in effect
    assert entra.groups("W1") == {"All Staff", "Employees", "Engineering", "GitHub Users"}


async def test_worker_killed_after_membership_calls_does_not_duplicate(service, entra: EntraView):
    await service.send(hire("w2", "W2", "Half", "Done", "Engineering"))
    await service.drain()
    await service.send(event("w3", "transfer", "W2", department="Sales"))
    await service.runtime.process_events()
    doomed = Worker(service.db, service.runtime.ctx, service.runtime.connectors, service.settings,
                    worker_id="doomed")
    jobs, _ = doomed._claim()
    await doomed._run_target("entra", jobs, RoundReport())  # Graph changed, nothing recorded
    clock.advance(timedelta(seconds=service.settings.lease_seconds + 1))
    await service.drain()
    assert entra.groups("W2") == {"All Staff", "Employees", "Sales", "Salesforce Users"}
    assert op_statuses(service).get(OpStatus.DEAD, 0) == 0
