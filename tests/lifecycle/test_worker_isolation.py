"""One operation whose call cannot be prepared, or whose outcome cannot be recorded, is
dead-lettered with the reason and an alert; the round and every other operation go on, and
nothing already done at the target is done again.

The bad data is put where it would be met in production: an operation of a kind this version
does not know (queued by a newer version during a rolling upgrade), a create whose stored
payload is corrupt, and a disable whose stored throttling count is corrupt and that Graph
answers 429 (so recording its outcome raises)."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import update

from provisioner.clock import clock, utcnow
from provisioner.identities import repository as identities
from provisioner.queue import repository as queue
from provisioner.queue.models import Operation, OpStatus, Priority
from tests.support import EntraView, event, hire


def ops_of(service, employee_id: str) -> list[Operation]:
    with service.db.read() as session:
        person = identities.by_employee_id(session, employee_id)
        return list(queue.for_identity(session, person.id)) if person else []


async def test_one_bad_operation_is_dead_lettered_and_the_round_goes_on(service, caplog):
    caplog.set_level(logging.WARNING)
    entra = EntraView(service)
    now = utcnow()
    await service.send([hire(f"wi-h-{e}", f"WI-{e}", "Iso", f"Person{e}", "Engineering", now - timedelta(hours=1))
                        for e in "ABC"])
    await service.drain()
    assert all(entra.user(f"WI-{e}")["accountEnabled"] for e in "ABC")
    mark = utcnow()

    # Three leavers and two joiners, applied by the processor; the worker has not run yet.
    await service.send([event(f"wi-t-{e}", "terminate", f"WI-{e}") for e in "ABC"]
                       + [hire(f"wi-h-{e}", f"WI-{e}", "Iso", f"Person{e}", "Engineering") for e in "DE"])
    await service.runtime.process_events()
    b_id = entra.remote_id("WI-B")
    with service.db.transaction() as session:
        a = identities.by_employee_id(session, "WI-A")
        session.add(Operation(identity_id=a.id, target="entra", kind="archive_account", payload={},
                              priority=Priority.LEAVER, status=OpStatus.PENDING, attempts=0,
                              next_attempt_at=now, created_at=now))
        d = identities.by_employee_id(session, "WI-D")
        session.execute(update(Operation).where(Operation.identity_id == d.id, Operation.kind == "create_account")
                        .values(payload={"suffix": "two"}))
        b = identities.by_employee_id(session, "WI-B")
        session.execute(update(Operation).where(Operation.identity_id == b.id, Operation.kind == "disable_account")
                        .values(payload={"throttled": "many"}))
    service.sandbox.fail_next("PATCH", rf"^/users/{b_id}$", status=429, code="TooManyRequests",
                              message="Too many requests", retry_after=1)
    service.sandbox.stats.reset()

    await service.drain()
    clock.advance(timedelta(seconds=5))  # past the 429's Retry-After, for B's remediation
    await service.drain()

    dead = {(op.kind, op.last_error) for e in "ABD" for op in ops_of(service, f"WI-{e}")
            if op.status == OpStatus.DEAD}
    assert any(k == "archive_account" and "could not be prepared" in why and "archive_account" in why
               for k, why in dead), dead
    assert any(k == "create_account" and "could not be prepared" in why and "ValueError" in why
               for k, why in dead), dead
    assert any(k == "disable_account" and "could not be recorded" in why and "ValueError" in why
               and "transient" in why for k, why in dead), dead
    alerts = [r for r in caplog.records if getattr(r, "alert", None) == "dead_letter"]
    assert len({r.op_id for r in alerts}) >= 3

    # Everyone else's work took effect in Graph, and B's access was still removed: the read-back
    # found the account enabled and remediated it.
    for e in "ABC":
        assert entra.user(f"WI-{e}")["accountEnabled"] is False, e
    assert entra.user("WI-E")["accountEnabled"] is True
    assert entra.user("WI-D") is None  # its create is dead; its grants with it, nothing half-made
    assert all(op.status == OpStatus.DEAD for op in ops_of(service, "WI-D") if op.kind != "verify_revoked")
    # Nothing done at the target was done again: every other operation succeeded on its first try.
    for e in "ACE":
        ops = [op for op in ops_of(service, f"WI-{e}") if op.created_at >= mark and op.kind != "archive_account"
               and op.next_attempt_at <= utcnow()]  # not the account's deletion a retention later
        wrong = [(op.kind, op.status, op.attempts, op.last_error) for op in ops
                 if op.status != OpStatus.SUCCEEDED or op.attempts != 1]
        assert ops and not wrong, wrong
