"""One operation whose call cannot be prepared, or whose outcome cannot be recorded, is
dead-lettered with the reason and an alert; the round and every other operation go on, and
nothing already done at the target is done again.

The bad data is put where it would be met in production: an operation of a kind this version
does not know (queued by a newer version during a rolling upgrade), a create whose stored
payload is corrupt, and a disable whose stored throttling count is corrupt and that Graph
answers 429 (so recording its outcome raises)."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from datetime import timedelta

import httpx
from sqlalchemy import select, update

from provisioner.clock import clock, utcnow
from provisioner.demo.harness import SandboxedService
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


class HoldWritesDuringBatch(httpx.AsyncBaseTransport):
    """Forwards to Graph; on the first $batch (the round's calls, after its claim) another
    thread starts a write transaction and holds it for ``hold`` seconds: on SQLite it holds the
    process's write slot (and SQLite's write lock), on PostgreSQL the operations' rows."""

    def __init__(self, inner: httpx.AsyncBaseTransport, db_of, hold: float) -> None:
        self.inner, self.db_of, self.hold = inner, db_of, hold
        self.holder: threading.Thread | None = None

    def _hold(self, held: threading.Event) -> None:
        with self.db_of().transaction() as session:
            session.execute(select(Operation.id).with_for_update()).all()
            held.set()
            time.sleep(self.hold)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.holder is None and request.method == "POST" and request.url.path.endswith("/$batch"):
            held = threading.Event()
            self.holder = threading.Thread(target=self._hold, args=(held,), daemon=True)
            self.holder.start()
            assert await asyncio.to_thread(held.wait, 10)
        return await self.inner.handle_async_request(request)


async def test_a_finished_round_waits_for_the_write_slot_and_is_recorded_once(database_url, tmp_path, caplog):
    """The write slot is held by another thread for 3 s, three times the slot timeout (set to
    1 s here; 60 s in production), while a round's create has been sent: the round waits, records
    its outcome, and nothing is sent again, not even after the lease would have run out."""
    caplog.set_level(logging.INFO)
    holders: list[HoldWritesDuringBatch] = []
    box: dict[str, SandboxedService] = {}

    def wrap(name, transport):
        holders.append(HoldWritesDuringBatch(transport, lambda: box["svc"].db, hold=3.0))
        return holders[-1]

    async with SandboxedService(tmp_path / "svc", database_url=database_url, migrate=False, wrap_transport=wrap,
                                settings={"backoff_base_seconds": 0.01, "backoff_max_seconds": 0.05,
                                          "lease_seconds": 30}) as svc:
        box["svc"] = svc
        svc.db.write_slot_seconds = 1.0
        entra = EntraView(svc)
        await svc.send(hire("ws-h-1", "WS-1", "Slot", "Waiter", "Engineering"))
        await svc.runtime.process_events()
        svc.sandbox.stats.reset()

        claimed = await svc.runtime.worker.run_once()  # the round whose recording must wait
        assert claimed == 1
        assert holders[0].holder is not None
        holders[0].holder.join()
        (create,) = [op for op in ops_of(svc, "WS-1") if op.kind == "create_account" and op.target == "entra"]
        assert create.status == OpStatus.SUCCEEDED and create.attempts == 1, (create.status, create.last_error)
        if svc.db.dialect == "sqlite":  # the slot was refused at least once, and the wait said so
            waits = [r.getMessage() for r in caplog.records if "recording again in" in r.getMessage()]
            assert waits and "no SQLite write slot within 1 s" in waits[0]
            assert any("recorded on try" in r.getMessage() for r in caplog.records)

        # Finish the person, then go past the lease: nothing is sent to Graph twice.
        await svc.drain()
        clock.advance(timedelta(seconds=60))
        await svc.drain()
        assert svc.sandbox.stats.calls_by_route["POST /users"] == 1
        assert await entra.count_users("WS-1") == 1
        assert entra.user("WS-1")["accountEnabled"] is True
        assert not [r for r in caplog.records if getattr(r, "alert", None) == "round_not_recorded"]
