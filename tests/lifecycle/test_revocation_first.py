"""Revocation first, in every target: immediate terminates sent while a joiner backlog flows
into Entra ID (the Graph sandbox) and a slow SCIM app (the wiki's scim2-server behind the
fault-injecting transport: every request takes time, a Bulk request more with each operation, so
a joiner round's Bulk request takes seconds) are revoked in both systems, read back from them,
while the joiners' work is still pending: revocation does not wait for the backlog, nor share its
rounds and requests."""

from __future__ import annotations

import asyncio
import time

import httpx
from sqlalchemy import func, select

from provisioner.demo.harness import SandboxedService
from provisioner.queue.models import Operation, Priority
from provisioner.queue.repository import OPEN
from provisioner.sandbox.scim.faults import FaultTransport
from tests.support import EntraView, event, hire
from tests.targets.scim_helpers import WikiView

LEAVERS = ["L1", "L2", "L3"]
JOINERS = 300
PER_REQUEST, PER_OPERATION = 0.05, 0.03  # seconds the wiki takes once the backlog starts
DEADLINE = 8.0  # seconds from the terminates to revoked in both systems


def _open_joiner_ops(svc: SandboxedService, target: str | None = None) -> int:
    with svc.db.read() as session:
        stmt = select(func.count()).select_from(Operation).where(
            Operation.priority >= Priority.NORMAL, Operation.status.in_(OPEN))
        if target is not None:
            stmt = stmt.where(Operation.target == target)
        return int(session.scalar(stmt) or 0)


async def _revoked_everywhere(entra: EntraView, wiki: WikiView, emp: str) -> bool:
    user = entra.user(emp)
    if user is None or user["accountEnabled"] is not False or entra.groups(emp):
        return False
    account = await wiki.user(emp)
    return account is not None and account["active"] is False and not await wiki.groups(emp)


async def test_immediate_terminates_are_revoked_in_entra_and_a_slow_scim_app_ahead_of_a_joiner_backlog(
        database_url, tmp_path):
    faults: dict[str, FaultTransport] = {}

    def wrap(name: str, transport: httpx.AsyncBaseTransport) -> httpx.AsyncBaseTransport:
        if name == "wiki":
            faults[name] = FaultTransport(transport)
            return faults[name]
        return transport

    # Entra ID paced fast enough that the slow wiki is where the backlog piles up.
    svc = SandboxedService(tmp_path / "svc", database_url=database_url, migrate=False, wrap_transport=wrap,
                           target_overrides={"throttle": {"writes_per_second": 500, "burst": 500,
                                                          "concurrency": 4}},
                           settings={"worker_poll_seconds": 0.1, "due_events_seconds": 0.1})
    entra, wiki = EntraView(svc), WikiView(svc)
    stop = asyncio.Event()
    background: asyncio.Task[None] | None = None
    try:
        await svc.send([hire(f"{emp}-hire", emp, "Leo", f"Leaver{emp}", "Engineering") for emp in LEAVERS])
        await svc.drain()
        for emp in LEAVERS:
            assert entra.user(emp)["accountEnabled"] is True and "Engineering" in entra.groups(emp)
            assert (await wiki.user(emp))["active"] is True
            assert await wiki.groups(emp) == {"Wiki Readers", "Wiki Editors"}

        faults["wiki"].cost(per_request=PER_REQUEST, per_operation=PER_OPERATION)
        reply = await svc.send([hire(f"j{n}", f"J{n:04d}", "Jo", f"Joiner{n:04d}", "Support")
                                for n in range(JOINERS)])
        assert reply.status_code == 202, reply.text
        await svc.runtime.process_events()  # the backlog is in the queue (the processor is not under test)
        background = asyncio.create_task(svc.runtime.run_background(stop, reconcile=False))
        deadline = time.monotonic() + 30
        while _open_joiner_ops(svc, "wiki") == 0 or faults["wiki"].injected["slow"] < 4:
            assert time.monotonic() < deadline, "the joiners' work never reached the wiki"
            await asyncio.sleep(0.05)  # joiner rounds are now in flight against the slow wiki

        for emp in LEAVERS:  # immediate terminates through the signed HTTP API
            reply = await svc.send(event(f"{emp}-terminate", "terminate", emp, immediate=True))
            assert reply.status_code == 202, reply.text
        sent = time.monotonic()
        pending: list[str] = list(LEAVERS)
        while pending and time.monotonic() - sent < DEADLINE:
            pending = [emp for emp in pending if not await _revoked_everywhere(entra, wiki, emp)]
            await asyncio.sleep(0.1)
        took = time.monotonic() - sent
        open_joiner_ops, open_wiki_joiner_ops = _open_joiner_ops(svc), _open_joiner_ops(svc, "wiki")

        assert not pending, f"{pending} not revoked in both systems {DEADLINE:g} s after the terminates"
        # Revoked while the joiners' work was still under way, the slow wiki's included.
        assert open_wiki_joiner_ops > 0 and open_joiner_ops > 0, (took, open_joiner_ops)
        for emp in LEAVERS:  # read back from the systems themselves
            assert entra.user(emp)["accountEnabled"] is False and entra.groups(emp) == set()
            assert (await wiki.user(emp))["active"] is False and await wiki.groups(emp) == set()
    finally:
        stop.set()
        svc.runtime.worker.wake()
        if background is not None:
            await background
        await svc.close()
