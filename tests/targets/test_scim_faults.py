"""What scim2-server never does by itself, injected between the service and the wiki's server:
slow answers, 429 with Retry-After, 500 and 503, connections refused before the request
reaches the server and dropped after the server applied it. Through the whole service (HR
events in, queue, worker, SCIM connector), on both engines, with Bulk on and off: no
operation is lost, none is applied twice in effect, and the end state is what the policies say.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from provisioner.clock import utcnow
from provisioner.db import Database
from provisioner.demo.harness import SandboxedService
from provisioner.evidence import service as evidence
from provisioner.identities import repository as identities
from provisioner.queue import repository as queue
from provisioner.queue.models import Operation, OpStatus
from provisioner.queue.worker import Worker
from provisioner.sandbox.scim.faults import KINDS, FaultTransport
from provisioner.targets.registry import build_connectors
from tests.support import event, hire
from tests.targets.scim_helpers import WikiView, scim_service

BULK = [pytest.param(True, id="bulk"), pytest.param(False, id="no-bulk")]
READERS, EDITORS = "Wiki Readers", "Wiki Editors"


def wanted_groups(department: str) -> set[str]:
    """What policies/ grant in the wiki: readers to everyone, editors to Engineering."""
    return {READERS, EDITORS} if department == "Engineering" else {READERS}


class Faults(FaultTransport):
    """The fault transport, also logging each request: (start, method, path, status or error)."""

    def __init__(self, inner: httpx.AsyncBaseTransport, *, seed: int = 0) -> None:
        super().__init__(inner, seed=seed)
        self.log: list[tuple[float, str, str, int | str]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        start, path = time.monotonic(), request.url.path.split("/v2", 1)[-1]
        try:
            response = await super().handle_async_request(request)
        except httpx.TransportError as exc:
            self.log.append((start, request.method, path, type(exc).__name__))
            raise
        self.log.append((start, request.method, path, response.status_code))
        return response


@asynccontextmanager
async def wiki_service(tmp_path: Path, database_url: str, *, bulk: bool = True, seed: int = 0,
                       max_attempts: int = 8, **options: Any) -> AsyncIterator[tuple[SandboxedService, Faults]]:
    """The whole service; the wiki's scim2-server sits behind a ``Faults`` transport."""
    svc, log = scim_service(tmp_path, database_url, scim_options={"wiki": {"bulk": bulk}},
                            settings={"max_attempts": max_attempts, **options.pop("settings", {})}, **options)
    log.inner = faults = Faults(log.inner, seed=seed)
    try:
        yield svc, faults
    finally:
        await svc.close()


async def settle(svc: SandboxedService, limit: float = 30.0) -> None:
    """Drain, sleeping (real time, no clock tricks) until each retry is due, until nothing is
    left but what is scheduled days ahead (deferred deletes)."""
    deadline = time.monotonic() + limit
    while True:
        await svc.drain(max_wait=limit)
        with svc.db.transaction() as session:
            nxt = queue.next_attempt_at(session)
        if nxt is None or nxt > utcnow() + timedelta(days=1):
            return
        assert time.monotonic() < deadline, "the queue did not settle"
        await asyncio.sleep(max(0.0, (nxt - utcnow()).total_seconds()) + 0.005)


def wiki_ops(svc: SandboxedService, kind: str | None = None) -> list[Operation]:
    with svc.db.transaction() as session:
        ops = queue.listing(session, None, 10_000)
        return sorted((op for op in ops if op.target == "wiki" and kind in (None, op.kind)), key=lambda o: o.id)


def dead(svc: SandboxedService) -> list[tuple[str, str, str | None]]:
    with svc.db.transaction() as session:
        return [(op.target, op.kind, op.last_error) for op in queue.dead(session)]


async def members(svc: SandboxedService, group: str) -> list[str]:
    """The group's member ids as the server holds them (a list: a duplicate would show)."""
    found = await svc.scim["wiki"].group(group)
    return [m["value"] for m in (found or {}).get("members") or []]


async def wiki_state(svc: SandboxedService, emp: str) -> tuple[dict[str, Any], set[str]]:
    """The one account holding this employee id in the wiki, and its managed groups; also
    checks the service links that very account."""
    accounts = await svc.scim["wiki"].user_by_external_id(emp)
    assert len(accounts) == 1, f"{emp}: {len(accounts)} accounts in the wiki"
    [account] = accounts
    assert WikiView(svc).remote_id(emp) == account["id"], f"{emp}: linked to another account"
    groups = set()
    for group in (READERS, EDITORS):
        ids = await members(svc, group)
        assert ids.count(account["id"]) <= 1, f"{emp} is in {group} {ids.count(account['id'])} times"
        if account["id"] in ids:
            groups.add(group)
    return account, groups


async def groups_on_server(svc: SandboxedService) -> list[str]:
    async with svc.scim["wiki"].client() as client:
        return sorted(g["displayName"] for g in (await client.get("/Groups")).json().get("Resources") or [])


async def assert_provisioned(svc: SandboxedService, people: dict[str, str]) -> None:
    """Each person (employee id -> department) has one active wiki account with the policy's groups."""
    for emp, department in people.items():
        account, groups = await wiki_state(svc, emp)
        assert account.get("active") is not False, f"{emp} is inactive"
        assert groups == wanted_groups(department), f"{emp}: {groups}"
    names = await groups_on_server(svc)
    assert len(names) == len(set(names)), f"a managed group created twice: {names}"
    assert dead(svc) == []


def write_path(bulk: bool) -> str:
    """Where a create goes: inside a Bulk request, or a POST of its own."""
    return "/Bulk" if bulk else "/Users"


# -- 429 with Retry-After ------------------------------------------------------------------------

@pytest.mark.parametrize("bulk", BULK)
async def test_429_retry_after_is_waited_out_and_does_not_use_up_attempts(database_url, tmp_path, bulk):
    retry_after = 1.5  # long enough that the first drain is over before it (a loaded machine)
    async with wiki_service(tmp_path, database_url, bulk=bulk, max_attempts=2) as (svc, faults):
        faults.script("429", times=3, method="POST", path=write_path(bulk), retry_after=retry_after)
        await svc.send(hire("t1", "T1", "Thro", "Ttled", "Engineering"))
        before = utcnow()
        await svc.drain()
        [create] = wiki_ops(svc, "create_account")
        assert create.status == OpStatus.PENDING
        assert create.attempts == 0 and create.payload["throttled"] == 1  # throttling is no failed attempt
        assert create.last_error.startswith("transient") and "429" in create.last_error
        # Not retried before the server's Retry-After (nor much later: jitter is at most a second).
        assert before + timedelta(seconds=retry_after) <= create.next_attempt_at
        assert create.next_attempt_at <= utcnow() + timedelta(seconds=retry_after + 1)

        await settle(svc)
        [create] = wiki_ops(svc, "create_account")
        assert create.status == OpStatus.SUCCEEDED
        assert (create.attempts, create.payload["throttled"]) == (1, 3)  # 3 throttles, max_attempts 2: alive
        assert faults.injected["429"] == 3
        posts = [(at, what) for at, method, path, what in faults.log if (method, path) == ("POST", write_path(bulk))]
        assert [what for _, what in posts[:4]] == [429, 429, 429, 200 if bulk else 201]
        for (throttled_at, _), (next_at, _) in zip(posts[:3], posts[1:4], strict=True):
            assert next_at - throttled_at >= retry_after  # real time, measured at the server's door
        await assert_provisioned(svc, {"T1": "Engineering"})


# -- 500 and 503 ---------------------------------------------------------------------------------

@pytest.mark.parametrize("bulk", BULK)
async def test_500_and_503_are_retried_until_provisioned_once(database_url, tmp_path, bulk):
    async with wiki_service(tmp_path, database_url, bulk=bulk) as (svc, faults):
        faults.script("500", times=2, method="POST", path=write_path(bulk))
        faults.script("503", times=2, method="POST", path=write_path(bulk))
        if not bulk:
            faults.script("500", method="PATCH", path="/Groups")
            faults.script("503", method="PATCH", path="/Groups")
        people = {"F1": "Engineering", "F2": "Sales", "F3": "Engineering"}
        await svc.send([hire(f"f{n}", emp, "Five", f"Hundred{n}", dept) for n, (emp, dept) in enumerate(people.items())])
        await settle(svc)
        assert (faults.injected["500"], faults.injected["503"]) == ((2, 2) if bulk else (3, 3))
        await assert_provisioned(svc, people)
        creates = wiki_ops(svc, "create_account")
        assert len(creates) == 3 and all(op.status == OpStatus.SUCCEEDED for op in creates)
        # The first try of every create failed; each of the four failures was charged to at
        # least one create as a used-up attempt (unlike a 429), none was taken for "applied".
        assert all(op.attempts >= 2 and "throttled" not in op.payload for op in creates)
        assert sum(op.attempts - 1 for op in creates) >= 4
        assert not any("linked" in (op.last_error or "") for op in creates)
        assert len(await svc.scim["wiki"].users()) == 3


# -- dropped after the server applied it ---------------------------------------------------------

@pytest.mark.parametrize("bulk", BULK)
async def test_create_applied_but_answer_dropped_is_linked_not_duplicated(database_url, tmp_path, bulk):
    async with wiki_service(tmp_path, database_url, bulk=bulk) as (svc, faults):
        # Bulk: one request carries both creates; without Bulk, one POST each.
        faults.script("drop_after", times=1 if bulk else 2, method="POST", path=write_path(bulk))
        await svc.send([hire("d1", "D1", "Drop", "One", "Engineering"), hire("d2", "D2", "Drop", "Two", "Sales")])
        await settle(svc)
        assert faults.injected["drop_after"] == (1 if bulk else 2)
        assert "RemoteProtocolError" in [what for *_, what in faults.log]
        await assert_provisioned(svc, {"D1": "Engineering", "D2": "Sales"})
        assert len(await svc.scim["wiki"].users()) == 2
        creates = wiki_ops(svc, "create_account")
        assert len(creates) == 2
        for op in creates:
            # The retry found the account its lost answer had created (by externalId) and linked it.
            assert op.status == OpStatus.SUCCEEDED and op.attempts == 2
            assert "linked existing account" in op.last_error
            [account] = await svc.scim["wiki"].user_by_external_id("D1" if op.id == creates[0].id else "D2")
            assert account["id"] in op.last_error


@pytest.mark.parametrize("bulk", BULK)
async def test_membership_patch_applied_but_answer_dropped_member_appears_once(database_url, tmp_path, bulk):
    async with wiki_service(tmp_path, database_url, bulk=bulk) as (svc, faults):
        await svc.send([hire("m1", "M1", "Moves", "In", "Sales"), hire("m2", "M2", "Moves", "Out", "Engineering")])
        await settle(svc)
        await assert_provisioned(svc, {"M1": "Sales", "M2": "Engineering"})
        hired = max(op.id for op in wiki_ops(svc))
        # The movers' membership changes reach the server, which applies them; the answer is lost.
        faults.script("drop_after", method="POST" if bulk else "PATCH", path="/Bulk" if bulk else "/Groups")
        await svc.send([event("m3", "transfer", "M1", department="Engineering"),
                        event("m4", "transfer", "M2", department="Sales")])
        await settle(svc)
        assert faults.injected["drop_after"] == 1
        await assert_provisioned(svc, {"M1": "Engineering", "M2": "Sales"})  # also: no member twice
        m1, m2 = (await wiki_state(svc, "M1"))[0]["id"], (await wiki_state(svc, "M2"))[0]["id"]
        assert (await members(svc, EDITORS)).count(m1) == 1 and m2 not in await members(svc, EDITORS)
        assert sorted(await members(svc, READERS)) == sorted([m1, m2])
        changes = [op for op in wiki_ops(svc) if op.id > hired and op.kind in ("add_member", "remove_member")]
        assert {(op.kind, op.group_key, op.status, op.attempts) for op in changes} == {
            ("add_member", EDITORS, OpStatus.SUCCEEDED, 2), ("remove_member", EDITORS, OpStatus.SUCCEEDED, 2)}


async def test_leaver_whose_create_answer_was_lost_is_still_revoked(database_url, tmp_path):
    slow_retry = {"backoff_base_seconds": 5, "backoff_max_seconds": 5}  # the retry is not due yet
    async with wiki_service(tmp_path, database_url, settings=slow_retry) as (svc, faults):
        faults.script("drop_after", method="POST", path="/Bulk")
        await svc.send(hire("x1", "X1", "Lost", "Answer", "Engineering"))
        await svc.drain()
        [create] = wiki_ops(svc, "create_account")
        assert create.status == OpStatus.PENDING and (await svc.scim["wiki"].user_by_external_id("X1"))
        start = utcnow()
        await svc.send(event("x2", "terminate", "X1", utcnow()))
        await settle(svc)
        [account] = await svc.scim["wiki"].user_by_external_id("X1")
        assert account["active"] is False  # the attempted create was kept, linked, then revoked
        with svc.db.transaction() as session:
            [record] = evidence.revocations(session, start - timedelta(seconds=1), utcnow() + timedelta(seconds=1))
        assert "wiki" in {s["target"] for s in record["systems"]}


# -- refused before reaching the server, slow, timed out ---------------------------------------

@pytest.mark.parametrize("bulk", BULK)
async def test_refused_connections_slow_answers_and_timeouts_lose_nothing(database_url, tmp_path, bulk):
    async with wiki_service(tmp_path, database_url, bulk=bulk,
                            scim_overrides={"wiki": {"timeout_seconds": 0.3}}) as (svc, faults):
        faults.script("drop_before", times=2, method="POST", path=write_path(bulk))
        faults.script("slow", method="POST", path=write_path(bulk), delay=1.0)  # past the timeout: applied, lost
        faults.script("slow", times=3, method="GET", delay=0.1)  # slow, within the timeout
        await svc.send(hire("s1", "S1", "Slow", "Poke", "Engineering"))
        await settle(svc)
        assert dict(faults.injected) == {"drop_before": 2, "slow": 4}
        outcomes = [what for _, method, path, what in faults.log if (method, path) == ("POST", write_path(bulk))]
        assert outcomes[:3] == ["ConnectError", "ConnectError", "ReadTimeout"]
        # No create again: with Bulk, what follows carries the two grants only (one Bulk request,
        # or two when PostgreSQL's SKIP LOCKED hands them to two worker loops); without, nothing.
        assert set(outcomes[3:]) <= {200} and len(outcomes[3:]) <= (2 if bulk else 0)
        await assert_provisioned(svc, {"S1": "Engineering"})
        assert len(await svc.scim["wiki"].users()) == 1
        [create] = wiki_ops(svc, "create_account")
        # Two refusals created nothing; the timed-out third try did, and the fourth linked it.
        assert create.status == OpStatus.SUCCEEDED and create.attempts == 4
        assert "linked existing account" in create.last_error


# -- worker loops side by side ---------------------------------------------------------------------

async def test_slow_group_creation_with_worker_loops_side_by_side_creates_each_group_once(database_url, tmp_path):
    # One operation per claim: four worker loops each hold a grant of the missing group, each
    # looks it up, and (the creation being slow) each used to create its own copy.
    async with wiki_service(tmp_path, database_url, settings={"worker_batch_size": 1}) as (svc, faults):
        faults.script("slow", times=4, method="POST", path="/Groups", delay=0.2)
        people = {f"W{n}": "Finance" for n in range(4)}
        await svc.send([hire(f"w{n}", emp, "Side", f"By{n}", dept) for n, (emp, dept) in enumerate(people.items())])
        await settle(svc)
        assert await groups_on_server(svc) == [READERS]
        assert [entry[1:] for entry in faults.log if entry[1:3] == ("POST", "/Groups")] == [("POST", "/Groups", 201)]
        await assert_provisioned(svc, people)
        with svc.db.transaction() as session:
            assert identities.target_groups(session, "wiki") == {READERS: (await svc.scim["wiki"].group(READERS))["id"]}


async def test_slow_group_creation_by_two_worker_processes_creates_each_group_once(database_url, tmp_path):
    # A second worker process (`provisioner worker` beside `serve`): its own Database, Worker and
    # connectors, so none of the first one's in-process locks. The group creation is slow, and
    # both find the group missing; they must not each create a copy.
    async with wiki_service(tmp_path, database_url, settings={"worker_batch_size": 1}) as (svc, faults):
        faults.script("slow", times=4, method="POST", path="/Groups", delay=0.2)
        other_db = Database(svc.db.url)
        other = Worker(other_db, svc.runtime.ctx, build_connectors(svc.runtime.ctx.targets, transports=svc.transports),
                       svc.settings, worker_id="second-process")
        try:
            people = {f"T{n}": "Finance" for n in range(4)}
            await svc.send([hire(f"t{n}", emp, "Two", f"Proc{n}", dept) for n, (emp, dept) in enumerate(people.items())])
            await svc.runtime.process_events()
            while sum(await asyncio.gather(svc.runtime.worker.run_once(), svc.runtime.worker.run_once(),
                                           other.run_once(), other.run_once())):
                pass
            await settle(svc)
        finally:
            other_db.dispose()
        assert await groups_on_server(svc) == [READERS]
        assert [entry[1:] for entry in faults.log if entry[1:3] == ("POST", "/Groups")] == [("POST", "/Groups", 201)]
        await assert_provisioned(svc, people)


# -- chaos ----------------------------------------------------------------------------------------

DEPARTMENTS = ["Engineering", "Sales", "Finance", "Engineering", "Marketing"]


@pytest.mark.parametrize("bulk", BULK)
async def test_chaos_joiners_movers_leavers_end_as_the_policies_say(database_url, tmp_path, bulk):
    async with wiki_service(tmp_path, database_url, bulk=bulk, seed=11, max_attempts=30) as (svc, faults):
        faults.chaos(0.3, retry_after=0.05, delay=0.05)  # every kind, on reads and writes alike
        people = {f"C{n:02d}": DEPARTMENTS[n % len(DEPARTMENTS)] for n in range(20)}
        await svc.send([hire(f"c{n}", emp, "Chaos", f"Person{n}", dept) for n, (emp, dept) in enumerate(people.items())])
        await settle(svc)
        movers = {emp: "Sales" if people[emp] == "Engineering" else "Engineering" for emp in list(people)[:8]}
        await svc.send([event(f"mv{emp}", "transfer", emp, department=dept) for emp, dept in movers.items()])
        people.update(movers)
        await settle(svc)
        start = utcnow()
        leavers = list(people)[5:11]  # some of them movers
        await svc.send([event(f"lv{emp}", "terminate", emp, utcnow()) for emp in leavers])
        await settle(svc)

        # Seed 11 draws every kind of fault within the first 37 requests (about 60 with Bulk).
        assert set(faults.injected) == set(KINDS) and sum(faults.injected.values()) >= 15, faults.injected
        assert dead(svc) == []
        # Nothing lost: every operation finished, but for the deferred deletes (30 days on).
        with svc.db.transaction() as session:
            unfinished = [(op.target, op.kind, op.status) for op in queue.listing(session, None, 10_000)
                          if op.status not in (OpStatus.SUCCEEDED, OpStatus.CANCELLED)]
        assert sorted(unfinished) == [("wiki", "delete_account", OpStatus.PENDING)] * len(leavers)

        await assert_provisioned(svc, {emp: dept for emp, dept in people.items() if emp not in leavers})
        for emp in leavers:
            account, groups = await wiki_state(svc, emp)
            assert account["active"] is False and groups == set(), emp
        assert len(await svc.scim["wiki"].users()) == len(people)  # no duplicates, no strays
        assert await groups_on_server(svc) == [EDITORS, READERS]  # each managed group created once
        for group in (READERS, EDITORS):
            ids = await members(svc, group)
            assert len(ids) == len(set(ids)), f"a member twice in {group}"

        with svc.db.transaction() as session:
            records = evidence.revocations(session, start - timedelta(seconds=1), utcnow() + timedelta(seconds=1))
        assert sorted(r["employee_id"] for r in records) == sorted(leavers)
        for record in records:
            wiki = {s["target"]: s for s in record["systems"]}["wiki"]
            assert wiki["verified"] is True and wiki["all_operations_succeeded"] is True, record["employee_id"]
            assert wiki["readback"]["exists"] is True and wiki["readback"]["enabled"] is False
            assert wiki["readback"]["groups_remaining"] == []
            assert record["all_verified"] is True


async def test_a_read_back_failing_for_one_leaver_does_not_hold_back_the_others(database_url, tmp_path):
    """Found by CI: the read-back of several leavers is one call; a 500 on one leaver's GET failed
    every leaver's read-back with it, and under steady faults one of them ran out of attempts."""
    async with wiki_service(tmp_path, database_url) as (svc, faults):
        people = {f"RB{n}": "Engineering" for n in range(4)}
        await svc.send([hire(f"rb{n}", emp, "Read", f"Back{n}", dept) for n, (emp, dept) in enumerate(people.items())])
        await settle(svc)
        with svc.db.read() as session:
            first = identities.by_employee_id(session, "RB0")
            unlucky = identities.account(session, first.id, "wiki").remote_id
        faults.script("500", times=3, method="GET", path=f"/Users/{unlucky}")
        await svc.send([event(f"rbt{n}", "terminate", emp) for n, emp in enumerate(people)])
        await settle(svc)
        assert dead(svc) == []
        verifies = {op.identity_id: op for op in wiki_ops(svc, "verify_revoked")}
        with svc.db.read() as session:
            ids = {emp: identities.by_employee_id(session, emp).id for emp in people}
        assert faults.injected["500"] == 3
        # Three 500s, then read: each disable's effect is confirmed by a GET of the user too (a
        # Bulk answer carries no resource), so the 500s fall on RB0's confirmation or read-back.
        disables = {op.identity_id: op for op in wiki_ops(svc, "disable_account")}
        assert (verifies[ids["RB0"]].attempts - 1) + (disables[ids["RB0"]].attempts - 1) == 3
        assert {disables[ids[e]].attempts for e in people if e != "RB0"} == {1}
        assert {verifies[ids[e]].attempts for e in people if e != "RB0"} == {1}  # never retried with it
        for emp in people:
            account, groups = await wiki_state(svc, emp)
            assert account["active"] is False and groups == set(), emp
