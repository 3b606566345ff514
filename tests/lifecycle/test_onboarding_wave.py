"""An onboarding wave into Entra ID (the Graph sandbox, through the real worker and msgraph-sdk):
group additions go 20 to a ``members@odata.bind`` request although they become ready over many
rounds, creates and match-before-create lookups go in ``$batch``es, and the hold that packs a
group's additions delays neither a lone mover's addition past the hold nor a leaver at all."""

from __future__ import annotations

import math
from collections import Counter
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from provisioner.bench.onboarding import wave_config, wave_hire
from provisioner.clock import clock, utcnow
from provisioner.demo.harness import SandboxedService
from provisioner.identities import repository as identities
from provisioner.queue.models import Operation, OpStatus
from tests.support import event

PEOPLE, GROUPS, EACH, DEPARTMENTS = 120, 13, 4, 7
HOLD = 30.0  # long: the test must not depend on how fast this machine runs a round


def _service(database_url: str, tmp_path: Path, **settings) -> tuple[SandboxedService, dict[str, list[str]]]:
    policies, targets, grants = wave_config(tmp_path / "cfg", groups=GROUPS, groups_each=EACH,
                                            departments=DEPARTMENTS, rate=10_000, burst=10_000)
    svc = SandboxedService(tmp_path / "svc", database_url=database_url, migrate=False,
                           policies_dir=policies, targets_dir=targets,
                           settings={"backoff_base_seconds": 0.01, "backoff_max_seconds": 0.05,
                                     "member_add_hold_seconds": HOLD, **settings})
    return svc, grants


def _expected_members(grants: dict[str, list[str]], people: range) -> Counter[str]:
    return Counter(g for n in people for g in grants[f"Dept{n % DEPARTMENTS:02d}"])


def _members(svc: SandboxedService, group: str) -> set[str]:
    return set(svc.sandbox.group_member_ids(svc.group_ids[group]))


def _remote_id(svc: SandboxedService, employee_id: str) -> str | None:
    with svc.db.read() as session:
        person = identities.by_employee_id(session, employee_id)
        account = identities.account(session, person.id, "entra") if person else None
        return account.remote_id if account else None


async def test_onboarding_wave_writes_the_minimum_and_calls_within_a_tenth_of_it(database_url, tmp_path):
    # Rounds of 60 creates: each group's additions become ready over several rounds (the
    # default of 200 would take this whole wave in one). Each round ends in at most one part-
    # filled $batch, which rounds much smaller than this would make count.
    svc, grants = _service(database_url, tmp_path, worker_batch_size=60)
    try:
        stats = svc.sandbox.stats
        stats.reset()
        assert (await svc.send([wave_hire(n, DEPARTMENTS) for n in range(PEOPLE)])).status_code == 202
        await svc.drain(max_wait=120)

        members = _expected_members(grants, range(PEOPLE))
        assert min(members.values()) < 20 < max(members.values())  # groups of various sizes
        ids = {n: _remote_id(svc, f"W{n:06d}") for n in range(PEOPLE)}
        assert all(ids.values())
        for n, rid in ids.items():  # read back from the sandbox: the account is there
            assert svc.sandbox.user(rid)["employeeId"] == f"W{n:06d}"
        for group, count in members.items():
            want = {ids[n] for n in range(PEOPLE) if group in grants[f"Dept{n % DEPARTMENTS:02d}"]}
            assert _members(svc, group) == want and len(want) == count

        writes_min = PEOPLE + sum(math.ceil(m / 20) for m in members.values())
        calls_min = math.ceil((writes_min + PEOPLE) / 20)  # writes and lookups, 20 to a $batch
        binds = stats.calls_by_route["PATCH /groups/{group_id}"]
        assert stats.calls_by_route["POST /users"] == PEOPLE
        assert binds == sum(math.ceil(m / 20) for m in members.values())
        assert stats.calls_by_route["POST /groups/{group_id}/members/$ref"] == 0
        assert stats.writes == writes_min, (stats.writes, writes_min, dict(stats.calls_by_route))
        assert stats.http_calls <= 1.1 * calls_min, (stats.http_calls, calls_min)
        with svc.db.read() as session:
            statuses = Counter(session.scalars(select(Operation.status)))
        assert set(statuses) == {OpStatus.SUCCEEDED}, statuses
    finally:
        await svc.close()


async def _plan_wave_and_existing(svc: SandboxedService, existing: list[int], wave: range) -> None:
    """``existing`` people onboarded first; then the wave's hires planned, its creates still open."""
    await svc.send([wave_hire(n, DEPARTMENTS) for n in existing])
    await svc.drain(max_wait=60)
    await svc.send([wave_hire(n, DEPARTMENTS) for n in wave])
    await svc.runtime.process_events()


async def test_a_lone_movers_addition_is_held_while_its_group_fills_and_goes_out_within_the_hold(
        database_url, tmp_path):
    svc, grants = _service(database_url, tmp_path, worker_batch_size=1, member_add_claim_size=1000)
    try:
        mover = 1  # Dept01; moves to Dept00, gaining Dept00's groups that Dept01 lacks
        gained = sorted(set(grants["Dept00"]) - set(grants["Dept01"]))
        assert gained
        await _plan_wave_and_existing(svc, [mover], range(100, 160))
        await svc.send(event("move", "transfer", f"W{mover:06d}", utcnow(), department="Dept00"))
        await svc.runtime.process_events()
        rid = _remote_id(svc, f"W{mover:06d}")

        await svc.runtime.worker.run_once()  # the wave's creates are open: the addition is held
        assert all(rid not in _members(svc, g) for g in gained)
        held_for = svc.runtime.worker.held_for()
        assert 0 < held_for <= HOLD

        clock.advance(timedelta(seconds=HOLD + 0.1))  # the hold has passed, creates still open
        await svc.runtime.worker.run_once()
        assert all(rid in _members(svc, g) for g in gained)
    finally:
        await svc.close()


async def test_a_leaver_during_a_wave_is_revoked_in_the_first_round_not_held(database_url, tmp_path):
    svc, grants = _service(database_url, tmp_path, worker_batch_size=5)
    try:
        leaver = 2
        await _plan_wave_and_existing(svc, [leaver], range(100, 160))
        rid = _remote_id(svc, f"W{leaver:06d}")
        assert all(rid in _members(svc, g) for g in grants["Dept02"])
        await svc.send(event("leave", "terminate", f"W{leaver:06d}", utcnow(), immediate=True))
        await svc.runtime.process_events()

        def revoked() -> bool:
            return (svc.sandbox.user(rid)["accountEnabled"] is False
                    and all(rid not in _members(svc, g) for g in grants["Dept02"]))

        rounds = 0
        while not revoked() and rounds < 4:  # revocation first: these rounds are the leaver's
            await svc.runtime.worker.run_once()
            rounds += 1
        assert revoked()
        assert rounds <= 2  # the disable, then the removals that wait on it
        with svc.db.read() as session:
            open_wave = session.scalars(select(Operation.id).where(
                Operation.identity_id != _identity(svc, leaver), Operation.status != OpStatus.SUCCEEDED)).all()
        assert open_wave  # the wave is still under way
    finally:
        await svc.close()


def _identity(svc: SandboxedService, n: int) -> str:
    with svc.db.read() as session:
        return identities.by_employee_id(session, f"W{n:06d}").id
